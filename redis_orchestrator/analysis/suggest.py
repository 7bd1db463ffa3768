"""The declarations to suggest for a script: `keys:` for an entry that declares none, `argv:` for
the caller's values that decide a key's slot, `stored:` when names read back from Redis do.

Names come, in order of trust, from the script's own comments (projects write `KEYS[1] 'wait'`,
`KEYS[1] -> lock key`, `-- KEYS[2]: the journal stream`), from the local a key is bound to
(`local activeKey = KEYS[7]` -> `active`), else `k<i>`. The patterns give every key one hash tag,
`{<tag>}` (or the tag the declared keys share), which is the cluster-safe convention the check then
verifies: the user states it once, or adjusts it to the project's naming.

    - name: add-job
      keys: ["{<tag>}:wait", "{<tag>}:active"]
      argv: ["ARGV[1] = {<tag>}:<prefix>", "ARGV[3] = {<tag>}:<name>"]
    -- redis-orchestrator: stored: ["{<tag>}:<name>"]      (in the script: no catalog field)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from redis_orchestrator.analysis.declared import Declared

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
    argv: tuple[tuple[str, str], ...] = ()  # ("ARGV[2]", "prefix" | "whole" | "tag"): values deciding a key's slot
    stored: bool = False  # a name read back from Redis decides a key's slot
    reads_keys: bool = False  # the script reads KEYS at all (else a cluster client sends it to any node)


@dataclass(frozen=True)
class KeySuggestion:
    keys: tuple[str, ...]
    argv: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())  # where the names came from, for the reader
    stored: tuple[str, ...] = ()

    def declarations(self) -> list[tuple[str, str]]:
        """(kind, `kind: [...]` line) for each kind suggested: keys, argv, stored."""
        kinds = (("keys", self.keys), ("argv", self.argv), ("stored", self.stored))
        return [(kind, f"{kind}: [{', '.join(_quote(p) for p in patterns)}]") for kind, patterns in kinds if patterns]

    def yaml_lines(self, indent: str = "") -> list[str]:
        """The catalog entry's lines (`stored:` has no catalog field: see directive_lines)."""
        return [f"{indent}{line}" for kind, line in self.declarations() if kind != "stored"]

    def declaration_lines(self) -> list[str]:
        """Every declaration, `stored:` included, as `kind: [...]` lines."""
        return [line for _, line in self.declarations()]

    def directive_lines(self) -> list[str]:
        """The same declarations as comments for the script itself (directives.py reads them)."""
        return [f"-- redis-orchestrator: {line}" for line in self.declaration_lines()]


def suggest_keys(source: bytes, usage: KeyUsage, declared: Declared | None = None) -> KeySuggestion | None:
    """What to declare so the check can decide every key (None when declaring would tell nothing:
    one key, nothing built from it, nothing read back). `keys:` only when none is declared; `argv:`
    entries and `stored:` for what is not declared yet."""
    declared = declared or Declared()
    documented = documented_names(source.decode("utf-8", "replace"))
    tag = declared.shared_tag() or "<tag>"
    argv = []
    for ref, role in usage.argv:
        if declared.argv_pattern(ref) is not None:
            continue
        name = documented.get(ref) or ("prefix" if role == "prefix" else "name")
        argv.append(f"{ref} = {tag}" if role == "tag" else f"{ref} = {{{tag}}}:<{name}>")
    stored = ("{" + tag + "}:<name>",) if usage.stored and not declared.stored else ()
    keys: list[str] = []
    sources: set[str] = set()
    if not declared.keys:
        keys = _key_patterns(documented, usage, sources)
    if not keys and not argv and not stored:
        return None
    return KeySuggestion(tuple(keys), tuple(argv), tuple(sorted(sources)), stored)


def _key_patterns(documented: dict[str, str], usage: KeyUsage, sources: set[str]) -> list[str]:
    # A key the caller passes only to route the call is documented but never read: it counts too.
    documented_keys = [int(ref[5:-1]) for ref in documented if ref.startswith("KEYS[") and ref[5:-1].isdigit()]
    highest = max([usage.highest, *documented_keys])
    if highest == 0 or (highest == 1 and not usage.built_from and not usage.argv and not usage.stored):
        return []
    bound = dict(usage.names)
    keys: list[str] = []
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
    return keys


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
