"""The `#!lua` first line Redis reads before Lua ever sees the source.

    #!lua flags=no-writes,allow-stale          (EVAL script, 7.0+)
    #!lua name=mylib                            (FUNCTION LOAD library)

Lua itself would reject `#!` at the start of a chunk, so `strip_shebang` blanks the line (keeping
line numbers right) before the source is handed to a parser.
"""

from __future__ import annotations

from dataclasses import dataclass

KNOWN_FLAGS = frozenset({"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"})


@dataclass(frozen=True)
class Shebang:
    present: bool
    engine: str = ""
    flags: frozenset[str] = frozenset()
    library: str | None = None
    unknown: tuple[str, ...] = ()  # parameters Redis would refuse ("Unknown lua shebang option")


def parse_shebang(source: bytes) -> Shebang:
    if not source.startswith(b"#!"):
        return Shebang(present=False)
    first = source.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    parts = first[2:].split()
    engine = parts[0] if parts else ""
    flags: set[str] = set()
    library: str | None = None
    unknown: list[str] = []
    for part in parts[1:]:
        key, _, value = part.partition("=")
        if key == "flags":
            flags.update(f for f in value.split(",") if f)
        elif key == "name":
            library = value
        else:
            unknown.append(part)
    return Shebang(True, engine, frozenset(flags), library, tuple(unknown))


def strip_shebang(source: bytes) -> bytes:
    """The source with a `#!` first line replaced by an empty line."""
    if not source.startswith(b"#!"):
        return source
    newline = source.find(b"\n")
    return b"" if newline < 0 else source[newline:]
