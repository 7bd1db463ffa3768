"""One look at a node, in one round trip: which of the catalog's scripts its cache holds, and on a
primary which libraries it has, what it says it is (ROLE) and what INFO says of its script cache.

    SCRIPT EXISTS <marker> [sha...]        -> [1, 0, ...] one flag per sha
    FUNCTION LIST WITHCODE                 -> the libraries and their code (primaries, when the catalog has any)
    ROLE                                   -> master | slave ... (with FUNCTION LIST: decides FUNCTION LOAD)
    INFO stats / INFO memory               -> evicted_scripts / number_of_cached_scripts ... (when asked)
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
import redis.asyncio

from redis_orchestrator.catalog.model import Catalog, sha1_hex
from redis_orchestrator.reconcile.plan import Observation, wants_functions
from redis_orchestrator.topology.model import Node, Role
from redis_orchestrator.topology.role import parse_role
from redis_orchestrator.wire.batch import encode, send_encoded
from redis_orchestrator.wire.features import Feature, NodeFeatures, refused
from redis_orchestrator.wire.replies import as_list, as_map, error_code, text
from redis_orchestrator.wire.servers import CacheStats, evicted_scripts, info_fields

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
) -> Observation:
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
    role = own_role(answers["role"]) if "role" in answers else None
    libraries = parse_function_list(answers["functions"]) if "functions" in answers else None
    if role == Role.REPLICA:
        libraries = None  # it says it is a replica: it gets its libraries by replication, never FUNCTION LOAD
    memory_fields = info_fields(text(answers["memory"])) if "memory" in answers else {}
    cache = CacheStats(
        cached_scripts=_int(memory_fields.get("number_of_cached_scripts")),
        eval_memory_bytes=_int(memory_fields.get("used_memory_scripts_eval")),
        evicted_scripts=evicted_scripts(_raw(answers["stats"])) if "stats" in answers else None,
    )
    return Observation(node, present, libraries, marker=marker, commands=count, role=role, cache=cache)


_COMMAND_OF = {"functions": "FUNCTION LIST", "role": "ROLE", "stats": "INFO stats", "memory": "INFO memory"}


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _raw(value: object) -> bytes | str:
    return value if isinstance(value, bytes | str) else str(value)


def own_role(reply: object) -> Role | None:
    """What the node says it is, from its ROLE reply (None for anything but a primary or a replica)."""
    try:
        return parse_role(reply).role
    except ValueError:
        return None
