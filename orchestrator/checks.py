"""Static analysis of a whole catalog, with the cache kept across reloads (unchanged scripts cost
nothing), and the `analysis.block_on` decision."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.analysis import Analyzer, Finding
from orchestrator.catalog import Catalog

_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class AnalysisResult:
    findings: tuple[Finding, ...] = ()
    blocking: tuple[Finding, ...] = field(default=())

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def blocking_summary(self, limit: int = 5) -> list[str]:
        shown = [f"{f.file}:{f.line}:{f.column}: {f.severity}[{f.code}] {f.message}" for f in self.blocking[:limit]]
        if len(self.blocking) > limit:
            shown.append(f"... and {len(self.blocking) - limit} more")
        return shown


class CatalogAnalysis:
    def __init__(self, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer if analyzer is not None else Analyzer()

    def run(self, catalog: Catalog, block_on: str = "none") -> AnalysisResult:
        findings: list[Finding] = []
        for entry in catalog.entries:
            if not entry.live:
                continue
            findings += self.analyzer.analyze(
                entry.source, script=entry.label, file=entry.file, kind=entry.kind, key_patterns=entry.keys
            )
        if block_on == "none":
            return AnalysisResult(findings=tuple(findings))
        threshold = _RANK[block_on]
        blocking = tuple(f for f in findings if _RANK.get(f.severity, 0) >= threshold)
        return AnalysisResult(findings=tuple(findings), blocking=blocking)
