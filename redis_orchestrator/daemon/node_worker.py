"""Where a node's cache is repaired: one worker per node, each on its own cadence.

A worker reconciles its node every `reconcile_interval` (one round trip when nothing changed) and
at once when woken: by a catalog change, by the topology loop, or by the node's liveness watch
(liveness.py). A node that is down is probed every `down_poll_interval`, ten times as often in its
first 10 s down, so a restarted node is reloaded a few milliseconds after its first answer. (Not
before: a restarted replica serves reads at once, so a client hammering it can still meet NOSCRIPT
in those milliseconds; bench/bench_repair.py counts them.) Failures are logged once per state
change, not per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis_orchestrator import logs
from redis_orchestrator.config.settings import DesiredState
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.waiting import unless_set, wait_event
from redis_orchestrator.reconcile.node_pass import NodePass, NodeReport, NodeState
from redis_orchestrator.topology.model import Node
from redis_orchestrator.wire.connections import Connector
from redis_orchestrator.wire.features import NodeFeatures
from redis_orchestrator.wire.servers import ServerInfo

_MAX_REFUSED_BACKOFF = 5.0
# Right after a node goes down it is probed this many times as often as down_poll_interval, for
# _FAST_PROBE_WINDOW seconds: a restart usually brings it back within that time, and every
# millisecond between its first answer and our reload is a millisecond of NOSCRIPT for clients
# (a restarted replica serves reads at once). A refused connect costs next to nothing.
_FAST_PROBE_FACTOR = 10
_FAST_PROBE_WINDOW = 10.0


def next_refused_backoff(previous: float, down_poll_interval: float) -> float:
    """The wait after another refusal (WRONGPASS, NOPERM...) when the last one was `previous` (0 at
    first): doubling from down_poll_interval up to _MAX_REFUSED_BACKOFF. Each try at such a node is
    one more failed AUTH in its log, not a probe (the liveness watch backs off the same way)."""
    return min(max(previous * 2, down_poll_interval), _MAX_REFUSED_BACKOFF)


def probe_delay(down_poll_interval: float, down_for: float) -> float:
    """How long to wait before probing again a node that has been down `down_for` seconds (the
    liveness watch keeps the same cadence)."""
    if down_for < _FAST_PROBE_WINDOW:
        return down_poll_interval / _FAST_PROBE_FACTOR
    return down_poll_interval


# INFO memory (cached scripts, their memory) for the cache gauges every this many passes: it moves
# slowly, and its reply is a kilobyte and a half per node.
_CACHE_STATS_EVERY = 10


@dataclass
class NodeStatus:
    """What the worker last saw, for /readyz, status and tests."""

    state: NodeState = NodeState.UNKNOWN
    error: str | None = None
    missing: int = 0
    reconciles: int = 0  # passes so far: the systemd watchdog checks they keep coming
    down_since: float | None = None  # clock time the node was last seen going down

    @property
    def in_sync(self) -> bool:
        return self.state == NodeState.OK and not self.missing


class NodeWorker:
    """The reconcile loop of one node (`run`), and one pass of it (`reconcile_once`): the pass itself
    is reconcile/node_pass.py's NodePass; here it gets its cadence, its log lines and its metrics."""

    name = "reconcile"

    def __init__(
        self,
        node: Node,
        connector: Connector,
        desired: Callable[[], DesiredState],
        metrics: Metrics,
        *,
        on_moved: Callable[[Node], None] = lambda _node: None,
        on_down: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector = connector
        self._desired = desired
        self.metrics = metrics
        # The daemon looks at the topology sooner: a node that went down may be failing over, one
        # that says another role than the topology, or answers READONLY/LOADING, has moved.
        self._on_moved = on_moved
        # The liveness watch rechecks a connection it holds to a node we see down (a partition).
        self._on_down = on_down
        self._clock = clock
        self.status = NodeStatus()
        self.wake = asyncio.Event()
        self.features = NodeFeatures(node.address, metrics)
        self.node_pass = NodePass(node, connector, self.features)

    @property
    def node(self) -> Node:
        return self.node_pass.node

    @property
    def address(self) -> str:
        return self.node.address

    @property
    def server(self) -> ServerInfo | None:
        """What the node said it is (INFO server), once per connection epoch."""
        return self.node_pass.server

    def update_node(self, node: Node) -> None:
        if node.role != self.node.role:
            logs.event("role_changed", node=self.address, old=self.node.role, new=node.role)
            self.metrics.node_known(self.address, node.role)
            self.wake.set()
        self.node_pass.node = node

    async def repair_now(self) -> None:
        """The node dropped or came back (liveness watch): reconcile now, on fresh connections (the
        pooled ones may be dead too; a stale socket would fail the first command once). It may have
        restarted as another server or with another config: ask again what it is and refuses."""
        with contextlib.suppress(Exception):
            await self.connector.client(self.node.host, self.node.port).connection_pool.disconnect()
        self.node_pass.forget_server()
        self.wake.set()

    # ------------------------------------------------------------------ one pass

    async def reconcile_once(self) -> NodeReport:
        desired = self._desired()
        started = time.perf_counter()
        report = await self.node_pass.run(
            desired.catalog,
            delete_unlisted=desired.functions.delete_unlisted,
            cache_stats=self.status.reconciles % _CACHE_STATS_EVERY == 0,
        )
        cache = report.cache
        self.metrics.script_cache_read(
            self.address, cache.cached_scripts, cache.eval_memory_bytes, cache.evicted_scripts
        )
        if report.role is not None and report.role != self.node.role:
            self._on_moved(self.node)  # the node knows better than the topology: look again now
        self._record(report, time.perf_counter() - started)
        return report

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Reconcile on the cadence below until cancelled."""
        refused_backoff = 0.0
        while True:
            self.wake.clear()
            started = self._clock()
            report = await self._probe() if self.status.state == NodeState.DOWN else await self.reconcile_once()
            if report is None:
                continue  # woken while probing a node that was down: probe again at once
            daemon = self._desired().daemon
            if report.state.answered:
                refused_backoff = 0.0
                # A cadence, not a pause: the pass's own duration is taken off the wait, so a flush
                # is seen at most one interval after the previous look, however slow the node.
                delay = max(0.0, daemon.reconcile_interval - (self._clock() - started))
            elif report.state == NodeState.MOVING:
                delay = daemon.down_poll_interval  # re-plan at once on a fresh ROLE: it settles in moments
            elif report.state == NodeState.DOWN:
                # Cheap on a dead node (connection refused at once); a frozen one costs its timeout.
                delay = probe_delay(daemon.down_poll_interval, self._clock() - (self.status.down_since or 0.0))
            else:
                delay = refused_backoff = next_refused_backoff(refused_backoff, daemon.down_poll_interval)
            await wait_event(self.wake, delay)

    async def _probe(self) -> NodeReport | None:
        """A pass on a node that is down, given up when woken meanwhile (None then): the liveness
        watch got a connection, and where packets vanish (a partition) this pass may still be
        waiting out its connect timeout after the link healed, while a fresh one gets through now."""
        probe = await unless_set(self.reconcile_once(), self.wake)
        return None if probe is None else probe.result()

    def _record(self, report: NodeReport, seconds: float) -> None:
        status = self.status
        previous_state, previous_error = status.state, status.error
        status.reconciles += 1
        status.state, status.error = report.state, report.problem
        if report.plan is not None:
            status.missing = len(report.missing_after)
        elif report.state == NodeState.REFUSED and not (report.error or "").startswith("BUSY"):
            # It serves clients but refuses our check (a wrong password, an ACL, a renamed SCRIPT):
            # nothing it holds can be vouched for, so every script it should hold counts as missing
            # and the missing-scripts alert fires for it. Not for BUSY: the node was checked before a
            # slow script took it, and node_busy tells that story.
            catalog = self._desired().catalog
            status.missing = len(catalog.shas) + (len(catalog.functions) if self.node.takes_functions else 0)
        if report.loads:
            logs.event(
                "repaired",
                node=self.address,
                role=self.node.role,
                loaded=len(report.loads),
                scripts=",".join(s.label for s in report.loads),
            )
        # A down node's error text wanders (reset by peer, refused, timeout) while nothing changed
        # for the operator: "down" is one state, logged once. Refusals and load failures are logged
        # again when their reason changes (LOADING, then NOPERM, is news).
        down = status.state == NodeState.DOWN
        moving = status.state == NodeState.MOVING
        if status.state != previous_state or (not (down or moving) and status.error != previous_error):
            if down:
                status.down_since = self._clock()
                self._on_down()
            self._log_transition(previous_state, report)
            if down or moving:
                self._on_moved(self.node)
        self.metrics.node_reconciled(
            self.address,
            self.node.role,
            up=report.state.answered,
            missing=status.missing,
            loaded=len(report.loads),
            failed=status.state not in (NodeState.OK, NodeState.MOVING),
            seconds=seconds if report.reachable else None,
        )

    def _log_transition(self, previous: NodeState, report: NodeReport) -> None:
        state = self.status.state
        if state == NodeState.OK:
            if previous != NodeState.UNKNOWN:
                logs.event("node_recovered", node=self.address, role=self.node.role, previous=previous)
        elif state == NodeState.DOWN:
            logs.warning("node_down", node=self.address, role=self.node.role, error=report.error)
        elif state == NodeState.MOVING:
            # Not a failure: READONLY/LOADING/MOVED while the topology settles (a failover, a node
            # rejoining as a replica). Said once, at info level; the node is re-planned at once.
            logs.event("node_moving", node=self.address, role=self.node.role, reason=report.error)
        elif state == NodeState.REFUSED:
            logs.warning("node_refused", node=self.address, role=self.node.role, error=report.error)
        else:
            for failure in report.failures:
                logs.warning(
                    "load_failed",
                    node=self.address,
                    script=failure.script.label,
                    file=failure.script.file,
                    error=failure.message,
                )
