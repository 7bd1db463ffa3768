"""Bring one node's script cache and function libraries to the catalog: observe, plan, apply.

Per node and pass: one round trip to observe (`SCRIPT EXISTS sha...`, plus `FUNCTION LIST WITHCODE`
on primaries when the catalog has functions, pipelined together), and when something is missing one
more round trip with a pipelined batch of `SCRIPT LOAD` / `FUNCTION LOAD REPLACE`. Nodes run in
parallel and independently: one that is down or frozen costs only its own timeout.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import redis
import redis.asyncio

from orchestrator.batch import encode, send_batch, send_encoded
from orchestrator.catalog import Catalog, Script
from orchestrator.connections import Connector, describe_error
from orchestrator.plan import NodePlan, Observation, plan_node, wants_functions
from orchestrator.topology import Node, Topology


@dataclass(frozen=True)
class LoadFailure:
    script: Script
    message: str

    def describe(self, node: Node) -> str:
        return f"{self.script.label} ({self.script.file}) refused by {node.address}: {self.message}"


@dataclass(frozen=True)
class NodeReport:
    """The outcome of one pass on one node."""

    node: Node
    reachable: bool
    error: str | None = None
    plan: NodePlan | None = None
    loaded: tuple[Script, ...] = ()
    functions_loaded: tuple[Script, ...] = ()
    deleted_libraries: tuple[str, ...] = ()
    failures: tuple[LoadFailure, ...] = ()
    commands: int = 0  # commands sent to the node in this pass
    round_trips: int = 0
    present: frozenset[str] = field(default_factory=frozenset)

    @property
    def missing_after(self) -> tuple[Script, ...]:
        if self.plan is None:
            return ()
        done = {s.sha for s in self.loaded} | {s.sha for s in self.functions_loaded}
        pending = self.plan.load_scripts + self.plan.load_functions
        return tuple(s for s in pending if s.sha not in done)

    @property
    def in_sync(self) -> bool:
        return self.reachable and self.error is None and not self.missing_after and not self.failures


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _as_map(value: object) -> dict[str, object]:
    if isinstance(value, Mapping):
        return {_text(k): v for k, v in value.items()}
    items = list(value)  # type: ignore[call-overload]
    return {_text(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def parse_function_list(reply: object) -> dict[str, bytes]:
    """library name -> code, from FUNCTION LIST WITHCODE. One library, RESP2 shape:

        1) "library_name" 2) "orchestrator_lib" 3) "engine" 4) "LUA"
        5) "functions" 6) 1) 1) "name" 2) "capped_incr_fn" 3) "description" 4) (nil) 5) "flags" 6) (empty)
        7) "library_code" 8) "#!lua name=orchestrator_lib\n..."
    """
    libraries: dict[str, bytes] = {}
    for item in reply or []:  # type: ignore[attr-defined]
        library = _as_map(item)
        code = library.get("library_code", b"")
        libraries[_text(library.get("library_name", ""))] = code if isinstance(code, bytes) else str(code).encode()
    return libraries


@functools.lru_cache(maxsize=16)
def _observe_packet(shas: tuple[str, ...], with_functions: bool) -> tuple[bytes, int]:
    commands: list[tuple[str, ...]] = []
    if shas:
        commands.append(("SCRIPT", "EXISTS", *shas))
    if with_functions:
        commands.append(("FUNCTION", "LIST", "WITHCODE"))
    return encode(commands), len(commands)


@functools.lru_cache(maxsize=16)
def _all_present(shas: tuple[str, ...]) -> frozenset[str]:
    return frozenset(shas)


async def observe(
    client: redis.asyncio.Redis, node: Node, catalog: Catalog, delete_unlisted: bool = False
) -> tuple[Observation, int]:
    """One round trip. Returns the observation and the number of commands sent."""
    shas = catalog.shas
    with_functions = wants_functions(node, catalog, delete_unlisted)
    if not shas and not with_functions:
        return Observation(node=node, present_shas=frozenset()), 0
    packet, count = _observe_packet(shas, with_functions)
    replies = await send_encoded(client, packet, count)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    present: frozenset[str] = frozenset()
    libraries = None
    index = 0
    if shas:
        flags = replies[index]
        assert isinstance(flags, list)
        if all(flags):  # the steady state: skip building a set per node per interval
            present = _all_present(shas)
        else:
            present = frozenset(sha for sha, flag in zip(shas, flags, strict=True) if int(flag))
        index += 1
    if with_functions:
        libraries = parse_function_list(replies[index])
    return Observation(node=node, present_shas=present, libraries=libraries), len(replies)


async def apply(client: redis.asyncio.Redis, plan: NodePlan) -> tuple[list[Script], list[Script], list[str], list[LoadFailure], int]:
    """One pipelined round trip for everything the plan asks. Failures are per script, never fatal."""
    if plan.in_sync:
        return [], [], [], [], 0
    commands: list[tuple[str | bytes, ...]] = [("SCRIPT", "LOAD", s.source) for s in plan.load_scripts]
    commands += [("FUNCTION", "LOAD", "REPLACE", f.source) for f in plan.load_functions]
    commands += [("FUNCTION", "DELETE", name) for name in plan.delete_libraries]
    replies = await send_batch(client, commands)
    loaded: list[Script] = []
    functions_loaded: list[Script] = []
    deleted: list[str] = []
    failures: list[LoadFailure] = []
    for script, reply in zip(plan.load_scripts, replies, strict=False):
        if isinstance(reply, redis.ConnectionError | redis.TimeoutError):
            raise reply
        if isinstance(reply, Exception):
            failures.append(LoadFailure(script, _server_message(reply)))
        elif _text(reply).lower() != script.sha:
            failures.append(LoadFailure(script, f"server answered sha {_text(reply)}, expected {script.sha}"))
        else:
            loaded.append(script)
    rest = replies[len(plan.load_scripts) :]
    for library, reply in zip(plan.load_functions, rest, strict=False):
        if isinstance(reply, redis.ConnectionError | redis.TimeoutError):
            raise reply
        if isinstance(reply, Exception):
            failures.append(LoadFailure(library, _server_message(reply)))
        else:
            functions_loaded.append(library)
    for name, reply in zip(plan.delete_libraries, rest[len(plan.load_functions) :], strict=False):
        if not isinstance(reply, Exception):
            deleted.append(name)
    return loaded, functions_loaded, deleted, failures, len(replies)


def _server_message(exc: Exception) -> str:
    return " ".join(str(exc).split())


async def reconcile_node(
    client: redis.asyncio.Redis,
    node: Node,
    catalog: Catalog,
    *,
    write: bool = True,
    delete_unlisted: bool = False,
) -> NodeReport:
    """Observe, plan and (when `write`) apply on one node. Never raises for Redis trouble."""
    commands = 0
    round_trips = 0
    plan: NodePlan | None = None
    try:
        observation, commands = await observe(client, node, catalog, delete_unlisted)
        round_trips = 1 if commands else 0
        plan = plan_node(observation, catalog, delete_unlisted)
        if not write or plan.in_sync:
            return NodeReport(
                node=node, reachable=True, plan=plan, commands=commands, round_trips=round_trips,
                present=observation.present_shas,
            )
        loaded, functions_loaded, deleted, failures, sent = await apply(client, plan)
        return NodeReport(
            node=node,
            reachable=True,
            plan=plan,
            loaded=tuple(loaded),
            functions_loaded=tuple(functions_loaded),
            deleted_libraries=tuple(deleted),
            failures=tuple(failures),
            commands=commands + sent,
            round_trips=round_trips + 1,
            present=observation.present_shas | {s.sha for s in loaded},
        )
    except (TimeoutError, redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        return NodeReport(node=node, reachable=False, error=describe_error(exc), plan=plan, commands=commands)
    except redis.ResponseError as exc:
        # NOPERM, LOADING, BUSY, ...: the node answered but refused; report it, retry later.
        return NodeReport(node=node, reachable=True, error=describe_error(exc), plan=plan, commands=commands)


async def reconcile_all(
    connector: Connector,
    topology: Topology,
    catalog: Catalog,
    *,
    write: bool = True,
    delete_unlisted: bool = False,
    nodes: Sequence[Node] | None = None,
) -> list[NodeReport]:
    """Every node in parallel; the reports come back in topology order."""
    targets = list(nodes if nodes is not None else topology.nodes)
    return list(
        await asyncio.gather(
            *(
                reconcile_node(
                    connector.client(n.host, n.port), n, catalog, write=write, delete_unlisted=delete_unlisted
                )
                for n in targets
            )
        )
    )
