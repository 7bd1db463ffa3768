"""Everything that belongs to one node, started together, stopped together, retired together.

A node has its reconcile worker (node_worker.py), its liveness watch (liveness.py) and its slowlog
watcher (slowlog.py); each is a `NodeTask`: a `run()` coroutine that loops until cancelled. The
daemon creates one `NodeSupervisor` per node through a `NodeFactory` it receives in its
constructor (`standard_node` by default), starts it when the node appears and stops it when the
node is removed or the daemon stops.

A task that fails with an unexpected exception (a bug, or a reply no parser foresaw) is logged with
its traceback and started again a second later: one node's surprise never stops the others, and it
never goes silent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis_orchestrator import logs
from redis_orchestrator.config.settings import DesiredState
from redis_orchestrator.daemon.liveness import LivenessWatch
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.node_worker import NodeStatus, NodeWorker
from redis_orchestrator.daemon.slowlog import SlowlogWatcher
from redis_orchestrator.daemon.waiting import cancel_and_wait
from redis_orchestrator.reconcile.node_pass import NodeReport
from redis_orchestrator.topology.model import Node
from redis_orchestrator.wire.connections import Connector
from redis_orchestrator.wire.servers import ServerInfo

_RESTART_AFTER = 1.0


class NodeTask(Protocol):
    name: str

    async def run(self) -> None: ...


@dataclass(frozen=True)
class NodeEnv:
    """What a node's tasks get from the daemon: reads of its current state, and where to report."""

    connector: Connector
    desired: Callable[[], DesiredState]
    metrics: Metrics
    is_leader: Callable[[], bool]
    # Asked right before a script kill: the lease's server confirms we still lead (leader.py's fencing).
    confirm_leader: Callable[[], Awaitable[bool]]
    on_moved: Callable[[Node], None]
    clock: Callable[[], float] = time.monotonic


class NodeSupervisor:
    def __init__(self, worker: NodeWorker, watchers: Sequence[NodeTask] = ()) -> None:
        self.worker = worker
        self.tasks: tuple[NodeTask, ...] = (worker, *watchers)
        self._running: list[asyncio.Task[None]] = []

    # What the daemon asks of a node, answered here so that nothing reaches through to its tasks.

    @property
    def node(self) -> Node:
        return self.worker.node

    @property
    def address(self) -> str:
        return self.worker.address

    @property
    def status(self) -> NodeStatus:
        return self.worker.status

    @property
    def server(self) -> ServerInfo | None:
        return self.worker.server

    def wake(self) -> None:
        """Reconcile now (a catalog change): the worker's next pass starts at once."""
        self.worker.wake.set()

    async def reconcile_once(self) -> NodeReport:
        """One pass, recorded as the worker records its own (what `converge()` drives)."""
        return await self.worker.reconcile_once()

    def start(self) -> None:
        self.worker.metrics.node_known(self.address, self.node.role)
        self._running = [
            asyncio.create_task(self._supervised(task), name=f"{task.name} {self.address}") for task in self.tasks
        ]

    async def stop(self) -> None:
        running, self._running = self._running, []
        await cancel_and_wait(running)

    def update_node(self, node: Node) -> None:
        self.worker.update_node(node)

    async def _supervised(self, task: NodeTask) -> None:
        while True:
            try:
                await task.run()
                return
            except Exception:
                logs.failure(
                    "node_task_failed", f"restarting it in {_RESTART_AFTER:.0f}s", node=self.address, task=task.name
                )
            await asyncio.sleep(_RESTART_AFTER)


class NodeFactory(Protocol):
    def __call__(self, node: Node, env: NodeEnv) -> NodeSupervisor: ...


def standard_node(node: Node, env: NodeEnv) -> NodeSupervisor:
    """A node's reconcile worker, liveness watch and slowlog watcher."""
    down = asyncio.Event()  # the worker saw the node down: the watch's connection may be a silent one
    worker = NodeWorker(
        node, env.connector, env.desired, env.metrics, on_moved=env.on_moved, on_down=down.set, clock=env.clock
    )
    liveness = LivenessWatch(node, env.connector, env.desired, worker.repair_now, down)
    slowlog = SlowlogWatcher(
        node.address,
        env.connector.client(node.host, node.port),
        env.desired,
        env.metrics,
        env.is_leader,
        confirm_leader=env.confirm_leader,
        features=worker.features,  # one node, one record of what it refuses
        clock=env.clock,
    )
    return NodeSupervisor(worker, (liveness, slowlog))
