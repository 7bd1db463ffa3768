"""Hash slots, hash tags and how to make keys share a slot.

slot = CRC16-XMODEM(hashed part) mod 16384, where the hashed part is the text between the first `{`
and the first `}` after it when that text is non-empty, else the whole key (so `foo{}{bar}` hashes
whole). Catalog key patterns use `<name>` placeholders: `{ledger}:acct:<from>`. Two patterns are
guaranteed to share a slot only when their hashed parts are the same text (placeholders of the same
name stand for the same value) or are constants that happen to hash to the same slot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from redis.crc import key_slot as _crc_key_slot

PLACEHOLDER = re.compile(r"<[^<>]*>")
_SEGMENT = re.compile(r"[^:./]+|[:./]")


def hash_tag(key: str) -> str | None:
    """The hash tag Redis uses for `key`, or None when the whole key is hashed."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end < 0 or end == start + 1:
        return None
    return key[start + 1 : end]


def hashed_part(key: str) -> str:
    tag = hash_tag(key)
    return key if tag is None else tag


def key_slot(key: str | bytes) -> int:
    return _crc_key_slot(key.encode("utf-8") if isinstance(key, str) else key)


def patterns_share_slot(patterns: Sequence[str]) -> bool:
    """True when every key the patterns can produce (same placeholder, same value) hashes to one slot."""
    parts = {hashed_part(p) for p in patterns}
    if len(parts) <= 1:
        return True
    if any(PLACEHOLDER.search(part) for part in parts):
        return False
    return len({key_slot(part) for part in parts}) == 1


def _segments(text: str) -> list[str]:
    return _SEGMENT.findall(text)


def _common_prefix(patterns: Sequence[str]) -> str:
    split = [_segments(p) for p in patterns]
    common: list[str] = []
    for column in zip(*split, strict=False):
        if all(seg == column[0] for seg in column):
            common.append(column[0])
        else:
            break
    while common and common[-1] in (":", ".", "/"):
        common.pop()
    return "".join(common)


def _tag_prefix(pattern: str, prefix: str) -> str:
    return "{" + prefix + "}" + pattern[len(prefix) :]


def suggest_hash_tags(patterns: Sequence[str]) -> list[str]:
    """Human-readable ways to make the keys share a slot; [] when they already do."""
    if len(patterns) < 2 or patterns_share_slot(patterns):
        return []
    bare = [p.replace("{", "").replace("}", "") for p in patterns]
    prefix = _common_prefix(bare)
    has_placeholders = any(PLACEHOLDER.search(p) for p in bare)
    if prefix and (PLACEHOLDER.search(prefix) or not has_placeholders):
        renamed = [_tag_prefix(p, prefix) for p in bare]
        return [f"put the shared part in a hash tag {{{prefix}}}: " + ", ".join(renamed)]
    shared = set(PLACEHOLDER.findall(bare[0]))
    for p in bare[1:]:
        shared &= set(PLACEHOLDER.findall(p))
    if shared:
        name = sorted(shared, key=bare[0].find)[0]
        renamed = [p.replace(name, "{" + name + "}", 1) for p in bare]
        return [f"hash only the shared {name} with a tag {{{name}}}: " + ", ".join(renamed)]
    # The keys vary independently: nothing but a constant tag can co-locate them.
    tag = prefix or (_segments(PLACEHOLDER.sub("", bare[0]).strip(":./")) or ["tag"])[0]
    renamed = [_tag_prefix(p, tag) if prefix else "{" + tag + "}:" + p for p in bare]
    return [
        f"only a shared constant tag co-locates keys that vary independently: {', '.join(renamed)} "
        "(every such key then lives in one slot: one hot node)",
        "split the operation into one call per slot (each script touching keys of one slot only), "
        "accepting that the steps are no longer one atomic script",
    ]


@dataclass(frozen=True)
class KeyslotEntry:
    key: str
    slot: int
    hash_tag: str | None


@dataclass(frozen=True)
class KeyslotReport:
    entries: tuple[KeyslotEntry, ...]
    suggestions: tuple[str, ...]

    @property
    def slots(self) -> list[int]:
        return sorted({e.slot for e in self.entries})

    @property
    def same_slot(self) -> bool:
        return len(self.slots) <= 1

    def to_dict(self) -> dict[str, object]:
        return {
            "keys": [{"key": e.key, "slot": e.slot, "hash_tag": e.hash_tag} for e in self.entries],
            "same_slot": self.same_slot,
            "slots": self.slots,
            "suggestions": list(self.suggestions),
        }

    def to_text(self) -> str:
        width = max((len(e.key) for e in self.entries), default=0)
        lines = []
        for e in self.entries:
            tag = f"hash tag {{{e.hash_tag}}}" if e.hash_tag is not None else "no hash tag (whole key hashed)"
            lines.append(f"{e.key:<{width}}  slot {e.slot:>5}  {tag}")
        slots = self.slots
        if len(self.entries) > 1:
            if self.same_slot:
                lines.append(f"all {len(self.entries)} keys share slot {slots[0]}")
            else:
                lines.append(
                    f"keys span {len(slots)} slots ({', '.join(map(str, slots))}): "
                    "one script or multi-key command over them fails with CROSSSLOT"
                )
        lines.extend(f"  help: {s}" for s in self.suggestions)
        return "\n".join(lines) + "\n"


def keyslot_report(keys: Sequence[str]) -> KeyslotReport:
    report = KeyslotReport(tuple(KeyslotEntry(k, key_slot(k), hash_tag(k)) for k in keys), ())
    return report if report.same_slot else replace(report, suggestions=tuple(suggest_hash_tags(keys)))
