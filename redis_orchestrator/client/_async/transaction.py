"""Optimistic transactions done right: WATCH, read, queue, EXEC; retried with jittered backoff.

    async def move(tx):
        balance = int(await tx.get("{acct}:alice") or 0)
        if balance < 10:
            return "refused"              # nothing queued: UNWATCH, no EXEC
        tx.multi()
        await tx.execute_command("DECRBY", "{acct}:alice", 10)  # queued: returns None
        await tx.run("capped_incr", keys=["{acct}:bob"], args=[10, 1000])
        return "moved"

    result = await scripts.transaction(["{acct}:alice", "{acct}:bob"], move, retries=5)
    result.value, result.replies, result.attempts

One attempt on one pinned connection to the keys' node:

    WATCH k...  +  SCRIPT EXISTS <sha>...      one round trip: the WATCH and the script check together
    fn(tx): reads (tx.get, tx.execute_command, a no-writes tx.run) run at once; after tx.multi() they queue
    MULTI, queued..., EXEC                     one round trip

Why check the scripts first: inside MULTI/EXEC a NOSCRIPT is not an abort. EXEC runs every other
queued command and answers NOSCRIPT for that one, so half a transaction would be applied. By default
the check covers every current script in the manifest (`uses=` narrows it to the names fn queues);
a script fn queues that the check did not cover is checked in one more round trip before EXEC.

EXEC answering nil means a watched key changed: nothing ran; the attempt is repeated after a delay
drawn uniformly from [0, min(cap, base * 2^attempt)] (full jitter), at most `retries` times, then
TransactionConflict names the keys and the attempts. Every exit path leaves the connection clean:
EXEC ends the WATCH; otherwise UNWATCH is sent; a connection that failed mid-way is dropped.

The pure parts (Backoff, TransactionResult, what fn queued, how EXEC's replies read) are in optimistic.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis_orchestrator.client._async.exchange import exchange
from redis_orchestrator.client._async.primitives import LOST
from redis_orchestrator.client._async.routing import AsyncRoute
from redis_orchestrator.client.base import ScriptsBase
from redis_orchestrator.client.batches import MAX_ROUNDS, ExecOutcome, Presence, load_missing, raise_first
from redis_orchestrator.client.calls import Call, is_missing, is_redirect
from redis_orchestrator.client.counters import Event
from redis_orchestrator.client.errors import NodeUnreachable, TransactionAborted, TransactionConflict
from redis_orchestrator.client.keys import Key, key_text
from redis_orchestrator.client.optimistic import (
    Backoff,
    Queue,
    TransactionResult,
    presence_for,
    results,
    transaction_slot,
)
from redis_orchestrator.client.tracing import Record


class AsyncTx:
    """What fn gets. Before multi(): commands run at once (the keys are watched). After: they queue,
    and `await tx.execute_command(...)` returns None."""

    def __init__(self, scripts: ScriptsBase[AsyncRoute], conn: Any, queue: Queue, node: str, record: Record) -> None:
        self._scripts = scripts
        self._conn = conn
        self._queue = queue
        self._node = node
        self._record = record

    def multi(self) -> None:
        self._queue.multi = True

    async def execute_command(self, *args: Any) -> Any:
        if self._queue.multi:
            self._queue.items.append(tuple(args))
            return None
        [reply] = await exchange(self._conn, [tuple(args)])
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
        """Queued after multi(); before it, runs at once (meant for no-writes scripts: a write here would
        change a watched key and make this transaction's own EXEC fail)."""
        call = self._scripts.prepare(name, keys, args, version)
        self._queue.add_call(call)
        if self._queue.multi:
            return None
        self._queue.items.pop()
        policy = self._scripts.policy
        policy.sent(call)
        [reply] = await exchange(self._conn, [call.command])
        if is_missing(reply, call):
            load = policy.repair(call, self._node, reply)
            self._record.noscript(self._node, (call,))
            loaded, reply = await exchange(self._conn, [load, call.command])
            policy.loaded(call, self._node, loaded)
        return policy.result(call, reply)


async def run_transaction(
    scripts: ScriptsBase[AsyncRoute],
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
    slot = transaction_slot(keys, name, scripts.options.check_slots)  # before any round trip
    presence = presence_for(scripts.manifest, uses)
    scripts.counters.add(Event.TRANSACTIONS, name)
    with scripts.telemetry.transaction(name) as record:
        node = await route.node(slot, False)
        attempts = redirects = 0
        while True:
            attempts += 1
            queue = Queue(slot, scripts.options.check_slots)
            node_name = route.name(node)
            try:
                async with route.connection(node) as conn:
                    record.server(conn)
                    outcome, value = await _attempt(scripts, conn, node_name, keys, presence, queue, fn, record)
            except NodeUnreachable as unreachable:
                outcome, value = ExecOutcome(None, queue_errors=(unreachable,)), None
            record.queued(queue.calls)
            if outcome.replies is not None:
                replies = results(scripts.policy, queue, outcome.replies, node_name)
                record.replies([r for item, r in zip(queue.items, replies, strict=True) if isinstance(item, Call)])
                if raise_on_error:
                    raise_first(replies)
                return TransactionResult(replies, value, attempts)
            if outcome.conflict:
                if attempts > retries:
                    scripts.counters.add(Event.CONFLICTS, name)
                    raise TransactionConflict([key_text(k) for k in keys], attempts)
                scripts.counters.add(Event.RETRIES, name)
                delay = backoff.delay(attempts)
                record.retry(attempts, delay)
                await asyncio.sleep(delay)
                continue
            if outcome.redirected and redirects < MAX_ROUNDS:
                redirects += 1
                attempts -= 1  # nothing ran: not an attempt
                scripts.counters.add(Event.REDIRECTS, name)
                record.redirect(outcome.queue_errors[0] if outcome.queue_errors else None, redirects)
                await route.refresh()
                await asyncio.sleep(0.05 * redirects)
                node = await route.node(slot, False)
                continue
            scripts.counters.add(Event.ABORTED, name)
            raise TransactionAborted([str(e) for e in outcome.queue_errors])


async def _attempt(
    scripts: ScriptsBase[AsyncRoute],
    conn: Any,
    node: str,
    keys: tuple[Key, ...],
    presence: Presence,
    queue: Queue,
    fn: Callable[[AsyncTx], Awaitable[Any]],
    record: Record,
) -> tuple[ExecOutcome, Any]:
    policy = scripts.policy
    watching = False
    try:
        replies = await exchange(conn, [("WATCH", *keys), *presence.commands()])
        if isinstance(replies[0], Exception):
            if is_redirect(replies[0]):
                return ExecOutcome(None, queue_errors=(replies[0],)), None
            raise replies[0]
        watching = True
        missing = presence.missing(replies[1:])
        if isinstance(missing, Exception):
            raise missing
        value = await fn(AsyncTx(scripts, conn, queue, node, record))
        if not queue.items:
            return ExecOutcome([]), value
        uncovered = Presence.of([c for c in queue.calls if not presence.covers(c)])
        if uncovered.loaders:  # queued but not checked with the WATCH: one more round trip, still before EXEC
            more = uncovered.missing(await exchange(conn, uncovered.commands()))
            if isinstance(more, Exception):
                raise more
            missing |= more
        loaders, loads = load_missing(policy, queue.calls, missing, node)
        if loads:  # its own round trip: EXEC must never meet a load that failed
            record.noscript(node, loaders)
            for call, loaded in zip(loaders, await exchange(conn, loads), strict=True):
                policy.loaded(call, node, loaded)
        for call in queue.calls:
            policy.sent(call)
        outcome = ExecOutcome.read(await exchange(conn, [("MULTI",), *queue.commands(), ("EXEC",)]))
        watching = False  # EXEC, even refused, ended the WATCH
        return outcome, value
    except LOST:
        watching = False  # exchange dropped the connection, and the WATCH with it
        raise
    finally:
        if watching:
            await exchange(conn, [("UNWATCH",)])
