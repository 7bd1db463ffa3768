"""A catalog entry's declared patterns for KEYS (`keys:`) and ARGV (`argv:`), and which slot they name.

    keys: ["{<queue>}:wait", "{<queue>}:active"]           KEYS[1], KEYS[2]
    argv: ["{<queue>}:job:", "<id>"]                        ARGV[1], ARGV[2], by position
    argv: ["ARGV[3] = {<queue>}:", "ARGV[1][1] = {<queue>}:", "ARGV[1][7].queueKey = {<queue>}"]
                                                            by reference; ARGV[1][1] is element 1 of
                                                            the table cmsgpack.unpack / cjson.decode
                                                            reads from ARGV[1], .queueKey a field

    stored: ["{<queue>}:<name>"]                             names the script reads back from Redis
                                                            (members, fields, list items) and uses
                                                            as keys (an inline declaration only:
                                                            directives.py)

A placeholder stands for non-empty text without braces, and one name for one value across keys,
ARGV and stored names: that is how a prefix passed in ARGV is known to carry the tag of the
declared keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from redis_orchestrator.analysis.slots import PLACEHOLDER, hash_tag, hashed_part, key_slot
from redis_orchestrator.analysis.values import UNSEEN

_REF_TAIL = r"""(?:\s*\[\s*\d+\s*\]|\s*\[\s*['"][^'"]+['"]\s*\]|\s*\.\s*[A-Za-z_]\w*)*"""
_BY_REF = re.compile(r"^\s*(ARGV\s*\[\s*\d+\s*\]" + _REF_TAIL + r")\s*=\s*(.*?)\s*$")
_SEGMENT = re.compile(r"\[\s*(\d+)\s*\]|\[\s*['\"]([^'\"]+)['\"]\s*\]|\.\s*([A-Za-z_]\w*)")


def normal_ref(text: str) -> str:
    """ARGV[1][7]['queueKey'] -> ARGV[1][7].queueKey: how the walker names an ARGV value."""
    head, _, rest = text.replace(" ", "").partition("]")
    out = head + "]"
    for m in _SEGMENT.finditer(rest):
        out += f"[{m.group(1)}]" if m.group(1) else f".{m.group(2) or m.group(3)}"
    return out


@dataclass(frozen=True)
class Declared:
    keys: tuple[str, ...] = ()
    argv: tuple[tuple[str, str], ...] = ()  # ("ARGV[1][7].queueKey", pattern)
    problems: tuple[str, ...] = ()  # argv entries that could not be read
    stored: tuple[str, ...] = ()  # what names read back from Redis and used as keys look like

    def key_pattern(self, index: int) -> str | None:
        return self.keys[index - 1] if 1 <= index <= len(self.keys) else None

    def argv_pattern(self, ref: str) -> str | None:
        for declared, pattern in self.argv:
            if declared == ref:
                return pattern
        return None

    def slot_owner(self, hashed: str) -> int | None:
        """The first KEYS index whose declared pattern is surely in the slot of `hashed`."""
        for index, pattern in enumerate(self.keys, 1):
            if same_slot(hashed, hashed_part(pattern)):
                return index
        return None

    def shared_tag(self) -> str | None:
        """The hash tag every declared key carries, when they all carry the same complete one."""
        tags = {hash_tag(p) for p in self.keys}
        tag = tags.pop() if len(tags) == 1 else None
        return tag if tag else None

    def shared_hashed_part(self) -> str | None:
        """The hashed part every declared key has, when they all have the same one."""
        parts = {hashed_part(p) for p in self.keys}
        return parts.pop() if len(parts) == 1 else None


def same_slot(a: str, b: str) -> bool:
    """Surely one slot: the same text (one placeholder, one value), or constants hashing alike."""
    if UNSEEN in a or UNSEEN in b:
        return False
    if a == b:
        return True
    if PLACEHOLDER.search(a) or PLACEHOLDER.search(b):
        return False
    return key_slot(a) == key_slot(b)


def read_declared(keys: Sequence[str], argv: Sequence[str], stored: Sequence[str] = ()) -> Declared:
    refs: list[tuple[str, str]] = []
    problems: list[str] = []
    for position, entry in enumerate(argv, 1):
        match = _BY_REF.match(entry)
        if match:
            ref, pattern = normal_ref(match.group(1)), match.group(2)
        elif entry.lstrip().startswith("ARGV"):
            problems.append(f"argv entry {entry!r} is not 'ARGV[i] = pattern' (or ARGV[i][j], ARGV[i].field = pattern)")
            continue
        else:
            ref, pattern = f"ARGV[{position}]", entry
        if re.search(r"\[0\]", ref):
            problems.append(f"argv entry {entry!r}: Lua indexes start at 1")
            continue
        refs.append((ref, pattern))
    return Declared(tuple(keys), tuple(refs), tuple(problems), tuple(stored))
