"""`keys:` (and `argv:`) patterns to suggest for a catalog entry that declares none.

Names come, in order of trust, from the script's own comments (projects write `KEYS[1] 'wait'`,
`KEYS[1] -> lock key`, `-- KEYS[2]: the journal stream`), from the local a key is bound to
(`local activeKey = KEYS[7]` -> `active`), else `k<i>`. The patterns give every key one hash tag,
`{<tag>}`, which is the cluster-safe convention the check then verifies: the user states it once, or
adjusts it to the project's naming.

    - name: add-job
      keys: ["{<tag>}:wait", "{<tag>}:active"]
      argv: ["ARGV[1][1] = {<tag>}:<prefix>"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LONG_COMMENT = re.compile(r"--\[(=*)\[(.*?)\]\1\]", re.DOTALL)
_LINE_COMMENT = re.compile(r"--(?!\[=*\[)([^\n]*)")
_MENTION = re.compile(r"\b(KEYS|ARGV)\s*\[\s*(\d+)\s*\](?:\s*\[\s*(\d+)\s*\])?\s*(?:->|=>|→|[:=-])?\s*(.*)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_STOP = frozenset({"the", "a", "an", "key", "keys", "name", "of", "for", "to", "is", "redis", "string", "hash"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class KeyUsage:
    """How a script uses KEYS and ARGV, as the walk saw it."""

    highest: int = 0  # the highest literal KEYS index read
    names: tuple[tuple[int, str], ...] = ()  # KEYS index -> the local it is first bound to
    built_from: frozenset[int] = frozenset()  # KEYS indexes that start built key names
    argv_prefixes: frozenset[str] = frozenset()  # "ARGV[2]", "ARGV[1][1]": start undeclared key names


@dataclass(frozen=True)
class KeySuggestion:
    keys: tuple[str, ...]
    argv: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())  # where the names came from, for the reader

    def yaml_lines(self, indent: str = "") -> list[str]:
        lines = [f"{indent}keys: [{', '.join(_quote(k) for k in self.keys)}]"]
        if self.argv:
            lines.append(f"{indent}argv: [{', '.join(_quote(a) for a in self.argv)}]")
        return lines


def suggest_keys(source: bytes, usage: KeyUsage) -> KeySuggestion | None:
    """Patterns for an entry without `keys:`, or None when declaring them would tell nothing
    (one key, nothing built from it)."""
    documented = documented_names(source.decode("utf-8", "replace"))
    # A key the caller passes only to route the call is documented but never read: it counts too.
    documented_keys = [int(ref[5:-1]) for ref in documented if ref.startswith("KEYS[") and ref[5:-1].isdigit()]
    highest = max([usage.highest, *documented_keys])
    if highest == 0 or (highest == 1 and not usage.built_from and not usage.argv_prefixes):
        return None
    bound = dict(usage.names)
    keys: list[str] = []
    sources: set[str] = set()
    seen: set[str] = set()
    for index in range(1, highest + 1):
        name = documented.get(f"KEYS[{index}]")
        if name:
            sources.add("the script's comments")
        elif index in bound and _name_from_local(bound[index]):
            name = _name_from_local(bound[index])
            sources.add("the locals keys are bound to")
        else:
            name = f"k{index}"
        if name in seen:
            name = f"{name}{index}"
        seen.add(name)
        keys.append("{<tag>}:" + name)
    argv = []
    for ref in sorted(usage.argv_prefixes):
        name = documented.get(ref) or "prefix"
        argv.append(f"{ref} = {{<tag>}}:<{name}>")
    return KeySuggestion(tuple(keys), tuple(argv), tuple(sorted(sources)))


def documented_names(text: str) -> dict[str, str]:
    """'KEYS[1]' / 'ARGV[2]' / 'ARGV[1][1]' -> a short name, from the comments that mention them."""
    names: dict[str, str] = {}
    comments = [m.group(2) for m in _LONG_COMMENT.finditer(text)]
    comments += [m.group(1) for m in _LINE_COMMENT.finditer(_LONG_COMMENT.sub("", text))]
    for comment in comments:
        for line in comment.splitlines():
            m = _MENTION.search(line)
            if m is None:
                continue
            ref = f"{m.group(1)}[{m.group(2)}]" + (f"[{m.group(3)}]" if m.group(3) else "")
            name = _slug(m.group(4))
            if name and ref not in names:
                names[ref] = name
    return names


def _slug(text: str) -> str:
    quoted = re.match(r"""\s*['"`]([^'"`]+)['"`]""", text)
    if quoted:  # KEYS[1] 'wait' list: the quoted word is the name
        text = quoted.group(1)
    text = re.split(r"[,;(.]|\s-\s", text.strip(), maxsplit=1)[0]
    words = [w.lower() for w in _WORD.findall(text)]
    words = [w for w in words if w not in _STOP][:3]
    return "-".join(words)


def _name_from_local(name: str) -> str:
    words = [w.lower() for w in _CAMEL.sub("_", name).split("_") if w]
    words = [w for w in words if w not in _STOP]
    return "-".join(words[:3])


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
