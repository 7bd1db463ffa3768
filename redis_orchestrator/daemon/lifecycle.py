"""The daemon's lifecycle: a thin conductor. Everything that runs is listed in `run()`:

- daemon-wide loops, in one task group with one shutdown path: the topology keeper (discovery, a
  refresh every `topology_interval`, a look at once when a node moves), the catalog keeper's watch
  (file edits and SIGHUP), readiness (/readyz and systemd's READY/STATUS), and when configured the
  metrics endpoint, the leader lease, the manifest key and the systemd watchdog; in sentinel mode
  the Sentinels' events, and in sentinel and replication modes the primary watch, both of which only
  ask the topology keeper for a look;
- per node, a supervisor (reconcile worker, liveness watch, slowlog watcher) in the fleet, started
  when the node appears and retired when it goes.

`converge()` runs the same pass code once, to convergence, with nothing left running (arq's burst
mode): what tests drive in-process, with their own registry and clock. The collaborators are made
by `assembly.build_daemon` and handed over whole; nothing here talks the Redis protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Self

from redis_orchestrator.catalog.model import Catalog
from redis_orchestrator.config.settings import DesiredState
from redis_orchestrator.daemon.catalog_keeper import CatalogKeeper
from redis_orchestrator.daemon.fleet import Fleet
from redis_orchestrator.daemon.health import LoopHealth
from redis_orchestrator.daemon.http import MetricsServer
from redis_orchestrator.daemon.leader import LeaderLease, ManifestPublisher
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.primary_watch import PrimaryWatch
from redis_orchestrator.daemon.readiness import ReadinessLoop
from redis_orchestrator.daemon.sentinel_events import SentinelEvents
from redis_orchestrator.daemon.systemd import Notifier, watchdog_loop
from redis_orchestrator.daemon.topology_keeper import TopologyKeeper
from redis_orchestrator.reconcile.settle import Convergence, settle
from redis_orchestrator.topology.model import Topology
from redis_orchestrator.wire.connections import Connector


@dataclass(frozen=True)
class Watchdog:
    """systemd's watchdog: WATCHDOG=1 every `interval` while `health` says the loops make progress."""

    interval: float
    health: LoopHealth


class _Stopping(Exception):
    """Raised inside the task group to end it: every loop is cancelled and awaited."""


class Daemon:
    def __init__(
        self,
        *,
        catalog: CatalogKeeper,
        topology: TopologyKeeper,
        fleet: Fleet,
        readiness: ReadinessLoop,
        metrics: Metrics,
        connector: Connector,
        notifier: Notifier,
        is_leader: Callable[[], bool],
        http: MetricsServer | None = None,
        leader: LeaderLease | None = None,
        manifest: ManifestPublisher | None = None,
        watchdog: Watchdog | None = None,
        sentinel_events: SentinelEvents | None = None,
        primary_watch: PrimaryWatch | None = None,
    ) -> None:
        self.catalog_keeper = catalog
        self.topology_keeper = topology
        self.fleet = fleet
        self.readiness = readiness
        self.metrics = metrics
        self.connector = connector
        self.notifier = notifier
        self.is_leader = is_leader
        self.http = http
        self.leader = leader
        self.manifest = manifest
        self.watchdog = watchdog
        self.sentinel_events = sentinel_events
        self.primary_watch = primary_watch
        self.stopping = asyncio.Event()

    @property
    def desired(self) -> DesiredState:
        return self.catalog_keeper.desired

    @property
    def catalog(self) -> Catalog:
        return self.catalog_keeper.catalog

    @property
    def topology(self) -> Topology | None:
        return self.topology_keeper.topology

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Until `stop()`. Raises CatalogRejected if the first catalog is refused."""
        blocking = self.catalog_keeper.blocking
        if blocking:
            self.catalog_keeper.first_analysis()  # findings may refuse the catalog: nothing is loaded before
        else:
            self.catalog_keeper.announce()
        self.fleet.start()
        try:
            async with asyncio.TaskGroup() as loops:
                loops.create_task(self.topology_keeper.run(), name="topology")
                loops.create_task(self.catalog_keeper.watch(), name="catalog watch")
                loops.create_task(self.readiness.run(), name="readiness")
                if not blocking:
                    first = self.catalog_keeper.analyse_after_ready(self.readiness.ready_once)
                    loops.create_task(first, name="first analysis")
                if self.http is not None:
                    loops.create_task(self.http.serve(), name="metrics endpoint")
                if self.leader is not None:  # both route by slot: they start once a topology is known
                    loops.create_task(self._after_discovery(self.leader.run), name="leader lease")
                if self.manifest is not None:
                    loops.create_task(self._after_discovery(self._publish_manifest), name="manifest key")
                if self.watchdog is not None:
                    watchdog = watchdog_loop(self.notifier, self.watchdog.interval, self.watchdog.health)
                    loops.create_task(watchdog, name="watchdog")
                if self.sentinel_events is not None:
                    loops.create_task(self.sentinel_events.run(), name="sentinel events")
                if self.primary_watch is not None:
                    loops.create_task(self._after_discovery(self.primary_watch.run), name="primary watch")
                await self.stopping.wait()
                raise _Stopping
        except* _Stopping:
            pass
        finally:
            await self.close()

    async def _after_discovery(self, loop: Callable[[], Coroutine[object, object, None]]) -> None:
        await self.topology_keeper.discovered.wait()
        await loop()

    async def _publish_manifest(self) -> None:
        assert self.manifest is not None
        await self.manifest.run(self.is_leader, self.leader.changed if self.leader is not None else None)

    async def converge(self, max_passes: int = 5) -> Convergence:
        """The real pass code once, to convergence (reconcile/settle.py): the first analysis, a
        topology, then rounds of passes on the nodes that need one, with a fresh topology after each,
        at most `max_passes` rounds. Nothing keeps running in the background; `close()` (or
        `async with`) releases the connections."""
        if self.topology_keeper.topology is None:
            self.catalog_keeper.first_analysis()
        topology = await self.topology_keeper.refresh(raise_errors=True)
        assert topology is not None

        async def rediscover() -> Topology:
            return await self.topology_keeper.refresh() or topology

        result = await settle(self.fleet.reconcile_once, topology, rediscover, max_rounds=max_passes)
        self.readiness.update()
        return result

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every node's tasks, hand the lease over, close every connection."""
        await self.fleet.stop()
        if self.leader is not None:
            await self.leader.aclose()  # released now rather than when it expires
        await self.connector.aclose()

    def stop(self) -> None:
        self.stopping.set()

    def request_reload(self) -> None:
        self.catalog_keeper.request_reload()
