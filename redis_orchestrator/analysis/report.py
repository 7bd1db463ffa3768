"""Findings as compiler-style text, JSON, or GitHub Actions workflow commands (SARIF and JUnit XML
have modules of their own).

    lua/ledger/transfer.lua:12:5: error[undeclared-key] (transfer@3) INCRBY key #1 is 'acct:' .. ARGV[1] ...
      help: pass the key in KEYS ...

    ::error file=lua/ledger/transfer.lua,line=12,col=5,title=undeclared-key (transfer@3)::INCRBY key #1 ...
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from redis_orchestrator.analysis.findings import Finding

# GitHub's workflow command levels (info has no annotation of its own: a notice).
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def format_text(findings: Sequence[Finding]) -> str:
    lines: list[str] = []
    for f in findings:
        lines.append(f"{f.file}:{f.line}:{f.column}: {f.severity}[{f.code}] ({f.label}) {f.message}")
        if f.suggestion:
            lines.append(f"  help: {f.suggestion}")
    return "\n".join(lines) + ("\n" if lines else "")


def format_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2)


def format_github(findings: Sequence[Finding]) -> str:
    """One workflow command per finding: GitHub shows each as an annotation on its line."""
    lines = []
    for f in findings:
        properties = ",".join(
            f"{name}={_escape_property(str(value))}"
            for name, value in (
                ("file", f.file),
                ("line", f.line),
                ("col", f.column),
                ("title", f"{f.code} ({f.label})"),
            )
        )
        text = f.message + (f"\nhelp: {f.suggestion}" if f.suggestion else "")
        lines.append(f"::{_GITHUB_LEVEL[f.severity]} {properties}::{_escape_data(text)}")
    return "\n".join(lines) + ("\n" if lines else "")


def _escape_data(text: str) -> str:
    # The runner's own escaping (actions/toolkit, command.ts): %, CR and LF in the message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
