"""The config file, parsed once at the edge into frozen values, in two parts:

- `StartSettings` (redis, metrics, leader, manifest): read once when the daemon starts. Connections,
  the metrics listener and the lease are built from them; a reload that finds them changed says
  which keys need a restart and applies nothing of them.
- `DesiredState` (the catalog, and daemon, slow_scripts, analysis, functions): what a reload
  applies, whole, to every node at once.

Each setting is written once, as a dataclass field with its default; the allowed keys and the
converter (from the field's type, or its `convert` metadata) follow from it. Validation collects
*every* problem with its place (`config.yaml:14:9: catalog.scripts[3].file: lua/x.lua does not
exist`) and raises one ConfigError; nothing downstream ever sees a dict of config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import gc
import os
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from redis_orchestrator.analysis.findings import Severity
from redis_orchestrator.catalog.model import Catalog, CatalogSpec, Kind, ScriptSpec, load_catalog
from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.config.durations import parse_duration
from redis_orchestrator.config.yaml_source import YamlSource
from redis_orchestrator.errors import ConfigError, Problem, Where, render_where

T = TypeVar("T")
E = TypeVar("E", bound=enum.StrEnum)


class Secret:
    """A password that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# Field metadata: `convert` replaces the converter of the field's type; `yaml: False` marks a field
# computed from others, never written in the YAML (the password, from password_env or password_file).
_NOT_IN_YAML = {"yaml": False}


# ---------------------------------------------------------------------- start-time settings


class Mode(enum.StrEnum):
    CLUSTER = "cluster"  # a Redis Cluster: every node from CLUSTER SHARDS
    STANDALONE = "standalone"  # one node, the seed
    SENTINEL = "sentinel"  # a primary and its replicas, named by service_name, found through the seeds: Sentinels
    REPLICATION = "replication"  # a primary and its replicas without Sentinel: any of them is a seed (ROLE)


@dataclass(frozen=True)
class TLSSettings:
    enabled: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True  # CA verification on by default; off only when asked for explicitly


@dataclass(frozen=True)
class SentinelSettings:
    """How to reach the Sentinels themselves (sentinel mode). They are processes of their own, with
    their own users and ports: nothing is taken over from the data nodes' username, password or TLS."""

    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    tls: TLSSettings = field(default_factory=TLSSettings)
    password: Secret | None = field(default=None, metadata=_NOT_IN_YAML)


@dataclass(frozen=True)
class RedisSettings:
    mode: Mode = Mode.CLUSTER
    seeds: tuple[str, ...] = ("127.0.0.1:7000",)
    service_name: str | None = None  # sentinel mode: the primary's name in the Sentinels (`sentinel monitor <name>`)
    username: str | None = None
    password_env: str | None = None  # the NAME of an environment variable holding the password
    password_file: str | None = None  # relative names are looked up in $CREDENTIALS_DIRECTORY first
    tls: TLSSettings = field(default_factory=TLSSettings)
    timeout: float = 2.0  # per command and per connect; a frozen node costs at most this much
    sentinel: SentinelSettings = field(default_factory=SentinelSettings)
    password: Secret | None = field(default=None, metadata=_NOT_IN_YAML)


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = True
    listen: str = "127.0.0.1:9840"


@dataclass(frozen=True)
class LeaderSettings:
    # On by default: with several instances exactly one leads (kills runaway scripts, writes the
    # manifest key). `enabled: false` is a promise that this is the only instance (logged at start).
    enabled: bool = True
    key: str = "{redis-orchestrator}:leader"
    lease: float = 10.0


@dataclass(frozen=True)
class ManifestSettings:
    key: str | None = None  # if set, the leader keeps the JSON manifest at this key
    # Each script's source in it, so a client can SCRIPT LOAD after a NOSCRIPT on its own. Off for
    # catalogs of thousands of scripts (the key then weighs megabytes); clients raise ScriptMissing.
    sources: bool = True


@dataclass(frozen=True)
class StartSettings:
    """Fixed for the life of the process: a reload reports changes here and applies none of them."""

    redis: RedisSettings = field(default_factory=RedisSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    manifest: ManifestSettings = field(default_factory=ManifestSettings)


# ---------------------------------------------------------------------- the desired state (live)


@dataclass(frozen=True)
class DaemonSettings:
    reconcile_interval: float = 1.0
    topology_interval: float = 5.0
    down_poll_interval: float = 0.1  # how often a down node is probed, so a restart is seen at once
    watch_config: bool = True
    config_poll_interval: float = 0.5


def _ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"{value!r} is not a ratio between 0 and 1")
    return float(value)


@dataclass(frozen=True)
class KillPolicy:
    enabled: bool = False
    after: float = 5.0


@dataclass(frozen=True)
class SlowScriptSettings:
    enabled: bool = True
    poll_interval: float = 1.0
    warn_ratio: float = field(default=0.5, metadata={"convert": _ratio})
    kill: KillPolicy = field(default_factory=KillPolicy)
    threshold_refresh_interval: float = 60.0


def _block_on(value: Any) -> Severity | None:
    if value == "none":
        return None
    if value in ("warning", "error"):
        return Severity(value)
    raise ValueError(f"{value!r} is not one of: none, warning, error")


@dataclass(frozen=True)
class AnalysisSettings:
    enabled: bool = True
    # refuse catalogs with findings this severe (none: log them, refuse nothing, and the first
    # catalog is loaded on the nodes without waiting for its analysis)
    block_on: Severity | None = field(default=None, metadata={"convert": _block_on})
    # Analyses kept across restarts, by script SHA (a small JSON file in a state directory, e.g.
    # /var/lib/redis-orchestrator/analysis.json with systemd's StateDirectory=): with block_on set,
    # a restart then does not analyse a big catalog again before loading it.
    cache_file: str | None = None


@dataclass(frozen=True)
class FunctionSettings:
    delete_unlisted: bool = False  # never delete a library we did not declare unless told to


@dataclass(frozen=True)
class DesiredState:
    """What the daemon enforces: the catalog and the settings its loops read on every pass. A reload
    replaces it whole."""

    catalog: Catalog
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    slow_scripts: SlowScriptSettings = field(default_factory=SlowScriptSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    functions: FunctionSettings = field(default_factory=FunctionSettings)


@dataclass(frozen=True)
class Config:
    path: Path
    start: StartSettings
    desired: DesiredState

    @property
    def catalog(self) -> Catalog:
        return self.desired.catalog


@dataclass(frozen=True)
class RedisOverrides:
    """What the command line puts in place of the file's redis settings: `--seed`, and the embedded
    deployments (`run --local-cluster`, `run --local-sentinel`). A reload reads the file with the
    same overrides, so they never show up as start-time keys that changed."""

    seeds: tuple[str, ...] = ()
    mode: Mode | None = None
    service_name: str | None = None

    def with_seeds(self, seeds: Sequence[str] | None) -> RedisOverrides:
        return dataclasses.replace(self, seeds=tuple(seeds)) if seeds else self


def restart_needed(running: StartSettings, candidate: StartSettings) -> list[str]:
    """The start-time keys whose value differs (`redis.timeout`, `metrics.listen`): never their values,
    a password among them."""
    return _changed_keys(running, candidate, ())


def _changed_keys(old: object, new: object, where: Where) -> list[str]:
    if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new) and not isinstance(old, type):
        changed: list[str] = []
        for f in dataclasses.fields(old):
            if f.metadata.get("yaml", True):
                changed += _changed_keys(getattr(old, f.name), getattr(new, f.name), (*where, f.name))
            elif getattr(old, f.name) != getattr(new, f.name):
                changed.append(render_where((*where, f.name)))
        return changed
    return [] if old == new else [render_where(where)]


# ---------------------------------------------------------------------- loading


def load_config(
    path: str | os.PathLike[str],
    seeds: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    overrides: RedisOverrides | None = None,
) -> Config:
    """Read and validate `path`, the catalog's files included. `seeds`, when given, replace
    redis.seeds (the --seed option); `overrides` may replace the mode and service name too."""
    config_path = Path(path)
    if not config_path.exists():
        raise ConfigError(str(config_path), [f"config file {config_path} does not exist (pass --config PATH)"])
    try:
        text = config_path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(config_path), [f"cannot read {config_path}: {exc}"]) from exc
    return parse_config(text, config_path, seeds=seeds, environ=environ, overrides=overrides)


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
) -> Config:
    with _without_gc_passes():
        return _parse_config(text, path, seeds, environ, overrides)


def _parse_config(
    text: str,
    path: Path,
    seeds: Sequence[str] | None,
    environ: Mapping[str, str] | None,
    overrides: RedisOverrides | None,
) -> Config:
    source = YamlSource.parse(text, path)
    data = source.data if source.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the top level must be a mapping (redis:, daemon:, catalog:, ...)"])
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
    catalog, file_problems = load_catalog(spec)
    problems = reader.problems + file_problems
    if problems:
        raise ConfigError(str(path), [source.describe(p) for p in problems])
    return Config(path=path, start=start, desired=DesiredState(catalog, **live))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- converters by type


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{value!r} is not true or false")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a string")


def _optional_str(value: Any) -> str | None:
    return None if value is None else _string(value)


def _scalar_str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a string or number")
    return str(value)


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{value!r} is not a list of strings")
    return tuple(value)


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} must be more than zero")
    return seconds


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number >= 0")
    return value


def _choice(enum_type: type[E]) -> Callable[[Any], E]:
    def convert(value: Any) -> E:
        try:
            return enum_type(value)
        except ValueError:
            raise ValueError(f"{value!r} is not one of: {', '.join(m.value for m in enum_type)}") from None

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
            if key in refused:
                self.problem((*where, key), refused[key], at_key=True)
            elif key not in allowed:
                self.problem((*where, key), f"unknown key (expected one of: {', '.join(sorted(allowed))})", True)

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
            if tls.enabled and file and not Path(file).exists():
                self.problem((*where, name), f"{file} does not exist")
        if bool(tls.cert_file) != bool(tls.key_file):
            self.problem(where, "cert_file and key_file go together (client certificate and its key)")

    def password(self, auth: RedisSettings | SentinelSettings, where: Where) -> Secret | None:
        if auth.password_env and auth.password_file:
            self.problem(where, "password_env and password_file: give one, not both")
            return None
        if auth.password_env:
            if auth.password_env not in self.environ:
                self.problem((*where, "password_env"), f"environment variable {auth.password_env} is not set")
                return None
            return Secret(self.environ[auth.password_env])
        if auth.password_file:
            candidate = Path(auth.password_file)
            credentials = self.environ.get("CREDENTIALS_DIRECTORY")
            if not candidate.is_absolute() and credentials and (Path(credentials) / candidate).exists():
                candidate = Path(credentials) / candidate  # systemd LoadCredential=
            try:
                return Secret(candidate.read_text(encoding="utf-8").strip("\r\n"))
            except OSError as exc:
                self.problem((*where, "password_file"), f"cannot read {auth.password_file}: {exc.strerror}")
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
        version = self.value(data, where, "version", _scalar_str, "")
        if not version:
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
        name = self.value(item, where, "name", _scalar_str, "")
        if not name:
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
                current[name] = self.value(item, where, "version", _scalar_str, "")
            spec = self.script_version(item, where, base_dir, common)
            return [spec] if spec else []
        versions = item.get("versions")
        if not isinstance(versions, list) or not versions:
            self.problem((*where, "versions"), "must be a non-empty list of {version, file}")
            return []
        if item.get("current") is not None:
            current[name] = self.value(item, where, "current", _scalar_str, "")
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
        version = self.value(item, where, "version", _scalar_str, "")
        if not version:
            self.problem((*where, "version"), "missing")
        file = self.value(item, where, "file", _scalar_str, "")
        if not file:
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
