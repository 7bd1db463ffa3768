"""`check` as the linter a CI keeps on: which scripts it checks, the findings a baseline accepts, the
report in each format, and what fails the run.

    redis-orchestrator check                        the config's catalog (./config.yaml or --config)
    redis-orchestrator check lua/ tools/x.lua       files and folders, no config: every .lua file a
                                                    script named after it, a `#!lua name=` file a
                                                    function library; declarations come from the
                                                    files' own `-- redis-orchestrator:` comments

Formats: text (compiler-style, then the declarations to paste), json, sarif, github, junit.
`--fail-on error|warning` says which findings exit 1 (info never does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from redis_orchestrator.analysis.analyzer import Analyzer
from redis_orchestrator.analysis.baseline import Outcome, apply
from redis_orchestrator.analysis.checks import CatalogAnalysis, EntrySuggestion, analyse_entry
from redis_orchestrator.analysis.findings import Finding, Severity
from redis_orchestrator.analysis.junit import format_junit
from redis_orchestrator.analysis.key_suggestions import suggestions_yaml
from redis_orchestrator.analysis.report import format_github, format_json, format_text
from redis_orchestrator.analysis.sarif import format_sarif
from redis_orchestrator.catalog.model import Catalog
from redis_orchestrator.catalog.shebang import parse_shebang
from redis_orchestrator.errors import ConfigError

FORMATS = ("text", "json", "sarif", "github", "junit")


@dataclass(frozen=True)
class Checked:
    """One script checked: how reports name it, and where a declaration comment goes in its file."""

    label: str
    file: str
    insert_at: int = 1  # after a `#!lua` first line: Redis reads that line before Lua does


@dataclass(frozen=True)
class LintReport:
    checked: tuple[Checked, ...]
    findings: tuple[Finding, ...]  # what is reported: with a baseline, what it does not accept
    suggestions: tuple[EntrySuggestion, ...] = ()
    suppressed: int = 0
    config_free: bool = True
    baseline: Outcome | None = None

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def fails(self, fail_on: Severity) -> bool:
        return any(f.severity.at_least(fail_on) for f in self.findings)


# ---------------------------------------------------------------------- what is checked


def lua_files(paths: Sequence[str]) -> list[Path]:
    """The files named, and every .lua file under the folders named (hidden folders skipped).
    A path that does not exist is a usage error (exit 2), each one named."""
    found: list[Path] = []
    missing: list[str] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*.lua")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            missing.append(f"{name}: no such file or folder")
    if missing:
        raise ConfigError("check", missing)
    return list(dict.fromkeys(found))  # a file named twice (or also under a folder named) is checked once


def lint_files(analyzer: Analyzer, paths: Sequence[str]) -> LintReport:
    checked: list[Checked] = []
    findings: list[Finding] = []
    suggestions: list[EntrySuggestion] = []
    suppressed = 0
    for path in lua_files(paths):
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise ConfigError("check", [f"{path}: {exc.strerror}"]) from None
        shebang = parse_shebang(source)
        library = shebang.library is not None
        name = shebang.library if library and shebang.library else path.stem
        file = str(path)
        result = analyse_entry(
            analyzer, source, name=name, version="", file=file, kind="function" if library else "script"
        )
        findings += result.findings
        suppressed += result.suppressed
        if result.suggestion is not None and any(f.declare for f in result.findings):
            suggestions.append(result.suggestion)  # only where a declaration decides a warning
        checked.append(Checked(name, file, 2 if shebang.present else 1))
    return LintReport(tuple(checked), tuple(findings), tuple(suggestions), suppressed, config_free=True)


def lint_catalog(analysis: CatalogAnalysis, catalog: Catalog, config_dir: Path) -> LintReport:
    """The catalog's live entries, files shown from where `check` runs (so editors and CI annotations
    find them) rather than from the config's folder."""
    result = analysis.run(catalog)
    shown = {e.file: _shown(config_dir / e.file) for e in catalog.entries}
    checked = tuple(
        Checked(e.label, shown[e.file], 2 if e.source.startswith(b"#!") else 1) for e in catalog.entries if e.live
    )
    findings = tuple(replace(f, file=shown.get(f.file, f.file)) for f in result.findings)
    return LintReport(checked, findings, result.suggestions, result.suppressed, config_free=False)


def against_baseline(report: LintReport, path: Path) -> LintReport:
    new, outcome = apply(path, report.findings)
    return replace(report, findings=tuple(new), baseline=outcome)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


# ---------------------------------------------------------------------- how it is reported


def render(report: LintReport, fmt: str, fail_on: Severity, summary: str) -> str:
    """The report in `fmt`. `summary` (text only) opens the closing line: what was checked."""
    findings = sorted(report.findings, key=lambda f: (f.file, f.line, f.column, f.code))
    if fmt == "json":
        return format_json(findings) + "\n"
    if fmt == "sarif":
        insert_at = {c.file: c.insert_at for c in report.checked}
        return format_sarif(findings, insert_at=insert_at, baseline_used=report.baseline is not None) + "\n"
    if fmt == "github":
        return format_github(findings) + _closing(report, summary) + "\n"
    if fmt == "junit":
        return format_junit([(c.label, c.file) for c in report.checked], findings, fail_on)
    out = [format_text(findings)] if findings else []
    if report.suggestions:
        out.append(_declarations(report))
    out.append(_closing(report, summary))
    return "\n".join(out) + "\n"


def _declarations(report: LintReport) -> str:
    if not report.config_free:
        return suggestions_yaml(report.suggestions)
    lines = [
        "# Declarations that decide the warnings above: each gives a script's keys one hash tag {<tag>} (keep",
        "# it if your names follow it); paste them at the top of each script, or run check --write-keys:",
    ]
    for s in report.suggestions:
        lines.append(f"# {s.file}")
        lines.extend(s.patterns.directive_lines())
    return "\n".join(lines) + "\n"


def _closing(report: LintReport, summary: str) -> str:
    line = (
        f"{summary}, {report.count(Severity.ERROR)} error(s), {report.count(Severity.WARNING)} warning(s), "
        f"{report.count(Severity.INFO)} note(s)"
    )
    if report.suppressed:
        line += f"; {report.suppressed} suppressed by comments"
    outcome = report.baseline
    if outcome is not None and outcome.recorded:
        line += f"; baseline recorded in {outcome.path} ({outcome.accepted} finding(s) accepted from now on)"
    elif outcome is not None:
        line += f"; {outcome.accepted} accepted by the baseline {outcome.path}"
        if outcome.gone:
            line += f" ({outcome.gone} of its entries are fixed: delete the file and run again to shrink it)"
    return line
