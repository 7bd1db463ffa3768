"""The settings, as frozen values, in two parts:

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

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from redis_orchestrator.analysis.findings import Severity
from redis_orchestrator.catalog.files import FileSeen
from redis_orchestrator.catalog.model import Catalog
from redis_orchestrator.errors import Where, render_where

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
    # exporter-toolkit's web config (TLS, basic auth; daemon/web_config.py), relative to this file;
    # `run --web.config.file` overrides it. The path is read at start; the file's contents live.
    web_config_file: str | None = None


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
    # Every file this config was read from (the config and its scripts), as the read saw it: the
    # daemon watches them against exactly that (daemon/reload.py: FileWatch).
    files: Mapping[str, FileSeen] = field(default_factory=dict, compare=False, repr=False)

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
