"""The desired state the daemon enforces, and how it changes: the first catalog's analysis, live
edits (the config file and every script file watched, and SIGHUP), each candidate validated whole
before it replaces the running one (reload.py), findings logged and counted, start-time settings
that changed named (they need a restart).

`desired` is replaced whole by each accepted reload; everything else reads it through `desired`
(or `catalog`) at the moment it needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path

from redis_orchestrator import logs
from redis_orchestrator.analysis.checks import AnalysisResult, CatalogAnalysis
from redis_orchestrator.catalog.files import FileReads
from redis_orchestrator.catalog.model import Catalog
from redis_orchestrator.config.settings import Config, DesiredState, RedisOverrides, restart_needed
from redis_orchestrator.daemon.health import Heartbeat
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.reload import FileWatch, ReloadResult, load_candidate, off_the_loop
from redis_orchestrator.daemon.waiting import wait_event
from redis_orchestrator.errors import CatalogRejected, ConfigError
from redis_orchestrator.topology.model import Topology
from redis_orchestrator.wire.connections import Connector

# With analysis.block_on none the first analysis waits for readiness, at most this long.
_ANALYSIS_WAITS_FOR_READY = 10.0


class CatalogKeeper:
    name = "catalog watch"

    def __init__(
        self,
        config: Config,
        overrides: RedisOverrides,
        connector: Connector,
        metrics: Metrics,
        analysis: CatalogAnalysis,
        *,
        topology: Callable[[], Topology | None],
        on_change: Callable[[], None],
        heartbeat: Heartbeat,
    ) -> None:
        """`overrides`: what the command line put in place of redis settings (a reload reads the
        file with them again); `on_change()`: an accepted reload (every node reconciles now)."""
        self.config = config  # as read at start: `start` is fixed for the life of the process
        self.desired = config.desired
        self.overrides = overrides
        self.connector = connector
        self.metrics = metrics
        self.analysis = analysis
        self._topology = topology
        self._on_change = on_change
        self.heartbeat = heartbeat
        self.reload_requested = asyncio.Event()
        self._files = FileWatch(config.path, config.files)  # what the start read, as it read it
        self._restart_pending: list[str] = []

    @property
    def catalog(self) -> Catalog:
        return self.desired.catalog

    @property
    def blocking(self) -> bool:
        """Findings may refuse the catalog (analysis.block_on): the first analysis comes first."""
        return self.desired.analysis.block_on is not None

    def request_reload(self) -> None:
        self.reload_requested.set()

    # ------------------------------------------------------------------ the first catalog

    def announce(self) -> None:
        self.metrics.catalog_loaded(self.catalog.version, self.catalog.counts())
        self.metrics.catalog_reload(ReloadResult.ACCEPTED)

    def first_analysis(self) -> None:
        """Announce the catalog and analyse it; CatalogRejected when findings refuse it."""
        self.announce()
        result = self._analyse(self.desired)
        self._report_findings(result)  # every finding is logged, even when they refuse the catalog
        result.raise_if_blocking(self.desired.analysis.block_on)

    async def analyse_after_ready(self, ready: asyncio.Event) -> None:
        """With block_on none nothing waits for the analysis: it runs once the nodes hold the catalog
        (or after a while if they cannot), in a worker thread, and its findings are reported then."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_ANALYSIS_WAITS_FOR_READY):
                await ready.wait()
        desired = self.desired
        result = await asyncio.to_thread(self._analyse, desired)
        if desired is self.desired:  # a reload since has reported its own findings
            self._report_findings(result)

    def _analyse(self, desired: DesiredState) -> AnalysisResult:
        """The first catalog's analysis, through the cache file when there is one (a restart with an
        unchanged catalog then costs reading it)."""
        settings = desired.analysis
        cache = settings.cache_file
        if cache and settings.enabled:
            logs.event("analysis_cache", file=cache, loaded=self.analysis.load_cache(Path(cache)))
        result = self.analysis.when_enabled(desired.catalog, settings.enabled, settings.block_on)
        if cache and settings.enabled:
            try:
                self.analysis.save_cache(Path(cache))
            except OSError as exc:
                logs.warning("analysis_cache_unwritable", f"cannot write analysis.cache_file: {exc}", file=cache)
        return result

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

    # ------------------------------------------------------------------ live edits

    async def watch(self) -> None:
        """Reload on SIGHUP, and when a watched file changed (daemon.watch_config)."""
        while True:
            await wait_event(self.reload_requested, self.desired.daemon.config_poll_interval)
            self.heartbeat.beat()
            requested = self.reload_requested.is_set()
            self.reload_requested.clear()
            if requested or (self.desired.daemon.watch_config and await self._files_changed()):
                logs.event("catalog_reload", reason="SIGHUP" if requested else "file changed")
                await self.reload()

    async def _files_changed(self) -> bool:
        """The watch's stats and reads, in a worker thread (a file system that hangs costs the
        watch, never the event loop)."""
        try:
            return await off_the_loop(self._files.changed, "looking for edits")
        except TimeoutError as exc:
            logs.warning("file_watch_stalled", str(exc), file=str(self.config.path))
            return False

    async def reload(self) -> ReloadResult:
        """Read the config file as it is now. The desired state is swapped in whole when it passes
        every check; start-time settings that changed are named (they need a restart) and not applied."""
        path = self.config.path
        files = FileReads()
        try:
            candidate, result = await load_candidate(
                path, self.overrides, self.connector, self._topology(), self.catalog, self.analysis, files
            )
        except (ConfigError, CatalogRejected) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            logs.error(
                "catalog_rejected", f"keeping catalog {self.catalog.version}; " + " | ".join(problems), file=str(path)
            )
            self.metrics.catalog_reload(ReloadResult.REJECTED)
            return ReloadResult.REJECTED
        finally:
            # Watched from now on: the files this reload read, as it read them (a rejected one too:
            # an edit that fixes it is news, and nothing else is).
            self._files = FileWatch(path, files.seen)
        self._note_restart_needed(restart_needed(self.config.start, candidate.start))
        if candidate.desired == self.desired:
            self.metrics.catalog_reload(ReloadResult.UNCHANGED)
            return ReloadResult.UNCHANGED
        old = self.desired
        self.desired = candidate.desired
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
        self._on_change()
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
