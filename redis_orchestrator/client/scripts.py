"""`Scripts`: call the catalog's scripts and functions by name, over a sync redis-py client.

    import redis
    from redis.cluster import RedisCluster
    from redis_orchestrator.client import Scripts, ScriptError

    rc = RedisCluster(host="10.0.0.1", port=7000)
    scripts = Scripts.from_redis(rc, key="{redis-orchestrator}:manifest")
    try:
        new_from, new_to, applied = scripts.run(
            "transfer",
            keys=["{ledger}:acct:alice", "{ledger}:acct:bob", "{ledger}:xfer:t-123"],
            args=[250],
        )
    except ScriptError as exc:
        if exc.code != "INSUFFICIENT_FUNDS":
            raise

What `run` sends, and where, is in calls.py; pipelines in pipeline.py; transactions in transaction.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import redis.exceptions

from redis_orchestrator.client.calls import Call, Fallback, Options, Policy, is_missing, is_redirect, prepare
from redis_orchestrator.client.counters import Counters, Event
from redis_orchestrator.client.errors import ManifestError, NodeUnreachable, NotReplicated, ScriptMissing
from redis_orchestrator.client.keys import Key
from redis_orchestrator.client.manifest import Manifest, load_manifest, parse_json
from redis_orchestrator.client.pipeline import ScriptPipeline
from redis_orchestrator.client.routing import ClusterRoute, SingleRoute, sync_route
from redis_orchestrator.client.transaction import Backoff, TransactionResult, Tx, run_transaction
from redis_orchestrator.client.wire import Command, exchange

DEFAULT_MANIFEST_KEY = "{redis-orchestrator}:manifest"
MAX_REDIRECTS = 5  # MOVED/ASK/TRYAGAIN/CLUSTERDOWN replies followed before giving up


def redirect_pause(attempt: int) -> float:
    """TRYAGAIN / CLUSTERDOWN: the cluster needs a moment (a failover in progress)."""
    return min(0.05 * (1 << attempt), 0.5)


def redirect_target(reply: object) -> str | None:
    """The `host:port` an ASK sends us to; None for the others (MOVED names the slot's new owner for
    good: Route.moved takes it into the slot table). redis-py's MovedError is an AskError."""
    if isinstance(reply, redis.exceptions.AskError) and not isinstance(reply, redis.exceptions.MovedError):
        return f"{reply.host}:{reply.port}"
    return None


def wait_command(replicas: int, timeout_ms: int) -> Command | None:
    return ("WAIT", replicas, timeout_ms) if replicas > 0 else None


def acked_count(replies: Sequence[Any], wait: Command | None) -> int:
    """WAIT's reply: how many replicas acknowledged (0 when WAIT was not sent or failed)."""
    if wait is None or isinstance(replies[1], Exception):
        return 0
    return int(replies[1])


def manifest_from_config(path: str | os.PathLike[str]) -> Manifest:
    """The catalog itself, read as the daemon reads it (for tests and local use)."""
    # Imported here: an application reading the manifest needs neither YAML nor the daemon's config.
    from redis_orchestrator.config.loader import load_config

    return load_manifest(load_config(path).catalog.manifest())


class ScriptsBase:
    """What Scripts and AsyncScripts share: the manifest, the options, the counters, call preparation.

    Options (all keyword-only, shared by from_redis / from_manifest / from_config):
      fallback="load"     after NOSCRIPT: SCRIPT LOAD the catalog's bytes on that node and retry once
                          (counted in .counters.fallbacks and logged); "raise": ScriptMissing instead
      check_keys=True     refuse keys that do not match the catalog's `keys:` patterns
      check_slots=True    refuse keys in two hash slots, on a single node too (as production would)
      counters=None       a Counters to share (bind() shares it); registry: export to prometheus_client
    """

    def __init__(
        self,
        manifest: Manifest,
        client: Any = None,
        *,
        fallback: Fallback | str = Fallback.LOAD,
        check_keys: bool = True,
        check_slots: bool = True,
        counters: Counters | None = None,
        registry: Any = None,
    ) -> None:
        self.manifest = manifest
        self.options = Options(Fallback(fallback), check_keys, check_slots)
        self.counters = counters if counters is not None else Counters()
        self.policy = Policy(self.options, self.counters)
        self.client = client
        if registry is not None:
            self.counters.register(registry)

    @classmethod
    def from_manifest(
        cls, source: str | os.PathLike[str] | Mapping[str, Any] | bytes, client: Any = None, **options: Any
    ) -> Self:
        """Read the JSON `redis-orchestrator manifest` prints: a path, the text, or the parsed mapping."""
        return cls(load_manifest(source), client, **options)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], client: Any = None, **options: Any) -> Self:
        """Read the catalog itself from the daemon's config file (tests, local use)."""
        return cls(manifest_from_config(path), client, **options)

    def bind(self, client: Any) -> Self:
        """The same catalog, options and counters over another client (e.g. Sentinel's slave_for)."""
        return type(self)(
            self.manifest,
            client,
            fallback=self.options.fallback,
            check_keys=self.options.check_keys,
            check_slots=self.options.check_slots,
            counters=self.counters,
        )

    @property
    def names(self) -> tuple[str, ...]:
        return self.manifest.names

    def replicated(self, call: Call, reply: Any, acked: int, wanted: int) -> Any:
        if wanted > 0 and acked < wanted:
            self.counters.add(Event.NOT_REPLICATED, call.label)
            raise NotReplicated(call.label, reply, acked, wanted)
        return reply

    def reloaded(self, call: Call, node: str, replies: Sequence[Any], n: int) -> list[Any]:
        """The replies after [load, call...]: the load's checked, the call's returned."""
        self.policy.loaded(call, node, replies[0])
        tail = list(replies[-n:])
        if is_missing(tail[0], call):
            raise ScriptMissing(call.label, node, "still missing right after loading it")
        return tail

    def prepare(
        self, name: str, keys: Sequence[Key] = (), args: Sequence[Any] = (), version: str | int | None = None
    ) -> Call:
        """Resolve and check a call without sending it (UnknownScript, CrossSlotError, KeyPatternError)."""
        return prepare(self.manifest, self.options, name, keys, args, version)


def no_manifest(key: str) -> ManifestError:
    return ManifestError(
        key,
        [
            f'no manifest at {key}: run the daemon with `manifest: {{key: "{key}"}}` in its config '
            "(it writes the key), or use from_manifest with `redis-orchestrator manifest` output"
        ],
    )


class Scripts(ScriptsBase):
    """The catalog's scripts and functions, called by name over one sync redis-py client."""

    def __init__(self, manifest: Manifest, client: Any = None, **options: Any) -> None:
        super().__init__(manifest, client, **options)
        self._route: SingleRoute | ClusterRoute | None = sync_route(client) if client is not None else None

    @classmethod
    def from_redis(cls, client: Any, key: str = DEFAULT_MANIFEST_KEY, **options: Any) -> Scripts:
        """Read the manifest the daemon keeps at `manifest.key` (set it in the daemon's config)."""
        raw = client.get(key)
        if raw is None:
            raise no_manifest(key)
        return cls(parse_json(raw, key), client, **options)

    @property
    def route(self) -> SingleRoute | ClusterRoute:
        if self._route is None:
            raise TypeError("this Scripts has no client: pass client= when making it, or use scripts.bind(client)")
        return self._route

    # ------------------------------------------------------------------ calls

    def run(
        self,
        name: str,
        keys: Sequence[Key] = (),
        args: Sequence[Any] = (),
        *,
        version: str | int | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> Any:
        """Call `name` (its current version unless `version`) on the node serving its keys' slot.

        wait_replicas=N sends `WAIT N wait_timeout_ms` right behind the call, on the same connection and
        in the same round trip; fewer acknowledgements raise NotReplicated (the reply is in `.reply`).

        Never re-sent after a dropped connection or a timeout: whether it ran is unknown. Retry
        yourself, with an idempotency key (transfer's KEYS[3]) for anything that must happen once.
        """
        call = self.prepare(name, keys, args, version)
        wait = wait_command(wait_replicas, wait_timeout_ms)
        reply, acked = self.send(call, wait)
        return self.replicated(call, reply, acked, wait_replicas)

    def send(self, call: Call, wait: Command | None = None) -> tuple[Any, int]:
        """Send a prepared call; its value and, with `wait`, WAIT's count of replicas.

        Followed, because nothing ran: MOVED (the slot table is re-read), ASK (ASKING to the node
        named), TRYAGAIN and CLUSTERDOWN (after a pause), and a node we could not connect to."""
        route = self.route
        self.policy.sent(call)
        commands = [call.command] if wait is None else [call.command, wait]
        node = route.node(call.slot, call.readonly)
        asking = False
        for attempt in range(MAX_REDIRECTS + 1):
            sent = [("ASKING",), *commands] if asking else commands
            outcome: Any = None  # stays None when no connection could be made
            try:
                with route.connection(node) as conn:
                    replies = exchange(conn, sent)[-len(commands) :]
                    if is_missing(replies[0], call):
                        load = self.policy.repair(call, route.name(node), replies[0])
                        replies = self.reloaded(call, route.name(node), exchange(conn, [load, *sent]), len(commands))
                outcome = replies[0]
                if not is_redirect(outcome) or attempt == MAX_REDIRECTS:
                    return self.policy.result(call, outcome), acked_count(replies, wait)
            except NodeUnreachable:
                if attempt == MAX_REDIRECTS:
                    raise
            self.counters.add(Event.REDIRECTS, call.label)
            node, asking = self._redirect(call, node, outcome, attempt)
        raise AssertionError("unreachable")

    def _redirect(self, call: Call, node: Any, outcome: Any, attempt: int) -> tuple[Any, bool]:
        """Where the next attempt goes, and whether it needs ASKING."""
        address = redirect_target(outcome)
        if address is not None:
            return self.route.redirected(node, address), True
        if isinstance(outcome, redis.exceptions.MovedError):
            self.route.moved(outcome)
        else:
            time.sleep(redirect_pause(attempt))
        return self.route.node(call.slot, call.readonly), False

    # ------------------------------------------------------------------ pipelines and transactions

    def pipeline(self, transaction: bool = False) -> ScriptPipeline:
        """Queue calls by name; `execute()` sends them (see pipeline.py)."""
        return ScriptPipeline(self, transaction=transaction)

    def transaction(
        self,
        keys: Sequence[Key],
        fn: Callable[[Tx], Any],
        *,
        retries: int = 5,
        backoff: Backoff | None = None,
        uses: Sequence[str] | None = None,
        name: str = "transaction",
        raise_on_error: bool = True,
    ) -> TransactionResult:
        """WATCH `keys`, `fn(tx)` reads and queues, EXEC; retried on conflict (see transaction.py)."""
        return run_transaction(
            self,
            keys,
            fn,
            retries=retries,
            backoff=backoff if backoff is not None else Backoff(),
            uses=uses,
            name=name,
            raise_on_error=raise_on_error,
        )
