"""Static analysis of a whole catalog, with the cache kept across reloads (unchanged scripts cost
nothing), the `analysis.block_on` decision, and the declarations suggested for entries whose keys'
slots hang on what they do not declare (key_suggestions.py prints or writes them). `analyse_entry`
is one script's share, which `check` without a config (lint.py) runs on files too."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from redis_orchestrator.analysis.findings import Finding, Severity
from redis_orchestrator.analysis.suggest import KeySuggestion
from redis_orchestrator.catalog.model import Catalog, Kind
from redis_orchestrator.errors import CatalogRejected

if TYPE_CHECKING:
    from redis_orchestrator.analysis import Analyzer


@dataclass(frozen=True)
class EntrySuggestion:
    """Suggested patterns for one catalog entry (name and version as the config writes them)."""

    name: str
    version: str
    file: str
    patterns: KeySuggestion


@dataclass(frozen=True)
class EntryResult:
    """One script's findings (file, name and version filled in), what its comments silenced, and
    what it should declare."""

    findings: tuple[Finding, ...]
    suppressed: int = 0
    suggestion: EntrySuggestion | None = None


def analyse_entry(
    analyzer: Analyzer,
    source: bytes,
    *,
    name: str,
    version: str,
    file: str,
    kind: str,
    keys: tuple[str, ...] = (),
    argv: tuple[str, ...] = (),
) -> EntryResult:
    analysis = analyzer.examine(source, kind=kind, key_patterns=keys, argv_patterns=argv)
    findings = tuple(replace(f, file=file, script=name, version=version) for f in analysis.findings)
    suggestion = None
    if analysis.suggestion is not None and kind == Kind.SCRIPT:
        suggestion = EntrySuggestion(name, version, file, analysis.suggestion)
    return EntryResult(findings, analysis.suppressed, suggestion)


@dataclass(frozen=True)
class AnalysisResult:
    findings: tuple[Finding, ...] = ()
    blocking: tuple[Finding, ...] = field(default=())
    suggestions: tuple[EntrySuggestion, ...] = ()
    suppressed: int = 0

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def raise_if_blocking(self, block_on: Severity | None) -> None:
        """CatalogRejected naming the findings at or above `analysis.block_on`, if any."""
        if self.blocking:
            raise CatalogRejected(
                f"{len(self.blocking)} analysis finding(s) at or above analysis.block_on={block_on}; "
                "fix them or relax the setting: " + "; ".join(self.blocking_summary())
            )

    def blocking_summary(self, limit: int = 5) -> list[str]:
        shown = [f"{f.file}:{f.line}:{f.column}: {f.severity}[{f.code}] {f.message}" for f in self.blocking[:limit]]
        if len(self.blocking) > limit:
            shown.append(f"... and {len(self.blocking) - limit} more")
        return shown


class CatalogAnalysis:
    """The analyzer (built on first use: the parser, walker and lupa cost nothing to a daemon that
    has not analysed yet), its cache across reloads, and optionally across restarts (`cache_file`)."""

    def __init__(self, analyzer: Analyzer | None = None) -> None:
        self._analyzer = analyzer
        # The daemon analyses its first catalog in a worker thread while it loads the nodes; a
        # reload then must not walk the same cache at the same time.
        self._lock = threading.Lock()

    @property
    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            from redis_orchestrator.analysis import Analyzer

            self._analyzer = Analyzer()
        return self._analyzer

    def load_cache(self, path: Path) -> int:
        """Analyses saved by `save_cache`: how many were taken (0 for a missing, broken or stale file)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
        with self._lock:
            return self.analyzer.import_cache(data)

    def save_cache(self, path: Path) -> None:
        """Written whole to a temporary file, then renamed: a crash never leaves half a cache."""
        with self._lock:
            data = self.analyzer.export_cache()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)

    def when_enabled(self, catalog: Catalog, enabled: bool, block_on: Severity | None) -> AnalysisResult:
        """The catalog analysed as the config's `analysis:` section says (nothing when disabled)."""
        if not enabled:
            return AnalysisResult()
        return self.run(catalog, block_on=block_on)

    def run(self, catalog: Catalog, block_on: Severity | None = None) -> AnalysisResult:
        with self._lock:
            return self._run(catalog, block_on)

    def _run(self, catalog: Catalog, block_on: Severity | None) -> AnalysisResult:
        findings: list[Finding] = []
        suggestions: list[EntrySuggestion] = []
        suppressed = 0
        for entry in catalog.entries:
            if not entry.live:
                continue
            result = analyse_entry(
                self.analyzer,
                entry.source,
                name=entry.name,
                version=entry.version,
                file=entry.file,
                kind=entry.kind,
                keys=tuple(entry.keys),
                argv=tuple(entry.argv),
            )
            findings += result.findings
            suppressed += result.suppressed
            if result.suggestion is not None:
                suggestions.append(result.suggestion)
        # The daemon loads what it is given on whatever server each node runs: a script only some
        # servers can run (portability) is for `check` to say, not a reason to refuse the catalog.
        blocking = (
            ()
            if block_on is None
            else tuple(f for f in findings if f.severity.at_least(block_on) and f.code != "portability")
        )
        return AnalysisResult(tuple(findings), blocking, tuple(suggestions), suppressed)
