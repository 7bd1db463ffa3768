"""What `check` reports: one Finding per problem, with a stable code a CI rule can match on.

Codes:
  syntax             the chunk is not valid Lua 5.1 (Redis' Lua) — error
  shebang            a `#!lua` line Redis refuses (unknown flag, library without name=) — error
  undeclared-key     a key argument not taken from KEYS / the function's keys — error
                     (warning when it only comes from a parameter of a helper never called here)
  cross-slot         the catalog's key patterns cannot be guaranteed to share one slot — error
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
    script: str
    line: int
    column: int
    severity: Severity
    code: str
    message: str
    suggestion: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
