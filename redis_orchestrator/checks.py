"""Static analysis of a whole catalog, with the cache kept across reloads (unchanged scripts cost
nothing), the `analysis.block_on` decision, and `keys:` patterns suggested (and, on request, written
into the config file) for entries that declare none."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from redis_orchestrator.analysis import Analyzer, Finding
from redis_orchestrator.analysis.suggest import KeySuggestion, suggest_keys
from redis_orchestrator.catalog import Catalog
from redis_orchestrator.config import Config
from redis_orchestrator.errors import CatalogRejected

_RANK = {"info": 0, "warning": 1, "error": 2}


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

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def raise_if_blocking(self, block_on: str) -> None:
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

    def for_config(self, config: Config) -> AnalysisResult:
        """The config's catalog analysed as its `analysis:` section says (nothing when disabled)."""
        if not config.analysis.enabled:
            return AnalysisResult()
        return self.run(config.catalog, block_on=config.analysis.block_on)

    def run(self, catalog: Catalog, block_on: str = "none") -> AnalysisResult:
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
            if not entry.keys and entry.kind == "script":
                usage = self.analyzer.examine(entry.source, kind=entry.kind, argv_patterns=argv).usage
                suggestion = suggest_keys(entry.source, usage)
                if suggestion is not None:
                    suggestions.append(EntrySuggestion(entry.name, entry.version, entry.file, suggestion))
        if block_on == "none":
            return AnalysisResult(findings=tuple(findings), suggestions=tuple(suggestions))
        threshold = _RANK[block_on]
        blocking = tuple(f for f in findings if _RANK.get(f.severity, 0) >= threshold)
        return AnalysisResult(findings=tuple(findings), blocking=blocking, suggestions=tuple(suggestions))


def suggestions_yaml(suggestions: Sequence[EntrySuggestion]) -> str:
    """The suggested patterns as a YAML block to read (and paste) beside each entry."""
    lines = [
        "# Suggested keys: for entries that declare none. Each gives all of a call's keys one hash tag",
        "# {<tag>}, the cluster-safe convention: keep it if your key names follow it (adjust names and",
        "# placeholders to your naming), then `check` verifies the script against it.",
        "# Accept them as they are with: redis-orchestrator check --write-keys",
    ]
    for s in suggestions:
        origin = f"names from {' and '.join(s.patterns.sources)}" if s.patterns.sources else "placeholder names"
        lines.append(f"- name: {s.name}  # version {s.version}, {s.file}: {origin}")
        lines.extend(s.patterns.yaml_lines("  "))
    return "\n".join(lines) + "\n"


def write_key_patterns(path: Path, suggestions: Sequence[EntrySuggestion]) -> list[str]:
    """Insert each suggestion's `keys:` (and `argv:`) lines into the config file, right under the
    entry's first line, keeping everything else (comments, order) as written. Returns one line per
    entry saying what was done."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    inserts: list[tuple[int, list[str]]] = []
    report: list[str] = []
    for suggestion in suggestions:
        node = _entry_node(root, suggestion.name, suggestion.version)
        where = f"{suggestion.name}@{suggestion.version}"
        if node is None or node.flow_style or not node.value:
            report.append(f"{where}: not written (entry not found as a block mapping in {path})")
            continue
        if any(_scalar(key) in ("keys", "argv") for key, _ in node.value):
            report.append(f"{where}: not written (it already declares keys: or argv:)")
            continue
        first_key, first_value = node.value[0]
        if first_value.end_mark.line != first_key.start_mark.line:
            report.append(f"{where}: not written (its first key does not fit on one line)")
            continue
        indent = " " * first_key.start_mark.column
        new_lines = [line + "\n" for line in suggestion.patterns.yaml_lines(indent)]
        inserts.append((first_key.start_mark.line + 1, new_lines))
        report.append(f"{where}: wrote {', '.join(suggestion.patterns.yaml_lines())}")
    for at, new in sorted(inserts, reverse=True):
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        lines[at:at] = new
    if inserts:
        path.write_text("".join(lines), encoding="utf-8")
    return report


def _scalar(node: Any) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _get(mapping: Any, key: str) -> Any:
    if isinstance(mapping, yaml.MappingNode):
        for k, v in mapping.value:
            if _scalar(k) == key:
                return v
    return None


def _entry_node(root: Any, name: str, version: str) -> yaml.MappingNode | None:
    """The mapping that holds `name`'s `version` (the entry itself, or its item under versions:)."""
    scripts = _get(_get(root, "catalog"), "scripts")
    if not isinstance(scripts, yaml.SequenceNode):
        return None
    for item in scripts.value:
        if _scalar(_get(item, "name")) != name:
            continue
        versions = _get(item, "versions")
        if isinstance(versions, yaml.SequenceNode):
            for vitem in versions.value:
                if isinstance(vitem, yaml.MappingNode) and _scalar(_get(vitem, "version")) == version:
                    return vitem
        elif isinstance(item, yaml.MappingNode) and _scalar(_get(item, "version")) == version:
            return item
    return None
