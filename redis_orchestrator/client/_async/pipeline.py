"""Pipelines of script calls, queued by name.

    async with scripts.pipeline() as pipe:
        pipe.run("capped_incr", keys=["{quota}:alice"], args=[1, 100])
        pipe.run("counter_get", keys=["{quota}:bob"])
        (value, applied), bob = await pipe.execute()

Without a transaction, the calls are grouped by the node serving their slot, one round trip per
node. A NOSCRIPT in the replies is repaired on that node -- SCRIPT LOAD of each missing script, then
only the failed calls again, in their order, in one more round trip -- and their new replies take the
old ones' places. The other calls are not sent twice.

With `transaction=True` the calls run in MULTI/EXEC on one node, so they must share one slot. There a
NOSCRIPT would not abort anything: EXEC runs every other queued command and answers NOSCRIPT for that
one. So the scripts are checked first (SCRIPT EXISTS, loaded if missing) on the connection that then
sends MULTI...EXEC. Left open: a SCRIPT FLUSH on that node between the check and EXEC (one round trip).

What is sent and what the replies mean is decided in batches.py; this module only sends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from redis_orchestrator.client._async.exchange import exchange
from redis_orchestrator.client._async.routing import AsyncRoute
from redis_orchestrator.client.base import ScriptsBase
from redis_orchestrator.client.batches import (
    MAX_ROUNDS,
    ExecOutcome,
    Presence,
    RepairPlan,
    exec_replies,
    load_missing,
    one_slot,
    raise_first,
    settle,
)
from redis_orchestrator.client.calls import Call, is_redirect
from redis_orchestrator.client.counters import Event
from redis_orchestrator.client.errors import NodeUnreachable, TransactionAborted
from redis_orchestrator.client.keys import Key
from redis_orchestrator.client.tracing import Record


class AsyncScriptPipeline:
    """Calls queued by name: `run` queues them (no round trip), `await execute()` sends them."""

    def __init__(self, scripts: ScriptsBase[AsyncRoute], transaction: bool = False) -> None:
        self.scripts = scripts
        self.transaction = transaction
        self.calls: list[Call] = []

    def run(
        self, name: str, keys: Sequence[Key] = (), args: Sequence[Any] = (), *, version: str | int | None = None
    ) -> AsyncScriptPipeline:
        """Queue a call (checked now: UnknownScript / KeysRefused are raised here, before anything is sent)."""
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
        self.reset()

    def reset(self) -> None:
        """Forget the queued calls (leaving the block does it too)."""
        self.calls = []

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send every queued call; the replies in order. With raise_on_error, the first error reply
        (as a typed error) is raised after all were sent; otherwise errors stand in their places."""
        calls, self.calls = self.calls, []
        if not calls:
            return []
        for call in calls:
            self.scripts.policy.sent(call)
        send = self._transaction if self.transaction else self._grouped
        with self.scripts.telemetry.batch(calls, self.transaction) as record:
            results = settle(self.scripts.policy, calls, await send(calls, record))
            record.replies(results)  # typed first: a script's error reply is a script_error outcome
            if raise_on_error:
                raise_first(results)
            return results

    # -------------------------------------------------------------- without a transaction

    async def _grouped(self, calls: list[Call], record: Record) -> list[Any]:
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
                        record.server(conn)
                        got = await exchange(conn, [c.command for c in batch])
                        plan = RepairPlan.of(self.scripts.policy, route.name(node), batch, got)
                        if plan.resend:
                            record.noscript(route.name(node), [batch[i] for i in plan.resend])
                            plan.apply(batch, got, await exchange(conn, plan.commands(batch)))
                except NodeUnreachable as unreachable:
                    got = [unreachable] * len(indexes)  # nothing sent: tried again next round
                for index, reply in zip(indexes, got, strict=True):
                    replies[index] = reply
                    if is_redirect(reply) and round_number < MAX_ROUNDS - 1:
                        again.append(index)
            if not again:
                break
            self.scripts.counters.add(Event.REDIRECTS, "pipeline", len(again))
            record.redirect(replies[again[0]], round_number + 1)
            await route.refresh()
            await asyncio.sleep(0.05 * round_number)
            pending = again
        return replies

    # -------------------------------------------------------------- MULTI/EXEC

    async def _transaction(self, calls: list[Call], record: Record) -> list[Any]:
        route = self.scripts.route
        slot = one_slot(calls, "pipeline(transaction=True)") if self.scripts.options.check_slots else calls[0].slot
        presence = Presence.of(calls)
        node = await route.node(slot, False)
        for round_number in range(MAX_ROUNDS):
            name = route.name(node)
            try:
                outcome = await self._exec_once(node, name, calls, presence, record)
            except NodeUnreachable as unreachable:
                outcome = ExecOutcome(None, queue_errors=(unreachable,))
            if outcome.replies is not None:
                return exec_replies(calls, outcome.replies, name)
            if not outcome.redirected or round_number == MAX_ROUNDS - 1:
                self.scripts.counters.add(Event.ABORTED, "pipeline")
                raise TransactionAborted([str(e) for e in outcome.queue_errors])
            self.scripts.counters.add(Event.REDIRECTS, "pipeline")
            record.redirect(outcome.queue_errors[0] if outcome.queue_errors else None, round_number + 1)
            await route.refresh()
            await asyncio.sleep(0.05 * round_number)
            node = await route.node(slot, False)
        raise AssertionError("unreachable")

    async def _exec_once(
        self, node: Any, name: str, calls: list[Call], presence: Presence, record: Record
    ) -> ExecOutcome:
        """SCRIPT EXISTS, the loads it calls for (their own round trip), then MULTI...EXEC: one connection."""
        policy = self.scripts.policy
        async with self.scripts.route.connection(node) as conn:
            record.server(conn)
            checked = presence.missing(await exchange(conn, presence.commands()))
            if isinstance(checked, Exception):
                if not is_redirect(checked):
                    raise checked
                return ExecOutcome(None, queue_errors=(checked,))
            loaders, loads = load_missing(policy, calls, checked, name)
            if loads:  # EXEC must never meet a load that failed
                record.noscript(name, loaders)
                for call, loaded in zip(loaders, await exchange(conn, loads), strict=True):
                    policy.loaded(call, name, loaded)
            return ExecOutcome.read(await exchange(conn, [("MULTI",), *(c.command for c in calls), ("EXEC",)]))
