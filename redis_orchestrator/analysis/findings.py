"""What `check` reports: one Finding per problem, with a stable code a CI rule can match on.

Severity is proof: an error is a failure the check can show (its message names the witness), a
warning a risk that hangs on what the check cannot see (its help names what would decide it), info
a note. CODES below is the list of codes with what each means (the SARIF rules are made from it).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is; ordered by `rank` (`analysis.block_on` refuses a catalog at or above one)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def log_level(self) -> int:
        return _LOG_LEVEL[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}
_LOG_LEVEL = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.ERROR: logging.ERROR}

ERROR = Severity.ERROR
WARNING = Severity.WARNING
INFO = Severity.INFO


# code -> (default severity, what it means): the help text of each SARIF rule, the codes a
# suppression may name.
CODES: dict[str, tuple[str, str]] = {
    "syntax": ("error", "The chunk is not valid Lua 5.1 (Redis' Lua): Redis refuses the script."),
    "shebang": ("error", "A `#!lua` line Redis refuses: an unknown flag or option, a library without name=."),
    "undeclared-key": (
        "error",
        "A key argument not taken from KEYS (a function's keys) whose slot can differ from the call's: an "
        "error when the check can show it (a fixed key outside KEYS, a key that moves with a value the script "
        "mixes into it, keys the script fixes in different slots, SCAN's names spread over one command), a "
        "warning when the slot hangs on a value the caller or the data controls that could carry the shared "
        "hash tag; declaring it (keys:, argv:, stored:) turns the warning into an error or nothing.",
    ),
    "same-slot-undeclared": (
        "info",
        "Not in KEYS, but it carries a declared key's hash tag: it works in a cluster (check --same-slot "
        "makes it louder).",
    ),
    "enumeration": (
        "warning",
        "SCAN / KEYS / RANDOMKEY in a cluster see only the node the script runs on: they never fail, they "
        "miss the other nodes' keys.",
    ),
    "cross-slot": ("error", "The entry's declared keys: patterns cannot be guaranteed to share one slot."),
    "declared-pattern": ("error", "An argv: entry the check cannot read."),
    "directive": ("error", "A `-- redis-orchestrator:` comment the check cannot read."),
    "unused-suppression": (
        "warning",
        "A `-- redis-orchestrator: ignore` that silences nothing on its line (or names an unknown code): "
        "remove it so suppressions do not rot.",
    ),
    "write-in-readonly": ("error", "A no-writes script or function calls a write command."),
    "global-write": ("error", "An assignment to a global: Redis refuses it ('Attempt to modify a readonly table')."),
    "noscript-command": ("error", "A command Redis refuses inside scripts (MULTI, EVAL, SUBSCRIBE...)."),
    "portability": (
        "error",
        "A global only some servers define: `server` (Valkey >= 8's alias of `redis`; Redis fails the "
        "script) is an error when the scripts may run on Redis, `os` (os.clock, not on Redis 7.0) a warning.",
    ),
    "undefined-global": (
        "warning",
        "A read of a global Redis' Lua does not define (an error for KEYS/ARGV in a Function).",
    ),
    "dynamic-command": ("warning", "The command name is not a literal: its keys and write flag cannot be checked."),
    "unknown-command": ("warning", "A command missing from the key-spec table (a module's? refresh the table)."),
    "no-cluster": ("warning", "The `no-cluster` flag: Redis refuses the script in cluster mode."),
    "analysis-skipped": ("info", "The check could not follow this valid code (too deeply nested)."),
}


@dataclass(frozen=True)
class Finding:
    file: str
    script: str  # the catalog entry's name
    line: int
    column: int
    severity: Severity
    code: str
    message: str
    suggestion: str
    version: str = ""  # the catalog entry's version
    subject: str = ""  # what it is about, without line numbers (a baseline matches on it): "GET ARGV[1] .. ':x'"
    declare: str = ""  # the declaration (YAML lines: keys:, argv:, stored:) that would decide it, ready to paste

    @property
    def label(self) -> str:
        """name@version, as the catalog labels an entry."""
        return f"{self.script}@{self.version}" if self.version else self.script

    def to_dict(self) -> dict[str, object]:
        fields = asdict(self)
        return {"file": fields.pop("file"), "script": fields.pop("script"), "version": fields.pop("version"), **fields}
