"""The daemon's view of the deployment: the first topology (waiting for a seed), a
refresh every `topology_interval`, and a look at once when something says it moved.

Three things ask for an early look, and all go through `look_now()`: a node worker whose node went
down, answered READONLY/LOADING or says another role than the topology (`closely=True`: then every
second for a while, long enough to see a failover through); a Sentinel event (the same); the
primary's ROLE or a restored Sentinel subscription saying the topology is behind (a reason is
logged). The steady state stays one discovery per interval, asked of a different node each time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis_orchestrator import logs
from redis_orchestrator.config.settings import Mode, RedisSettings
from redis_orchestrator.daemon.health import Heartbeat
from redis_orchestrator.daemon.systemd import Notifier
from redis_orchestrator.daemon.waiting import cancel_and_wait, wait_event
from redis_orchestrator.errors import SeedsUnreachableError
from redis_orchestrator.topology.discovery import discover
from redis_orchestrator.topology.model import Topology
from redis_orchestrator.wire.connections import Connector, gave_no_answer

# After a node goes down: a failover takes about twice cluster-node-timeout; watch the topology
# every second for long enough to see it through.
_FAST_INTERVAL = 1.0
_FAST_WINDOW = 30.0
# Waiting for a first seed: one that does not answer is asked again every _SEED_POLL s (as a down node
# is probed); one that answers and refuses, with backoff from _SEED_BACKOFF to _SEED_BACKOFF_MAX s.
_SEED_POLL = 0.1
_SEED_BACKOFF = 0.2
_SEED_BACKOFF_MAX = 5.0


class TopologyKeeper:
    name = "topology"

    def __init__(
        self,
        settings: RedisSettings,
        connector: Connector,
        on_topology: Callable[[Topology, bool], None],
        *,
        interval: Callable[[], float],
        polling_only: Callable[[], bool] = lambda: False,
        notifier: Notifier,
        heartbeat: Heartbeat,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`on_topology(topology, first)` follows each new topology (the fleet); `polling_only()`:
        no Sentinel subscription is up, so the topology is polled every second instead."""
        self.settings = settings
        self.connector = connector
        self._on_topology = on_topology
        self._interval = interval
        self._polling_only = polling_only
        self.notifier = notifier
        self.heartbeat = heartbeat
        self.clock = clock
        self.topology: Topology | None = None
        self.discovered = asyncio.Event()  # set once the first topology is known
        self._failed = False
        self._wake = asyncio.Event()
        self._closely_until = 0.0
        self._seed_turn = -1

    def look_now(self, reason: str | None = None, *, closely: bool = False) -> None:
        """Refresh now; with `closely`, every second for a while after (a failover takes seconds)."""
        if reason is not None:
            logs.event("topology_refresh", reason=reason)
        if closely:
            self._closely_until = self.clock() + _FAST_WINDOW
        self._wake.set()

    async def run(self) -> None:
        """The first topology (waiting for a seed), then a refresh every interval."""
        self._follow(await self._first_topology())
        while True:
            interval = self._interval()
            if self.clock() < self._closely_until or self._polling_only():
                interval = min(interval, _FAST_INTERVAL)
            await wait_event(self._wake, interval)
            self._wake.clear()
            self.heartbeat.beat()
            await self.refresh()

    async def refresh(self, raise_errors: bool = False) -> Topology | None:
        """Discover once and follow what was found; the topology now known (the last one when no
        seed answered and `raise_errors` is off)."""
        try:
            topology = await self._discover(self._seeds())
        except SeedsUnreachableError as exc:
            if raise_errors:
                raise
            if not self._failed:
                logs.error("topology_unavailable", f"keeping the last known topology: {exc}")
                self._failed = True
            return self.topology
        return self._follow(topology)

    async def _discover(self, seeds: list[str]) -> Topology:
        return await discover(self.connector, seeds, self.settings.mode, timeout=self.settings.timeout * 2)

    async def _first_topology(self) -> Topology:
        """Wait for a seed: each one asked on its own, again after each failure, the first answer
        wins. A seed that does not answer at all (refused, packets dropped) is only down and is
        asked again every _SEED_POLL s, as down nodes are probed, while one that answered and
        refused (WRONGPASS, NOPERM, a service it does not monitor) is asked with backoff (each
        try is a failed AUTH in its log). Asked one after the other, a seed whose packets vanish
        would hold up the next for its whole timeout. Sentinel and replication modes ask all their
        seeds at once by themselves (one answer is a vote of all): one search over all of them."""
        self.notifier.notify("STATUS=discovering topology")
        seeds = self._seeds()
        searches = [seeds] if self.settings.mode in (Mode.SENTINEL, Mode.REPLICATION) else [[s] for s in seeds]
        failures: dict[int, SeedsUnreachableError] = {}

        async def keep_asking(index: int, seeds: list[str]) -> Topology:
            backoff = _SEED_BACKOFF
            while True:
                try:
                    return await self._discover(seeds)
                except SeedsUnreachableError as exc:
                    failures[index] = exc
                    if len(failures) == len(searches):
                        self._waiting_for_seeds(list(failures.values()))
                    if _unreachable(exc):
                        delay, backoff = _SEED_POLL, _SEED_BACKOFF
                    else:
                        delay, backoff = backoff, min(backoff * 2, _SEED_BACKOFF_MAX)
                    await asyncio.sleep(delay)

        asking = [asyncio.create_task(keep_asking(i, s)) for i, s in enumerate(searches)]
        try:
            done, _ = await asyncio.wait(asking, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(asking)
        return next(iter(done)).result()

    def _waiting_for_seeds(self, failures: list[SeedsUnreachableError]) -> None:
        """Every seed failed at least once: said once in the log, on each round in systemd's STATUS."""
        exc = failures[0] if len(failures) == 1 else SeedsUnreachableError([a for f in failures for a in f.attempts])
        if not self._failed:
            logs.error("no_seed_reachable", str(exc))
            self._failed = True
        self.notifier.notify(f"STATUS=waiting for a seed: {exc}")

    def _follow(self, topology: Topology) -> Topology:
        """A topology was found: it replaces the last one, and the fleet follows it."""
        if self._failed:
            logs.event("topology_available", answered_by=topology.answered_by)
            self._failed = False
        self._log_notes(topology)
        first = self.topology is None
        self.topology = topology
        self.discovered.set()
        self._on_topology(topology, first)
        return topology

    def _seeds(self) -> list[str]:
        configured = list(self.settings.seeds)  # --seed already in place (load_config)
        if self.settings.mode == Mode.SENTINEL:
            return configured  # the seeds are the Sentinels; data nodes are what they tell us
        known = list(self.topology.addresses) if self.topology else []
        if known:
            # Ask a different node each refresh: no node pays for every CLUSTER SHARDS.
            self._seed_turn = (self._seed_turn + 1) % len(known)
            known = known[self._seed_turn :] + known[: self._seed_turn]
        return list(dict.fromkeys([*known, *configured]))

    def _log_notes(self, topology: Topology) -> None:
        """Each note (Sentinels that disagree, a stray primary) once, when it appears."""
        seen = set(self.topology.notes) if self.topology is not None else set()
        for note in topology.notes:
            if note not in seen:
                logs.warning("topology_note", note, answered_by=topology.answered_by)


def _unreachable(exc: SeedsUnreachableError) -> bool:
    """No seed of the search answered at all: they are down (or cut off), none refused us."""
    return bool(exc.attempts) and all(gave_no_answer(why) for _seed, why in exc.attempts)
