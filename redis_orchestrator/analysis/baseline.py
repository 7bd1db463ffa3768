"""A baseline: the findings a team accepts today, so that `check --baseline FILE` fails only on new
ones. How a linter is adopted on hundreds of existing scripts.

    {"tool": "redis-orchestrator check", "format": 1,
     "findings": [{"script": "add-job", "code": "undeclared-key", "subject": "HSET ARGV[1] .. ...",
                   "file": "lua/add_job.lua", "line": 23, "severity": "warning", "message": "..."}]}

A finding is accepted by an entry with the same script, code and subject (the key expression or
name it is about, never its line): an edit above a finding does not revive it. Each entry accepts
one finding (two identical findings need two entries). Entries no finding matched any more are
counted, so the file can be re-recorded smaller (delete it and run again).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from redis_orchestrator.analysis.findings import Finding
from redis_orchestrator.errors import ConfigError

TOOL = "redis-orchestrator check"
FORMAT = 1

Key = tuple[str, str, str]


def key(f: Finding) -> Key:
    """What a baseline matches on: script, code, and the subject (the message when there is none)."""
    return (f.script, f.code, f.subject or f.message)


def fingerprint(f: Finding) -> str:
    """The same, as one stable digest (SARIF's partialFingerprints)."""
    return hashlib.sha1("\x00".join(key(f)).encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    path: Path
    recorded: bool  # the file did not exist: this run wrote it
    accepted: int  # findings the baseline accepted (not reported)
    gone: int  # entries no finding matched any more


def record(path: Path, findings: Sequence[Finding]) -> None:
    entries = [
        {
            "script": f.script,
            "code": f.code,
            "subject": f.subject or f.message,
            "file": f.file,
            "line": f.line,
            "severity": str(f.severity),
            "message": f.message,
        }
        for f in sorted(findings, key=lambda f: (f.file, f.line, f.column, f.code))
    ]
    path.write_text(
        json.dumps({"tool": TOOL, "format": FORMAT, "findings": entries}, indent=2) + "\n", encoding="utf-8"
    )


def load(path: Path) -> Counter[Key]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("tool") != TOOL or data.get("format") != FORMAT:
            raise ValueError(f"not a {TOOL} baseline of format {FORMAT}")
        return Counter((str(e["script"]), str(e["code"]), str(e["subject"])) for e in data["findings"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(str(path), [f"cannot read the baseline: {exc}; delete it to record a new one"]) from None


def apply(path: Path, findings: Sequence[Finding]) -> tuple[list[Finding], Outcome]:
    """The findings the baseline at `path` does not accept, and what happened. A missing file is
    recorded from these findings (then nothing is new)."""
    if not path.exists():
        record(path, findings)
        return [], Outcome(path, recorded=True, accepted=len(findings), gone=0)
    accepted = load(path)
    new: list[Finding] = []
    for f in findings:
        k = key(f)
        if accepted[k] > 0:
            accepted[k] -= 1
        else:
            new.append(f)
    return new, Outcome(path, recorded=False, accepted=len(findings) - len(new), gone=sum(accepted.values()))
