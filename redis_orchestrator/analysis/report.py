"""Findings as compiler-style text or JSON.

lua/ledger/transfer.lua:12:5: error[undeclared-key] (transfer@3) INCRBY key #1 is 'acct:' .. ARGV[1] ...
  help: pass the key in KEYS ...
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from redis_orchestrator.analysis.findings import Finding


def format_text(findings: Sequence[Finding]) -> str:
    lines: list[str] = []
    for f in findings:
        lines.append(f"{f.file}:{f.line}:{f.column}: {f.severity}[{f.code}] ({f.label}) {f.message}")
        if f.suggestion:
            lines.append(f"  help: {f.suggestion}")
    return "\n".join(lines) + ("\n" if lines else "")


def format_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2)
