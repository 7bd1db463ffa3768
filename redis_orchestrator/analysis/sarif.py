"""Findings as SARIF 2.1.0 (the OASIS standard GitHub code scanning and other CI dashboards read).

One run; its tool driver lists every code as a rule (findings.CODES: the help text, the default
level); each result names its rule, level and message (with the help line), its physical location
(artifactLocation.uri as `check` printed the file, region startLine / startColumn, columns in
Unicode code points), a partial fingerprint (what a baseline matches on: script, code, subject, so
dashboards follow a finding across edits), and, where a declaration would decide it, a fix that
inserts that declaration into the script as a directive comment:

    {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
     "runs": [{"tool": {"driver": {"name": "redis-orchestrator", "version": "0.1.0",
                                   "rules": [{"id": "undeclared-key", "shortDescription": {...}, ...}]}},
               "columnKind": "unicodeCodePoints",
               "results": [{"ruleId": "undeclared-key", "ruleIndex": 2, "level": "warning",
                            "message": {"text": "HSET key #1 is ARGV[1] .. ..."},
                            "locations": [{"physicalLocation": {
                                "artifactLocation": {"uri": "lua/add.lua"},
                                "region": {"startLine": 12, "startColumn": 5}}}],
                            "partialFingerprints": {"redisOrchestrator/v1": "3f2a..."},
                            "fixes": [{"description": {"text": "declare ..."},
                                       "artifactChanges": [{"artifactLocation": {"uri": "lua/add.lua"},
                                           "replacements": [{
                                               "deletedRegion": {"startLine": 1, "startColumn": 1, "endColumn": 1},
                                               "insertedContent": {"text": "-- redis-orchestrator: ..."}}]}]}]}]}]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from redis_orchestrator import __version__
from redis_orchestrator.analysis.baseline import fingerprint
from redis_orchestrator.analysis.findings import CODES, Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_RULES = sorted(CODES)


def format_sarif(
    findings: Sequence[Finding], *, insert_at: Mapping[str, int] | None = None, baseline_used: bool = False
) -> str:
    """`insert_at`: file -> the line a declaration goes on (after a `#!lua` line); `baseline_used`:
    the results are the findings a baseline did not accept (marked baselineState "new")."""
    results = [_result(f, (insert_at or {}).get(f.file, 1), baseline_used) for f in findings]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "redis-orchestrator",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/redis-orchestrator/",
                        "rules": [_rule(code) for code in _RULES],
                    }
                },
                "invocations": [{"executionSuccessful": True}],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2)


def _rule(code: str) -> dict[str, Any]:
    level, text = CODES[code]
    return {
        "id": code,
        "name": "".join(part.title() for part in code.split("-")),
        "shortDescription": {"text": text.split(": ")[0].split(". ")[0].rstrip(".") + "."},
        "fullDescription": {"text": text},
        "help": {"text": text, "markdown": f"`{code}`: {text} See the README, *Static analysis (`check`)*."},
        "defaultConfiguration": {"level": _LEVEL[level]},
    }


def _result(f: Finding, insert_line: int, baseline_used: bool) -> dict[str, Any]:
    uri = _uri(f.file)
    message = f"{f.message} ({f.label})" + (f"\nhelp: {f.suggestion}" if f.suggestion else "")
    result: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": _RULES.index(f.code) if f.code in CODES else -1,
        "level": _LEVEL[f.severity],
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": max(f.line, 1), "startColumn": max(f.column, 1)},
                }
            }
        ],
        "partialFingerprints": {"redisOrchestrator/v1": fingerprint(f)},
    }
    if result["ruleIndex"] < 0:
        del result["ruleIndex"]
    if baseline_used:
        result["baselineState"] = "new"
    if f.declare:
        directives = "".join(f"-- redis-orchestrator: {line}\n" for line in f.declare.splitlines())
        result["fixes"] = [
            {
                "description": {"text": f"declare what decides the slot, in the script:\n{directives}"},
                "artifactChanges": [
                    {
                        "artifactLocation": {"uri": uri},
                        "replacements": [
                            {
                                # An empty region: an insertion before the line.
                                "deletedRegion": {"startLine": insert_line, "startColumn": 1, "endColumn": 1},
                                "insertedContent": {"text": directives},
                            }
                        ],
                    }
                ],
            }
        ]
    return result


def _uri(file: str) -> str:
    path = PurePath(file)
    return path.as_uri() if path.is_absolute() else path.as_posix()
