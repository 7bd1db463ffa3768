"""`AsyncScripts`: call the catalog's scripts and functions by name, over a redis.asyncio client.

    from redis.asyncio.cluster import RedisCluster
    from redis_orchestrator.client import AsyncScripts, ScriptError

    rc = RedisCluster(host="10.0.0.1", port=7000)
    scripts = await AsyncScripts.from_redis(rc, key="{redis-orchestrator}:manifest")
    try:
        new_from, new_to, applied = await scripts.run(
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

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.exceptions

from redis_orchestrator.client._async.exchange import exchange
from redis_orchestrator.client._async.pipeline import AsyncScriptPipeline
from redis_orchestrator.client._async.routing import AsyncRoute, route_for
from redis_orchestrator.client._async.transaction import AsyncTx, run_transaction
from redis_orchestrator.client.base import (
    DEFAULT_MANIFEST_KEY,
    MAX_REDIRECTS,
    ScriptsBase,
    acked_count,
    no_manifest,
    redirect_pause,
    redirect_target,
    wait_command,
)
from redis_orchestrator.client.calls import Call, Command, is_missing, is_redirect
from redis_orchestrator.client.counters import Event
from redis_orchestrator.client.errors import ManifestError, NodeUnreachable
from redis_orchestrator.client.keys import Key
from redis_orchestrator.client.manifest import MANIFEST_LIMIT, Manifest, parse_json, too_big
from redis_orchestrator.client.optimistic import Backoff, TransactionResult
from redis_orchestrator.client.tracing import Record


class AsyncScripts(ScriptsBase[AsyncRoute]):
    """The catalog's scripts and functions, called by name over one redis.asyncio client."""

    def __init__(self, manifest: Manifest, client: Any = None, **options: Any) -> None:
        super().__init__(manifest, client, **options)
        self._route = route_for(client) if client is not None else None

    @classmethod
    async def from_redis(cls, client: Any, key: str = DEFAULT_MANIFEST_KEY, **options: Any) -> AsyncScripts:
        """Read the manifest the daemon keeps at `manifest.key` (set it in the daemon's config).
        Its size is asked first: a manifest over MANIFEST_LIMIT is refused without being read."""
        try:
            size = await client.strlen(key)
            raw = await client.get(key) if 0 < size <= MANIFEST_LIMIT else None
        except redis.exceptions.ResponseError as exc:  # WRONGTYPE: the key holds something else
            raise ManifestError(key, [f"cannot read the manifest at {key}: {exc}"]) from exc
        if size > MANIFEST_LIMIT:
            raise too_big(key, size)
        if raw is None:
            raise no_manifest(key)
        return cls(parse_json(raw, key), client, **options)

    # ------------------------------------------------------------------ calls

    async def run(
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
        with self.telemetry.call(call) as record:
            reply, acked = await self.send(call, wait, record)
            return self.replicated(call, reply, acked, wait_replicas)

    async def send(self, call: Call, wait: Command | None, record: Record) -> tuple[Any, int]:
        """Send a prepared call; its value and, with `wait`, WAIT's count of replicas. `record` is
        told where it went, its NOSCRIPT repair and its redirects (tracing.py).

        Followed, because nothing ran: MOVED (the slot table is re-read), ASK (ASKING to the node
        named), TRYAGAIN and CLUSTERDOWN (after a pause), and a node we could not connect to."""
        route = self.route
        self.policy.sent(call)
        commands = [call.command] if wait is None else [call.command, wait]
        node = await route.node(call.slot, call.readonly)
        asking = False
        for attempt in range(MAX_REDIRECTS + 1):
            sent = [("ASKING",), *commands] if asking else commands
            outcome: Any = None  # stays None when no connection could be made
            try:
                async with route.connection(node) as conn:
                    record.server(conn)
                    replies = await exchange(conn, sent)
                    replies = replies[-len(commands) :]
                    if is_missing(replies[0], call):
                        load = self.policy.repair(call, route.name(node), replies[0])
                        record.noscript(route.name(node), (call,))
                        again = await exchange(conn, [load, *sent])
                        replies = self.reloaded(call, route.name(node), again, len(commands))
                outcome = replies[0]
                if not is_redirect(outcome) or attempt == MAX_REDIRECTS:
                    return self.policy.result(call, outcome), acked_count(replies, wait)
            except NodeUnreachable:
                if attempt == MAX_REDIRECTS:
                    raise
            self.counters.add(Event.REDIRECTS, call.label)
            record.redirect(outcome, attempt + 1)
            node, asking = await self._redirect(call, node, outcome, attempt)
        raise AssertionError("unreachable")

    async def _redirect(self, call: Call, node: Any, outcome: Any, attempt: int) -> tuple[Any, bool]:
        """Where the next attempt goes, and whether it needs ASKING."""
        address = redirect_target(outcome)
        if address is not None:
            return await self.route.redirected(node, address), True
        if isinstance(outcome, redis.exceptions.MovedError):
            await self.route.moved(outcome)
        else:
            await asyncio.sleep(redirect_pause(attempt))
        return await self.route.node(call.slot, call.readonly), False

    # ------------------------------------------------------------------ pipelines and transactions

    def pipeline(self, transaction: bool = False) -> AsyncScriptPipeline:
        """Queue calls by name; `await execute()` sends them (see pipeline.py)."""
        return AsyncScriptPipeline(self, transaction=transaction)

    async def transaction(
        self,
        keys: Sequence[Key],
        fn: Callable[[AsyncTx], Awaitable[Any]],
        *,
        retries: int = 5,
        backoff: Backoff | None = None,
        uses: Sequence[str] | None = None,
        name: str = "transaction",
        raise_on_error: bool = True,
    ) -> TransactionResult:
        """WATCH `keys`, `await fn(tx)` reads and queues (`async def fn(tx)`), EXEC; retried on conflict
        (see transaction.py)."""
        return await run_transaction(
            self,
            keys,
            fn,
            retries=retries,
            backoff=backoff if backoff is not None else Backoff(),
            uses=uses,
            name=name,
            raise_on_error=raise_on_error,
        )
