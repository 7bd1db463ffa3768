"""`redis-orchestrator prune`: drop retired script versions from caches.

Redis 7 has no command to drop one script: the only way is `SCRIPT FLUSH`, which empties the whole
cache, followed by `SCRIPT LOAD` of every live script. So a flush also drops every script the catalog
does not know: another application's, or bodies clients EVAL. Their callers would then meet NOSCRIPT
(a probe counted 17,870 of 26,214 calls in 3 s for one application), and nothing here can load
them again (Redis cannot list a cache's scripts). A node holding such scripts is therefore left
alone, and said so, unless the operator passes `--flush-unknown-scripts`. (A script created in the
milliseconds between a node's survey and its flush is flushed with the rest.)

Done one node at a time, each node in ONE transaction:

    MULTI
    SCRIPT FLUSH ASYNC          -> QUEUED   (old cache handed to a background thread to free)
    SCRIPT LOAD <live 1>        -> QUEUED
    ...
    EXEC                        -> [OK, sha1, sha2, ...]

Why MULTI/EXEC and not a plain pipeline: a pipeline only *usually* runs without interleaving. Redis
serves other clients between two reads of our query buffer (a catalog above 16 KiB of source takes
several reads; with io-threads, anything can), so an EVALSHA could land between the flush and its
reload and get NOSCRIPT. And if our connection drops half-way, a pipeline may have flushed without
reloading, leaving the node empty until the daemon's next pass. EXEC runs the queued commands with
no other client in between, and a transaction that never reaches EXEC changes nothing. The price
is the same for both: the node is busy for the time it takes to compile the live scripts (a few
milliseconds for a catalog of tens of scripts), during which clients wait instead of failing.

The NOSCRIPT window is measured, not assumed: while a node's transaction runs, a second connection
asks `SCRIPT EXISTS <live shas>` in a tight loop; the window is the time between the first probe
that saw a live script missing and the first one that saw them all again (0 when none did).
Without `--yes` nothing is written: the verb (cli.py prints the outcomes) says what it would do
and exits 1 when there is something to prune.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import redis
import redis.asyncio

from redis_orchestrator.catalog.model import Catalog, Kind, Script
from redis_orchestrator.config.settings import Config
from redis_orchestrator.reconcile.observe import MARKER_SHA, MARKER_SOURCE
from redis_orchestrator.topology.discovery import discover
from redis_orchestrator.topology.model import Node
from redis_orchestrator.wire.connections import Connector, describe_error


class Decision(StrEnum):
    """What prune does to one node."""

    NOTHING = "nothing"  # no retired version cached (scripts not in the catalog are kept)
    PRUNE = "prune"  # flush and reload: retired versions (and, when asked, unknown scripts) go
    KEEP_UNKNOWN = "keep-unknown"  # retired versions cached, but a flush would drop unknown scripts too


@dataclass(frozen=True)
class CacheSurvey:
    """What one node's script cache holds, in terms of the catalog."""

    node: Node
    cached: int  # INFO memory number_of_cached_scripts
    live_present: tuple[Script, ...]
    live_missing: tuple[Script, ...]
    retired_present: tuple[Script, ...]
    marker_present: bool = False  # our cache marker (observe.MARKER_SOURCE) is ours, not foreign

    @property
    def foreign(self) -> int:
        """Cached scripts that are neither live nor retired catalog versions (plain EVAL, other tools)."""
        ours = len(self.live_present) + len(self.retired_present) + int(self.marker_present)
        return max(0, self.cached - ours)

    def decide(self, flush_unknown: bool) -> Decision:
        if flush_unknown:
            return Decision.PRUNE if self.retired_present or self.foreign else Decision.NOTHING
        if not self.retired_present:
            return Decision.NOTHING  # the scripts the catalog does not know, if any, are not ours to drop
        return Decision.KEEP_UNKNOWN if self.foreign else Decision.PRUNE


@dataclass(frozen=True)
class PruneResult:
    survey: CacheSurvey
    cached_after: int
    blocked_ms: float  # the EXEC round trip: how long the node was busy with the flush and reloads
    window_ms: float  # measured NOSCRIPT window for live scripts (0.0 when no probe saw one missing)
    probes: int
    probes_missing: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeOutcome:
    node: Node
    survey: CacheSurvey | None = None
    decision: Decision = Decision.NOTHING
    result: PruneResult | None = None
    error: str | None = None


def _distinct(scripts: Sequence[Script]) -> list[Script]:
    return list({s.sha: s for s in scripts}.values())


async def survey_node(client: redis.asyncio.Redis, node: Node, catalog: Catalog) -> CacheSurvey:
    """One round trip: SCRIPT EXISTS of every live and retired SHA, and the cache size."""
    live = _distinct(catalog.scripts)
    live_shas = {s.sha for s in live}
    retired = [s for s in _distinct([r for r in catalog.retired if r.kind == Kind.SCRIPT]) if s.sha not in live_shas]
    pipe = client.pipeline(transaction=False)
    everything = [*live, *retired]
    pipe.execute_command("SCRIPT", "EXISTS", MARKER_SHA, *(s.sha for s in everything))
    pipe.info("memory")
    replies = await pipe.execute(raise_on_error=True)
    marker, *flags = [int(f) for f in replies[0]]
    info = replies[-1]
    present = {s.sha for s, flag in zip(everything, flags, strict=True) if flag}
    return CacheSurvey(
        node=node,
        cached=int(info.get("number_of_cached_scripts", 0)),
        live_present=tuple(s for s in live if s.sha in present),
        live_missing=tuple(s for s in live if s.sha not in present),
        retired_present=tuple(s for s in retired if s.sha in present),
        marker_present=bool(marker),
    )


class _Probe:
    """Asks SCRIPT EXISTS of the live SHAs in a loop and remembers when an answer missed one."""

    def __init__(self, client: redis.asyncio.Redis, shas: Sequence[str]) -> None:
        self.client = client
        self.shas = list(shas)
        self.count = 0
        self.missing = 0
        self.first_missing_sent: float | None = None
        self.window = 0.0
        self._stop = asyncio.Event()
        self.answered = asyncio.Event()

    async def run(self) -> None:
        if not self.shas:
            return
        while not self._stop.is_set():
            sent = time.perf_counter()
            flags = await self.client.execute_command("SCRIPT", "EXISTS", *self.shas)
            received = time.perf_counter()
            self.count += 1
            self.answered.set()
            if not all(int(f) for f in flags):
                self.missing += 1
                if self.first_missing_sent is None:
                    self.first_missing_sent = sent
            elif self.first_missing_sent is not None:
                self.window += received - self.first_missing_sent
                self.first_missing_sent = None
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._stop.set()


async def prune_node(client: redis.asyncio.Redis, survey: CacheSurvey, catalog: Catalog) -> PruneResult:
    """Flush and reload the live set in one MULTI/EXEC, with a probe measuring the NOSCRIPT window."""
    live = _distinct(catalog.scripts)
    probe = _Probe(client, [s.sha for s in survey.live_present])
    probe_task = asyncio.create_task(probe.run())
    errors: list[str] = []
    try:
        if probe.shas:
            async with asyncio.timeout(5.0):  # a baseline answer before the flush
                await probe.answered.wait()
        pipe = client.pipeline(transaction=True)
        pipe.execute_command("SCRIPT", "FLUSH", "ASYNC")
        for script in live:
            pipe.execute_command("SCRIPT", "LOAD", script.source)
        pipe.execute_command("SCRIPT", "LOAD", MARKER_SOURCE)  # last: the cache is complete again
        started = time.perf_counter()
        replies = await pipe.execute(raise_on_error=False)
        blocked = time.perf_counter() - started
        for script, reply in zip(live, replies[1:-1], strict=True):
            if isinstance(reply, Exception):
                errors.append(f"{script.label}: {describe_error(reply)}")
            elif (reply.decode() if isinstance(reply, bytes) else str(reply)).lower() != script.sha:
                errors.append(f"{script.label}: server answered sha {reply!r}")
        if isinstance(replies[0], Exception):
            errors.append(f"SCRIPT FLUSH: {describe_error(replies[0])}")
        # Let the probe see the state after EXEC at least once.
        seen = probe.count
        deadline = time.perf_counter() + 2.0
        while probe.shas and probe.count < seen + 2 and time.perf_counter() < deadline and not probe_task.done():
            await asyncio.sleep(0.001)
    finally:
        probe.stop()
        with contextlib.suppress(Exception):
            await probe_task
    if probe.first_missing_sent is not None:  # still missing at the end: the window is open
        probe.window += time.perf_counter() - probe.first_missing_sent
    info = await client.info("memory")
    return PruneResult(
        survey=survey,
        cached_after=int(info.get("number_of_cached_scripts", 0)),
        blocked_ms=blocked * 1000,
        window_ms=probe.window * 1000,
        probes=probe.count,
        probes_missing=probe.missing,
        errors=tuple(errors),
    )


async def prune_cluster(config: Config, really: bool, flush_unknown: bool) -> list[NodeOutcome]:
    """Survey every node; when `really`, prune those that need it, strictly one after the other.
    `flush_unknown`: flush nodes holding scripts the catalog does not know too (never by default)."""
    connector = Connector(config.start.redis)
    outcomes: list[NodeOutcome] = []
    try:
        redis_settings = config.start.redis
        topology = await discover(
            connector, redis_settings.seeds, redis_settings.mode, timeout=redis_settings.timeout * 2
        )
        for node in topology.nodes:
            client = connector.client(node.host, node.port)
            try:
                survey = await survey_node(client, node, config.catalog)
                decision = survey.decide(flush_unknown)
                result = None
                if really and decision == Decision.PRUNE:
                    result = await prune_node(client, survey, config.catalog)
                outcomes.append(NodeOutcome(node=node, survey=survey, decision=decision, result=result))
            except (redis.RedisError, OSError, TimeoutError) as exc:
                outcomes.append(NodeOutcome(node=node, error=describe_error(exc)))
    finally:
        await connector.aclose()
    return outcomes


def describe_survey(survey: CacheSurvey) -> str:
    """What a node holds beyond the live catalog: `1 retired (counter_get@1), 2 not in the catalog`."""
    parts = []
    if survey.retired_present:
        parts.append(f"{len(survey.retired_present)} retired ({', '.join(s.label for s in survey.retired_present)})")
    if survey.foreign:
        parts.append(f"{survey.foreign} not in the catalog")
    return ", ".join(parts)


def live_count(catalog: Catalog) -> int:
    return len(_distinct(catalog.scripts))
