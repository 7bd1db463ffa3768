"""Whether the daemon is doing its job: every reachable node holds the catalog.

The event loop publishes a `Readiness` snapshot (whole, never mutated) that the HTTP thread reads
for /readyz; the same loop tells systemd READY=1 the first time it is true, and a STATUS= line
with the nodes' states as they change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import NamedTuple

from redis_orchestrator import logs
from redis_orchestrator.catalog.model import Catalog
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.node_worker import NodeStatus
from redis_orchestrator.daemon.systemd import Notifier
from redis_orchestrator.reconcile.node_pass import NodeState
from redis_orchestrator.topology.model import Topology


class Readiness(NamedTuple):
    """Whether the daemon is doing its job, and why not: published whole by the event loop."""

    ready: bool
    reason: str


NOT_DISCOVERED = Readiness(False, "topology not discovered yet")


def judge(topology: Topology | None, statuses: Mapping[str, NodeStatus]) -> Readiness:
    """Ready when a topology is known and the last pass reached every reachable node, in sync."""
    if topology is None:
        return NOT_DISCOVERED
    waiting = sorted(a for a, st in statuses.items() if st.state == NodeState.UNKNOWN)
    if waiting:
        return Readiness(False, f"first reconcile pending on {', '.join(waiting)}")
    behind = sorted(
        a
        for a, st in statuses.items()
        if st.state in (NodeState.FAILING, NodeState.REFUSED) or (st.state == NodeState.OK and st.missing)
    )
    if behind:
        return Readiness(False, f"not in sync: {', '.join(behind)}")
    return Readiness(True, "ok")


def status_line(catalog: Catalog, statuses: Mapping[str, NodeStatus]) -> str:
    """`catalog 2026.11.22: 6 nodes (1 down, 5 ok)`: systemd's STATUS=."""
    states: dict[str, int] = {}
    for status in statuses.values():
        states[status.state] = states.get(status.state, 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    return f"catalog {catalog.version}: {len(statuses)} nodes ({parts})"


class ReadinessLoop:
    """Publishes `current`, the ready gauge and systemd's READY/STATUS, every 0.2 s until the first
    time the daemon is ready (`ready_once` is then set), every second after."""

    name = "readiness"

    def __init__(
        self,
        topology: Callable[[], Topology | None],
        statuses: Callable[[], Mapping[str, NodeStatus]],
        catalog: Callable[[], Catalog],
        metrics: Metrics,
        notifier: Notifier,
    ) -> None:
        self._topology = topology
        self._statuses = statuses
        self._catalog = catalog
        self.metrics = metrics
        self.notifier = notifier
        self.current = NOT_DISCOVERED
        self.ready_once = asyncio.Event()

    def update(self) -> Readiness:
        self.current = judge(self._topology(), self._statuses())
        self.metrics.ready.set(1 if self.current.ready else 0)
        return self.current

    async def run(self) -> None:
        while True:
            if self.update().ready and not self.ready_once.is_set():
                catalog = self._catalog()
                logs.event(
                    "ready",
                    catalog=catalog.version,
                    nodes=len(self._statuses()),
                    scripts=len(catalog.scripts),
                    functions=len(catalog.functions) or None,
                )
                self.notifier.notify("READY=1")
                self.ready_once.set()
            self.notifier.notify(f"STATUS={status_line(self._catalog(), self._statuses())}")
            await asyncio.sleep(0.2 if not self.ready_once.is_set() else 1.0)
