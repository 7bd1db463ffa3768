"""The config file, parsed once at the edge into frozen values.

Validation collects *every* problem with its place (`catalog.scripts[3].file: lua/x.lua does not
exist`, `config.yaml:12:5: ...` for YAML syntax) and raises one ConfigError; nothing downstream
ever sees a dict of config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from redis_orchestrator.analysis.shebang import parse_shebang
from redis_orchestrator.catalog import (
    KIND_FUNCTION,
    KIND_SCRIPT,
    Catalog,
    Script,
    mark_live,
    registered_functions,
    sha1_hex,
)
from redis_orchestrator.durations import parse_duration
from redis_orchestrator.errors import ConfigError

T = TypeVar("T")


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


@dataclass(frozen=True)
class TLSSettings:
    enabled: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True  # CA verification on by default; off only when asked for explicitly


@dataclass(frozen=True)
class RedisSettings:
    mode: str = "cluster"
    seeds: tuple[str, ...] = ("127.0.0.1:7000",)
    username: str | None = None
    password: Secret | None = None
    tls: TLSSettings = field(default_factory=TLSSettings)
    timeout: float = 2.0  # per command and per connect; a frozen node costs at most this much


@dataclass(frozen=True)
class DaemonSettings:
    reconcile_interval: float = 1.0
    topology_interval: float = 5.0
    down_poll_interval: float = 0.1  # how often a down node is probed, so a restart is seen at once
    watch_config: bool = True
    config_poll_interval: float = 0.5


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = True
    listen: str = "127.0.0.1:9840"


@dataclass(frozen=True)
class KillPolicy:
    enabled: bool = False
    after: float = 5.0


@dataclass(frozen=True)
class SlowScriptSettings:
    enabled: bool = True
    poll_interval: float = 1.0
    warn_ratio: float = 0.5
    kill: KillPolicy = field(default_factory=KillPolicy)
    threshold_refresh_interval: float = 60.0


@dataclass(frozen=True)
class AnalysisSettings:
    enabled: bool = True
    block_on: str = "none"  # none | warning | error


@dataclass(frozen=True)
class FunctionSettings:
    delete_unlisted: bool = False  # never delete a library we did not declare unless told to


@dataclass(frozen=True)
class ManifestSettings:
    key: str | None = None  # if set, the leader keeps the JSON manifest at this key


@dataclass(frozen=True)
class LeaderSettings:
    enabled: bool = False
    key: str = "{redis-orchestrator}:leader"
    lease: float = 10.0


@dataclass(frozen=True)
class Config:
    path: Path
    redis: RedisSettings
    daemon: DaemonSettings
    metrics: MetricsSettings
    slow_scripts: SlowScriptSettings
    analysis: AnalysisSettings
    functions: FunctionSettings
    manifest: ManifestSettings
    leader: LeaderSettings
    catalog: Catalog


_TOP_KEYS = {"redis", "daemon", "metrics", "slow_scripts", "analysis", "functions", "manifest", "leader", "catalog"}


def load_config(path: str | os.PathLike[str], seeds: Sequence[str] | None = None) -> Config:
    """Read and validate `path`. `seeds`, when given, replace redis.seeds (the --seed option)."""
    config_path = Path(path)
    if not config_path.exists():
        raise ConfigError(str(config_path), [f"config file {config_path} does not exist (pass --config PATH)"])
    try:
        text = config_path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(config_path), [f"cannot read {config_path}: {exc}"]) from exc
    return parse_config(text, config_path, seeds=seeds)


def parse_config(
    text: str,
    path: Path,
    seeds: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    try:
        # libyaml's safe loader when present: ~10x faster on a 1,000-script catalog, same safety.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(str(path), [f"{where}: YAML syntax error: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"{path}: YAML error: {exc}"]) from exc
    if data is None:
        data = {}
    reader = _Reader(environ if environ is not None else os.environ)
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the top level must be a mapping (redis:, daemon:, catalog:, ...)"])
    reader.unknown(data, "", _TOP_KEYS)
    redis_settings = reader.redis(data.get("redis"), seeds)
    config = Config(
        path=path,
        redis=redis_settings,
        daemon=reader.daemon(data.get("daemon")),
        metrics=reader.metrics(data.get("metrics")),
        slow_scripts=reader.slow_scripts(data.get("slow_scripts")),
        analysis=reader.analysis(data.get("analysis")),
        functions=reader.functions(data.get("functions")),
        manifest=reader.manifest(data.get("manifest")),
        leader=reader.leader(data.get("leader")),
        catalog=reader.catalog(data.get("catalog"), path.parent),
    )
    if reader.problems:
        raise ConfigError(str(path), reader.problems)
    return config


def parse_address(text: str, allow_any_port: bool = False) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port). ValueError with the expected form otherwise.
    `allow_any_port`: port 0 too, which a listener binds to a free port (tests)."""
    host, sep, port = text.rpartition(":")
    lowest = 0 if allow_any_port else 1
    if not sep or not host or not port.isdigit() or not lowest <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class _Reader:
    """Walks the parsed YAML, records problems with their place, returns defaults where broken."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.problems: list[str] = []
        self.environ = environ

    # ---------------------------------------------------------------- helpers

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}" if where else message)

    def unknown(self, data: Mapping[str, Any], where: str, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                place = f"{where}.{key}" if where else str(key)
                self.problem(place, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def section(self, data: object, where: str, allowed: set[str]) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.problem(where, f"must be a mapping, not {type(data).__name__}")
            return {}
        self.unknown(data, where, allowed)
        return data

    def value(
        self,
        data: Mapping[str, Any],
        where: str,
        key: str,
        convert: Callable[[Any], T],
        default: T,
    ) -> T:
        if key not in data or data[key] is None:
            return default
        try:
            return convert(data[key])
        except (ValueError, TypeError) as exc:
            self.problem(f"{where}.{key}", str(exc))
            return default

    # ---------------------------------------------------------------- sections

    def redis(self, raw: object, seeds_override: Sequence[str] | None) -> RedisSettings:
        where = "redis"
        data = self.section(
            raw,
            where,
            {"mode", "seeds", "username", "password_env", "password_file", "password", "tls", "timeout"},
        )
        mode = self.value(data, where, "mode", _choice("cluster", "standalone"), "cluster")
        seeds: tuple[str, ...]
        if seeds_override:
            seeds = tuple(seeds_override)
            seeds_where = "--seed"
        else:
            seeds = self.value(data, where, "seeds", _str_list, ("127.0.0.1:7000",))
            seeds_where = "redis.seeds"
        if not seeds:
            self.problem(seeds_where, "needs at least one HOST:PORT")
        for index, seed in enumerate(seeds):
            try:
                parse_address(seed)
            except ValueError as exc:
                self.problem(f"{seeds_where}[{index}]", str(exc))
        if "password" in data:
            self.problem(
                "redis.password",
                "a password is never read from the config file (it would end up in backups and "
                "diffs): use password_env (an environment variable's name) or password_file",
            )
        password = self.password(data)
        tls_data = self.section(data.get("tls"), "redis.tls", {"enabled", "ca_file", "cert_file", "key_file", "verify"})
        tls = TLSSettings(
            enabled=self.value(tls_data, "redis.tls", "enabled", _bool, False),
            ca_file=self.value(tls_data, "redis.tls", "ca_file", _optional_str, None),
            cert_file=self.value(tls_data, "redis.tls", "cert_file", _optional_str, None),
            key_file=self.value(tls_data, "redis.tls", "key_file", _optional_str, None),
            verify=self.value(tls_data, "redis.tls", "verify", _bool, True),
        )
        for name in ("ca_file", "cert_file", "key_file"):
            file = getattr(tls, name)
            if tls.enabled and file and not Path(file).exists():
                self.problem(f"redis.tls.{name}", f"{file} does not exist")
        if bool(tls.cert_file) != bool(tls.key_file):
            self.problem("redis.tls", "cert_file and key_file go together (client certificate and its key)")
        return RedisSettings(
            mode=mode,
            seeds=seeds,
            username=self.value(data, where, "username", _optional_str, None),
            password=password,
            tls=tls,
            timeout=self.value(data, where, "timeout", _positive_duration, 2.0),
        )

    def password(self, data: Mapping[str, Any]) -> Secret | None:
        env_name = self.value(data, "redis", "password_env", _optional_str, None)
        file_name = self.value(data, "redis", "password_file", _optional_str, None)
        if env_name and file_name:
            self.problem("redis", "password_env and password_file: give one, not both")
            return None
        if env_name:
            if env_name not in self.environ:
                self.problem("redis.password_env", f"environment variable {env_name} is not set")
                return None
            return Secret(self.environ[env_name])
        if file_name:
            candidate = Path(file_name)
            credentials = self.environ.get("CREDENTIALS_DIRECTORY")
            if not candidate.is_absolute() and credentials and (Path(credentials) / candidate).exists():
                candidate = Path(credentials) / candidate  # systemd LoadCredential=
            try:
                return Secret(candidate.read_text(encoding="utf-8").strip("\r\n"))
            except OSError as exc:
                self.problem("redis.password_file", f"cannot read {file_name}: {exc.strerror}")
        return None

    def daemon(self, raw: object) -> DaemonSettings:
        where = "daemon"
        data = self.section(
            raw,
            where,
            {"reconcile_interval", "topology_interval", "down_poll_interval", "watch_config", "config_poll_interval"},
        )
        return DaemonSettings(
            reconcile_interval=self.value(data, where, "reconcile_interval", _positive_duration, 1.0),
            topology_interval=self.value(data, where, "topology_interval", _positive_duration, 5.0),
            down_poll_interval=self.value(data, where, "down_poll_interval", _positive_duration, 0.1),
            watch_config=self.value(data, where, "watch_config", _bool, True),
            config_poll_interval=self.value(data, where, "config_poll_interval", _positive_duration, 0.5),
        )

    def metrics(self, raw: object) -> MetricsSettings:
        where = "metrics"
        data = self.section(raw, where, {"enabled", "listen"})
        listen = self.value(data, where, "listen", str, "127.0.0.1:9840")
        try:
            parse_address(listen, allow_any_port=True)
        except ValueError as exc:
            self.problem("metrics.listen", str(exc))
        return MetricsSettings(enabled=self.value(data, where, "enabled", _bool, True), listen=listen)

    def slow_scripts(self, raw: object) -> SlowScriptSettings:
        where = "slow_scripts"
        data = self.section(
            raw, where, {"enabled", "poll_interval", "warn_ratio", "kill", "threshold_refresh_interval"}
        )
        kill_data = self.section(data.get("kill"), "slow_scripts.kill", {"enabled", "after"})
        return SlowScriptSettings(
            enabled=self.value(data, where, "enabled", _bool, True),
            poll_interval=self.value(data, where, "poll_interval", _positive_duration, 1.0),
            warn_ratio=self.value(data, where, "warn_ratio", _ratio, 0.5),
            kill=KillPolicy(
                enabled=self.value(kill_data, "slow_scripts.kill", "enabled", _bool, False),
                after=self.value(kill_data, "slow_scripts.kill", "after", _positive_duration, 5.0),
            ),
            threshold_refresh_interval=self.value(data, where, "threshold_refresh_interval", _positive_duration, 60.0),
        )

    def analysis(self, raw: object) -> AnalysisSettings:
        data = self.section(raw, "analysis", {"enabled", "block_on"})
        return AnalysisSettings(
            enabled=self.value(data, "analysis", "enabled", _bool, True),
            block_on=self.value(data, "analysis", "block_on", _choice("none", "warning", "error"), "none"),
        )

    def functions(self, raw: object) -> FunctionSettings:
        data = self.section(raw, "functions", {"delete_unlisted"})
        return FunctionSettings(delete_unlisted=self.value(data, "functions", "delete_unlisted", _bool, False))

    def manifest(self, raw: object) -> ManifestSettings:
        data = self.section(raw, "manifest", {"key"})
        return ManifestSettings(key=self.value(data, "manifest", "key", _optional_str, None))

    def leader(self, raw: object) -> LeaderSettings:
        data = self.section(raw, "leader", {"enabled", "key", "lease"})
        return LeaderSettings(
            enabled=self.value(data, "leader", "enabled", _bool, False),
            key=self.value(data, "leader", "key", str, "{redis-orchestrator}:leader"),
            lease=self.value(data, "leader", "lease", _positive_duration, 10.0),
        )

    # ---------------------------------------------------------------- catalog

    def catalog(self, raw: object, base_dir: Path) -> Catalog:
        data = self.section(raw, "catalog", {"version", "scripts"})
        if raw is None:
            self.problem("catalog", "missing: the config needs a catalog with version and scripts")
        version = self.value(data, "catalog", "version", _scalar_str, "")
        if raw is not None and not version:
            self.problem("catalog.version", "missing: give the catalog a version (e.g. a date)")
        entries_raw = data.get("scripts") or []
        if not isinstance(entries_raw, list):
            self.problem("catalog.scripts", "must be a list of scripts")
            entries_raw = []
        entries: list[Script] = []
        keep: dict[str, int] = {}
        current: dict[str, str] = {}
        seen: dict[tuple[str, str], str] = {}
        for index, item in enumerate(entries_raw):
            where = f"catalog.scripts[{index}]"
            for script in self.catalog_entry(item, where, base_dir, keep, current):
                ident = (script.name, script.version)
                if ident in seen:
                    self.problem(
                        where, f"duplicate script {script.name} version {script.version} (also at {seen[ident]})"
                    )
                    continue
                seen[ident] = where
                entries.append(script)
        names_kinds: dict[str, str] = {}
        for entry in entries:
            if names_kinds.setdefault(entry.name, entry.kind) != entry.kind:
                self.problem("catalog.scripts", f"{entry.name}: one name cannot be both a script and a function")
        libraries: dict[str, str] = {}
        for entry in entries:
            if entry.library and libraries.setdefault(entry.library, entry.name) != entry.name:
                self.problem(
                    "catalog.scripts",
                    f"function library {entry.library} is declared by both {libraries[entry.library]} and {entry.name}",
                )
        for name, wanted in list(current.items()):
            if not any(e.name == name and e.version == wanted for e in entries):
                self.problem("catalog.scripts", f"{name}: current version {wanted} is not among its versions")
                del current[name]
        return Catalog(version=version, entries=tuple(mark_live(entries, keep, current)))

    def catalog_entry(
        self, item: object, where: str, base_dir: Path, keep: dict[str, int], current: dict[str, str]
    ) -> list[Script]:
        common = {"name", "kind", "description", "keys"}
        if not isinstance(item, dict):
            self.problem(where, "must be a mapping with name, version and file")
            return []
        nested = "versions" in item
        allowed = common | ({"versions", "current", "keep"} if nested else {"version", "file", "current"})
        self.unknown(item, where, allowed)
        name = self.value(item, where, "name", _scalar_str, "")
        if not name:
            self.problem(f"{where}.name", "missing")
        kind = self.value(item, where, "kind", _choice(KIND_SCRIPT, KIND_FUNCTION), KIND_SCRIPT)
        description = self.value(item, where, "description", _scalar_str, "")
        no_keys: tuple[str, ...] = ()
        keys = self.value(item, where, "keys", _str_list, no_keys)
        if not nested:
            if item.get("current") is not None and _bool(item["current"]):
                current[name] = self.value(item, where, "version", _scalar_str, "")
            script = self.script_version(item, where, base_dir, name, kind, description, keys)
            return [script] if script else []
        versions = item.get("versions")
        if not isinstance(versions, list) or not versions:
            self.problem(f"{where}.versions", "must be a non-empty list of {version, file}")
            return []
        if item.get("current") is not None:
            current[name] = self.value(item, where, "current", _scalar_str, "")
        if item.get("keep") is not None:
            keep[name] = self.value(item, where, "keep", _non_negative_int, 0)
        result = []
        for vindex, vitem in enumerate(versions):
            vwhere = f"{where}.versions[{vindex}]"
            if not isinstance(vitem, dict):
                self.problem(vwhere, "must be a mapping with version and file")
                continue
            self.unknown(vitem, vwhere, {"version", "file", "description", "keys"})
            vdesc = self.value(vitem, vwhere, "description", _scalar_str, description)
            vkeys = self.value(vitem, vwhere, "keys", _str_list, keys)
            script = self.script_version(vitem, vwhere, base_dir, name, kind, vdesc, vkeys)
            if script:
                result.append(script)
        return result

    def script_version(
        self,
        item: Mapping[str, Any],
        where: str,
        base_dir: Path,
        name: str,
        kind: str,
        description: str,
        keys: tuple[str, ...],
    ) -> Script | None:
        version = self.value(item, where, "version", _scalar_str, "")
        if not version:
            self.problem(f"{where}.version", "missing")
        file = self.value(item, where, "file", _scalar_str, "")
        if not file:
            self.problem(f"{where}.file", "missing")
            return None
        path = Path(file) if Path(file).is_absolute() else base_dir / file
        try:
            source = path.read_bytes()
        except FileNotFoundError:
            self.problem(f"{where}.file", f"{file} does not exist (looked at {path})")
            return None
        except OSError as exc:
            self.problem(f"{where}.file", f"cannot read {file}: {exc.strerror}")
            return None
        if not source.strip():
            self.problem(f"{where}.file", f"{file} is empty")
            return None
        try:
            source.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problem(f"{where}.file", f"{file} is not UTF-8 (byte {exc.start})")
            return None
        library = None
        functions: tuple[str, ...] = ()
        if kind == KIND_FUNCTION:
            library = parse_shebang(source).library
            if library is None:
                self.problem(f"{where}.file", f"{file}: a function library must start with `#!lua name=<library>`")
                return None
            functions = registered_functions(source)
        if not name or not version:
            return None
        return Script(
            name=name,
            version=version,
            kind=kind,
            file=file,
            source=source,
            sha=sha1_hex(source),
            description=description,
            keys=keys,
            library=library,
            functions=functions,
        )


# -------------------------------------------------------------------- converters


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{value!r} is not true or false")


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a string")


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


def _ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"{value!r} is not a ratio between 0 and 1")
    return float(value)


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number >= 0")
    return value


def _choice(*options: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in options:
            raise ValueError(f"{value!r} is not one of: {', '.join(options)}")
        return str(value)

    return convert
