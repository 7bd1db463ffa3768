"""Static analysis of a whole catalog, with the cache kept across reloads (unchanged scripts cost
nothing), the `analysis.block_on` decision, and `keys:` patterns suggested for entries that declare
none (key_suggestions.py prints or writes them)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from redis_orchestrator.analysis.findings import Finding, Severity
from redis_orchestrator.analysis.suggest import KeySuggestion, suggest_keys
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
class AnalysisResult:
    findings: tuple[Finding, ...] = ()
    blocking: tuple[Finding, ...] = field(default=())
    suggestions: tuple[EntrySuggestion, ...] = ()

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
        for entry in catalog.entries:
            if not entry.live:
                continue
            argv = entry.argv
            findings += self.analyzer.analyze(
                entry.source,
                script=entry.name,
                version=entry.version,
                file=entry.file,
                kind=entry.kind,
                key_patterns=entry.keys,
                argv_patterns=argv,
            )
            if not entry.keys and entry.kind == Kind.SCRIPT:
                usage = self.analyzer.examine(entry.source, kind=entry.kind, argv_patterns=argv).usage
                suggestion = suggest_keys(entry.source, usage)
                if suggestion is not None:
                    suggestions.append(EntrySuggestion(entry.name, entry.version, entry.file, suggestion))
        blocking = () if block_on is None else tuple(f for f in findings if f.severity.at_least(block_on))
        return AnalysisResult(findings=tuple(findings), blocking=blocking, suggestions=tuple(suggestions))
