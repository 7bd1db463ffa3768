"""Reading the config file into settings (config/settings.py): YAML with places, a schema derived from
the settings' fields, every problem collected with its `file:line:col` into one ConfigError."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import gc
import os
import re
import reprlib
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from redis_orchestrator.catalog.files import ABSENT, FileReads, FileRefused, read_file, stamp_of
from redis_orchestrator.catalog.model import CatalogSpec, Kind, ScriptSpec, load_catalog
from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.config.durations import parse_duration
from redis_orchestrator.config.settings import (
    Config,
    DesiredState,
    MetricsSettings,
    Mode,
    RedisOverrides,
    RedisSettings,
    Secret,
    SentinelSettings,
    StartSettings,
    TLSSettings,
)
from redis_orchestrator.config.yaml_source import YamlSource
from redis_orchestrator.errors import ConfigError, Problem, Where, render_where

T = TypeVar("T")
E = TypeVar("E", bound=enum.StrEnum)


# ---------------------------------------------------------------------- loading


# The largest config file read: a catalog of 10,000 entries with keys and descriptions is about
# 1.2 MB. What the YAML may expand to is bounded on its own (yaml_source.MAX_VALUES).
CONFIG_LIMIT = 16 * 1024 * 1024
# A password file holds one password.
PASSWORD_LIMIT = 64 * 1024


def load_config(
    path: str | os.PathLike[str],
    seeds: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    overrides: RedisOverrides | None = None,
    files: FileReads | None = None,
) -> Config:
    """Read and validate `path`, the catalog's files included. `seeds`, when given, replace
    redis.seeds (the --seed option); `overrides` may replace the mode and service name too. `files`
    records what was read, even when the config is refused (a reload's file watch needs both)."""
    config_path = Path(path)
    files = files if files is not None else FileReads()
    try:
        raw, _ = files.read(config_path, CONFIG_LIMIT, "config file")
        text = raw.decode("utf-8")
    except FileRefused as exc:
        hint = " (pass --config PATH)" if exc.stamp.kind == 0 else ""
        raise ConfigError(str(config_path), [f"config file {config_path} {exc.reason}{hint}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(config_path), [f"{config_path} is not UTF-8 (byte {exc.start})"]) from None
    return parse_config(text, config_path, seeds=seeds, environ=environ, overrides=overrides, files=files)


@contextlib.contextmanager
def _without_gc_passes() -> Iterator[None]:
    """Parsing a 10,000-entry catalog creates about half a million objects, all alive until the end:
    the cyclic collector would walk them again and again for nothing (it doubled the parse time).
    Reference counting still frees what dies; the collector runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_config(
    text: str,
    path: Path,
    seeds: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    overrides: RedisOverrides | None = None,
    files: FileReads | None = None,
) -> Config:
    with _without_gc_passes():
        return _parse_config(text, path, seeds, environ, overrides, files if files is not None else FileReads())


def _parse_config(
    text: str,
    path: Path,
    seeds: Sequence[str] | None,
    environ: Mapping[str, str] | None,
    overrides: RedisOverrides | None,
    files: FileReads,
) -> Config:
    source = YamlSource.parse(text, path)
    data = source.data if source.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [f"{path}: the top level must be a mapping (redis:, daemon:, catalog:, ...)"])
    reader = _Reader(environ if environ is not None else os.environ)
    reader.unknown(data, (), {name for name, _ in (*_schema(StartSettings), *_schema(DesiredState))} | {"catalog"})
    start = reader.section(StartSettings, data, ())
    wanted = (overrides or RedisOverrides()).with_seeds(seeds)
    start = dataclasses.replace(start, redis=reader.check_redis(start.redis, wanted))
    reader.check_metrics(start.metrics)
    live: dict[str, object] = {
        name: reader.section(kind, data.get(name), (name,)) for name, kind in _sections(DesiredState)
    }
    spec = reader.catalog(data.get("catalog"), path.parent)
    catalog, file_problems = load_catalog(spec, files)
    problems = reader.problems + file_problems
    if problems:
        raise ConfigError(str(path), [source.describe(p) for p in problems])
    desired = DesiredState(catalog, **live)  # type: ignore[arg-type]
    return Config(path=path, start=start, desired=desired, files=files.seen)


# ---------------------------------------------------------------------- converters by type


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlevel = 3


def shown(value: Any) -> str:
    """A value in an error message, its repr cut short as it is written (a list of a million strings,
    written whole, made a 1.6 GB message)."""
    return _SHORT.repr(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{shown(value)} is not true or false")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"{shown(value)} is not a string")


def _optional_str(value: Any) -> str | None:
    return None if value is None else _string(value)


def _scalar_str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{shown(value)} is not a string or number")
    return str(value)


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: any of them in a name
# printed on one line of `check` or `status` output could forge another line (`1\nall in sync`).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(value: Any) -> str:
    """A name, a version or a file name: a string or number printed on one line."""
    text = _scalar_str(value)
    control = _CONTROL.search(text)
    if control:
        raise ValueError(
            f"{shown(text)} contains a control character ({control.group()!r} at {control.start()}): "
            "names, versions and files are printed one per line"
        )
    return text


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{shown(value)} is not a list of strings")
    return tuple(value)


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{shown(value)} must be more than zero")
    return seconds


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{shown(value)} is not a whole number >= 0")
    return value


def _choice(enum_type: type[E]) -> Callable[[Any], E]:
    def convert(value: Any) -> E:
        try:
            return enum_type(value)
        except ValueError:
            raise ValueError(f"{shown(value)} is not one of: {', '.join(m.value for m in enum_type)}") from None

    return convert


# Every plain float among the settings is a duration ("500ms", "2s", 3).
_BY_TYPE: dict[object, Callable[[Any], Any]] = {
    bool: _bool,
    float: _positive_duration,
    int: _non_negative_int,
    str: _string,
    str | None: _optional_str,
    tuple[str, ...]: _str_list,
}


Converter = Callable[[Any], Any]


@functools.cache
def _schema(cls: type) -> tuple[tuple[str, Converter | type], ...]:
    """(YAML key, converter or nested section type) for each field written in the YAML."""
    hints = typing.get_type_hints(cls)
    schema: list[tuple[str, Converter | type]] = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("yaml", True) or f.name == "catalog":
            continue
        kind = hints[f.name]
        if f.metadata.get("convert"):
            schema.append((f.name, f.metadata["convert"]))
        elif isinstance(kind, type) and dataclasses.is_dataclass(kind):
            schema.append((f.name, kind))
        elif isinstance(kind, type) and issubclass(kind, enum.StrEnum):
            schema.append((f.name, _choice(kind)))
        else:
            schema.append((f.name, _BY_TYPE[kind]))  # KeyError: a new type needs its converter here
    return tuple(schema)


def _sections(cls: type) -> list[tuple[str, type]]:
    return [(name, kind) for name, kind in _schema(cls) if isinstance(kind, type)]


# Keys that are refused with a reason rather than as unknown.
_PASSWORD_REFUSED = (
    "a password is never read from the config file (it would end up in backups and "
    "diffs): use password_env (an environment variable's name) or password_file"
)
_REFUSED: dict[Where, dict[str, str]] = {
    ("redis",): {"password": _PASSWORD_REFUSED},
    ("redis", "sentinel"): {"password": _PASSWORD_REFUSED},
}


class _Reader:
    """Walks the parsed YAML, records problems with their place, keeps defaults where broken."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.problems: list[Problem] = []
        self.environ = environ

    def problem(self, where: Where, message: str, at_key: bool = False) -> None:
        self.problems.append(Problem(where, message, at_key))

    def unknown(self, data: Mapping[str, Any], where: Where, allowed: set[str]) -> None:
        refused = _REFUSED.get(where, {})
        for key in data:
            name = key if isinstance(key, str) else shown(key)  # `? ` (null), `1:`, `true:` are keys too
            if key in refused:
                self.problem((*where, name), refused[key], at_key=True)
            elif key not in allowed:
                self.problem((*where, name), f"unknown key (expected one of: {', '.join(sorted(allowed))})", True)

    def mapping(self, data: object, where: Where) -> dict[str, Any] | None:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.problem(where, f"must be a mapping, not {type(data).__name__}")
            return None
        return data

    def section(self, cls: type[T], data: object, where: Where) -> T:
        """`cls` from its YAML mapping: defaults for what is absent or broken (broken is reported)."""
        values = self.mapping(data, where)
        if values is None:
            return cls()
        schema = _schema(typing.cast(type, cls))
        if where:  # the top level's keys are checked once, against both parts (parse_config)
            self.unknown(values, where, {name for name, _ in schema})
        kwargs: dict[str, Any] = {}
        for name, convert in schema:
            raw = values.get(name)
            if raw is None:
                continue
            if isinstance(convert, type):
                kwargs[name] = self.section(convert, raw, (*where, name))
                continue
            try:
                kwargs[name] = convert(raw)
            except (ValueError, TypeError) as exc:
                self.problem((*where, name), str(exc))
        return cls(**kwargs)

    # ------------------------------------------------------------------ checks beyond types

    def check_redis(self, redis: RedisSettings, overrides: RedisOverrides) -> RedisSettings:
        seeds_where: Where = ("redis", "seeds")
        if overrides.seeds:
            redis = dataclasses.replace(redis, seeds=overrides.seeds)
            seeds_where = ("--seed",)
        if overrides.mode is not None:  # an embedded deployment: the file's mode-specific keys do not apply
            sentinel = redis.sentinel if overrides.mode == Mode.SENTINEL else SentinelSettings()
            redis = dataclasses.replace(
                redis, mode=overrides.mode, service_name=overrides.service_name, sentinel=sentinel
            )
        if not redis.seeds:
            self.problem(seeds_where, "needs at least one HOST:PORT")
        for index, seed in enumerate(redis.seeds):
            try:
                parse_address(seed)
            except ValueError as exc:
                self.problem((*seeds_where, index), str(exc))
        self.check_mode(redis)
        self.check_tls(redis.tls, ("redis", "tls"))
        self.check_tls(redis.sentinel.tls, ("redis", "sentinel", "tls"))
        sentinel = dataclasses.replace(redis.sentinel, password=self.password(redis.sentinel, ("redis", "sentinel")))
        return dataclasses.replace(redis, password=self.password(redis, ("redis",)), sentinel=sentinel)

    def check_mode(self, redis: RedisSettings) -> None:
        """service_name and the sentinel section belong to sentinel mode: required there, refused
        elsewhere (a leftover would look like it does something)."""
        if redis.mode == Mode.SENTINEL:
            if not redis.service_name:
                self.problem(
                    ("redis", "service_name"),
                    "missing: sentinel mode needs the name the Sentinels monitor the primary under "
                    "(`sentinel monitor <name> ...` in sentinel.conf; SENTINEL MASTERS lists them)",
                )
            return
        if redis.service_name:
            self.problem(("redis", "service_name"), f"only read in sentinel mode (redis.mode is {redis.mode})")
        if redis.sentinel != SentinelSettings():
            self.problem(("redis", "sentinel"), f"only read in sentinel mode (redis.mode is {redis.mode})")

    def check_tls(self, tls: TLSSettings, where: Where) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            file = getattr(tls, name)
            if not (tls.enabled and file):
                continue
            stamp = stamp_of(file)  # one stat for both questions
            if stamp == ABSENT:
                self.problem((*where, name), f"{file} does not exist")
            elif not stamp.regular:
                # ssl reads it on every connect, on the event loop: a FIFO there would block it.
                self.problem((*where, name), f"{file} is not a regular file")
        if bool(tls.cert_file) != bool(tls.key_file):
            self.problem(where, "cert_file and key_file go together (client certificate and its key)")

    def password(self, auth: RedisSettings | SentinelSettings, where: Where) -> Secret | None:
        """The password from its environment variable or file. Never in a problem: not even a part
        of it (a byte that is not UTF-8 is named by its position only)."""
        if auth.password_env and auth.password_file:
            self.problem(where, "password_env and password_file: give one, not both")
            return None
        if auth.password_env:
            if auth.password_env not in self.environ:
                self.problem((*where, "password_env"), f"environment variable {auth.password_env} is not set")
                return None
            value = self.environ[auth.password_env]
            try:
                value.encode("utf-8")  # os.environ keeps undecodable bytes as lone surrogates
            except UnicodeEncodeError as exc:
                self.problem(
                    (*where, "password_env"),
                    f"environment variable {auth.password_env} is not UTF-8 (byte {exc.start}); set it as UTF-8",
                )
                return None
            return Secret(value)
        if auth.password_file:
            candidate = Path(auth.password_file)
            credentials = self.environ.get("CREDENTIALS_DIRECTORY")
            # os.path.exists, not Path.exists: that raises on some errors (a credentials directory the
            # daemon's user may not search, a name too long); not there, and the read then says why.
            if not candidate.is_absolute() and credentials and os.path.exists(Path(credentials) / candidate):
                candidate = Path(credentials) / candidate  # systemd LoadCredential=
            place = (*where, "password_file")
            try:
                _, raw = read_file(candidate, PASSWORD_LIMIT, "password file")
                return Secret(raw.decode("utf-8").strip("\r\n"))
            except FileRefused as exc:
                self.problem(place, f"{auth.password_file} {exc.reason}")
            except UnicodeDecodeError as exc:
                self.problem(place, f"{auth.password_file} is not UTF-8 (byte {exc.start}); save the password as UTF-8")
        return None

    def check_metrics(self, metrics: MetricsSettings) -> None:
        try:
            parse_address(metrics.listen, allow_any_port=True)
        except ValueError as exc:
            self.problem(("metrics", "listen"), str(exc))

    # ------------------------------------------------------------------ the catalog spec

    def catalog(self, raw: object, base_dir: Path) -> CatalogSpec:
        where: Where = ("catalog",)
        if raw is None:
            self.problem(where, "missing: the config needs a catalog with version and scripts")
            return CatalogSpec(version="")
        data = self.mapping(raw, where)
        if data is None:
            return CatalogSpec(version="")
        self.unknown(data, where, {"version", "scripts"})
        version = self.value(data, where, "version", _one_line, "")
        if data.get("version") in (None, ""):
            self.problem((*where, "version"), "missing: give the catalog a version (e.g. a date)")
        items = data.get("scripts") or []
        if not isinstance(items, list):
            self.problem((*where, "scripts"), "must be a list of scripts")
            items = []
        entries: list[ScriptSpec] = []
        keep: dict[str, int] = {}
        current: dict[str, str] = {}
        seen: dict[tuple[str, str], Where] = {}
        kinds: dict[str, Kind] = {}
        for index, item in enumerate(items):
            for entry in self.catalog_entry(item, (*where, "scripts", index), base_dir, keep, current):
                ident = (entry.name, entry.version)
                if ident in seen:
                    also = render_where(seen[ident])
                    self.problem(entry.where, f"duplicate script {entry.name} version {entry.version} (also at {also})")
                    continue
                seen[ident] = entry.where
                if kinds.setdefault(entry.name, entry.kind) != entry.kind:
                    self.problem((*where, "scripts"), f"{entry.name}: one name cannot be both a script and a function")
                entries.append(entry)
        for name, wanted in list(current.items()):
            if (name, wanted) not in seen:
                self.problem((*where, "scripts"), f"{name}: current version {wanted} is not among its versions")
                del current[name]
        return CatalogSpec(version=version, entries=tuple(entries), keep=keep, current=current)

    def value(self, data: Mapping[str, Any], where: Where, key: str, convert: Callable[[Any], T], default: T) -> T:
        if key not in data or data[key] is None:
            return default
        try:
            return convert(data[key])
        except (ValueError, TypeError) as exc:
            self.problem((*where, key), str(exc))
            return default

    def catalog_entry(
        self, item: object, where: Where, base_dir: Path, keep: dict[str, int], current: dict[str, str]
    ) -> list[ScriptSpec]:
        """One entry: flat (`version`, `file`; `current: true`) or nested (`versions: [...]`, `current`,
        `keep`); a version item may override `description`, `keys` and `argv`."""
        if not isinstance(item, dict):
            self.problem(where, "must be a mapping with name, version and file")
            return []
        nested = "versions" in item
        self.unknown(item, where, (_NESTED_KEYS if nested else _FLAT_KEYS) | _COMMON_KEYS)
        name = self.value(item, where, "name", _one_line, "")
        if item.get("name") in (None, ""):
            self.problem((*where, "name"), "missing")
        common = _EntryCommon(
            name=name,
            kind=self.value(item, where, "kind", _choice(Kind), Kind.SCRIPT),
            description=self.value(item, where, "description", _scalar_str, ""),
            keys=self.value(item, where, "keys", _str_list, ()),
            argv=self.value(item, where, "argv", _str_list, ()),
        )
        if not nested:
            if item.get("current") is not None and self.value(item, where, "current", _bool, False):
                current[name] = self.value(item, where, "version", _one_line, "")
            spec = self.script_version(item, where, base_dir, common)
            return [spec] if spec else []
        versions = item.get("versions")
        if not isinstance(versions, list) or not versions:
            self.problem((*where, "versions"), "must be a non-empty list of {version, file}")
            return []
        if item.get("current") is not None:
            current[name] = self.value(item, where, "current", _one_line, "")
        if item.get("keep") is not None:
            keep[name] = self.value(item, where, "keep", _non_negative_int, 0)
        result = []
        for vindex, vitem in enumerate(versions):
            vwhere = (*where, "versions", vindex)
            if not isinstance(vitem, dict):
                self.problem(vwhere, "must be a mapping with version and file")
                continue
            self.unknown(vitem, vwhere, _VERSION_KEYS)
            overridden = _EntryCommon(
                name=name,
                kind=common.kind,
                description=self.value(vitem, vwhere, "description", _scalar_str, common.description),
                keys=self.value(vitem, vwhere, "keys", _str_list, common.keys),
                argv=self.value(vitem, vwhere, "argv", _str_list, common.argv),
            )
            spec = self.script_version(vitem, vwhere, base_dir, overridden)
            if spec:
                result.append(spec)
        return result

    def script_version(
        self, item: Mapping[str, Any], where: Where, base_dir: Path, common: _EntryCommon
    ) -> ScriptSpec | None:
        version = self.value(item, where, "version", _one_line, "")
        if item.get("version") in (None, ""):
            self.problem((*where, "version"), "missing")
        file = self.value(item, where, "file", _one_line, "")
        if item.get("file") in (None, ""):
            self.problem((*where, "file"), "missing")
        if not (common.name and version and file):
            return None
        return ScriptSpec(
            name=common.name,
            version=version,
            kind=common.kind,
            file=file,
            path=Path(file) if Path(file).is_absolute() else base_dir / file,
            where=where,
            description=common.description,
            keys=common.keys,
            argv=common.argv,
        )


@dataclass(frozen=True)
class _EntryCommon:
    """What an entry says for all its versions (a version item may override all but name and kind)."""

    name: str
    kind: Kind
    description: str
    keys: tuple[str, ...]
    argv: tuple[str, ...]


_COMMON_KEYS = {f.name for f in dataclasses.fields(_EntryCommon)}
_VERSION_KEYS = {"version", "file", "description", "keys", "argv"}
_FLAT_KEYS = {"version", "file", "current"}
_NESTED_KEYS = {"versions", "current", "keep"}
