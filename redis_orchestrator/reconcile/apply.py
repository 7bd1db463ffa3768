"""Loading what a node lacks: one pipelined batch of `SCRIPT LOAD` / `FUNCTION LOAD REPLACE` /
`FUNCTION DELETE`, sent window by window, each reply checked (SCRIPT LOAD answers the SHA it computed,
FUNCTION LOAD the library's name). A load the node refuses is a failure of that script, never of the
batch."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio

from redis_orchestrator.catalog.model import Catalog, Script
from redis_orchestrator.reconcile.observe import MARKER_SOURCE
from redis_orchestrator.reconcile.plan import NodePlan
from redis_orchestrator.topology.model import Node
from redis_orchestrator.wire.batch import Window, link, windows
from redis_orchestrator.wire.connections import describe_error
from redis_orchestrator.wire.replies import error_code, text


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
