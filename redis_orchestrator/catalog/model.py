"""The catalog: which scripts and function libraries must be on every node, as immutable values.

The config reads a *spec* of the catalog (names, versions, files, key patterns: config.py); this
module reads and hashes the files it names (`load_catalog`). A script's identity on the wire is the
SHA1 of its file's bytes exactly as they are on disk (what `SCRIPT LOAD` answers and what `sha1sum`
prints), so the bytes are read once here and never altered.

Versioned rollouts: the same name may appear with several versions. Every *live* version is kept on
every node, so clients still holding an old SHA keep working through a rolling deploy. A name's
`current` version is the one clients should call (the manifest says which); `keep` says how many
older versions stay live beside it; older ones are *retired*: no longer loaded, and removed from the
caches only by the opt-in `prune` verb (Redis 7 cannot drop one script from its cache).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from redis_orchestrator.catalog.files import FileReads, FileRefused
from redis_orchestrator.catalog.shebang import parse_shebang
from redis_orchestrator.errors import Problem, Where, render_where

T = TypeVar("T")


class Kind(StrEnum):
    """What runs: an EVAL script (SCRIPT LOAD / EVALSHA) or a function library (FUNCTION LOAD / FCALL)."""

    SCRIPT = "script"
    FUNCTION = "function"


# redis.register_function('name', cb) and redis.register_function{function_name='name', ...}
_REGISTERED = re.compile(
    rb"""register_function\s*\(\s*['"]([A-Za-z0-9_]+)['"]|function_name\s*=\s*['"]([A-Za-z0-9_]+)['"]"""
)


# The table form's own `flags = {'no-writes', ...}`; the positional form cannot carry flags.
_TABLE_FORM = re.compile(rb"register_function\s*\{")
_FUNCTION_NAME = re.compile(rb"""function_name\s*=\s*['"]([A-Za-z0-9_]+)['"]""")
_FLAGS_TABLE = re.compile(rb"flags\s*=\s*\{([^{}]*)\}")
_QUOTED = re.compile(rb"""['"]([A-Za-z0-9_-]+)['"]""")


# The largest script or library file read. Hand-written Lua for Redis runs from a few hundred bytes
# to tens of KB; past that the cost is the analysis': measured here, a dense 256 KiB file took 0.7 s
# and 46 MB, 1 MiB 3.4 s and 186 MB, and the probe's 5 MB script 5.1 s and 1.75 GB (check, and
# every reload of the daemon).
SCRIPT_LIMIT = 512 * 1024


def sha1_hex(source: bytes) -> str:
    return hashlib.sha1(source).hexdigest()


def registered_functions(source: bytes) -> tuple[str, ...]:
    """Function names a library registers, read statically (both register_function forms)."""
    names = []
    for match in _REGISTERED.finditer(source):
        name = (match.group(1) or match.group(2)).decode()
        if name not in names:
            names.append(name)
    return tuple(names)


def registered_function_flags(source: bytes) -> dict[str, tuple[str, ...]]:
    """Each registered function's flags, read statically: clients send FCALL_RO for a `no-writes`
    function. A function registered in the positional form has none."""
    flags: dict[str, tuple[str, ...]] = dict.fromkeys(registered_functions(source), ())
    for match in _TABLE_FORM.finditer(source):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(source)):  # the table's closing brace (flags nest one)
            depth += {ord("{"): 1, ord("}"): -1}.get(source[end], 0)
            if depth == 0:
                break
        table = source[match.end() : end]
        name = _FUNCTION_NAME.search(table)
        listed = _FLAGS_TABLE.search(table)
        if name and listed:
            flags[name.group(1).decode()] = tuple(sorted(q.decode() for q in _QUOTED.findall(listed.group(1))))
    return flags


@dataclass(frozen=True)
class Script:
    """One version of one catalog entry, with its bytes."""

    name: str
    version: str
    kind: Kind
    file: str  # as written in the config, for messages
    source: bytes = field(repr=False)
    sha: str
    description: str = ""
    keys: tuple[str, ...] = ()  # declared KEYS patterns, `<name>` placeholders
    argv: tuple[str, ...] = ()  # declared ARGV patterns, same syntax (a hash-tagged prefix passed in ARGV)
    current: bool = True
    live: bool = True
    library: str | None = None  # functions: the library name from `#!lua name=`
    functions: tuple[str, ...] = ()  # functions: names the library registers

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @cached_property
    def sha_bytes(self) -> bytes:
        """The SHA as SCRIPT LOAD answers it, for comparing replies without decoding them."""
        return self.sha.encode()

    @property
    def text(self) -> str:
        return self.source.decode("utf-8")


@dataclass(frozen=True)
class Catalog:
    version: str
    entries: tuple[Script, ...]
    _by_sha: Mapping[str, Script] = field(init=False, repr=False, compare=False)
    _by_function: Mapping[str, Script] = field(init=False, repr=False, compare=False)
    _scripts: tuple[Script, ...] = field(init=False, repr=False, compare=False)
    _functions: tuple[Script, ...] = field(init=False, repr=False, compare=False)
    _shas: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _sha_set: frozenset[str] = field(init=False, repr=False, compare=False)
    _derived: dict[Hashable, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_sha: dict[str, Script] = {}
        by_function: dict[str, Script] = {}
        for entry in self.entries:
            # A retired version is still attributable (slowlog) though no longer loaded.
            if entry.sha not in by_sha or entry.live:
                by_sha[entry.sha] = entry
            if entry.kind == Kind.FUNCTION and entry.live:
                for fn in entry.functions:
                    by_function[fn] = entry
        scripts = tuple(e for e in self.entries if e.kind == Kind.SCRIPT and e.live)
        # Computed once: the daemon reads these for every node every interval.
        object.__setattr__(self, "_by_sha", MappingProxyType(by_sha))
        object.__setattr__(self, "_by_function", MappingProxyType(by_function))
        object.__setattr__(self, "_scripts", scripts)
        object.__setattr__(self, "_functions", tuple(e for e in self.entries if e.kind == Kind.FUNCTION and e.live))
        object.__setattr__(self, "_shas", tuple(dict.fromkeys(s.sha for s in scripts)))
        object.__setattr__(self, "_sha_set", frozenset(s.sha for s in scripts))
        object.__setattr__(self, "_derived", {})

    def derived(self, key: Hashable, make: Callable[[], T]) -> T:
        """`make()`, computed once per catalog and `key` (a short key: hashing the catalog itself, or
        its 10,000 SHAs, on every node's every pass is what this avoids). The catalog is replaced
        whole on reload, so what is derived from it never goes stale."""
        try:
            return self._derived[key]  # type: ignore[return-value]
        except KeyError:
            value = self._derived[key] = make()
            return value

    @property
    def scripts(self) -> tuple[Script, ...]:
        """Live EVAL scripts: what every node's script cache must hold."""
        return self._scripts

    @property
    def functions(self) -> tuple[Script, ...]:
        """Live function libraries: what every primary must hold."""
        return self._functions

    @property
    def shas(self) -> tuple[str, ...]:
        """Distinct SHAs of the live scripts, in catalog order."""
        return self._shas

    @property
    def sha_set(self) -> frozenset[str]:
        return self._sha_set

    @property
    def retired(self) -> tuple[Script, ...]:
        return tuple(e for e in self.entries if not e.live)

    def counts(self) -> dict[str, int]:
        """Live entries by kind, for the catalog_scripts gauge."""
        return {Kind.SCRIPT: len(self._scripts), Kind.FUNCTION: len(self._functions)}

    def by_sha(self, sha: str) -> Script | None:
        return self._by_sha.get(sha.lower())

    def by_function(self, name: str) -> Script | None:
        return self._by_function.get(name)

    def current(self, name: str) -> Script | None:
        for entry in self.entries:
            if entry.name == name and entry.current:
                return entry
        return None

    def manifest(self, include_sources: bool = True) -> dict[str, object]:
        """name -> versions -> sha (and function names), for clients in any language.

        Each version also carries what a client needs to call it without the catalog's files:
        `flags` (the `#!lua` flags: `no-writes` means EVALSHA_RO), `keys` (its key patterns),
        `source` (the exact text to SCRIPT LOAD after a NOSCRIPT; its SHA1 is `sha`; left out with
        `include_sources=False`, for catalogs so big the key would weigh megabytes) and, for a
        library, `function_flags` (function -> flags: `no-writes` means FCALL_RO)."""
        names: dict[str, dict[str, object]] = {}
        for entry in self.entries:
            if not entry.live:
                continue
            item = names.setdefault(entry.name, {"kind": entry.kind, "current": None, "versions": {}})
            version: dict[str, object] = {"file": entry.file}
            if entry.kind == Kind.SCRIPT:
                version["sha"] = entry.sha
            else:
                version["library"] = entry.library
                version["functions"] = list(entry.functions)
                version["sha"] = entry.sha
                version["function_flags"] = {
                    fn: list(flags) for fn, flags in registered_function_flags(entry.source).items()
                }
            version["flags"] = sorted(parse_shebang(entry.source).flags)
            version["keys"] = list(entry.keys)
            if include_sources:
                version["source"] = entry.text
            versions = item["versions"]
            assert isinstance(versions, dict)
            versions[entry.version] = version
            if entry.current:
                item["current"] = entry.version
                if entry.description:
                    item["description"] = entry.description
                if entry.keys:
                    item["keys"] = list(entry.keys)
        return {"catalog_version": self.version, "scripts": names}


def mark_live(entries: Iterable[Script], keep: Mapping[str, int], current: Mapping[str, str]) -> list[Script]:
    """Set `current` and `live` on each version of each name.

    `current[name]` names the current version (default: the last one listed); `keep[name]` how many
    older versions stay live beside it (default: all of them).
    """
    result: list[Script] = []
    by_name: dict[str, list[Script]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    for name, versions in by_name.items():
        current_version = current.get(name, versions[-1].version)
        index = next(i for i, v in enumerate(versions) if v.version == current_version)
        older = versions[:index] + versions[index + 1 :]
        if versions[0].kind == Kind.FUNCTION:
            kept: list[Script] = []  # FUNCTION LOAD REPLACE holds one version of a library at a time
        elif name in keep:
            kept = older[-keep[name] :] if keep[name] > 0 else []
        else:
            kept = older
        for version in versions:
            is_current = version.version == current_version
            live = is_current or version in kept
            result.append(replace(version, current=is_current, live=live))
    return result


# ---------------------------------------------------------------------- the spec, and reading it


@dataclass(frozen=True)
class ScriptSpec:
    """One version of one entry as the config declares it; `where` is its place in the config."""

    name: str
    version: str
    kind: Kind
    file: str  # as written
    path: Path  # resolved against the config's directory
    where: Where
    description: str = ""
    keys: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class CatalogSpec:
    version: str
    entries: tuple[ScriptSpec, ...] = ()
    keep: Mapping[str, int] = field(default_factory=dict)  # name -> older versions kept live
    current: Mapping[str, str] = field(default_factory=dict)  # name -> its current version


def load_catalog(spec: CatalogSpec, files: FileReads) -> tuple[Catalog, list[Problem]]:
    """Read and hash every file the spec names (through `files`, which remembers what it read).
    Every problem comes back with its place; entries with a problem are left out of the catalog (the
    caller refuses it when there are problems)."""
    problems: list[Problem] = []
    entries: list[Script] = []
    for entry in spec.entries:
        script = _read_script(entry, files, problems)
        if script is not None:
            entries.append(script)
    libraries: dict[str, str] = {}
    for script in entries:
        if script.library and libraries.setdefault(script.library, script.name) != script.name:
            problems.append(
                Problem(
                    ("catalog", "scripts"),
                    f"function library {script.library} is declared by both {libraries[script.library]} "
                    f"and {script.name}",
                )
            )
    # A current version whose file failed is reported above; don't let it hide the rest.
    loaded = {(e.name, e.version) for e in entries}
    current = {name: version for name, version in spec.current.items() if (name, version) in loaded}
    catalog = Catalog(version=spec.version, entries=tuple(mark_live(entries, spec.keep, current)))
    problems += _one_entry_per_script(catalog, {(e.name, e.version): e.where for e in spec.entries})
    return catalog, problems


def _one_entry_per_script(catalog: Catalog, places: Mapping[tuple[str, str], Where]) -> list[Problem]:
    """Two live entries with the same bytes are one script on the wire (one SHA): every count by
    entry would then disagree with every count by SHA (`status` said 5/6 while reporting in sync),
    and clients could not tell which name a SHA is. A retired version may share a live one's bytes
    (a rollback to an old file): only one copy is live."""
    first: dict[str, Script] = {}
    problems = []
    for script in catalog.scripts:
        other = first.setdefault(script.sha, script)
        if other is not script:
            problems.append(
                Problem(
                    (*places[(script.name, script.version)], "file"),
                    f"{script.label} has the same bytes as {other.label} "
                    f"({render_where(places[(other.name, other.version)])}, sha {script.sha}): one script, "
                    "one entry: drop one of them (clients can call the other name), or retire one (keep:)",
                )
            )
    return problems


def _read_script(spec: ScriptSpec, files: FileReads, problems: list[Problem]) -> Script | None:
    where = (*spec.where, "file")
    try:
        source, sha = files.read(spec.path, SCRIPT_LIMIT, "script")
    except FileRefused as exc:
        looked = f" (looked at {spec.path})" if exc.stamp.kind == 0 else ""
        problems.append(Problem(where, f"{spec.file} {exc.reason}{looked}"))
        return None
    if not source.strip():
        problems.append(Problem(where, f"{spec.file} is empty"))
        return None
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(where, f"{spec.file} is not UTF-8 (byte {exc.start})"))
        return None
    library = None
    functions: tuple[str, ...] = ()
    if spec.kind == Kind.FUNCTION:
        library = parse_shebang(source).library
        if library is None:
            problems.append(Problem(where, f"{spec.file}: a function library must start with `#!lua name=<library>`"))
            return None
        functions = registered_functions(source)
    return Script(
        name=spec.name,
        version=spec.version,
        kind=spec.kind,
        file=spec.file,
        source=source,
        sha=sha,
        description=spec.description,
        keys=spec.keys,
        argv=spec.argv,
        library=library,
        functions=functions,
    )
