"""Key checks made before anything is sent: one hash slot, and the catalog's `keys:` patterns.

Slots: slot = CRC16(hashed part) mod 16384, the hashed part being the hash tag (`{...}`) when there is
one (analysis.slots has the rules). Keys in two slots would fail on the server with CROSSSLOT, or with
"non local key" from inside the script -- in production only, since a single test node serves every
slot. So they are refused here, on every kind of client.

Patterns: the catalog declares a script's keys as patterns, one per KEYS position:

    transfer: keys: ["{ledger}:acct:<from>", "{ledger}:acct:<to>", "{ledger}:xfer:<transfer_id>"]

`<name>` stands for any non-empty text (without braces inside a hash tag, so the tag cannot change).
A call may pass fewer keys than patterns (optional keys); extra keys take the last pattern (a script
taking any number of keys declares one). The same placeholder in two positions must have the same
value: `{events:<id>}:count` and `{events:<id>}:window` name one event's two keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from redis_orchestrator.analysis.slots import PLACEHOLDER, key_slot, suggest_hash_tags
from redis_orchestrator.client.errors import CrossSlotError, KeyPatternError

Key = str | bytes


def key_text(key: Key) -> str:
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else key


def slot_of(keys: Sequence[Key], what: str) -> int | None:
    """The one slot all `keys` hash to (None without keys); CrossSlotError otherwise."""
    if not keys:
        return None
    slots = [key_slot(k) for k in keys]
    first = slots[0]
    if all(s == first for s in slots):
        return first
    texts = [key_text(k) for k in keys]
    raise CrossSlotError(what, dict(zip(texts, slots, strict=True)), suggest_hash_tags(texts))


@dataclass(frozen=True)
class _Compiled:
    pattern: str
    regex: re.Pattern[str]
    names: tuple[str, ...]  # placeholder names, in group order


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> _Compiled:
    parts: list[str] = []
    names: list[str] = []
    depth = 0
    position = 0
    for match in PLACEHOLDER.finditer(pattern):
        literal = pattern[position : match.start()]
        depth += literal.count("{") - literal.count("}")
        parts.append(re.escape(literal))
        parts.append("([^{}]+)" if depth > 0 else "(.+)")
        names.append(match.group(0))
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return _Compiled(pattern, re.compile("".join(parts), re.DOTALL), tuple(names))


@lru_cache(maxsize=4096)
def key_patterns(label: str, patterns: tuple[str, ...]) -> KeyPatterns:
    """One KeyPatterns per catalog version, made once."""
    return KeyPatterns(label, patterns)


@dataclass(frozen=True)
class KeyPatterns:
    """The `keys:` patterns of one catalog version."""

    label: str
    patterns: tuple[str, ...]

    def check(self, keys: Sequence[Key]) -> None:
        """KeyPatternError for the first key that does not fit; None when all do."""
        if not self.patterns:
            return
        seen: dict[str, tuple[str, int]] = {}
        for index, key in enumerate(keys):
            text = key_text(key)
            repeated = index >= len(self.patterns)
            compiled = _compile(self.patterns[min(index, len(self.patterns) - 1)])
            match = compiled.regex.fullmatch(text)
            if match is None:
                raise KeyPatternError(self.label, text, index + 1, compiled.pattern)
            if repeated:
                continue  # a repeated pattern's placeholders are fresh for each key
            for name, value in zip(compiled.names, match.groups(), strict=True):
                earlier = seen.setdefault(name, (value, index + 1))
                if earlier[0] != value:
                    raise KeyPatternError(
                        self.label,
                        text,
                        index + 1,
                        compiled.pattern,
                        f"{name} is {value!r} in KEYS[{index + 1}] but {earlier[0]!r} in KEYS[{earlier[1]}]",
                    )
