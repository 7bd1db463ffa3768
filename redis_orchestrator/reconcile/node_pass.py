"""Bring one node's script cache and function libraries to the catalog: observe, plan, apply.

Per node and pass: one round trip to observe (`SCRIPT EXISTS` of the cache marker, and of every SHA
unless the marker is trusted, plus `FUNCTION LIST WITHCODE` on primaries when the catalog has
functions, pipelined together), and when something is missing one more round trip with a batch of
`SCRIPT LOAD` / `FUNCTION LOAD REPLACE`. Nodes run in
parallel and independently: one that is down or frozen costs only its own timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

import redis
import redis.asyncio

from redis_orchestrator.catalog.model import Catalog, Script, sha1_hex
from redis_orchestrator.reconcile.plan import NodePlan, Observation, plan_node, wants_functions
from redis_orchestrator.topology.model import Node, Role, Topology
from redis_orchestrator.wire.batch import Window, encode, link, send_encoded, windows
from redis_orchestrator.wire.connections import Connector, describe_error
from redis_orchestrator.wire.features import Feature, NodeFeatures, refused
from redis_orchestrator.wire.replies import as_list, as_map, error_code, text
from redis_orchestrator.wire.servers import evicted_scripts, info_fields

# The cache marker: a tiny script of our own, loaded LAST in every batch that completes a node's
# catalog. Redis 7 drops cached scripts only all at once (SCRIPT FLUSH, restart: there is no way to
# remove one, and scripts added by SCRIPT LOAD are never evicted), and no client ever loads this
# one, so while it is present nothing has been flushed since the last complete pass. That lets the
# steady-state check ask for one SHA instead of the whole catalog. A client re-adding one of *its*
# scripts with EVAL after a flush cannot fool it, as it could a check on any catalog script.
MARKER_SOURCE = (
    b"-- redis-orchestrator cache marker: present while this node's script cache is complete\n"
    b"return 'redis-orchestrator'\n"
)
MARKER_SHA = sha1_hex(MARKER_SOURCE)


class NodeState(StrEnum):
    """One pass's outcome on one node, decided once (in `reconcile_node`) and read everywhere else."""

    UNKNOWN = "unknown"  # no pass yet
    OK = "ok"  # answered; everything the plan asked was loaded (or nothing was missing)
    DOWN = "down"  # did not answer (connection refused, reset, timeout)
    REFUSED = "refused"  # answered with an error (NOAUTH, NOPERM, BUSY, ...)
    FAILING = "failing"  # answered, but refused some loads (a script that does not compile)
    MOVING = "moving"  # the topology moved under the pass (READONLY, LOADING, MOVED...): re-plan it

    @property
    def answered(self) -> bool:
        return self in (NodeState.OK, NodeState.FAILING)


@dataclass(frozen=True)
class LoadFailure:
    script: Script
    message: str
    code: str = ""  # the error code the node answered with, if it answered with one

    def describe(self, node: Node) -> str:
        return f"{self.script.label} ({self.script.file}) refused by {node.address}: {self.message}"


@dataclass(frozen=True)
class ApplyResult:
    """What one batch did on one node."""

    loaded: tuple[Script, ...] = ()
    functions_loaded: tuple[Script, ...] = ()
    deleted_libraries: tuple[str, ...] = ()
    failures: tuple[LoadFailure, ...] = ()
    commands: int = 0


@dataclass(frozen=True)
class NodeReport:
    """The outcome of one pass on one node."""

    node: Node
    state: NodeState
    error: str | None = None
    plan: NodePlan | None = None
    loaded: tuple[Script, ...] = ()
    functions_loaded: tuple[Script, ...] = ()
    deleted_libraries: tuple[str, ...] = ()
    failures: tuple[LoadFailure, ...] = ()
    commands: int = 0  # commands sent to the node in this pass
    round_trips: int = 0
    present: frozenset[str] = field(default_factory=frozenset)
    quick: bool = False  # True when the pass trusted the cache marker instead of asking every SHA
    role: Role | None = None  # what the node itself said (ROLE), when it was asked
    cache: CacheStats = field(default_factory=lambda: CacheStats())

    @property
    def missing_after(self) -> tuple[Script, ...]:
        if self.plan is None:
            return ()
        done = {s.sha for s in self.loaded} | {s.sha for s in self.functions_loaded}
        pending = self.plan.load_scripts + self.plan.load_functions
        return tuple(s for s in pending if s.sha not in done)

    @property
    def reachable(self) -> bool:
        return self.state != NodeState.DOWN

    @property
    def in_sync(self) -> bool:
        return self.state == NodeState.OK and not self.missing_after

    @property
    def problem(self) -> str | None:
        """Why the node is not OK: the error it answered, or the loads it refused."""
        if self.failures:
            return "; ".join(f.describe(self.node) for f in self.failures)
        return self.error

    @property
    def loads(self) -> tuple[Script, ...]:
        return (*self.loaded, *self.functions_loaded)


def parse_function_list(reply: object) -> dict[str, bytes]:
    """library name -> code, from FUNCTION LIST WITHCODE. One library, RESP2 shape:

    1) "library_name" 2) "orchestrator_lib" 3) "engine" 4) "LUA"
    5) "functions" 6) 1) 1) "name" 2) "capped_incr_fn" 3) "description" 4) (nil) 5) "flags" 6) (empty)
    7) "library_code" 8) "#!lua name=orchestrator_lib\n..."
    """
    libraries: dict[str, bytes] = {}
    for item in as_list(reply):
        library = as_map(item)
        code = library.get("library_code", b"")
        libraries[text(library.get("library_name", ""))] = code if isinstance(code, bytes) else str(code).encode()
    return libraries


@dataclass(frozen=True)
class Asks:
    """What one observation asks, beyond SCRIPT EXISTS of the marker (and of every SHA when `full`)."""

    full: bool = False
    functions: bool = False  # FUNCTION LIST WITHCODE: the libraries and their code
    role: bool = False  # ROLE: what the node itself says it is (decides FUNCTION LOAD)
    stats: bool = False  # INFO stats: evicted_scripts
    memory: bool = False  # INFO memory: number_of_cached_scripts, used_memory_scripts_eval

    def commands(self, shas: tuple[str, ...]) -> list[tuple[str, ...]]:
        commands: list[tuple[str, ...]] = [("SCRIPT", "EXISTS", MARKER_SHA, *(shas if self.full else ()))]
        commands += [("FUNCTION", "LIST", "WITHCODE")] if self.functions else []
        commands += [("ROLE",)] if self.role else []
        commands += [("INFO", "stats")] if self.stats else []
        commands += [("INFO", "memory")] if self.memory else []
        return commands


# Which feature each optional ask serves, for a node that refuses the command (features.py).
_FEATURE_OF = {
    "functions": Feature.FUNCTIONS,
    "role": Feature.ROLE,
    "stats": Feature.EVICTION_WATCH,
    "memory": Feature.CACHE_STATS,
}


def _packet(catalog: Catalog, asks: Asks) -> tuple[bytes, int]:
    """The observation's bytes, encoded once per catalog and kind of ask: the steady state sends
    the same packet to every node every interval."""

    def make() -> tuple[bytes, int]:
        commands = asks.commands(catalog.shas)
        return encode(commands), len(commands)

    return catalog.derived(("observe", asks), make)


@dataclass(frozen=True)
class CacheStats:
    """The node's script cache as INFO reports it (None where the server does not say)."""

    cached_scripts: int | None = None
    eval_memory_bytes: int | None = None
    evicted_scripts: int | None = None


@dataclass(frozen=True)
class Observed:
    observation: Observation
    marker: bool  # the cache marker was there
    commands: int
    role: Role | None = None  # what the node said with ROLE, when asked
    cache: CacheStats = field(default_factory=CacheStats)


class TopologyMoved(Exception):
    """The node answered with an error that means its place changed under the pass (it became a
    replica, its slots moved, it is loading or its cluster is down): re-plan, don't count a failure."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"{error_code(exc)} {exc}".strip())


# READONLY: FUNCTION LOAD on a node that just became a replica. LOADING: restarting. The others come
# with slots moving or a cluster failing over.
TOPOLOGY_MOVED_CODES = frozenset({"READONLY", "MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN"})


def _raise_unless_refused(exc: Exception, feature: Feature, command: str, features: NodeFeatures | None) -> None:
    if error_code(exc) in TOPOLOGY_MOVED_CODES:
        raise TopologyMoved(exc) from exc
    if features is not None and refused(exc):
        features.refuse(feature, command, exc)
        return
    raise exc


def parse_role(reply: object) -> Role | None:
    """ROLE's first element: `master` / `slave` (`sentinel` and anything else: None)."""
    first = text(as_list(reply)[0]) if as_list(reply) else ""
    return {"master": Role.PRIMARY, "slave": Role.REPLICA}.get(first)


async def observe(
    client: redis.asyncio.Redis,
    node: Node,
    catalog: Catalog,
    delete_unlisted: bool = False,
    *,
    quick: bool = False,
    features: NodeFeatures | None = None,
    stats: bool = False,
    memory: bool = False,
) -> Observed:
    """One round trip: `SCRIPT EXISTS marker [sha...]`, plus on primaries (when the catalog has
    functions) `FUNCTION LIST WITHCODE` and `ROLE`, plus `INFO stats` / `INFO memory` when asked.

    With `quick`, only the marker is asked and, when present, every catalog script is taken as
    present. A command the node refuses (renamed, not offered, NOPERM) costs its feature, not the
    pass. The node's own ROLE decides whether it is planned as a primary: the topology's view of a
    node's role lags behind (a former primary rejoining, a node that just became a replica).
    """
    can = features.available if features is not None else (lambda _feature: True)
    functions = wants_functions(node, catalog, delete_unlisted) and can(Feature.FUNCTIONS)
    asks = Asks(
        full=not quick,
        functions=functions,
        role=functions and can(Feature.ROLE),
        stats=stats and can(Feature.EVICTION_WATCH),
        memory=memory and can(Feature.CACHE_STATS),
    )
    packet, count = _packet(catalog, asks)
    replies = iter(await send_encoded(client, packet, count))
    flags = next(replies)
    if isinstance(flags, Exception):
        if error_code(flags) in TOPOLOGY_MOVED_CODES:
            raise TopologyMoved(flags) from flags
        raise flags
    assert isinstance(flags, list)
    answers: dict[str, object] = {}
    for name in ("functions", "role", "stats", "memory"):
        if getattr(asks, name):
            reply = next(replies)
            if isinstance(reply, Exception):
                _raise_unless_refused(reply, _FEATURE_OF[name], _COMMAND_OF[name], features)
            else:
                answers[name] = reply
    marker = bool(flags[0])
    # The catalog's own set when everything is there: plan_node then knows it by identity, and the
    # steady state never walks 10,000 SHAs.
    if quick:
        present = catalog.sha_set if marker else frozenset()
    elif all(flags):
        present = catalog.sha_set
    else:
        present = frozenset(sha for sha, flag in zip(catalog.shas, flags[1:], strict=True) if int(flag))
    role = parse_role(answers["role"]) if "role" in answers else None
    libraries = parse_function_list(answers["functions"]) if "functions" in answers else None
    if role == Role.REPLICA:
        libraries = None  # it says it is a replica: it gets its libraries by replication, never FUNCTION LOAD
    memory_fields = info_fields(text(answers["memory"])) if "memory" in answers else {}
    cache = CacheStats(
        cached_scripts=_int(memory_fields.get("number_of_cached_scripts")),
        eval_memory_bytes=_int(memory_fields.get("used_memory_scripts_eval")),
        evicted_scripts=evicted_scripts(_raw(answers["stats"])) if "stats" in answers else None,
    )
    observation = Observation(node=node, present_shas=present, libraries=libraries)
    return Observed(observation, marker, count, role, cache)


_COMMAND_OF = {"functions": "FUNCTION LIST", "role": "ROLE", "stats": "INFO stats", "memory": "INFO memory"}


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _raw(value: object) -> bytes | str:
    return value if isinstance(value, bytes | str) else str(value)


def _script_loads(plan: NodePlan, catalog: Catalog | None) -> tuple[Window, ...]:
    """The plan's SCRIPT LOADs, in windows. A node that lacks every script (a restart, a new node, a
    cold start) gets the catalog's own windows, encoded once and shared by every node."""
    loads = plan.load_scripts
    if catalog is not None and len(loads) == len(catalog.shas):
        return catalog.derived("load-all", lambda: windows([("SCRIPT", "LOAD", s.source) for s in loads]))
    return windows([("SCRIPT", "LOAD", s.source) for s in loads])


async def apply(
    client: redis.asyncio.Redis, plan: NodePlan, *, with_marker: bool = False, catalog: Catalog | None = None
) -> ApplyResult:
    """One pipelined round trip for everything the plan asks. Failures are per script, never fatal.

    With `with_marker`, the cache marker is loaded last: the node runs a connection's commands in
    order, so once the marker is there every load before it has been done (or has failed, which
    the caller sees in the failures and answers with full observations until it is fixed).
    """
    if plan.in_sync and not with_marker:
        return ApplyResult()
    rest: list[tuple[str | bytes, ...]] = [("FUNCTION", "LOAD", "REPLACE", f.source) for f in plan.load_functions]
    rest += [("FUNCTION", "DELETE", name) for name in plan.delete_libraries]
    if with_marker:
        rest.append(("SCRIPT", "LOAD", MARKER_SOURCE))
    loaded: list[Script] = []
    failures: list[LoadFailure] = []
    sent = 0
    tail: list[object] = []
    async with link(client) as held:
        # Window by window: each window's replies are judged before the next is sent, so a node
        # loading 10,000 scripts never holds 10,000 replies.
        for packet, count in _script_loads(plan, catalog):
            replies = await held.exchange(packet, count)
            for script, reply in zip(plan.load_scripts[sent : sent + count], replies, strict=True):
                failure = _load_failure(script, reply, expect=script.sha)
                if failure:
                    failures.append(failure)
                else:
                    loaded.append(script)
            sent += count
        for packet, count in windows(rest):
            tail += await held.exchange(packet, count)
    functions_loaded: list[Script] = []
    for library, reply in zip(plan.load_functions, tail, strict=False):
        failure = _load_failure(library, reply, expect=library.library)
        if failure:
            failures.append(failure)
        else:
            functions_loaded.append(library)
    deleted = [
        name
        for name, reply in zip(plan.delete_libraries, tail[len(plan.load_functions) :], strict=False)
        if not isinstance(reply, Exception)
    ]
    return ApplyResult(tuple(loaded), tuple(functions_loaded), tuple(deleted), tuple(failures), sent + len(tail))


def _load_failure(entry: Script, reply: object, expect: str | None) -> LoadFailure | None:
    """SCRIPT LOAD answers the SHA it computed, FUNCTION LOAD the library name: check it."""
    if expect is not None and reply == entry.sha_bytes and expect == entry.sha:
        return None  # the usual answer, checked without decoding (a cold start checks millions)
    if isinstance(reply, Exception):
        return LoadFailure(entry, _server_message(reply), error_code(reply))
    if expect is not None and text(reply) != expect and text(reply).lower() != expect:
        return LoadFailure(entry, f"server answered {text(reply)!r}, expected {expect!r}")
    return None


def _server_message(exc: Exception) -> str:
    # describe_error names NOPERM (which redis-py strips from the text) and the like.
    return " ".join(describe_error(exc).split())


async def reconcile_node(
    client: redis.asyncio.Redis,
    node: Node,
    catalog: Catalog,
    *,
    write: bool = True,
    delete_unlisted: bool = False,
    quick: bool = False,
    features: NodeFeatures | None = None,
    evictions_seen: int | None = None,
    cache_stats: bool = False,
) -> NodeReport:
    """Observe, plan and (when `write`) apply on one node. Never raises for Redis trouble.

    `quick` trusts the cache marker (see MARKER_SOURCE); when the marker is gone the same pass
    falls back to a full observation at once. On a server where scripts can leave the cache one at
    a time (servers.py: Redis >= 7.4), `evictions_seen` is the node's evicted_scripts at the last
    pass: INFO stats comes with the marker, and any eviction since is a full observation at once.
    `cache_stats` also reads INFO memory for the cache gauges.
    """
    commands = 0
    round_trips = 0
    plan: NodePlan | None = None
    try:
        watch = evictions_seen is not None
        seen = await observe(
            client,
            node,
            catalog,
            delete_unlisted,
            quick=quick,
            features=features,
            stats=watch or cache_stats,
            memory=cache_stats,
        )
        commands, round_trips = seen.commands, 1
        evicted = seen.cache.evicted_scripts
        if quick and watch and features is not None and not features.available(Feature.EVICTION_WATCH):
            evicted = None  # INFO stats refused: the marker alone proves nothing on this server
        vanished = watch and (evicted is None or evicted_count_grew(evictions_seen, evicted))
        if quick and (not seen.marker or vanished):
            seen = await observe(client, node, catalog, delete_unlisted, features=features)
            seen = replace(seen, cache=CacheStats(seen.cache.cached_scripts, seen.cache.eval_memory_bytes, evicted))
            commands, round_trips, quick = commands + seen.commands, 2, False
        observation = seen.observation
        plan = plan_node(observation, catalog, delete_unlisted)
        if not write or (plan.in_sync and seen.marker):
            return NodeReport(
                node=node,
                state=NodeState.OK,
                plan=plan,
                commands=commands,
                round_trips=round_trips,
                present=observation.present_shas,
                quick=quick,
                role=seen.role,
                cache=seen.cache,
            )
        done = await apply(client, plan, with_marker=True, catalog=catalog)
        moved = [f for f in done.failures if f.code in TOPOLOGY_MOVED_CODES]
        failures = tuple(f for f in done.failures if f not in moved)
        state = NodeState.MOVING if moved else NodeState.FAILING if failures else NodeState.OK
        return NodeReport(
            node=node,
            state=state,
            error=f"{moved[0].code} during the batch: the node's place changed; re-planning" if moved else None,
            plan=plan,
            loaded=done.loaded,
            functions_loaded=done.functions_loaded,
            deleted_libraries=done.deleted_libraries,
            failures=failures,
            commands=commands + done.commands,
            round_trips=round_trips + 1,
            # The catalog's own set when the pass completed the node (no 10,000-SHA set per node).
            present=catalog.sha_set
            if len(done.loaded) == len(plan.load_scripts)
            else observation.present_shas | {s.sha for s in done.loaded},
            role=seen.role,
            cache=seen.cache,
        )
    except TopologyMoved as exc:
        return NodeReport(node=node, state=NodeState.MOVING, error=str(exc), plan=plan, commands=commands)
    except (TimeoutError, redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        if error_code(exc) in TOPOLOGY_MOVED_CODES:  # redis-py's LOADING is a ConnectionError
            return NodeReport(
                node=node, state=NodeState.MOVING, error=describe_error(exc), plan=plan, commands=commands
            )
        return NodeReport(node=node, state=NodeState.DOWN, error=describe_error(exc), plan=plan, commands=commands)
    except redis.ResponseError as exc:
        # NOPERM, BUSY, ...: the node answered but refused; report it, retry later.
        return NodeReport(node=node, state=NodeState.REFUSED, error=describe_error(exc), plan=plan, commands=commands)


def evicted_count_grew(before: int | None, now: int) -> bool:
    """evicted_scripts went up since the last look (or went back: the node restarted, a full check too)."""
    return before is None or now != before


async def reconcile_all(
    connector: Connector,
    topology: Topology,
    catalog: Catalog,
    *,
    write: bool = True,
    delete_unlisted: bool = False,
    rediscover: Callable[[], Awaitable[Topology]] | None = None,
    settle_attempts: int = 5,
) -> list[NodeReport]:
    """Every node in parallel; the reports come back in topology order.

    A node whose place moved under the pass (MOVING: READONLY, LOADING... right after a cluster is
    created or fails over) is re-planned with a fresh topology from `rediscover`, up to
    `settle_attempts` times, a moment apart: a one-shot verb ends on where the cluster settled."""

    async def one(node: Node) -> NodeReport:
        client = connector.client(node.host, node.port)
        return await reconcile_node(client, node, catalog, write=write, delete_unlisted=delete_unlisted)

    reports = {report.node.address: report for report in await asyncio.gather(*(one(n) for n in topology.nodes))}

    def replan(node: Node) -> bool:
        """Moving under the last pass, planned with another role (a replica promoted while we loaded
        its old primary was planned without FUNCTION LOAD), or not seen yet."""
        before = reports.get(node.address)
        return before is None or before.state == NodeState.MOVING or before.node.role != node.role

    for attempt in range(settle_attempts if rediscover is not None else 0):
        moving = any(r.state == NodeState.MOVING for r in reports.values())
        if attempt > 0 and not moving:
            break
        if moving:
            await asyncio.sleep(_SETTLE_PAUSE)
        assert rediscover is not None
        topology = await rediscover()  # one more look even when nothing moved: a failover may have ended
        again = [n for n in topology.nodes if replan(n)]
        if not again:
            break
        reports.update({r.node.address: r for r in await asyncio.gather(*(one(n) for n in again))})
    return [reports[n.address] for n in topology.nodes]


_SETTLE_PAUSE = 0.2
