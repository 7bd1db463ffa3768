"""The daemon: sequences the others. It owns the current config, catalog and topology (each
replaced whole), one NodeWorker per node, and the loops that refresh topology and catalog.

Loops: topology refresh every `topology_interval`; config/catalog watch every
`config_poll_interval` and on SIGHUP; per node a reconcile worker (node_worker.py) and a slowlog
watcher (slowlog.py). Nothing here talks Redis protocol itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis_orchestrator import logs
from redis_orchestrator.catalog import Catalog
from redis_orchestrator.checks import AnalysisResult, CatalogAnalysis
from redis_orchestrator.config import Config
from redis_orchestrator.connections import Connector
from redis_orchestrator.errors import CatalogRejected, ConfigError, SeedsUnreachableError
from redis_orchestrator.metrics import Metrics
from redis_orchestrator.node_worker import NodeWorker
from redis_orchestrator.reload import FileWatch, load_candidate
from redis_orchestrator.topology import Topology, discover
from redis_orchestrator.waiting import cancel_and_wait, wait_event

Hook = Callable[[str], None]


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        seeds_override: Sequence[str] | None = None,
        metrics: Metrics | None = None,
        analysis: CatalogAnalysis | None = None,
        notify: Hook | None = None,
    ) -> None:
        self.config = config
        self.seeds_override = list(seeds_override) if seeds_override else None
        self.metrics = metrics if metrics is not None else Metrics()
        self.analysis = analysis if analysis is not None else CatalogAnalysis()
        self.connector = Connector(config.redis)
        self.topology: Topology | None = None
        self.workers: dict[str, NodeWorker] = {}
        self.reload_requested = asyncio.Event()
        self.stopping = asyncio.Event()
        self._files = FileWatch(config.path, config.catalog)
        self._notify = notify or (lambda _msg: None)
        self._extra_tasks: list[Callable[[], Any]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._slowlog: dict[str, Any] = {}
        self._topology_failed = False
        self._seed_turn = -1
        self._topology_wake = asyncio.Event()
        self._fast_topology_until = 0.0
        self._retiring: set[asyncio.Task[None]] = set()  # removed nodes' workers being stopped
        self.heartbeat = time.monotonic()  # loops touch it; the watchdog reads it

    # ------------------------------------------------------------------ accessors

    @property
    def catalog(self) -> Catalog:
        return self.config.catalog

    def ready(self) -> tuple[bool, str]:
        """Catalog loaded and the last reconcile reached every reachable node."""
        if self.topology is None:
            return False, "topology not discovered yet"
        waiting = [a for a, w in self.workers.items() if w.status.state == "unknown"]
        if waiting:
            return False, f"first reconcile pending on {', '.join(sorted(waiting))}"
        behind = [a for a, w in self.workers.items() if w.status.state in ("failing", "refused")]
        behind += [a for a, w in self.workers.items() if w.status.state == "ok" and w.status.missing]
        if behind:
            return False, f"not in sync: {', '.join(sorted(behind))}"
        return True, "ok"

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Until `stopping` is set. Raises CatalogRejected if the first catalog is refused."""
        self._first_analysis()
        self.metrics.catalog_loaded(self.catalog.version, _counts(self.catalog))
        self.metrics.catalog_reload("accepted")
        self._notify("STATUS=discovering topology")
        await self._first_topology()
        if self.stopping.is_set():
            return
        self._tasks = [
            asyncio.create_task(self._topology_loop(), name="topology"),
            asyncio.create_task(self._config_loop(), name="config"),
            asyncio.create_task(self._ready_watch(), name="ready"),
        ]
        for factory in self._extra_tasks:
            self._tasks.append(asyncio.create_task(factory()))
        try:
            await self.stopping.wait()
        finally:
            await self.close()

    def add_task(self, factory: Callable[[], Any]) -> None:
        """Run another loop beside ours (slowlog watch, leader lease, watchdog...)."""
        self._extra_tasks.append(factory)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in self._slowlog.values() if hasattr(s, "stop")))
        await self.connector.aclose()

    def stop(self) -> None:
        self.stopping.set()

    def request_reload(self) -> None:
        self.reload_requested.set()

    # ------------------------------------------------------------------ catalog

    def _first_analysis(self) -> None:
        result = self.analysis.for_config(self.config)
        self._report_findings(result)  # every finding is logged, even when they refuse the catalog
        result.raise_if_blocking(self.config.analysis.block_on)

    def _report_findings(self, result: AnalysisResult, only_scripts: set[str] | None = None) -> None:
        """Export the counts; log each finding (on a reload, only those of new or changed entries:
        the rest were logged when they arrived)."""
        self.metrics.findings(f.severity for f in result.findings)
        for finding in result.findings:
            if only_scripts is not None and finding.label not in only_scripts:
                continue
            logs.event(
                "finding",
                level=_LEVELS.get(finding.severity, 20),
                file=f"{finding.file}:{finding.line}:{finding.column}",
                script=finding.label,
                code=finding.code,
                severity=finding.severity,
                message=finding.message,
            )

    async def reload_catalog(self) -> bool:
        """Validate the config file as it is now; swap it in if it passes. True when swapped."""
        path = self.config.path
        try:
            candidate, result = await load_candidate(
                path, self.seeds_override, self.connector, self.topology, self.config, self.analysis
            )
        except (ConfigError, CatalogRejected) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            logs.error(
                "catalog_rejected",
                f"keeping catalog {self.catalog.version}; " + " | ".join(problems),
                file=str(path),
            )
            self.metrics.catalog_reload("rejected")
            return False
        finally:
            self._files.reset(path, self.config.catalog)
        if candidate == self.config:
            self.metrics.catalog_reload("unchanged")
            return False
        old = self.catalog
        self.config = candidate
        self._files.reset(path, candidate.catalog)
        self.metrics.catalog_reload("accepted")
        self.metrics.catalog_loaded(candidate.catalog.version, _counts(candidate.catalog))
        before = {(e.label, e.sha) for e in old.entries}
        changed = {e.label for e in candidate.catalog.entries if (e.label, e.sha) not in before}
        self._report_findings(result, only_scripts=changed)
        was_live = {e.label for e in old.entries if e.live}
        added = sorted({e.label for e in candidate.catalog.entries if e.live} - was_live)
        logs.event(
            "catalog_reloaded",
            version=candidate.catalog.version,
            previous=old.version,
            added=",".join(added) or None,
            findings=len(result.findings) or None,
        )
        for worker in self.workers.values():
            worker.wake.set()
        return True

    async def _config_loop(self) -> None:
        while True:
            interval = self.config.daemon.config_poll_interval
            await wait_event(self.reload_requested, interval)
            self.heartbeat = time.monotonic()
            requested = self.reload_requested.is_set()
            self.reload_requested.clear()
            watch = self.config.daemon.watch_config
            changed = watch and self._files.changed()
            if requested or changed:
                logs.event("catalog_reload", reason="SIGHUP" if requested else "file changed")
                await self.reload_catalog()

    # ------------------------------------------------------------------ topology

    def _seeds(self) -> list[str]:
        configured = self.seeds_override or list(self.config.redis.seeds)
        known = list(self.topology.addresses) if self.topology else []
        if known:
            # Ask a different node each refresh: no node pays for every CLUSTER SHARDS.
            self._seed_turn = (self._seed_turn + 1) % len(known)
            known = known[self._seed_turn :] + known[: self._seed_turn]
        return list(dict.fromkeys([*known, *configured]))

    async def _first_topology(self) -> None:
        backoff = 0.2
        while not self.stopping.is_set():
            try:
                await self.refresh_topology(raise_errors=True)
                return
            except SeedsUnreachableError as exc:
                if not self._topology_failed:
                    logs.error("no_seed_reachable", str(exc))
                    self._topology_failed = True
                self._notify(f"STATUS=waiting for a seed: {exc}")
            await wait_event(self.stopping, backoff)
            backoff = min(backoff * 2, 5.0)

    async def refresh_topology(self, raise_errors: bool = False) -> None:
        try:
            topology = await discover(
                self.connector, self._seeds(), self.config.redis.mode, timeout=self.config.redis.timeout * 2
            )
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
        self._apply_topology(topology)

    def _apply_topology(self, topology: Topology) -> None:
        old = self.topology
        self.topology = topology
        for node in topology.nodes:
            worker = self.workers.get(node.address)
            if worker is None:
                if old is not None:
                    logs.event("node_added", node=node.address, role=node.role)
                worker = NodeWorker(
                    node,
                    self.connector,
                    lambda: self.config,
                    lambda: self.catalog,
                    self.metrics,
                    on_down=self._node_went_down,
                )
                self.workers[node.address] = worker
                worker.start()
                self._start_node_watchers(node.address)
            else:
                worker.update_node(node)
        for address in list(self.workers):
            if topology.get(address) is None:
                logs.event("node_removed", node=address)
                worker = self.workers.pop(address)
                watcher = self._slowlog.pop(address, None)
                task = asyncio.get_running_loop().create_task(self._retire(worker, watcher))
                self._retiring.add(task)  # the loop holds tasks weakly: keep it until it is done
                task.add_done_callback(self._retiring.discard)
                self.metrics.node_forgotten(address)

    async def _retire(self, worker: NodeWorker, watcher: Any) -> None:
        """Stop a removed node's worker and watcher, then close its connections."""
        await worker.stop()
        if watcher is not None and hasattr(watcher, "stop"):
            with contextlib.suppress(Exception):
                await watcher.stop()
        if worker.address not in self.workers:  # not re-added meanwhile
            await self.connector.drop(worker.node.host, worker.node.port)

    def _node_went_down(self, worker: NodeWorker) -> None:
        """A node stopped answering: it may be failing over (or gone). Look at the topology now and
        every second for a while, so a promotion or removal is seen in about a second instead of
        up to a topology interval later. Nothing else changes: the steady state stays one
        CLUSTER SHARDS per topology interval."""
        self._fast_topology_until = time.monotonic() + _FAST_TOPOLOGY_WINDOW
        self._topology_wake.set()

    def _start_node_watchers(self, address: str) -> None:
        """Hook for per-node watchers beside the reconcile worker (see slow-script watch)."""
        factory = getattr(self, "node_watcher_factory", None)
        if factory is not None:
            self._slowlog[address] = factory(address)

    async def _topology_loop(self) -> None:
        while True:
            interval = self.config.daemon.topology_interval
            if time.monotonic() < self._fast_topology_until:
                interval = min(interval, _FAST_TOPOLOGY_INTERVAL)
            await wait_event(self._topology_wake, interval)
            self._topology_wake.clear()
            self.heartbeat = time.monotonic()
            await self.refresh_topology()

    # ------------------------------------------------------------------ readiness

    async def _ready_watch(self) -> None:
        announced = False
        while True:
            ok, _reason = self.ready()
            self.metrics.ready.set(1 if ok else 0)
            if ok and not announced:
                logs.event(
                    "ready",
                    catalog=self.catalog.version,
                    nodes=len(self.workers),
                    scripts=len(self.catalog.scripts),
                    functions=len(self.catalog.functions) or None,
                )
                self._notify("READY=1")
                announced = True
            self._notify(f"STATUS={self.status_line()}")
            await asyncio.sleep(0.2 if not announced else 1.0)

    def status_line(self) -> str:
        states: dict[str, int] = {}
        for worker in self.workers.values():
            states[worker.status.state] = states.get(worker.status.state, 0) + 1
        parts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        return f"catalog {self.catalog.version}: {len(self.workers)} nodes ({parts})"

    def manifest_json(self) -> str:
        return json.dumps(self.catalog.manifest(), sort_keys=True)


_LEVELS = {"error": 40, "warning": 30, "info": 20}
# After a node goes down: a failover takes about twice cluster-node-timeout; watch the topology
# every second for long enough to see it through.
_FAST_TOPOLOGY_INTERVAL = 1.0
_FAST_TOPOLOGY_WINDOW = 30.0


def _counts(catalog: Catalog) -> dict[str, int]:
    return {"script": len(catalog.scripts), "function": len(catalog.functions)}
