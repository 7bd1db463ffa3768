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
    # surrogateescape: a key given as bytes that are not UTF-8 (`keyslot $'\xff'`: Python keeps them
    # as lone surrogates) is hashed as those very bytes, as Redis hashes them.
    return _crc_key_slot(key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key)


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


def names_an_entity(segment: str) -> bool:
    """A key segment that names one thing rather than a kind of thing: a placeholder (`<id>`), or
    text with a digit in it (`42`, `u-17`, a uuid). `user`, `cache`, `orders` name families."""
    return bool(PLACEHOLDER.fullmatch(segment)) or any(c.isdigit() for c in segment)


def _groups(tag: str) -> str:
    """What a hash tag puts in one slot, in words."""
    entities = [s for s in _segments(tag) if names_an_entity(s)]
    if entities:
        return f"it groups the keys of one entity ({entities[-1]}): the narrowest tag that serves them"
    return (
        f"it groups every key of the whole '{tag}' family in one slot, on one node: fine for a handful of "
        "keys, a hot spot for many"
    )


def suggest_hash_tags(patterns: Sequence[str]) -> list[str]:
    """Ways to make the keys share a slot, narrowest first, each saying what its tag groups (one
    entity's keys, or a whole key family: a hot slot); [] when they already share one."""
    if len(patterns) < 2 or patterns_share_slot(patterns):
        return []
    bare = [p.replace("{", "").replace("}", "") for p in patterns]
    prefix = _common_prefix(bare)
    if prefix and any(names_an_entity(s) for s in _segments(prefix)):
        renamed = [_tag_prefix(p, prefix) for p in bare]
        return [f"put the shared part in a hash tag {{{prefix}}}: {', '.join(renamed)} ({_groups(prefix)})"]
    shared = [s for s in _segments(bare[0]) if names_an_entity(s) and all(s in _segments(p) for p in bare[1:])]
    if shared:
        name = shared[0]
        renamed = [_tag_segment(p, name) for p in bare]
        if PLACEHOLDER.fullmatch(name):
            groups = "it groups everything of that one entity, across key families"
        else:
            groups = (
                f"it groups every key tagged {{{name}}}, across key families: one entity's keys if {name} names one"
            )
        return [f"hash only the shared {name} with a tag {{{name}}}: {', '.join(renamed)} ({groups})"]
    # Nothing but a family-wide constant tag can co-locate keys of different entities.
    tag = prefix or (_segments(PLACEHOLDER.sub("", bare[0]).strip(":./")) or ["tag"])[0]
    renamed = [_tag_prefix(p, tag) if prefix else "{" + tag + "}:" + p for p in bare]
    differing = _differing_entities(bare, prefix)
    who = f"different entities ({', '.join(differing)})" if differing else "keys that vary independently"
    return [
        f"only a shared constant tag co-locates {who}: {', '.join(renamed)} ({_groups(tag)})",
        "split the operation into one call per slot (each script touching keys of one slot only, e.g. one "
        "entity's keys under that entity's own tag), accepting that the steps are no longer one atomic script",
    ]


def _tag_segment(pattern: str, segment: str) -> str:
    parts = _segments(pattern)
    index = parts.index(segment)
    parts[index] = "{" + segment + "}"
    return "".join(parts)


def _differing_entities(bare: Sequence[str], prefix: str) -> list[str]:
    """The entity segments right after the shared prefix, when they differ: user:42 vs user:43."""
    position = len(_segments(prefix)) if prefix else 0
    found: list[str] = []
    for key in bare:
        rest = [s for s in _segments(key)[position:] if s not in (":", ".", "/")]
        if rest and names_an_entity(rest[0]) and rest[0] not in found:
            found.append(rest[0])
    return found if len(found) > 1 else []


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
