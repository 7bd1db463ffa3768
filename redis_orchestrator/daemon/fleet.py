"""Every node's supervisor, by address: made through the `NodeFactory` when its node appears in a
topology, started at once while the daemon runs (`converge()` starts none), retired when the node
leaves the topology. What the daemon asks of its nodes goes through here and the supervisors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from redis_orchestrator import logs
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.node_worker import NodeStatus
from redis_orchestrator.daemon.supervisor import NodeEnv, NodeFactory, NodeSupervisor
from redis_orchestrator.reconcile.node_pass import NodeReport
from redis_orchestrator.topology.model import Node, Topology
from redis_orchestrator.wire.connections import Connector


class Fleet:
    def __init__(self, factory: NodeFactory, env: NodeEnv, metrics: Metrics, connector: Connector) -> None:
        self._factory = factory
        self._env = env
        self.metrics = metrics
        self.connector = connector
        self.supervisors: dict[str, NodeSupervisor] = {}
        self._running = False  # inside Daemon.run(): new nodes' tasks start at once
        self._retiring: set[asyncio.Task[None]] = set()  # removed nodes' supervisors being stopped

    def __getitem__(self, address: str) -> NodeSupervisor:
        return self.supervisors[address]

    def __iter__(self) -> Iterator[NodeSupervisor]:
        return iter(list(self.supervisors.values()))

    def __len__(self) -> int:
        return len(self.supervisors)

    def apply(self, topology: Topology, first: bool) -> None:
        """Follow a new topology: known nodes get their new role, new ones a supervisor, gone ones
        are retired. `first`: the first topology (its nodes are not 'added')."""
        for node in topology.nodes:
            supervisor = self.supervisors.get(node.address)
            if supervisor is not None:
                supervisor.update_node(node)
                continue
            if not first:
                logs.event("node_added", node=node.address, role=node.role)
            supervisor = self.supervisors[node.address] = self._factory(node, self._env)
            if self._running:
                supervisor.start()
        for address in list(self.supervisors):
            if topology.get(address) is None:
                logs.event("node_removed", node=address)
                self._retire(self.supervisors.pop(address))
                self.metrics.node_forgotten(address)

    def start(self) -> None:
        """From now on every node's tasks run: those known now, and each new one as it appears."""
        self._running = True
        for supervisor in self:
            supervisor.start()

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self))
        await asyncio.gather(*self._retiring, return_exceptions=True)

    def wake_all(self) -> None:
        for supervisor in self:
            supervisor.wake()

    def statuses(self) -> dict[str, NodeStatus]:
        return {address: s.status for address, s in self.supervisors.items()}

    def passes(self) -> int:
        """Reconcile passes of every node so far: the watchdog checks they keep coming. Read from
        the metrics endpoint's thread too (/healthz): iterating self walks a copy, so a node added
        meanwhile cannot break the sum."""
        return sum(s.status.reconciles for s in self)

    async def reconcile_once(self, node: Node) -> NodeReport:
        return await self.supervisors[node.address].reconcile_once()

    def _retire(self, supervisor: NodeSupervisor) -> None:
        """Stop a removed node's tasks, then close its connections (unless it came back meanwhile)."""

        async def retire() -> None:
            await supervisor.stop()
            if supervisor.address not in self.supervisors:
                await self.connector.drop(supervisor.node.host, supervisor.node.port)

        task = asyncio.get_running_loop().create_task(retire(), name=f"retire {supervisor.address}")
        self._retiring.add(task)  # the loop holds tasks weakly: keep it until it is done
        task.add_done_callback(self._retiring.discard)
