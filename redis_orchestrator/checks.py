"""Static analysis of a whole catalog, with the cache kept across reloads (unchanged scripts cost
nothing), the `analysis.block_on` decision, and `keys:` patterns suggested for entries that declare
none (key_suggestions.py prints or writes them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis_orchestrator.analysis import Analyzer, Finding
from redis_orchestrator.analysis.findings import Severity
from redis_orchestrator.analysis.suggest import KeySuggestion, suggest_keys
from redis_orchestrator.catalog import Catalog, Kind
from redis_orchestrator.config import DesiredState
from redis_orchestrator.errors import CatalogRejected


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
    def __init__(self, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer if analyzer is not None else Analyzer()

    def for_desired(self, desired: DesiredState) -> AnalysisResult:
        """The catalog analysed as the `analysis:` section says (nothing when disabled)."""
        if not desired.analysis.enabled:
            return AnalysisResult()
        return self.run(desired.catalog, block_on=desired.analysis.block_on)

    def run(self, catalog: Catalog, block_on: Severity | None = None) -> AnalysisResult:
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
