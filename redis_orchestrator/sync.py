"""Bring one node's script cache and function libraries to the catalog: observe, plan, apply.

Per node and pass: one round trip to observe (`SCRIPT EXISTS` of the cache marker, and of every SHA
unless the marker is trusted, plus `FUNCTION LIST WITHCODE` on primaries when the catalog has
functions, pipelined together), and when something is missing one more round trip with a batch of
`SCRIPT LOAD` / `FUNCTION LOAD REPLACE`. Nodes run in
parallel and independently: one that is down or frozen costs only its own timeout.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from enum import StrEnum

import redis
import redis.asyncio

from redis_orchestrator.batch import encode, send_batch, send_encoded
from redis_orchestrator.catalog import Catalog, Script, sha1_hex
from redis_orchestrator.connections import Connector, describe_error
from redis_orchestrator.plan import NodePlan, Observation, plan_node, wants_functions
from redis_orchestrator.replies import as_list, as_map, text
from redis_orchestrator.topology import Node, Topology

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
    REFUSED = "refused"  # answered with an error (NOAUTH, NOPERM, LOADING, BUSY, ...)
    FAILING = "failing"  # answered, but refused some loads (a script that does not compile)

    @property
    def answered(self) -> bool:
        return self in (NodeState.OK, NodeState.FAILING)


@dataclass(frozen=True)
class LoadFailure:
    script: Script
    message: str

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


@functools.lru_cache(maxsize=16)
def _observe_packet(shas: tuple[str, ...], with_functions: bool) -> tuple[bytes, int]:
    commands: list[tuple[str, ...]] = [("SCRIPT", "EXISTS", MARKER_SHA, *shas)]
    if with_functions:
        commands.append(("FUNCTION", "LIST", "WITHCODE"))
    return encode(commands), len(commands)


@functools.lru_cache(maxsize=16)
def _all_present(shas: tuple[str, ...]) -> frozenset[str]:
    return frozenset(shas)


async def observe(
    client: redis.asyncio.Redis,
    node: Node,
    catalog: Catalog,
    delete_unlisted: bool = False,
    *,
    quick: bool = False,
) -> tuple[Observation, bool, int]:
    """One round trip: `SCRIPT EXISTS marker [sha...]` (+ `FUNCTION LIST WITHCODE` on primaries).

    With `quick`, only the marker is asked and, when present, every catalog script is taken as
    present. Returns the observation, whether the marker was there, and the commands sent.
    """
    shas = () if quick else catalog.shas
    with_functions = wants_functions(node, catalog, delete_unlisted)
    packet, count = _observe_packet(shas, with_functions)
    replies = await send_encoded(client, packet, count)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    flags = replies[0]
    assert isinstance(flags, list)
    marker = bool(flags[0])
    if quick:
        present = _all_present(catalog.shas) if marker else frozenset()
    elif all(flags):  # the usual full answer: skip building a set
        present = _all_present(catalog.shas)
    else:
        present = frozenset(sha for sha, flag in zip(catalog.shas, flags[1:], strict=True) if int(flag))
    libraries = parse_function_list(replies[1]) if with_functions else None
    return Observation(node=node, present_shas=present, libraries=libraries), marker, len(replies)


async def apply(client: redis.asyncio.Redis, plan: NodePlan, *, with_marker: bool = False) -> ApplyResult:
    """One pipelined round trip for everything the plan asks. Failures are per script, never fatal.

    With `with_marker`, the cache marker is loaded last: the node runs a connection's commands in
    order, so once the marker is there every load before it has been done (or has failed, which
    the caller sees in the failures and answers with full observations until it is fixed).
    """
    if plan.in_sync and not with_marker:
        return ApplyResult()
    commands: list[tuple[str | bytes, ...]] = [("SCRIPT", "LOAD", s.source) for s in plan.load_scripts]
    commands += [("FUNCTION", "LOAD", "REPLACE", f.source) for f in plan.load_functions]
    commands += [("FUNCTION", "DELETE", name) for name in plan.delete_libraries]
    if with_marker:
        commands.append(("SCRIPT", "LOAD", MARKER_SOURCE))
    replies = await send_batch(client, commands)
    loaded: list[Script] = []
    functions_loaded: list[Script] = []
    deleted: list[str] = []
    failures: list[LoadFailure] = []
    scripts_end = len(plan.load_scripts)
    functions_end = scripts_end + len(plan.load_functions)
    for script, reply in zip(plan.load_scripts, replies[:scripts_end], strict=True):
        failure = _load_failure(script, reply, expect=script.sha)
        if failure:
            failures.append(failure)
        else:
            loaded.append(script)
    for library, reply in zip(plan.load_functions, replies[scripts_end:functions_end], strict=True):
        failure = _load_failure(library, reply, expect=library.library)
        if failure:
            failures.append(failure)
        else:
            functions_loaded.append(library)
    for name, reply in zip(plan.delete_libraries, replies[functions_end:], strict=False):
        if not isinstance(reply, Exception):
            deleted.append(name)
    return ApplyResult(tuple(loaded), tuple(functions_loaded), tuple(deleted), tuple(failures), len(replies))


def _load_failure(entry: Script, reply: object, expect: str | None) -> LoadFailure | None:
    """SCRIPT LOAD answers the SHA it computed, FUNCTION LOAD the library name: check it."""
    if isinstance(reply, Exception):
        return LoadFailure(entry, _server_message(reply))
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
) -> NodeReport:
    """Observe, plan and (when `write`) apply on one node. Never raises for Redis trouble.

    `quick` trusts the cache marker (see MARKER_SOURCE); when the marker is gone the same pass
    falls back to a full observation at once.
    """
    commands = 0
    round_trips = 0
    plan: NodePlan | None = None
    try:
        observation, marker, commands = await observe(client, node, catalog, delete_unlisted, quick=quick)
        round_trips = 1
        if quick and not marker:
            observation, marker, sent = await observe(client, node, catalog, delete_unlisted)
            commands, round_trips, quick = commands + sent, 2, False
        plan = plan_node(observation, catalog, delete_unlisted)
        if not write or (plan.in_sync and marker):
            return NodeReport(
                node=node,
                state=NodeState.OK,
                plan=plan,
                commands=commands,
                round_trips=round_trips,
                present=observation.present_shas,
                quick=quick,
            )
        done = await apply(client, plan, with_marker=True)
        return NodeReport(
            node=node,
            state=NodeState.FAILING if done.failures else NodeState.OK,
            plan=plan,
            loaded=done.loaded,
            functions_loaded=done.functions_loaded,
            deleted_libraries=done.deleted_libraries,
            failures=done.failures,
            commands=commands + done.commands,
            round_trips=round_trips + 1,
            present=observation.present_shas | {s.sha for s in done.loaded},
        )
    except (TimeoutError, redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        return NodeReport(node=node, state=NodeState.DOWN, error=describe_error(exc), plan=plan, commands=commands)
    except redis.ResponseError as exc:
        # NOPERM, LOADING, BUSY, ...: the node answered but refused; report it, retry later.
        return NodeReport(node=node, state=NodeState.REFUSED, error=describe_error(exc), plan=plan, commands=commands)


async def reconcile_all(
    connector: Connector,
    topology: Topology,
    catalog: Catalog,
    *,
    write: bool = True,
    delete_unlisted: bool = False,
) -> list[NodeReport]:
    """Every node in parallel; the reports come back in topology order."""
    return list(
        await asyncio.gather(
            *(
                reconcile_node(
                    connector.client(n.host, n.port), n, catalog, write=write, delete_unlisted=delete_unlisted
                )
                for n in topology.nodes
            )
        )
    )
