"""The script manifest, read once into frozen values: what each name calls, with which command.

The manifest is what `redis-orchestrator manifest` prints and what the daemon keeps at `manifest.key`
(`Catalog.manifest()`), one JSON object:

    {"catalog_version": "2026.11.22",
     "scripts": {
       "transfer": {"kind": "script", "current": "1", "keys": [...],
                    "versions": {"1": {"sha": "9f2c...", "flags": [], "keys": ["{ledger}:acct:<from>", ...],
                                       "source": "#!lua\\n--[[ ...", "file": "lua/ledger/transfer.lua"}}},
       "orchestrator_lib": {"kind": "function", "current": "1",
                    "versions": {"1": {"library": "orchestrator_lib", "functions": ["capped_incr_fn", "counter_get"],
                                       "function_flags": {"counter_get": ["no-writes"], "capped_incr_fn": []},
                                       "sha": "...", "flags": [], "keys": [], "source": "#!lua name=..."}}}}}

Manifests written before `flags`/`keys`/`source` existed are read too: flags then come from the
source's `#!lua` line when there is a source, keys from the entry's own `keys`; without a source a
NOSCRIPT cannot be repaired (ScriptMissing says so).

Callable names: a script by its entry name (`transfer`); a function as `<library entry>.<function>`
(`orchestrator_lib.counter_get`), or by the function's bare name when no entry and no other library
uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from redis_orchestrator.catalog.model import Kind
from redis_orchestrator.catalog.shebang import parse_shebang
from redis_orchestrator.client.errors import ManifestError, UnknownScript

KIND_SCRIPT = Kind.SCRIPT
KIND_FUNCTION = Kind.FUNCTION
NO_WRITES = "no-writes"

# The largest manifest read (file, text or key). With sources, a catalog of 10,000 scripts of a few
# KB each weighs tens of MB; a 200 MB manifest cost a client 1.2 GB. Beyond: manifest.sources: false.
MANIFEST_LIMIT = 64 * 1024 * 1024
_SHA1 = re.compile(r"[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Version:
    """One version of one catalog entry, as a client needs it."""

    name: str
    version: str
    kind: str
    sha: str
    source: bytes | None = field(default=None, repr=False)
    flags: frozenset[str] = frozenset()
    keys: tuple[str, ...] = ()
    library: str | None = None
    function_flags: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    current: str
    versions: Mapping[str, Version]
    description: str = ""


@dataclass(frozen=True)
class Target:
    """What one call sends: EVALSHA[_RO] <sha> or FCALL[_RO] <function>. Its derived values are
    computed once (a Target lives as long as its manifest; run() reads them on every call)."""

    version: Version
    function: str | None = None

    @cached_property
    def readonly(self) -> bool:
        if self.function is not None:
            return NO_WRITES in self.version.function_flags.get(self.function, frozenset())
        return NO_WRITES in self.version.flags

    @cached_property
    def command(self) -> str:
        base = "EVALSHA" if self.function is None else "FCALL"
        return f"{base}_RO" if self.readonly else base

    @cached_property
    def handle(self) -> str:
        """The second word on the wire: the sha, or the function's name."""
        return self.version.sha if self.function is None else self.function

    @cached_property
    def name(self) -> str:
        """The catalog's name of what it runs (`transfer`, `orchestrator_lib.counter_get`): the one the
        duration histogram and the spans carry, as the daemon's slowlog metrics name scripts."""
        return self.version.name if self.function is None else f"{self.version.name}.{self.function}"

    @cached_property
    def label(self) -> str:
        return f"{self.name}@{self.version.version}"


@dataclass(frozen=True)
class Manifest:
    catalog_version: str
    entries: Mapping[str, Entry]
    _current: Mapping[str, Target] = field(init=False, repr=False, compare=False)
    _bare_functions: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        current: dict[str, Target] = {}
        owners: dict[str, list[str]] = {}
        for entry in self.entries.values():
            version = entry.versions[entry.current]
            if entry.kind == KIND_FUNCTION:
                for fn in version.function_flags:
                    current[f"{entry.name}.{fn}"] = Target(version, fn)
                    owners.setdefault(fn, []).append(entry.name)
            else:
                current[entry.name] = Target(version)
        bare = {fn: libs[0] for fn, libs in owners.items() if len(libs) == 1 and fn not in self.entries}
        object.__setattr__(self, "_current", MappingProxyType(current))
        object.__setattr__(self, "_bare_functions", MappingProxyType(bare))

    @property
    def names(self) -> tuple[str, ...]:
        """Every callable name, sorted."""
        return tuple(sorted(self._current))

    def resolve(self, name: str, version: str | int | None = None) -> Target:
        """The target `name` calls (its current version unless `version` is given)."""
        if version is None:
            target = self._current.get(name)
            if target is not None:
                return target
        entry_name, function = self._split(name)
        entry = self.entries[entry_name]
        wanted = entry.current if version is None else str(version)
        found = entry.versions.get(wanted)
        if found is None:
            live = ", ".join(sorted(entry.versions))
            raise UnknownScript(name, self.names, f"{entry_name} has no live version {wanted!r} (live: {live})")
        if entry.kind == KIND_FUNCTION:
            if function is None or function not in found.function_flags:
                raise UnknownScript(
                    name, self.names, f"{entry_name}@{wanted} is a function library: call one of its functions"
                )
            return Target(found, function)
        return Target(found)

    def _split(self, name: str) -> tuple[str, str | None]:
        if name in self.entries:
            return name, None
        library, dot, function = name.rpartition(".")
        if dot and library in self.entries:
            return library, function
        if name in self._bare_functions:
            return self._bare_functions[name], name
        raise UnknownScript(name, self.names)

    def scripts(self) -> tuple[Version, ...]:
        """The current version of every EVAL script (what a transaction checks for with its WATCH)."""
        return tuple(e.versions[e.current] for e in self.entries.values() if e.kind == KIND_SCRIPT)


# ---------------------------------------------------------------------------------------- reading


def load_manifest(source: str | os.PathLike[str] | Mapping[str, Any] | bytes) -> Manifest:
    """A manifest from a JSON file path, JSON text (str/bytes starting with `{`) or a parsed mapping."""
    if isinstance(source, Mapping):
        return parse_manifest(source, "manifest")
    if isinstance(source, bytes) or (isinstance(source, str) and source.lstrip().startswith("{")):
        return parse_json(source, "manifest")
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > MANIFEST_LIMIT:
            raise too_big(str(path), size)
        text = path.read_bytes()
    except OSError as exc:
        raise ManifestError(
            str(path), [f"cannot read {path}: {exc} (write it with `redis-orchestrator manifest`)"]
        ) from exc
    return parse_json(text, str(path))


def too_big(where: str, size: int) -> ManifestError:
    return ManifestError(
        where,
        [
            f"the manifest weighs {size / (1 << 20):.1f} MiB, over the {MANIFEST_LIMIT >> 20} MiB a client reads: "
            "set `manifest.sources: false` in the daemon's config (clients then load nothing themselves)"
        ],
    )


def parse_json(text: str | bytes, where: str) -> Manifest:
    if len(text) > MANIFEST_LIMIT:
        raise too_big(where, len(text))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(where, [f"not JSON: {exc}"]) from exc
    except RecursionError:
        raise ManifestError(where, ["not a manifest: JSON nested deeper than the reader follows"]) from None
    if not isinstance(data, Mapping):
        raise ManifestError(where, ["the manifest must be a JSON object with catalog_version and scripts"])
    return parse_manifest(data, where)


def parse_manifest(data: Mapping[str, Any], where: str) -> Manifest:
    """Validate the whole manifest, collecting every problem with its place."""
    problems: list[str] = []
    scripts = data.get("scripts")
    if not isinstance(scripts, Mapping):
        raise ManifestError(where, ["`scripts` is missing or not an object (is this `redis-orchestrator manifest`?)"])
    entries: dict[str, Entry] = {}
    for name, raw in scripts.items():
        entry = _entry(str(name), raw, problems)
        if entry is not None:
            entries[entry.name] = entry
    problems += _distinct_shas(entries)
    if problems:
        raise ManifestError(where, problems)
    return Manifest(str(data.get("catalog_version", "")), MappingProxyType(entries))


def _distinct_shas(entries: Mapping[str, Entry]) -> list[str]:
    """Each SHA belongs to one entry and version (the catalog refuses two on the same bytes): an
    entry carrying another one's SHA would run that other script, silently."""
    owners: dict[str, str] = {}
    problems = []
    for entry in entries.values():
        for version in entry.versions.values():
            place = f"scripts.{entry.name}.versions.{version.version}"
            owner = owners.setdefault(version.sha, place)
            if owner != place:
                problems.append(f"{place}.sha: {version.sha} is also {owner}'s: one SHA, one script")
    return problems


def _entry(name: str, raw: object, problems: list[str]) -> Entry | None:
    place = f"scripts.{name}"
    if not isinstance(raw, Mapping):
        problems.append(f"{place}: not an object")
        return None
    kind = str(raw.get("kind", KIND_SCRIPT))
    if kind not in (KIND_SCRIPT, KIND_FUNCTION):
        problems.append(f"{place}.kind: {kind!r} is neither 'script' nor 'function'")
        return None
    current = raw.get("current")
    versions_raw = raw.get("versions")
    if not isinstance(versions_raw, Mapping) or not versions_raw:
        problems.append(f"{place}.versions: missing or empty")
        return None
    entry_keys = _strings(raw.get("keys", []), f"{place}.keys", problems)
    versions: dict[str, Version] = {}
    for label, item in versions_raw.items():
        version = _version(name, kind, str(label), item, entry_keys, problems)
        if version is not None:
            versions[version.version] = version
    if current is None or str(current) not in versions_raw:
        problems.append(
            f"{place}.current: {current!r} is not one of its versions ({', '.join(map(str, versions_raw))})"
        )
        return None
    if str(current) not in versions:
        return None
    return Entry(name, kind, str(current), MappingProxyType(versions), str(raw.get("description", "")))


def _version(
    name: str, kind: str, label: str, raw: object, entry_keys: tuple[str, ...], problems: list[str]
) -> Version | None:
    place = f"scripts.{name}.versions.{label}"
    if not isinstance(raw, Mapping):
        problems.append(f"{place}: not an object")
        return None
    sha = raw.get("sha")
    if not isinstance(sha, str) or not _SHA1.fullmatch(sha):
        problems.append(f"{place}.sha: not a SHA1 (40 hexadecimal digits)")
        return None
    sha = sha.lower()
    source: bytes | None = None
    if raw.get("source") is not None:
        if not isinstance(raw["source"], str):
            problems.append(f"{place}.source: not a string")
            return None
        source = raw["source"].encode("utf-8", "surrogatepass")
        # The bytes SCRIPT LOAD gets must be the catalog's exactly: their SHA1 is the one we call.
        if hashlib.sha1(source).hexdigest() != sha:
            problems.append(f"{place}.source: its SHA1 is not {sha} (the source was altered on the way)")
            return None
    if "flags" in raw:
        flags = frozenset(_strings(raw["flags"], f"{place}.flags", problems))
    else:
        flags = parse_shebang(source).flags if source is not None else frozenset()
    keys = _strings(raw["keys"], f"{place}.keys", problems) if "keys" in raw else entry_keys
    function_flags: dict[str, frozenset[str]] = {}
    if kind == KIND_FUNCTION:
        listed = raw.get("function_flags")
        if isinstance(listed, Mapping):
            function_flags = {
                str(fn): frozenset(_strings(f, f"{place}.function_flags.{fn}", problems)) for fn, f in listed.items()
            }
        else:
            # An older manifest: the names only, and FCALL (not _RO) for all of them.
            function_flags = {
                fn: frozenset() for fn in _strings(raw.get("functions", []), f"{place}.functions", problems)
            }
    library = raw.get("library")
    return Version(
        name=name,
        version=label,
        kind=kind,
        sha=sha,
        source=source,
        flags=flags,
        keys=keys,
        library=str(library) if library is not None else None,
        function_flags=MappingProxyType(function_flags),
    )


def _strings(value: object, place: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{place}: not a list of strings")
        return ()
    return tuple(value)
