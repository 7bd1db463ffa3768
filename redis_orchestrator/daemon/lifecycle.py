"""The daemon: sequences the others. Everything that runs is visible in `run()`:

- daemon-wide loops, in one task group with one shutdown path: topology (discovery, then a refresh
  every `topology_interval`, every second for a while after a node went down), catalog watch (file
  edits and SIGHUP), readiness (/readyz and systemd's READY/STATUS), and when configured the
  metrics endpoint, the leader lease, the manifest key and the systemd watchdog; in sentinel mode
  the Sentinels' events (sentinel_events.py), and in sentinel and replication modes the primary
  watch (replication.py), both of which only wake the topology loop;
- per node, a `NodeSupervisor` (supervisor.py: reconcile worker, liveness watch, slowlog watcher),
  created through the `NodeFactory` given to the constructor, started when the node appears and
  retired when it goes.

`converge()` runs the same code once, to convergence, with nothing left running (arq's burst mode):
what tests drive in-process, with their own registry and clock.

State it owns, each replaced whole: the desired state (catalog + live settings; a reload swaps it),
the topology, and the readiness snapshot that the HTTP thread reads. Nothing here talks the Redis
protocol itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from redis_orchestrator import logs
from redis_orchestrator.analysis.checks import AnalysisResult, CatalogAnalysis
from redis_orchestrator.catalog.model import Catalog, Script
from redis_orchestrator.config.settings import Config, DesiredState, Mode, RedisOverrides, restart_needed
from redis_orchestrator.daemon.http import MetricsServer, Readiness
from redis_orchestrator.daemon.leader import KeyRouter, LeaderError, LeaderLease, ManifestPublisher, load_lock_scripts
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.reload import FileWatch, load_candidate
from redis_orchestrator.daemon.sentinel_events import SentinelEvent, SentinelEvents
from redis_orchestrator.daemon.supervisor import NodeEnv, NodeFactory, NodeSupervisor, standard_node
from redis_orchestrator.daemon.systemd import LoopHealth, Notifier, watchdog_loop
from redis_orchestrator.daemon.waiting import wait_event
from redis_orchestrator.errors import CatalogRejected, ConfigError, SeedsUnreachableError
from redis_orchestrator.reconcile.node_pass import NodeReport, NodeState
from redis_orchestrator.topology.discovery import discover
from redis_orchestrator.topology.model import Node, Topology
from redis_orchestrator.topology.replication import PrimaryWatch
from redis_orchestrator.wire.connections import Connector

# After a node goes down: a failover takes about twice cluster-node-timeout; watch the topology
# every second for long enough to see it through.
_FAST_TOPOLOGY_INTERVAL = 1.0
_FAST_TOPOLOGY_WINDOW = 30.0
# With analysis.block_on none the first analysis waits for readiness, at most this long.
_ANALYSIS_WAITS_FOR_READY = 10.0


class ReloadResult(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Convergence:
    """Every pass `converge()` made, each one report per node address."""

    passes: tuple[Mapping[str, NodeReport], ...]

    @property
    def reports(self) -> Mapping[str, NodeReport]:
        """Where each node ended: the last pass."""
        return self.passes[-1]

    @property
    def converged(self) -> bool:
        """The last pass had nothing to load (within max_passes)."""
        return not any(report.loads for report in self.reports.values())

    def loaded(self, address: str) -> tuple[Script, ...]:
        """Everything loaded on one node, over all passes."""
        return tuple(script for done in self.passes if address in done for script in done[address].loads)


class _Stopping(Exception):
    """Raised inside the task group to end it: every loop is cancelled and awaited."""


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        metrics: Metrics | None = None,
        nodes: NodeFactory = standard_node,
        analysis: CatalogAnalysis | None = None,
        notifier: Notifier | None = None,
        watchdog_interval: float | None = None,
        serve_metrics: bool = True,
        seeds_override: Sequence[str] | None = None,
        overrides: RedisOverrides | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Raises ConfigError when a start-time setting cannot be honoured (the lease's scripts).
        `seeds_override` / `overrides`: what the command line put in place of redis settings; a
        reload reads the file with them again."""
        self.config = config  # as read at start: `start` is fixed for the life of the process
        self.desired = config.desired  # replaced whole by each accepted reload
        self.overrides = (overrides or RedisOverrides()).with_seeds(seeds_override)
        self.metrics = metrics if metrics is not None else Metrics()
        self.analysis = analysis if analysis is not None else CatalogAnalysis()
        self.notifier = notifier if notifier is not None else Notifier({})
        self.clock = clock
        self.connector = Connector(config.start.redis)
        self.topology: Topology | None = None
        self.supervisors: dict[str, NodeSupervisor] = {}
        self.readiness = Readiness(False, "topology not discovered yet")
        self.heartbeat = clock()  # the loops touch it; the watchdog reads it
        self.stopping = asyncio.Event()
        self.discovered = asyncio.Event()  # set once the first topology is known
        self.ready_once = asyncio.Event()  # set the first time every node holds the catalog
        self.reload_requested = asyncio.Event()
        self._nodes = nodes
        self._files = FileWatch(config.path, config.catalog)
        self._topology_failed = False
        self._topology_wake = asyncio.Event()
        self._fast_topology_until = 0.0
        self._seed_turn = -1
        self._restart_pending: list[str] = []
        self._running = False  # inside run(): new nodes' tasks start at once (converge() starts none)
        self._retiring: set[asyncio.Task[None]] = set()  # removed nodes' supervisors being stopped

        start = config.start
        self.leader = self._lease() if start.leader.enabled else None
        router = self.leader.router if self.leader is not None else KeyRouter(self.connector, lambda: self.topology)
        self.manifest = (
            ManifestPublisher(start.manifest.key, router, lambda: self.catalog, start.manifest.sources)
            if start.manifest.key
            else None
        )
        self.http = (
            MetricsServer(start.metrics.listen, self.metrics.registry, lambda: self.readiness)
            if serve_metrics and start.metrics.enabled
            else None
        )
        self.watchdog = (
            LoopHealth(
                heartbeat=lambda: self.heartbeat,
                passes=lambda: sum(s.worker.status.reconciles for s in self.supervisors.values()),
                # A pass may take up to the command timeout on a frozen node; allow three of either
                # before declaring the loops stuck.
                stale_after=max(
                    3 * config.desired.daemon.reconcile_interval, 3 * start.redis.timeout, 2 * watchdog_interval
                ),
                clock=clock,
            )
            if watchdog_interval is not None and self.notifier.enabled
            else None
        )
        self.watchdog_interval = watchdog_interval or 0.0
        if self.leader is None:
            self.metrics.leader.set(1)  # the only instance: always the leader
        redis = start.redis
        self.sentinel_events = (
            SentinelEvents(
                redis, redis.seeds, redis.service_name or "", self._sentinel_event, self._topology_behind, self.metrics
            )
            if redis.mode == Mode.SENTINEL
            else None
        )
        self.primary_watch = (
            PrimaryWatch(
                self.connector,
                lambda: self.topology,
                lambda: self.desired.daemon.reconcile_interval,
                self._topology_behind,
            )
            if redis.mode in (Mode.SENTINEL, Mode.REPLICATION)
            else None
        )

    def _lease(self) -> LeaderLease:
        try:
            scripts = load_lock_scripts()
        except LeaderError as exc:
            raise ConfigError(str(self.config.path), [f"leader.enabled: {exc}"]) from exc
        start = self.config.start
        return LeaderLease(start.leader, start.redis, lambda: self.topology, self.metrics, scripts=scripts)

    # ------------------------------------------------------------------ accessors

    @property
    def catalog(self) -> Catalog:
        return self.desired.catalog

    def is_leader(self) -> bool:
        return self.leader.is_leader() if self.leader is not None else True

    def node_env(self) -> NodeEnv:
        return NodeEnv(
            connector=self.connector,
            desired=lambda: self.desired,
            metrics=self.metrics,
            is_leader=self.is_leader,
            on_moved=self._look_at_topology,
            clock=self.clock,
        )

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Until `stop()`. Raises CatalogRejected if the first catalog is refused."""
        blocking = self.desired.analysis.block_on is not None
        if blocking:
            self._first_analysis()  # findings may refuse the catalog: nothing is loaded before
        else:
            self._catalog_announced()
        self._running = True
        try:
            async with asyncio.TaskGroup() as loops:
                loops.create_task(self._topology_loop(), name="topology")
                loops.create_task(self._catalog_watch(), name="catalog watch")
                loops.create_task(self._readiness_loop(), name="readiness")
                if not blocking:
                    loops.create_task(self._analyse_after_ready(), name="first analysis")
                if self.http is not None:
                    loops.create_task(self.http.serve(), name="metrics endpoint")
                if self.leader is not None:  # both route by slot: they start once a topology is known
                    loops.create_task(self._after_discovery(self.leader.run), name="leader lease")
                if self.manifest is not None:
                    loops.create_task(self._after_discovery(self._publish_manifest), name="manifest key")
                if self.watchdog is not None:
                    loops.create_task(
                        watchdog_loop(self.notifier, self.watchdog_interval, self.watchdog), name="watchdog"
                    )
                if self.sentinel_events is not None:
                    loops.create_task(self.sentinel_events.run(), name="sentinel events")
                if self.primary_watch is not None:
                    loops.create_task(self._after_discovery(self.primary_watch.run), name="primary watch")
                await self.stopping.wait()
                raise _Stopping
        except* _Stopping:
            pass
        finally:
            await self.close()

    async def _after_discovery(self, loop: Callable[[], Coroutine[object, object, None]]) -> None:
        await self.discovered.wait()
        await loop()

    async def _publish_manifest(self) -> None:
        assert self.manifest is not None
        await self.manifest.run(self.is_leader, self.leader.changed if self.leader is not None else None)

    async def converge(self, max_passes: int = 5) -> Convergence:
        """The real loop once, to convergence: the first analysis, a topology, then a reconcile pass
        on every node, repeated until a pass loads nothing (at most `max_passes`). Nothing keeps
        running in the background; `close()` (or `async with`) releases the connections."""
        if self.topology is None:
            self._first_analysis()
        await self.refresh_topology(raise_errors=True)
        passes: list[dict[str, NodeReport]] = []
        while len(passes) < max_passes:
            supervisors = list(self.supervisors.values())
            done = await asyncio.gather(*(s.worker.reconcile_once() for s in supervisors))
            passes.append({s.address: report for s, report in zip(supervisors, done, strict=True)})
            self.readiness = self._readiness()
            if not any(report.loads for report in done):
                break
        return Convergence(tuple(passes))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every node's tasks, hand the lease over, close every connection."""
        await asyncio.gather(*(s.stop() for s in self.supervisors.values()))
        await asyncio.gather(*self._retiring, return_exceptions=True)
        if self.leader is not None:
            await self.leader.aclose()  # released now rather than when it expires
        await self.connector.aclose()

    def stop(self) -> None:
        self.stopping.set()

    def request_reload(self) -> None:
        self.reload_requested.set()

    # ------------------------------------------------------------------ catalog

    def _catalog_announced(self) -> None:
        self.metrics.catalog_loaded(self.catalog.version, self.catalog.counts())
        self.metrics.catalog_reload(ReloadResult.ACCEPTED)

    def _first_analysis(self) -> None:
        self._catalog_announced()
        result = self._analyse(self.desired)
        self._report_findings(result)  # every finding is logged, even when they refuse the catalog
        result.raise_if_blocking(self.desired.analysis.block_on)

    def _analyse(self, desired: DesiredState) -> AnalysisResult:
        """The first catalog's analysis, through the cache file when there is one (a restart with an
        unchanged catalog then costs reading it)."""
        cache = desired.analysis.cache_file
        if cache and desired.analysis.enabled:
            logs.event("analysis_cache", file=cache, loaded=self.analysis.load_cache(Path(cache)))
        result = self.analysis.for_desired(desired)
        if cache and desired.analysis.enabled:
            try:
                self.analysis.save_cache(Path(cache))
            except OSError as exc:
                logs.warning("analysis_cache_unwritable", f"cannot write analysis.cache_file: {exc}", file=cache)
        return result

    async def _analyse_after_ready(self) -> None:
        """With block_on none nothing waits for the analysis: it runs once the nodes hold the catalog
        (or after a while if they cannot), in a worker thread, and its findings are reported then."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_ANALYSIS_WAITS_FOR_READY):
                await self.ready_once.wait()
        desired = self.desired
        result = await asyncio.to_thread(self._analyse, desired)
        if desired is self.desired:  # a reload since has reported its own findings
            self._report_findings(result)

    def _report_findings(self, result: AnalysisResult, only_scripts: set[str] | None = None) -> None:
        """Export the counts; log each finding (on a reload, only those of new or changed entries:
        the rest were logged when they arrived)."""
        self.metrics.findings(f.severity for f in result.findings)
        for finding in result.findings:
            if only_scripts is not None and finding.label not in only_scripts:
                continue
            logs.event(
                "finding",
                level=finding.severity.log_level,
                file=f"{finding.file}:{finding.line}:{finding.column}",
                script=finding.label,
                code=finding.code,
                severity=finding.severity,
                message=finding.message,
            )

    async def reload(self) -> ReloadResult:
        """Read the config file as it is now. The desired state is swapped in whole when it passes
        every check; start-time settings that changed are named (they need a restart) and not applied."""
        path = self.config.path
        try:
            candidate, result = await load_candidate(
                path, self.overrides, self.connector, self.topology, self.catalog, self.analysis
            )
        except (ConfigError, CatalogRejected) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            logs.error(
                "catalog_rejected", f"keeping catalog {self.catalog.version}; " + " | ".join(problems), file=str(path)
            )
            self.metrics.catalog_reload(ReloadResult.REJECTED)
            return ReloadResult.REJECTED
        finally:
            self._files.reset(path, self.catalog)
        self._note_restart_needed(restart_needed(self.config.start, candidate.start))
        if candidate.desired == self.desired:
            self.metrics.catalog_reload(ReloadResult.UNCHANGED)
            return ReloadResult.UNCHANGED
        old = self.desired
        self.desired = candidate.desired
        self._files.reset(path, self.catalog)
        self.metrics.catalog_reload(ReloadResult.ACCEPTED)
        self.metrics.catalog_loaded(self.catalog.version, self.catalog.counts())
        before = {(e.label, e.sha) for e in old.catalog.entries}
        changed = {e.label for e in self.catalog.entries if (e.label, e.sha) not in before}
        self._report_findings(result, only_scripts=changed)
        was_live = {e.label for e in old.catalog.entries if e.live}
        added = sorted({e.label for e in self.catalog.entries if e.live} - was_live)
        settings = [
            f.name
            for f in dataclasses.fields(DesiredState)
            if f.name != "catalog" and getattr(old, f.name) != getattr(self.desired, f.name)
        ]
        logs.event(
            "catalog_reloaded",
            version=self.catalog.version,
            previous=old.catalog.version,
            added=",".join(added) or None,
            settings=",".join(settings) or None,
            findings=len(result.findings) or None,
        )
        for supervisor in self.supervisors.values():
            supervisor.worker.wake.set()
        return ReloadResult.ACCEPTED

    def _note_restart_needed(self, keys: list[str]) -> None:
        self.metrics.restart_pending.set(len(keys))
        if keys and keys != self._restart_pending:
            logs.warning(
                "config_restart_needed",
                "start-time settings changed in the file; they apply after a restart (the running values stay)",
                keys=",".join(keys),
            )
        self._restart_pending = keys

    async def _catalog_watch(self) -> None:
        while True:
            await wait_event(self.reload_requested, self.desired.daemon.config_poll_interval)
            self.heartbeat = self.clock()
            requested = self.reload_requested.is_set()
            self.reload_requested.clear()
            if requested or (self.desired.daemon.watch_config and self._files.changed()):
                logs.event("catalog_reload", reason="SIGHUP" if requested else "file changed")
                await self.reload()

    # ------------------------------------------------------------------ topology

    def _seeds(self) -> list[str]:
        configured = list(self.config.start.redis.seeds)  # --seed already in place (load_config)
        if self.config.start.redis.mode == Mode.SENTINEL:
            return configured  # the seeds are the Sentinels; data nodes are what they tell us
        known = list(self.topology.addresses) if self.topology else []
        if known:
            # Ask a different node each refresh: no node pays for every CLUSTER SHARDS.
            self._seed_turn = (self._seed_turn + 1) % len(known)
            known = known[self._seed_turn :] + known[: self._seed_turn]
        return list(dict.fromkeys([*known, *configured]))

    async def _topology_loop(self) -> None:
        """The first topology (waiting for a seed, with backoff), then a refresh every interval."""
        self.notifier.notify("STATUS=discovering topology")
        backoff = 0.2
        while self.topology is None:
            try:
                await self.refresh_topology(raise_errors=True)
            except SeedsUnreachableError as exc:
                if not self._topology_failed:
                    logs.error("no_seed_reachable", str(exc))
                    self._topology_failed = True
                self.notifier.notify(f"STATUS=waiting for a seed: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        while True:
            interval = self.desired.daemon.topology_interval
            # Polling is the fallback while no Sentinel subscription is up.
            events_down = self.sentinel_events is not None and not self.sentinel_events.live
            if self.clock() < self._fast_topology_until or events_down:
                interval = min(interval, _FAST_TOPOLOGY_INTERVAL)
            await wait_event(self._topology_wake, interval)
            self._topology_wake.clear()
            self.heartbeat = self.clock()
            await self.refresh_topology()

    async def refresh_topology(self, raise_errors: bool = False) -> None:
        redis = self.config.start.redis
        try:
            topology = await discover(self.connector, self._seeds(), redis.mode, timeout=redis.timeout * 2)
        except SeedsUnreachableError as exc:
            if raise_errors:
                raise
            if not self._topology_failed:
                logs.error("topology_unavailable", f"keeping the last known topology: {exc}")
                self._topology_failed = True
            return
        if self._topology_failed:
            logs.event("topology_available", answered_by=topology.answered_by)
            self._topology_failed = False
        self._log_notes(topology)
        self._apply_topology(topology)

    def _log_notes(self, topology: Topology) -> None:
        """Each note (Sentinels that disagree, a stray primary) once, when it appears."""
        seen = set(self.topology.notes) if self.topology is not None else set()
        for note in topology.notes:
            if note not in seen:
                logs.warning("topology_note", note, answered_by=topology.answered_by)

    def _apply_topology(self, topology: Topology) -> None:
        old = self.topology
        self.topology = topology
        self.discovered.set()
        for node in topology.nodes:
            supervisor = self.supervisors.get(node.address)
            if supervisor is not None:
                supervisor.update_node(node)
                continue
            if old is not None:
                logs.event("node_added", node=node.address, role=node.role)
            supervisor = self.supervisors[node.address] = self._nodes(node, self.node_env())
            if self._running:
                supervisor.start()
        for address in list(self.supervisors):
            if topology.get(address) is None:
                logs.event("node_removed", node=address)
                self._retire(self.supervisors.pop(address))
                self.metrics.node_forgotten(address)

    def _retire(self, supervisor: NodeSupervisor) -> None:
        """Stop a removed node's tasks, then close its connections (unless it came back meanwhile)."""

        async def retire() -> None:
            await supervisor.stop()
            if supervisor.address not in self.supervisors:
                await self.connector.drop(supervisor.node.host, supervisor.node.port)

        task = asyncio.get_running_loop().create_task(retire(), name=f"retire {supervisor.address}")
        self._retiring.add(task)  # the loop holds tasks weakly: keep it until it is done
        task.add_done_callback(self._retiring.discard)

    def _look_at_topology(self, node: Node) -> None:
        """A node stopped answering (it may be failing over, or gone), or says another role than the
        topology, or answered READONLY/LOADING: look at the topology now and every second for a
        while, so a promotion or removal is seen in about a second instead of up to a topology
        interval later. Nothing else changes: the steady state stays one CLUSTER SHARDS per
        topology interval."""
        self._fast_topology_until = self.clock() + _FAST_TOPOLOGY_WINDOW
        self._topology_wake.set()

    def _sentinel_event(self, event: SentinelEvent) -> None:
        """A Sentinel saw a failover, a node going down or back, a new replica: look now, and every
        second for a while (a failover takes a few seconds to complete)."""
        self._fast_topology_until = self.clock() + _FAST_TOPOLOGY_WINDOW
        self._topology_wake.set()

    def _topology_behind(self, reason: str) -> None:
        """The primary's ROLE or a restored subscription says the topology may be out of date."""
        logs.event("topology_refresh", reason=reason)
        self._topology_wake.set()

    # ------------------------------------------------------------------ readiness

    def _readiness(self) -> Readiness:
        """Catalog loaded and the last reconcile reached every reachable node."""
        if self.topology is None:
            return Readiness(False, "topology not discovered yet")
        statuses = {address: s.worker.status for address, s in self.supervisors.items()}
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

    async def _readiness_loop(self) -> None:
        announced = False
        while True:
            self.readiness = self._readiness()
            self.metrics.ready.set(1 if self.readiness.ready else 0)
            if self.readiness.ready and not announced:
                logs.event(
                    "ready",
                    catalog=self.catalog.version,
                    nodes=len(self.supervisors),
                    scripts=len(self.catalog.scripts),
                    functions=len(self.catalog.functions) or None,
                )
                self.notifier.notify("READY=1")
                self.ready_once.set()
                announced = True
            self.notifier.notify(f"STATUS={self.status_line()}")
            await asyncio.sleep(0.2 if not announced else 1.0)

    def status_line(self) -> str:
        states: dict[str, int] = {}
        for supervisor in self.supervisors.values():
            state = supervisor.worker.status.state
            states[state] = states.get(state, 0) + 1
        parts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        return f"catalog {self.catalog.version}: {len(self.supervisors)} nodes ({parts})"
