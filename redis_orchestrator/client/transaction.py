"""Optimistic transactions done right: WATCH, read, queue, EXEC; retried with jittered backoff.

    def move(tx):
        balance = int(tx.get("{acct}:alice") or 0)
        if balance < 10:
            return "refused"              # nothing queued: UNWATCH, no EXEC
        tx.multi()
        tx.execute_command("DECRBY", "{acct}:alice", 10)
        tx.run("capped_incr", keys=["{acct}:bob"], args=[10, 1000])
        return "moved"

    result = scripts.transaction(["{acct}:alice", "{acct}:bob"], move, retries=5)
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
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.exceptions

from redis_orchestrator.analysis.slots import key_slot
from redis_orchestrator.client.calls import Call, Policy, is_missing, is_redirect
from redis_orchestrator.client.counters import Event
from redis_orchestrator.client.errors import (
    CrossSlotError,
    NodeUnreachable,
    ScriptMissing,
    TransactionAborted,
    TransactionConflict,
)
from redis_orchestrator.client.keys import Key, key_text, slot_of
from redis_orchestrator.client.manifest import Manifest, Target
from redis_orchestrator.client.pipeline import MAX_ROUNDS, ExecOutcome, Presence, load_missing
from redis_orchestrator.client.wire import Command, exchange

if TYPE_CHECKING:
    from redis_orchestrator.client.scripts import Scripts


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff between attempts (seconds)."""

    base: float = 0.002
    cap: float = 0.1

    def delay(self, attempt: int) -> float:
        return random.uniform(0.0, min(self.cap, self.base * (1 << min(attempt, 30))))


@dataclass(frozen=True)
class TransactionResult:
    replies: list[Any]  # EXEC's replies, in queue order ([] when fn queued nothing)
    value: Any  # what fn returned (from its last attempt)
    attempts: int


# ---------------------------------------------------------------------------------- pure parts


def transaction_slot(keys: Sequence[Key], name: str, check_slots: bool) -> int | None:
    if not keys:
        raise ValueError(f"transaction {name}: give at least one key to WATCH")
    return slot_of(keys, f"transaction {name}") if check_slots else key_slot(keys[0])


def presence_for(manifest: Manifest, uses: Sequence[str] | None) -> Presence:
    """What the WATCH round trip checks: the named scripts, or every current script."""
    targets = [manifest.resolve(n) for n in uses] if uses is not None else [Target(v) for v in manifest.scripts()]
    return Presence.of([Call(t, (), (), None) for t in targets])


@dataclass
class Queue:
    """What fn queued after multi(): script calls and plain commands, in order."""

    slot: int | None
    check_slots: bool
    items: list[Call | Command] = field(default_factory=list)
    multi: bool = False

    def add_call(self, call: Call) -> None:
        if self.check_slots and call.slot is not None and self.slot is not None and call.slot != self.slot:
            keys = {key_text(k): key_slot(k) for k in call.keys}
            raise CrossSlotError(f"{call.label} inside a transaction on slot {self.slot}", keys)
        self.items.append(call)

    @property
    def calls(self) -> list[Call]:
        return [i for i in self.items if isinstance(i, Call)]

    def commands(self) -> list[Command]:
        return [i.command if isinstance(i, Call) else i for i in self.items]


def results(policy: Policy, queue: Queue, replies: Sequence[Any], node: str) -> list[Any]:
    out: list[Any] = []
    for item, reply in zip(queue.items, replies, strict=True):
        if isinstance(item, Call) and is_missing(reply, item):
            out.append(ScriptMissing(item.label, node, "NOSCRIPT inside EXEC: flushed between the check and EXEC"))
        elif isinstance(item, Call) and isinstance(reply, redis.exceptions.ResponseError):
            out.append(policy.error(item, reply))
        else:
            out.append(reply)
    return out


# ---------------------------------------------------------------------------------- sync


class Tx:
    """What fn gets. Before multi(): commands run at once (the keys are watched). After: they queue."""

    def __init__(self, scripts: Scripts, conn: Any, queue: Queue, node: str) -> None:
        self._scripts = scripts
        self._conn = conn
        self._queue = queue
        self._node = node

    def multi(self) -> None:
        self._queue.multi = True

    def execute_command(self, *args: Any) -> Any:
        if self._queue.multi:
            self._queue.items.append(tuple(args))
            return None
        reply = exchange(self._conn, [tuple(args)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def get(self, key: Key) -> Any:
        return self.execute_command("GET", key)

    def mget(self, *keys: Key) -> Any:
        return self.execute_command("MGET", *keys)

    def run(
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
        reply = exchange(self._conn, [call.command])[0]
        if is_missing(reply, call):
            loaded, reply = exchange(self._conn, [policy.repair(call, self._node, reply), call.command])
            policy.loaded(call, self._node, loaded)
        return policy.result(call, reply)


def run_transaction(
    scripts: Scripts,
    keys: Sequence[Key],
    fn: Callable[[Tx], Any],
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
    node = route.node(slot, False)
    attempts = redirects = 0
    while True:
        attempts += 1
        queue = Queue(slot, scripts.options.check_slots)
        node_name = route.name(node)
        try:
            with route.connection(node) as conn:
                outcome, value = _attempt(scripts, conn, node_name, keys, presence, queue, fn)
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
            time.sleep(backoff.delay(attempts))
            continue
        if outcome.redirected and redirects < MAX_ROUNDS:
            redirects += 1
            attempts -= 1  # nothing ran: not an attempt
            scripts.counters.add(Event.REDIRECTS, name)
            route.refresh()
            time.sleep(0.05 * redirects)
            node = route.node(slot, False)
            continue
        scripts.counters.add(Event.ABORTED, name)
        raise TransactionAborted([str(e) for e in outcome.queue_errors])


def _attempt(
    scripts: Scripts,
    conn: Any,
    node: str,
    keys: tuple[Key, ...],
    presence: Presence,
    queue: Queue,
    fn: Callable[[Tx], Any],
) -> tuple[ExecOutcome, Any]:
    policy = scripts.policy
    watching = False
    try:
        replies = exchange(conn, [("WATCH", *keys), *presence.commands()])
        if isinstance(replies[0], Exception):
            if is_redirect(replies[0]):
                return ExecOutcome(None, queue_errors=(replies[0],)), None
            raise replies[0]
        watching = True
        missing = presence.missing(replies[1:])
        if isinstance(missing, Exception):
            raise missing
        value = fn(Tx(scripts, conn, queue, node))
        if not queue.items:
            return ExecOutcome([]), value
        uncovered = Presence.of([c for c in queue.calls if not presence.covers(c)])
        if uncovered.loaders:  # queued but not checked with the WATCH: one more round trip, still before EXEC
            more = uncovered.missing(exchange(conn, uncovered.commands()))
            if isinstance(more, Exception):
                raise more
            missing |= more
        loaders, loads = load_missing(policy, queue.calls, missing, node)
        if loads:  # its own round trip: EXEC must never meet a load that failed
            for call, loaded in zip(loaders, exchange(conn, loads), strict=True):
                policy.loaded(call, node, loaded)
        for call in queue.calls:
            policy.sent(call)
        outcome = ExecOutcome.read(exchange(conn, [("MULTI",), *queue.commands(), ("EXEC",)]))
        watching = False  # EXEC, even refused, ended the WATCH
        return outcome, value
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        watching = False  # exchange dropped the connection, and the WATCH with it
        raise
    finally:
        if watching:
            exchange(conn, [("UNWATCH",)])
