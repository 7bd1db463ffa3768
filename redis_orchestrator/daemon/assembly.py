"""Making a Daemon from a config: every collaborator built once, here, and handed to the next by
constructor (the conductor in lifecycle.py receives them whole and builds nothing).

The wiring between them is all callbacks read at call time: node workers ask the topology keeper
for a look when a node moves, the catalog keeper wakes the fleet on an accepted reload, the fleet's
nodes read the current desired state and leadership.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from redis_orchestrator.analysis.checks import CatalogAnalysis
from redis_orchestrator.config.settings import Config, Mode, RedisOverrides
from redis_orchestrator.daemon.catalog_keeper import CatalogKeeper
from redis_orchestrator.daemon.fleet import Fleet
from redis_orchestrator.daemon.health import Heartbeat, LoopHealth
from redis_orchestrator.daemon.http import MetricsServer
from redis_orchestrator.daemon.leader import (
    KeyRouter,
    LeaderError,
    LeaderLease,
    ManifestPublisher,
    load_lock_scripts,
    packaged_script,
)
from redis_orchestrator.daemon.lifecycle import Daemon, Watchdog
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.primary_watch import PrimaryWatch
from redis_orchestrator.daemon.readiness import ReadinessLoop
from redis_orchestrator.daemon.sentinel_events import SentinelEvents
from redis_orchestrator.daemon.slowlog import always_confirmed
from redis_orchestrator.daemon.supervisor import NodeEnv, NodeFactory, standard_node
from redis_orchestrator.daemon.systemd import Notifier
from redis_orchestrator.daemon.topology_keeper import TopologyKeeper
from redis_orchestrator.daemon.web_config import PLAIN, WebConfigFile
from redis_orchestrator.errors import ConfigError
from redis_orchestrator.topology.model import Topology
from redis_orchestrator.wire.connections import Connector

T = TypeVar("T")


def build_daemon(
    config: Config,
    *,
    metrics: Metrics | None = None,
    nodes: NodeFactory = standard_node,
    analysis: CatalogAnalysis | None = None,
    notifier: Notifier | None = None,
    watchdog_interval: float | None = None,
    serve_metrics: bool = True,
    seeds_override: Sequence[str] | None = None,
    overrides: RedisOverrides | None = None,
    web_config_file: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Daemon:
    """Raises ConfigError when a start-time setting cannot be honoured (the lease's scripts, a web
    config file that is missing or wrong: never served open instead of locked).
    `seeds_override` / `overrides`: what the command line put in place of redis settings;
    `web_config_file`: `run --web.config.file`, in place of metrics.web_config_file."""
    start = config.start
    redis = start.redis
    metrics = metrics if metrics is not None else Metrics()
    notifier = notifier if notifier is not None else Notifier({})
    connector = Connector(redis)
    heartbeat = Heartbeat(clock)

    def topology() -> Topology | None:
        return topology_keeper.topology

    leader = _lease(config, topology, metrics) if start.leader.enabled else None
    is_leader = leader.is_leader if leader is not None else _always
    if leader is None:
        metrics.leader.set(1)  # the only instance: always the leader
    catalog_keeper = CatalogKeeper(
        config,
        (overrides or RedisOverrides()).with_seeds(seeds_override),
        connector,
        metrics,
        analysis if analysis is not None else CatalogAnalysis(),
        topology=topology,
        on_change=lambda: fleet.wake_all(),
        heartbeat=heartbeat,
    )
    env = NodeEnv(
        connector=connector,
        desired=lambda: catalog_keeper.desired,
        metrics=metrics,
        is_leader=is_leader,
        confirm_leader=leader.confirm if leader is not None else always_confirmed,
        on_moved=lambda _node: topology_keeper.look_now(closely=True),
        clock=clock,
    )
    fleet = Fleet(nodes, env, metrics, connector)
    sentinel_events = (
        SentinelEvents(
            redis,
            redis.seeds,
            redis.service_name or "",
            on_event=lambda _event: topology_keeper.look_now(closely=True),
            on_resync=lambda reason: topology_keeper.look_now(reason),
            metrics=metrics,
        )
        if redis.mode == Mode.SENTINEL
        else None
    )
    topology_keeper = TopologyKeeper(
        redis,
        connector,
        fleet.apply,
        interval=lambda: catalog_keeper.desired.daemon.topology_interval,
        # Polling is the fallback while no Sentinel subscription is up.
        polling_only=lambda: sentinel_events is not None and not sentinel_events.live,
        notifier=notifier,
        heartbeat=heartbeat,
        clock=clock,
    )
    primary_watch = (
        PrimaryWatch(
            connector,
            topology,
            lambda: catalog_keeper.desired.daemon.reconcile_interval,
            lambda reason: topology_keeper.look_now(reason),
        )
        if redis.mode in (Mode.SENTINEL, Mode.REPLICATION)
        else None
    )
    router = leader.router if leader is not None else KeyRouter(connector, topology)
    manifest = (
        ManifestPublisher(
            start.manifest.key,
            router,
            lambda: catalog_keeper.catalog,
            start.manifest.sources,
            lease=leader,  # the server fences its writes by the lease
            interval=lambda: catalog_keeper.desired.daemon.reconcile_interval,  # checked like a script
            script=_packaged(config, "manifest.key", lambda: packaged_script("keep_manifest")),
        )
        if start.manifest.key
        else None
    )
    readiness = ReadinessLoop(topology, fleet.statuses, lambda: catalog_keeper.catalog, metrics, notifier)
    # A pass may take up to the command timeout on a frozen node; allow three of either before
    # declaring the loops stuck (/healthz and the systemd watchdog judge alike, each on its own).
    stale_after = max(3 * config.desired.daemon.reconcile_interval, 3 * redis.timeout)
    http = None
    if serve_metrics and start.metrics.enabled:
        web_file = _web_config_file(config, web_config_file)
        http = MetricsServer(
            start.metrics.listen,
            metrics,
            lambda: readiness.current,
            health=LoopHealth(lambda: heartbeat.last, fleet.passes, stale_after=stale_after, clock=clock).check,
            web_config=web_file.load() if web_file is not None else PLAIN,  # ConfigError: exit 2, nothing started
            web_file=web_file,
        )
    watchdog = None
    if watchdog_interval is not None and notifier.enabled:
        stale_after = max(stale_after, 2 * watchdog_interval)
        health = LoopHealth(lambda: heartbeat.last, fleet.passes, stale_after=stale_after, clock=clock)
        watchdog = Watchdog(watchdog_interval, health)
    return Daemon(
        catalog=catalog_keeper,
        topology=topology_keeper,
        fleet=fleet,
        readiness=readiness,
        metrics=metrics,
        connector=connector,
        notifier=notifier,
        is_leader=is_leader,
        http=http,
        leader=leader,
        manifest=manifest,
        watchdog=watchdog,
        sentinel_events=sentinel_events,
        primary_watch=primary_watch,
    )


def _always() -> bool:
    return True


def _web_config_file(config: Config, override: str | None) -> WebConfigFile | None:
    """The command line's file (relative to the working directory), else metrics.web_config_file
    (relative to the config file, like the catalog's files)."""
    if override:
        return WebConfigFile(Path(override))
    configured = config.start.metrics.web_config_file
    return WebConfigFile(config.path.parent / configured) if configured else None


def _packaged(config: Config, setting: str, load: Callable[[], T]) -> T:
    """The daemon's own scripts, read from the package: missing ones are a config error naming `setting`."""
    try:
        return load()
    except LeaderError as exc:
        raise ConfigError(str(config.path), [f"{setting}: {exc}"]) from exc


def _lease(config: Config, topology: Callable[[], Topology | None], metrics: Metrics) -> LeaderLease:
    scripts = _packaged(config, "leader.enabled", load_lock_scripts)
    start = config.start
    return LeaderLease(start.leader, start.redis, topology, metrics, scripts=scripts)
