"""Where a node's cache is repaired: one worker per node, each on its own cadence.

A worker reconciles its node every `reconcile_interval` (one round trip when nothing changed) and
at once when woken: by a catalog change, by the topology loop, or by its liveness watch. The watch
holds an idle connection open and reads from it; the server never writes to it, so the read returns
only when the connection drops (restart, kill -9, CLIENT KILL). A node that is down is probed every
`down_poll_interval`, ten times as often in its first 10 s down, so a restarted node is reloaded a
few milliseconds after its first answer. (Not before: a restarted replica serves reads at once, so
a client hammering it can still meet NOSCRIPT in those milliseconds; bench/bench_repair.py counts
them.) Failures are logged once per state change, not per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import redis.asyncio

from redis_orchestrator import logs
from redis_orchestrator.catalog import Catalog
from redis_orchestrator.config import Config
from redis_orchestrator.connections import Connector, single_connection
from redis_orchestrator.metrics import Metrics
from redis_orchestrator.sync import NodeReport, reconcile_node
from redis_orchestrator.topology import Node
from redis_orchestrator.waiting import cancel_and_wait, wait_event

_MAX_REFUSED_BACKOFF = 5.0
# Right after a node goes down it is probed this many times as often as down_poll_interval, for
# _FAST_PROBE_WINDOW seconds: a restart usually brings it back within that time, and every
# millisecond between its first answer and our reload is a millisecond of NOSCRIPT for clients
# (a restarted replica serves reads at once). A refused connect costs next to nothing.
_FAST_PROBE_FACTOR = 10
_FAST_PROBE_WINDOW = 10.0
# A full observation (every SHA) at least this often, even while the cache marker says all is well.
_FULL_CHECK_EVERY = 60


@dataclass
class NodeStatus:
    """What the worker last saw, for /readyz, status and tests."""

    state: str = "unknown"  # unknown | ok | down | refused | failing
    error: str | None = None
    missing: int = 0
    reconciles: int = 0  # passes so far: the systemd watchdog checks they keep coming
    down_since: float | None = None  # monotonic time the node was last seen going down


class NodeWorker:
    def __init__(
        self,
        node: Node,
        connector: Connector,
        config: Callable[[], Config],
        catalog: Callable[[], Catalog],
        metrics: Metrics,
        on_down: Callable[[NodeWorker], None] | None = None,
    ) -> None:
        self.node = node
        self._on_down = on_down  # the daemon refreshes topology sooner: a down node may be failing over
        self.connector = connector
        self._config = config
        self._catalog = catalog
        self.metrics = metrics
        self.status = NodeStatus()
        self.wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._trusted_catalog: Catalog | None = None
        self._passes_since_full = 0

    @property
    def address(self) -> str:
        return self.node.address

    def start(self) -> None:
        self.metrics.node_known(self.address, self.node.role)
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"reconcile {self.address}"),
            asyncio.create_task(self._watch(), name=f"watch {self.address}"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._tasks)
        self._tasks = []

    def update_node(self, node: Node) -> None:
        if node.role != self.node.role:
            logs.event("role_changed", node=self.address, old=self.node.role, new=node.role)
            self.node = node
            self.metrics.node_known(self.address, node.role)
            self.wake.set()
        else:
            self.node = node

    # ------------------------------------------------------------------ reconcile loop

    async def reconcile_once(self) -> NodeReport:
        config = self._config()
        catalog = self._catalog()
        client = self.connector.client(self.node.host, self.node.port)
        started = time.perf_counter()
        # Trust the cache marker only after a complete, clean full pass on this very catalog, and
        # look at every SHA again every _FULL_CHECK_EVERY passes anyway.
        quick = (
            self._trusted_catalog is catalog
            and self._passes_since_full < _FULL_CHECK_EVERY
            and self.status.state == "ok"
        )
        report = await reconcile_node(
            client, self.node, catalog, write=True, delete_unlisted=config.functions.delete_unlisted, quick=quick
        )
        clean = report.reachable and report.error is None and not report.failures
        if report.quick and clean:
            self._passes_since_full += 1
        elif not report.quick:
            self._trusted_catalog = catalog if clean else None
            self._passes_since_full = 0
        seconds = time.perf_counter() - started
        self._record(report, seconds)
        return report

    async def _loop(self) -> None:
        refused_backoff = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self.wake.clear()
            started = loop.time()
            report = await self.reconcile_once()
            daemon = self._config().daemon
            if report.error is None and report.reachable:
                refused_backoff = 0.0
                # A cadence, not a pause: the pass's own duration is taken off the wait, so a flush
                # is seen at most one interval after the previous look, however slow the node.
                delay = max(0.0, daemon.reconcile_interval - (loop.time() - started))
            elif not report.reachable:
                # Cheap on a dead node (connection refused at once); a frozen one costs its timeout.
                delay = daemon.down_poll_interval
                down_for = time.monotonic() - (self.status.down_since or 0.0)
                if down_for < _FAST_PROBE_WINDOW:
                    delay /= _FAST_PROBE_FACTOR
            else:
                refused_backoff = min(max(refused_backoff * 2, daemon.down_poll_interval), _MAX_REFUSED_BACKOFF)
                delay = refused_backoff
            await wait_event(self.wake, delay)

    def _record(self, report: NodeReport, seconds: float) -> None:
        status = self.status
        previous_state, previous_error = status.state, status.error
        status.reconciles += 1
        loaded = len(report.loaded) + len(report.functions_loaded)
        if not report.reachable:
            status.state, status.error = "down", report.error
        elif report.error is not None:
            status.state, status.error = "refused", report.error
        elif report.failures:
            status.state, status.error = "failing", "; ".join(f.describe(self.node) for f in report.failures)
        else:
            status.state, status.error = "ok", None
        status.missing = len(report.missing_after) if report.plan is not None else status.missing
        if loaded:
            logs.event(
                "repaired",
                node=self.address,
                role=self.node.role,
                loaded=loaded,
                scripts=",".join(s.label for s in (*report.loaded, *report.functions_loaded)),
            )
        # A down node's error text wanders (reset by peer, refused, timeout) while nothing changed
        # for the operator: "down" is one state, logged once. Refusals and load failures are logged
        # again when their reason changes (LOADING, then NOPERM, is news).
        changed = status.state != previous_state or (status.state != "down" and status.error != previous_error)
        if changed:
            if status.state == "down":
                status.down_since = time.monotonic()
            self._log_transition(previous_state, report)
            if status.state == "down" and self._on_down is not None:
                self._on_down(self)
        self.metrics.node_reconciled(
            self.address,
            self.node.role,
            up=report.reachable and report.error is None,
            missing=status.missing,
            loaded=loaded,
            failed=status.state != "ok",
            seconds=seconds if report.reachable else None,
        )

    def _log_transition(self, previous: str, report: NodeReport) -> None:
        state = self.status.state
        if state == "ok":
            if previous != "unknown":
                logs.event("node_recovered", node=self.address, role=self.node.role, previous=previous)
        elif state == "down":
            logs.warning("node_down", node=self.address, role=self.node.role, error=report.error)
        elif state == "refused":
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

    # ------------------------------------------------------------------ liveness watch

    async def _watch(self) -> None:
        """Hold an idle connection; when it drops, wake the reconcile loop at once."""
        base = self._config().daemon.down_poll_interval
        delay = base
        connected_before = True
        while not self._stopping:
            # Same auth and TLS as the clients; no read timeout: wait for the drop as long as it takes.
            connection = single_connection(
                self.connector.settings,
                self.node.host,
                self.node.port,
                socket_timeout=None,
                client_name="redis-orchestrator-watch",
            )
            connected = False
            try:
                await connection.connect()
                connected = True
                if not connected_before:
                    await self._wake_fresh()  # back after a failure: repair now, not at the next probe
                connected_before = True
                delay = base
                await connection.read_response()  # returns only when the server closes or errs
            except asyncio.CancelledError:
                await connection.disconnect()
                raise
            except (redis.RedisError, OSError):
                pass
            await connection.disconnect()
            if self._stopping:
                return
            if connected:
                await self._wake_fresh()
            else:
                connected_before = False
                delay = min(delay * 2, 1.0)  # the reconcile loop probes a down node on its own
            await asyncio.sleep(delay)

    async def _wake_fresh(self) -> None:
        # The pooled connections may be dead too: drop them so the next command reconnects
        # instead of failing once on a stale socket.
        client = self.connector.client(self.node.host, self.node.port)
        with contextlib.suppress(Exception):
            await client.connection_pool.disconnect()
        self.wake.set()
