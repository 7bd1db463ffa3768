"""What `check` reports: one Finding per problem, with a stable code a CI rule can match on.

Codes:
  syntax             the chunk is not valid Lua 5.1 (Redis' Lua) — error
  shebang            a `#!lua` line Redis refuses (unknown flag, library without name=) — error
  undeclared-key     a key argument not taken from KEYS / the function's keys, that may be served by
                     another node (no shebang) or hash to another slot (shebang, function) — error;
                     warning when its slot hangs on an undeclared pattern (built from KEYS[i] whose
                     `keys:` pattern is not given) or on a helper's unknown caller
  same-slot-undeclared  not in KEYS, but it carries a declared key's hash tag: it works — info
                     (configurable: Analyzer(same_slot_severity=...), `check --same-slot`)
  enumeration        SCAN / KEYS / RANDOMKEY: sees only the keys of the node it runs on — warning
  cross-slot         the catalog's key patterns cannot be guaranteed to share one slot — error
  declared-pattern   an `argv:` entry the checker cannot read — error
  write-in-readonly  a no-writes script or function calls a write command — error
  global-write       assignment to a global variable — error
  noscript-command   a command Redis refuses inside scripts (MULTI, EVAL, SUBSCRIBE…) — error
  undefined-global   reading a global Redis' Lua does not define — warning (error for KEYS/ARGV in a Function)
  dynamic-command    the command name is not a literal, so its keys cannot be checked — warning
  unknown-command    a command missing from the key-spec table (a module? refresh the table) — warning
  no-cluster         the `no-cluster` flag: Redis refuses the script in cluster mode — warning
  analysis-skipped   the checker could not follow this valid code — info
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

    @property
    def label(self) -> str:
        """name@version, as the catalog labels an entry."""
        return f"{self.script}@{self.version}" if self.version else self.script

    def to_dict(self) -> dict[str, object]:
        fields = asdict(self)
        return {"file": fields.pop("file"), "script": fields.pop("script"), "version": fields.pop("version"), **fields}
