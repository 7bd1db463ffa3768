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

from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True)
class Finding:
    file: str
    script: str
    line: int
    column: int
    severity: str  # "error" | "warning" | "info"
    code: str
    message: str
    suggestion: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
