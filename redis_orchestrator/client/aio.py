"""The asyncio variant: `AsyncScripts` over redis.asyncio's Redis, RedisCluster and Sentinel clients.

    from redis.asyncio.cluster import RedisCluster
    from redis_orchestrator.client import AsyncScripts

    rc = RedisCluster(host="10.0.0.1", port=7000)
    scripts = await AsyncScripts.from_redis(rc)
    await scripts.run("transfer", keys=[...], args=[250])

    async with scripts.pipeline() as pipe:
        pipe.run("capped_incr", keys=["{quota}:alice"], args=[1, 100])
        replies = await pipe.execute()

    async def move(tx):
        balance = int(await tx.get("{acct}:alice") or 0)
        tx.multi()
        await tx.execute_command("DECRBY", "{acct}:alice", 10)   # queued: returns None
    await scripts.transaction(["{acct}:alice"], move)

Every decision (what is sent, what a reply means, what is repaired, counted and logged) is the sync
client's, from calls.py, pipeline.py and transaction.py; only the waiting differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import redis.exceptions

from redis_orchestrator.client.calls import Call, is_missing, is_redirect
from redis_orchestrator.client.counters import Event
from redis_orchestrator.client.errors import NodeUnreachable, TransactionAborted, TransactionConflict
from redis_orchestrator.client.keys import Key, key_text
from redis_orchestrator.client.manifest import Manifest, parse_json
from redis_orchestrator.client.pipeline import (
    MAX_ROUNDS,
    ExecOutcome,
    Presence,
    RepairPlan,
    exec_replies,
    load_missing,
    one_slot,
    settle,
)
from redis_orchestrator.client.routing import AsyncClusterRoute, AsyncSingleRoute, async_route
from redis_orchestrator.client.scripts import (
    DEFAULT_MANIFEST_KEY,
    MAX_REDIRECTS,
    ScriptsBase,
    acked_count,
    no_manifest,
    redirect_pause,
    redirect_target,
    wait_command,
)
from redis_orchestrator.client.transaction import (
    Backoff,
    Queue,
    TransactionResult,
    presence_for,
    results,
    transaction_slot,
)
from redis_orchestrator.client.wire import Command, aexchange


class AsyncScripts(ScriptsBase):
    """The catalog's scripts and functions, called by name over one redis.asyncio client."""

    def __init__(self, manifest: Manifest, client: Any = None, **options: Any) -> None:
        super().__init__(manifest, client, **options)
        self._route: AsyncSingleRoute | AsyncClusterRoute | None = async_route(client) if client is not None else None

    @classmethod
    async def from_redis(cls, client: Any, key: str = DEFAULT_MANIFEST_KEY, **options: Any) -> AsyncScripts:
        raw = await client.get(key)
        if raw is None:
            raise no_manifest(key)
        return cls(parse_json(raw, key), client, **options)

    @property
    def route(self) -> AsyncSingleRoute | AsyncClusterRoute:
        if self._route is None:
            raise TypeError("this AsyncScripts has no client: pass client= when making it, or use bind(client)")
        return self._route

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
        """As Scripts.run."""
        call = self.prepare(name, keys, args, version)
        wait = wait_command(wait_replicas, wait_timeout_ms)
        reply, acked = await self.send(call, wait)
        return self.replicated(call, reply, acked, wait_replicas)

    async def send(self, call: Call, wait: Command | None = None) -> tuple[Any, int]:
        route = self.route
        self.policy.sent(call)
        commands = [call.command] if wait is None else [call.command, wait]
        node = await route.node(call.slot, call.readonly)
        asking = False
        for attempt in range(MAX_REDIRECTS + 1):
            sent = [("ASKING",), *commands] if asking else commands
            outcome: Any = None
            try:
                async with route.connection(node) as conn:
                    replies = (await aexchange(conn, sent))[-len(commands) :]
                    if is_missing(replies[0], call):
                        load = self.policy.repair(call, route.name(node), replies[0])
                        got = await aexchange(conn, [load, *sent])
                        replies = self.reloaded(call, route.name(node), got, len(commands))
                outcome = replies[0]
                if not is_redirect(outcome) or attempt == MAX_REDIRECTS:
                    return self.policy.result(call, outcome), acked_count(replies, wait)
            except NodeUnreachable:
                if attempt == MAX_REDIRECTS:
                    raise
            self.counters.add(Event.REDIRECTS, call.label)
            node, asking = await self._redirect(call, node, outcome, attempt)
        raise AssertionError("unreachable")

    async def _redirect(self, call: Call, node: Any, outcome: Any, attempt: int) -> tuple[Any, bool]:
        address = redirect_target(outcome)
        if address is not None:
            return await self.route.redirected(node, address), True
        if isinstance(outcome, redis.exceptions.MovedError):
            await self.route.moved(outcome)
        else:
            await asyncio.sleep(redirect_pause(attempt))
        return await self.route.node(call.slot, call.readonly), False

    def pipeline(self, transaction: bool = False) -> AsyncScriptPipeline:
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
        """As Scripts.transaction, with `async def fn(tx)`."""
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


class AsyncScriptPipeline:
    """As pipeline.ScriptPipeline; `run` queues (no await), `await execute()` sends."""

    def __init__(self, scripts: AsyncScripts, transaction: bool = False) -> None:
        self.scripts = scripts
        self.transaction = transaction
        self.calls: list[Call] = []

    def run(
        self, name: str, keys: Sequence[Key] = (), args: Sequence[Any] = (), *, version: str | int | None = None
    ) -> AsyncScriptPipeline:
        call = self.scripts.prepare(name, keys, args, version)
        if self.transaction and self.scripts.options.check_slots:
            one_slot([*self.calls, call], "pipeline(transaction=True)")
        self.calls.append(call)
        return self

    def __len__(self) -> int:
        return len(self.calls)

    async def __aenter__(self) -> AsyncScriptPipeline:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.calls = []

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        calls, self.calls = self.calls, []
        if not calls:
            return []
        for call in calls:
            self.scripts.policy.sent(call)
        replies = await (self._transaction(calls) if self.transaction else self._grouped(calls))
        return settle(self.scripts.policy, calls, replies, raise_on_error)

    async def _grouped(self, calls: list[Call]) -> list[Any]:
        route = self.scripts.route
        replies: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for round_number in range(MAX_ROUNDS):
            groups: dict[Any, list[int]] = {}
            for index in pending:
                node = await route.node(calls[index].slot, calls[index].readonly)
                groups.setdefault(node, []).append(index)
            again: list[int] = []
            for node, indexes in groups.items():
                batch = [calls[i] for i in indexes]
                try:
                    async with route.connection(node) as conn:
                        got = await aexchange(conn, [c.command for c in batch])
                        plan = RepairPlan.of(self.scripts.policy, route.name(node), batch, got)
                        if plan.resend:
                            plan.apply(batch, got, await aexchange(conn, plan.commands(batch)))
                except NodeUnreachable as unreachable:
                    got = [unreachable] * len(indexes)  # nothing sent: tried again next round
                for index, reply in zip(indexes, got, strict=True):
                    replies[index] = reply
                    if is_redirect(reply) and round_number < MAX_ROUNDS - 1:
                        again.append(index)
            if not again:
                break
            self.scripts.counters.add(Event.REDIRECTS, "pipeline", len(again))
            await route.refresh()
            await asyncio.sleep(0.05 * round_number)
            pending = again
        return replies

    async def _transaction(self, calls: list[Call]) -> list[Any]:
        route = self.scripts.route
        slot = one_slot(calls, "pipeline(transaction=True)") if self.scripts.options.check_slots else calls[0].slot
        presence = Presence.of(calls)
        node = await route.node(slot, False)
        for round_number in range(MAX_ROUNDS):
            name = route.name(node)
            try:
                outcome = await self._exec_once(node, name, calls, presence)
            except NodeUnreachable as unreachable:
                outcome = ExecOutcome(None, queue_errors=(unreachable,))
            if outcome.replies is not None:
                return exec_replies(calls, outcome.replies, name)
            if not outcome.redirected or round_number == MAX_ROUNDS - 1:
                self.scripts.counters.add(Event.ABORTED, "pipeline")
                raise TransactionAborted([str(e) for e in outcome.queue_errors])
            self.scripts.counters.add(Event.REDIRECTS, "pipeline")
            await route.refresh()
            await asyncio.sleep(0.05 * round_number)
            node = await route.node(slot, False)
        raise AssertionError("unreachable")

    async def _exec_once(self, node: Any, name: str, calls: list[Call], presence: Presence) -> ExecOutcome:
        policy = self.scripts.policy
        async with self.scripts.route.connection(node) as conn:
            checked = presence.missing(await aexchange(conn, presence.commands()))
            if isinstance(checked, Exception):
                if not is_redirect(checked):
                    raise checked
                return ExecOutcome(None, queue_errors=(checked,))
            loaders, loads = load_missing(policy, calls, checked, name)
            if loads:
                for call, loaded in zip(loaders, await aexchange(conn, loads), strict=True):
                    policy.loaded(call, name, loaded)
            return ExecOutcome.read(await aexchange(conn, [("MULTI",), *(c.command for c in calls), ("EXEC",)]))


class AsyncTx:
    """As transaction.Tx, awaited. After multi(), `await tx.execute_command(...)` queues and returns None."""

    def __init__(self, scripts: AsyncScripts, conn: Any, queue: Queue, node: str) -> None:
        self._scripts = scripts
        self._conn = conn
        self._queue = queue
        self._node = node

    def multi(self) -> None:
        self._queue.multi = True

    async def execute_command(self, *args: Any) -> Any:
        if self._queue.multi:
            self._queue.items.append(tuple(args))
            return None
        reply = (await aexchange(self._conn, [tuple(args)]))[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def get(self, key: Key) -> Any:
        return await self.execute_command("GET", key)

    async def mget(self, *keys: Key) -> Any:
        return await self.execute_command("MGET", *keys)

    async def run(
        self, name: str, keys: Sequence[Key] = (), args: Sequence[Any] = (), *, version: str | int | None = None
    ) -> Any:
        call = self._scripts.prepare(name, keys, args, version)
        self._queue.add_call(call)
        if self._queue.multi:
            return None
        self._queue.items.pop()
        policy = self._scripts.policy
        policy.sent(call)
        reply = (await aexchange(self._conn, [call.command]))[0]
        if is_missing(reply, call):
            loaded, reply = await aexchange(self._conn, [policy.repair(call, self._node, reply), call.command])
            policy.loaded(call, self._node, loaded)
        return policy.result(call, reply)


async def run_transaction(
    scripts: AsyncScripts,
    keys: Sequence[Key],
    fn: Callable[[AsyncTx], Awaitable[Any]],
    *,
    retries: int,
    backoff: Backoff,
    uses: Sequence[str] | None,
    name: str,
    raise_on_error: bool,
) -> TransactionResult:
    route = scripts.route
    keys = tuple(keys)
    slot = transaction_slot(keys, name, scripts.options.check_slots)
    presence = presence_for(scripts.manifest, uses)
    scripts.counters.add(Event.TRANSACTIONS, name)
    node = await route.node(slot, False)
    attempts = redirects = 0
    while True:
        attempts += 1
        queue = Queue(slot, scripts.options.check_slots)
        node_name = route.name(node)
        try:
            async with route.connection(node) as conn:
                outcome, value = await _attempt(scripts, conn, node_name, keys, presence, queue, fn)
        except NodeUnreachable as unreachable:
            outcome, value = ExecOutcome(None, queue_errors=(unreachable,)), None
        if outcome.replies is not None:
            replies = results(scripts.policy, queue, outcome.replies, node_name)
            if raise_on_error:
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
            return TransactionResult(replies, value, attempts)
        if outcome.conflict:
            if attempts > retries:
                scripts.counters.add(Event.CONFLICTS, name)
                raise TransactionConflict([key_text(k) for k in keys], attempts)
            scripts.counters.add(Event.RETRIES, name)
            await asyncio.sleep(backoff.delay(attempts))
            continue
        if outcome.redirected and redirects < MAX_ROUNDS:
            redirects += 1
            attempts -= 1
            scripts.counters.add(Event.REDIRECTS, name)
            await route.refresh()
            await asyncio.sleep(0.05 * redirects)
            node = await route.node(slot, False)
            continue
        scripts.counters.add(Event.ABORTED, name)
        raise TransactionAborted([str(e) for e in outcome.queue_errors])


async def _attempt(
    scripts: AsyncScripts,
    conn: Any,
    node: str,
    keys: tuple[Key, ...],
    presence: Presence,
    queue: Queue,
    fn: Callable[[AsyncTx], Awaitable[Any]],
) -> tuple[ExecOutcome, Any]:
    policy = scripts.policy
    watching = False
    try:
        replies = await aexchange(conn, [("WATCH", *keys), *presence.commands()])
        if isinstance(replies[0], Exception):
            if is_redirect(replies[0]):
                return ExecOutcome(None, queue_errors=(replies[0],)), None
            raise replies[0]
        watching = True
        missing = presence.missing(replies[1:])
        if isinstance(missing, Exception):
            raise missing
        value = await fn(AsyncTx(scripts, conn, queue, node))
        if not queue.items:
            return ExecOutcome([]), value
        uncovered = Presence.of([c for c in queue.calls if not presence.covers(c)])
        if uncovered.loaders:
            more = uncovered.missing(await aexchange(conn, uncovered.commands()))
            if isinstance(more, Exception):
                raise more
            missing |= more
        loaders, loads = load_missing(policy, queue.calls, missing, node)
        if loads:
            for call, loaded in zip(loaders, await aexchange(conn, loads), strict=True):
                policy.loaded(call, node, loaded)
        for call in queue.calls:
            policy.sent(call)
        outcome = ExecOutcome.read(await aexchange(conn, [("MULTI",), *queue.commands(), ("EXEC",)]))
        watching = False
        return outcome, value
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError, asyncio.CancelledError):
        watching = False  # aexchange dropped the connection, and the WATCH with it
        raise
    finally:
        if watching:
            await aexchange(conn, [("UNWATCH",)])
