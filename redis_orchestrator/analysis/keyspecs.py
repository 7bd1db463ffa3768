"""Which arguments of a Redis command are keys, and whether it writes: Redis' own command table.

The table is `COMMAND` / `COMMAND INFO` of a real server (tools/gen_keyspecs.py writes the shipped
keyspecs.json; `wire.command_table.refresh_keyspecs` rebuilds it from a live node, modules' commands
included). One entry of the RESP2 reply, as that parser reads it:

    1) "zunionstore"  2) (integer) -4  3) 1) "write" 2) "denyoom" 4) (integer) 1  5) (integer) 1
    6) (integer) 1  7) ACL categories  8) tips
    9) 1) 1) "begin_search" 2) 1) "type" 2) "index" 3) "spec" 4) 1) "index" 2) (integer) 1
          3) "find_keys"    4) 1) "type" 2) "range" 3) "spec" 4) 1) "lastkey" 2) (integer) 0 ...
          5) "flags" 6) 1) "OW" 2) "update"
       2) ... begin_search index 2, find_keys keynum {keynumidx 0, firstkey 1, keystep 1}
   10) subcommands, each an entry of the same shape named "container|sub"

Positions are argv indexes with the command name at 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

SHIPPED_FILE = "keyspecs.json"

LiteralAt = Callable[[int], str | None]  # argv position -> its literal text, None when not a literal


@dataclass(frozen=True)
class KeySpec:
    begin: str  # "index" | "keyword" | "unknown"
    index: int = 0
    keyword: str = ""
    startfrom: int = 0
    find: str = "range"  # "range" | "keynum" | "unknown"
    lastkey: int = 0
    keystep: int = 1
    limit: int = 0
    keynumidx: int = 0
    firstkey: int = 0
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CommandSpec:
    name: str
    arity: int
    flags: frozenset[str]
    first_key: int
    last_key: int
    step: int
    key_specs: tuple[KeySpec, ...]
    subcommands: Mapping[str, CommandSpec] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return "write" in self.flags

    def positions(self) -> tuple[object, ...]:
        """Where the keys are, and whether it writes: what the analysis reads of an entry (two
        servers may differ in other flags, e.g. Valkey lets BLPOP run in scripts, and that is fine)."""
        specs = tuple(
            (k.begin, k.index, k.keyword, k.startfrom, k.find, k.lastkey, k.keystep, k.limit, k.keynumidx, k.firstkey)
            for k in self.key_specs
        )
        return (self.first_key, self.last_key, self.step, specs, self.writes)


@dataclass(frozen=True)
class KeySpecs:
    commands: Mapping[str, CommandSpec]
    source: str = ""

    @classmethod
    def merged(cls, tables: Sequence[KeySpecs]) -> KeySpecs:
        """One table for every server of the matrix: each command any of them knows. For a command
        several know, the first table's entry (list the strictest server first: Redis 7.0 refuses
        blocking commands in scripts, Valkey 9 allows them); their key positions are the same."""
        commands: dict[str, CommandSpec] = {}
        for table in tables:
            for name, spec in table.commands.items():
                known = commands.setdefault(name, spec)
                if known is not spec and spec.subcommands:  # SCRIPT SHOW, CLIENT SETINFO...: newer servers add some
                    subcommands = {**spec.subcommands, **known.subcommands}
                    commands[name] = replace(known, subcommands=subcommands)
        return cls(commands, " + ".join(t.source for t in tables))

    def every(self) -> dict[str, CommandSpec]:
        """Commands and subcommands (`script|load`) by name."""
        found = dict(self.commands)
        for spec in self.commands.values():
            found.update(spec.subcommands)
        return found

    def lookup(self, name: str, subcommand: str | None = None) -> CommandSpec | None:
        spec = self.commands.get(name.lower())
        if spec is not None and spec.subcommands and subcommand is not None:
            return spec.subcommands.get(f"{spec.name}|{subcommand.lower()}", spec)
        return spec

    def to_json(self) -> str:
        body = {
            "source": self.source,
            "commands": {n: _spec_to_obj(c) for n, c in sorted(self.commands.items())},
        }
        return json.dumps(body, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> KeySpecs:
        body = json.loads(text)
        return cls({n: _spec_from_obj(n, o) for n, o in body["commands"].items()}, str(body.get("source", "")))


def key_positions(
    spec: CommandSpec, argc: int, literal_at: LiteralAt, open_tail: bool = False
) -> tuple[list[int], bool]:
    """Argv positions (< argc, command at 0) that hold keys, and whether an open tail holds keys.

    `literal_at(i)` returns the literal text at position i, or None when it is not a literal (then a
    keyword search or a numkeys count cannot be resolved). `open_tail` says the last argument
    expands to an unknown number of values (`unpack(t)`), which then sit at positions >= argc.
    """
    positions: list[int] = []
    tail_keys = False
    specs = spec.key_specs
    if not specs and spec.first_key > 0:
        lastkey = spec.last_key - spec.first_key if spec.last_key >= 0 else spec.last_key
        specs = (KeySpec("index", index=spec.first_key, lastkey=lastkey, keystep=max(spec.step, 1)),)
    for ks in specs:
        start = _begin(ks, argc, literal_at, open_tail)
        if start is None:
            continue
        found, tail = _find(ks, start, argc, literal_at, open_tail)
        positions.extend(p for p in found if p < argc)
        tail_keys = tail_keys or tail or (open_tail and any(p >= argc for p in found))
    return sorted(set(positions)), tail_keys


def _begin(ks: KeySpec, argc: int, literal_at: LiteralAt, open_tail: bool) -> int | None:
    if ks.begin == "index":
        return ks.index
    if ks.begin != "keyword":
        return None
    keyword = ks.keyword.upper()
    if ks.startfrom >= 0:
        for i in range(ks.startfrom, argc):
            text = literal_at(i)
            if text is not None and text.upper() == keyword:
                return i + 1
        return None
    if open_tail:
        return None
    for i in range(argc + ks.startfrom, 0, -1):
        text = literal_at(i)
        if text is not None and text.upper() == keyword:
            return i + 1
    return None


def _find(ks: KeySpec, start: int, argc: int, literal_at: LiteralAt, open_tail: bool) -> tuple[list[int], bool]:
    step = max(ks.keystep, 1)
    if ks.find == "range":
        if ks.lastkey >= 0:
            return list(range(start, start + ks.lastkey + 1, step)), False
        if open_tail:
            return list(range(start, argc, step)), True
        last = argc + ks.lastkey
        if ks.limit > 1:
            last = start + (last - start + 1) // ks.limit - 1
        return list(range(start, last + 1, step)), False
    if ks.find == "keynum":
        count_text = literal_at(start + ks.keynumidx)
        first = start + ks.firstkey
        if count_text is None or not count_text.strip().lstrip("-").isdigit():
            # numkeys is not a literal: every argument from the first key on may be a key
            return list(range(first, argc, step)), open_tail
        return [first + i * step for i in range(max(int(count_text), 0))], False
    return [], False


def load_keyspecs() -> KeySpecs:
    """The table shipped with the package (generated from a real redis-server)."""
    text = resources.files("redis_orchestrator.analysis").joinpath(SHIPPED_FILE).read_text("utf-8")
    return KeySpecs.from_json(text)


def _spec_to_obj(spec: CommandSpec) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "arity": spec.arity,
        "flags": sorted(spec.flags),
        "first_key": spec.first_key,
        "last_key": spec.last_key,
        "step": spec.step,
        "key_specs": [
            {k: (sorted(v) if isinstance(v, frozenset) else v) for k, v in vars(ks).items()} for ks in spec.key_specs
        ],
    }
    if spec.subcommands:
        obj["subcommands"] = {n: _spec_to_obj(s) for n, s in sorted(spec.subcommands.items())}
    return obj


def _spec_from_obj(name: str, obj: Mapping[str, Any]) -> CommandSpec:
    return CommandSpec(
        name=name,
        arity=int(obj["arity"]),
        flags=frozenset(obj["flags"]),
        first_key=int(obj["first_key"]),
        last_key=int(obj["last_key"]),
        step=int(obj["step"]),
        key_specs=tuple(
            KeySpec(**{k: (frozenset(v) if k == "flags" else v) for k, v in ks.items()})  # type: ignore[arg-type]
            for ks in obj["key_specs"]
        ),
        subcommands={n: _spec_from_obj(n, s) for n, s in obj.get("subcommands", {}).items()},
    )
