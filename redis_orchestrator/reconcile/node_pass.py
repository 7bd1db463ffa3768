"""One pass on one node: observe, plan, and (when writing) apply; and what a node's passes remember.

Per node and pass: one round trip to observe (observe.py), and when something is missing one more
with the batch of loads (apply.py). `NodePass` is the one place a pass is run: the daemon's node
worker drives it on its cadence, and `settle.py` drives one per node for `converge()` and the
one-shot verbs (`plan`, `sync`, `status`). Nodes run in parallel and independently: one that is
down or frozen costs only its own timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import redis
import redis.asyncio

from redis_orchestrator.catalog.model import Catalog, Script
from redis_orchestrator.reconcile.apply import LoadFailure, apply
from redis_orchestrator.reconcile.observe import TOPOLOGY_MOVED_CODES, TopologyMoved, observe
from redis_orchestrator.reconcile.plan import NodePlan, plan_node
from redis_orchestrator.topology.model import Node, Role
from redis_orchestrator.wire.batch import send_batch
from redis_orchestrator.wire.connections import Connector, describe_error
from redis_orchestrator.wire.features import Feature, NodeFeatures, refused
from redis_orchestrator.wire.replies import error_code, text
from redis_orchestrator.wire.servers import CacheStats, ServerInfo

# A full observation (every SHA) at least this often, even while the cache marker says all is well.
FULL_CHECK_EVERY = 60


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
        plan = plan_node(seen, catalog, delete_unlisted)
        if not write or (plan.in_sync and seen.marker):
            return NodeReport(
                node=node,
                state=NodeState.OK,
                plan=plan,
                commands=commands,
                round_trips=round_trips,
                present=seen.present_shas,
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
            else seen.present_shas | {s.sha for s in done.loaded},
            role=seen.role,
            cache=seen.cache,
        )
    except TopologyMoved as exc:
        return NodeReport(node=node, state=NodeState.MOVING, error=str(exc), plan=plan, commands=commands)
    except redis.AuthenticationError as exc:
        # WRONGPASS / NOAUTH: the node answered, and refuses us. redis-py makes it a ConnectionError,
        # but a node that is down is probed every few ms to catch its restart, while this one would
        # take each probe as one more failed AUTH (12 a second, forever): retried with backoff instead.
        return NodeReport(node=node, state=NodeState.REFUSED, error=describe_error(exc), plan=plan, commands=commands)
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


class NodePass:
    """Runs passes on one node, remembering between them what makes the next one cheap and right:
    which server it is (INFO server, once per connection epoch: decides how far the cache marker is
    trusted), what it refuses (features), its evicted_scripts count, and whether its last full pass
    on the current catalog was clean (then a pass asks for the marker alone, and every SHA again
    every FULL_CHECK_EVERY passes).

    `one_shot` (the verbs): every pass is a full look and nothing more is asked (no INFO, no
    eviction watch): the marker's shortcut pays off only over many passes."""

    def __init__(self, node: Node, connector: Connector, features: NodeFeatures, *, one_shot: bool = False) -> None:
        self.node = node
        self.connector = connector
        self.features = features
        self.one_shot = one_shot
        self.server: ServerInfo | None = None
        self._evicted = -1  # evicted_scripts at the last look (-1: not read yet), where scripts can vanish
        self._trusted_catalog: Catalog | None = None
        self._passes_since_full = 0
        self._last = NodeState.UNKNOWN

    async def run(
        self, catalog: Catalog, *, write: bool = True, delete_unlisted: bool = False, cache_stats: bool = False
    ) -> NodeReport:
        client = self.connector.client(self.node.host, self.node.port)
        # Not while it is down or refusing (a wrong password): asking would be one more failed AUTH.
        if self.server is None and self._last not in (NodeState.DOWN, NodeState.REFUSED) and not self.one_shot:
            await self._learn_server(client)
        # Trust the cache marker only after a complete, clean full pass on this very catalog.
        quick = (
            not self.one_shot
            and self._trusted_catalog is catalog
            and self._passes_since_full < FULL_CHECK_EVERY
            and self._last == NodeState.OK
        )
        report = await reconcile_node(
            client,
            self.node,
            catalog,
            write=write,
            delete_unlisted=delete_unlisted,
            quick=quick,
            features=self.features,
            evictions_seen=self._evicted if self._watches_evictions() and not self.one_shot else None,
            cache_stats=cache_stats,
        )
        if report.cache.evicted_scripts is not None:
            self._evicted = report.cache.evicted_scripts
        if report.quick and report.state == NodeState.OK:
            self._passes_since_full += 1
        elif not report.quick:
            self._trusted_catalog = catalog if report.state == NodeState.OK else None
            self._passes_since_full = 0
        self._last = report.state
        return report

    def forget_server(self) -> None:
        """The node dropped or came back: it may have restarted as another server or with another
        config. Ask again what it is and what it refuses."""
        self.server = None
        self.features.reset()

    async def _learn_server(self, client: redis.asyncio.Redis) -> None:
        """INFO server + stats, once: which server this is decides how far the cache marker is trusted."""
        try:
            server_reply, stats_reply = await send_batch(client, [("INFO", "server"), ("INFO", "stats")])
        except (redis.RedisError, OSError):
            return  # down or frozen: the pass itself will say so
        if isinstance(server_reply, Exception) or isinstance(stats_reply, Exception):
            failed = server_reply if isinstance(server_reply, Exception) else stats_reply
            assert isinstance(failed, Exception)
            if refused(failed):
                self.features.refuse(Feature.EVICTION_WATCH, "INFO", failed)
            return
        self.server = ServerInfo.parse(text(server_reply), text(stats_reply))

    def _watches_evictions(self) -> bool:
        """Where scripts can leave the cache one at a time, or where we could not tell."""
        return self.server is None or self.server.scripts_can_vanish
