"""Pipelines of script calls, queued by name.

    with scripts.pipeline() as pipe:
        pipe.run("capped_incr", keys=["{quota}:alice"], args=[1, 100])
        pipe.run("counter_get", keys=["{quota}:bob"])
        (value, applied), bob = pipe.execute()

Without a transaction, the calls are grouped by the node serving their slot, one round trip per
node. A NOSCRIPT in the replies is repaired on that node -- SCRIPT LOAD of each missing script, then
only the failed calls again, in their order, in one more round trip -- and their new replies take the
old ones' places. The other calls are not sent twice.

With `transaction=True` the calls run in MULTI/EXEC on one node, so they must share one slot. There a
NOSCRIPT would not abort anything: EXEC runs every other queued command and answers NOSCRIPT for that
one. So the scripts are checked first (SCRIPT EXISTS, loaded if missing) on the connection that then
sends MULTI...EXEC. Left open: a SCRIPT FLUSH on that node between the check and EXEC (one round trip).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import redis.exceptions

from redis_orchestrator.client.calls import Call, Policy, is_missing, is_redirect, load_failed
from redis_orchestrator.client.counters import Event
from redis_orchestrator.client.errors import (
    CrossSlotError,
    NodeUnreachable,
    ScriptMissing,
    TransactionAborted,
)
from redis_orchestrator.client.keys import Key, key_text
from redis_orchestrator.client.manifest import KIND_FUNCTION
from redis_orchestrator.client.wire import Command, exchange

if TYPE_CHECKING:
    from redis_orchestrator.client.scripts import Scripts

MAX_ROUNDS = 5


# ---------------------------------------------------------------------------------- pure decisions


def one_slot(calls: Sequence[Call], what: str) -> int | None:
    """The slot every call shares (a transaction runs on one node); CrossSlotError otherwise."""
    slots = {c.slot for c in calls if c.slot is not None}
    if len(slots) <= 1:
        return next(iter(slots), None)
    first: dict[str, int] = {}
    for call in calls:
        if call.keys and call.slot is not None:
            first.setdefault(key_text(call.keys[0]), call.slot)
    raise CrossSlotError(what, first)


@dataclass(frozen=True)
class Presence:
    """What to ask before EXEC so no queued script can be missing when it runs, and how to read it:

    SCRIPT EXISTS <sha>...            -> [1, 0, ...] one flag per sha
    FUNCTION LIST LIBRARYNAME <lib>   -> [] when the library is absent (one command per library)
    """

    shas: tuple[str, ...]
    libraries: tuple[str, ...]
    loaders: dict[str, Call]  # sha or library -> a call that can load it

    @staticmethod
    def key(call: Call) -> str:
        version = call.target.version
        return (version.library or version.name) if version.kind == KIND_FUNCTION else version.sha

    @classmethod
    def of(cls, calls: Sequence[Call]) -> Presence:
        loaders: dict[str, Call] = {}
        shas: list[str] = []
        libraries: list[str] = []
        for call in calls:
            key = cls.key(call)
            if key in loaders:
                continue
            loaders[key] = call
            (libraries if call.target.version.kind == KIND_FUNCTION else shas).append(key)
        return cls(tuple(shas), tuple(libraries), loaders)

    def covers(self, call: Call) -> bool:
        return self.key(call) in self.loaders

    def commands(self) -> list[Command]:
        commands: list[Command] = [("SCRIPT", "EXISTS", *self.shas)] if self.shas else []
        commands += [("FUNCTION", "LIST", "LIBRARYNAME", lib) for lib in self.libraries]
        return commands

    def missing(self, replies: Sequence[Any]) -> set[str] | Exception:
        """The keys (sha or library) found missing, or the error one check returned."""
        for reply in replies:
            if isinstance(reply, Exception):
                return reply
        missing: set[str] = set()
        rest = list(replies)
        if self.shas:
            flags = rest.pop(0)
            missing.update(sha for sha, flag in zip(self.shas, flags, strict=True) if not int(flag))
        missing.update(lib for lib, listed in zip(self.libraries, rest, strict=True) if not listed)
        return missing


def load_missing(
    policy: Policy, calls: Sequence[Call], missing: set[str], node: str
) -> tuple[list[Call], list[Command]]:
    """The loads the queued `calls` need before EXEC: one per missing script, named after the first call
    that needs it (ScriptMissing with fallback="raise")."""
    needed: dict[str, Call] = {}
    for call in calls:
        key = Presence.key(call)
        if key in missing and key not in needed:
            needed[key] = call
    loaders = list(needed.values())
    return loaders, [policy.repair(c, node, redis.exceptions.NoScriptError("missing before EXEC")) for c in loaders]


@dataclass
class RepairPlan:
    """After NOSCRIPT replies in a batch: one load per missing script, then only the failed calls again,
    in their order. Calls the policy refuses to repair (fallback="raise") get ScriptMissing in place."""

    node: str
    loads: dict[str, Command]  # sha -> SCRIPT LOAD (or FUNCTION LOAD)
    resend: list[int]  # indexes into the batch

    @classmethod
    def of(cls, policy: Policy, node: str, calls: Sequence[Call], replies: list[Any]) -> RepairPlan:
        plan = cls(node, {}, [])
        for i, (call, reply) in enumerate(zip(calls, replies, strict=True)):
            if not is_missing(reply, call):
                continue
            sha = call.target.version.sha
            try:
                if sha in plan.loads:
                    policy.counters.add(Event.NOSCRIPT, call.label)
                else:
                    plan.loads[sha] = policy.repair(call, node, reply)
            except ScriptMissing as missing:
                replies[i] = missing
                continue
            plan.resend.append(i)
        return plan

    def commands(self, calls: Sequence[Call]) -> list[Command]:
        return [*self.loads.values(), *(calls[i].command for i in self.resend)]

    def apply(self, calls: Sequence[Call], replies: list[Any], got: Sequence[Any]) -> None:
        """Put the resent calls' replies in their places (ScriptMissing where the load failed)."""
        failed = {sha: r for sha, r in zip(self.loads, got, strict=False) if load_failed(r)}
        for i, reply in zip(self.resend, got[len(self.loads) :], strict=True):
            call = calls[i]
            if call.target.version.sha in failed:
                replies[i] = ScriptMissing(
                    call.label, self.node, f"loading it failed: {failed[call.target.version.sha]}"
                )
            elif is_missing(reply, call):
                replies[i] = ScriptMissing(call.label, self.node, "still missing right after loading it")
            else:
                replies[i] = reply


@dataclass(frozen=True)
class ExecOutcome:
    """MULTI, n queued commands and EXEC, read back:

    OK, QUEUED..., [reply...]     committed
    OK, QUEUED..., nil            a watched key changed: nothing ran
    OK, QUEUED|error..., EXECABORT  a command was rejected while queued: nothing ran
    """

    replies: list[Any] | None
    conflict: bool = False
    queue_errors: tuple[Exception, ...] = ()

    @classmethod
    def read(cls, replies: Sequence[Any]) -> ExecOutcome:
        queued = replies[1:-1]
        executed = replies[-1]
        errors = tuple(r for r in [replies[0], *queued] if isinstance(r, Exception))
        if isinstance(executed, Exception):
            return cls(None, queue_errors=errors or (executed,))
        if executed is None:
            return cls(None, conflict=True)
        return cls(list(executed))

    @property
    def redirected(self) -> bool:
        """Refused while queued because the slot moved: safe to run again on the new owner."""
        return bool(self.queue_errors) and all(is_redirect(e) for e in self.queue_errors)


def settle(policy: Policy, calls: Sequence[Call], replies: Sequence[Any], raise_on_error: bool) -> list[Any]:
    """Replies as values and typed errors; with raise_on_error the first error is raised (after every
    call was sent: the others' effects stand)."""
    results = [
        policy.error(call, reply)
        if isinstance(reply, redis.exceptions.ResponseError) and not isinstance(reply, ScriptMissing)
        else reply
        for call, reply in zip(calls, replies, strict=True)
    ]
    if raise_on_error:
        for result in results:
            if isinstance(result, Exception):
                raise result
    return results


def exec_replies(calls: Sequence[Call], replies: Sequence[Any], node: str) -> list[Any]:
    """EXEC's replies; a NOSCRIPT there (a flush between the check and EXEC) becomes ScriptMissing."""
    return [
        ScriptMissing(call.label, node, "NOSCRIPT inside EXEC: flushed between the check and EXEC")
        if is_missing(reply, call)
        else reply
        for call, reply in zip(calls, replies, strict=True)
    ]


# ---------------------------------------------------------------------------------- the pipeline


class ScriptPipeline:
    def __init__(self, scripts: Scripts, transaction: bool = False) -> None:
        self.scripts = scripts
        self.transaction = transaction
        self.calls: list[Call] = []

    def run(
        self, name: str, keys: Sequence[Key] = (), args: Sequence[Any] = (), *, version: str | int | None = None
    ) -> ScriptPipeline:
        """Queue a call (checked now: UnknownScript / KeysRefused are raised here, before anything is sent)."""
        call = self.scripts.prepare(name, keys, args, version)
        if self.transaction and self.scripts.options.check_slots:
            one_slot([*self.calls, call], "pipeline(transaction=True)")
        self.calls.append(call)
        return self

    def __len__(self) -> int:
        return len(self.calls)

    def __enter__(self) -> ScriptPipeline:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls = []

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send every queued call; the replies in order. With raise_on_error, the first error reply
        (as a typed error) is raised after all were sent; otherwise errors stand in their places."""
        calls, self.calls = self.calls, []
        if not calls:
            return []
        for call in calls:
            self.scripts.policy.sent(call)
        replies = self._transaction(calls) if self.transaction else self._grouped(calls)
        return settle(self.scripts.policy, calls, replies, raise_on_error)

    # -------------------------------------------------------------- without a transaction

    def _grouped(self, calls: list[Call]) -> list[Any]:
        route = self.scripts.route
        replies: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for round_number in range(MAX_ROUNDS):
            groups: dict[Any, list[int]] = {}
            for index in pending:
                node = route.node(calls[index].slot, calls[index].readonly)
                groups.setdefault(node, []).append(index)
            again: list[int] = []
            for node, indexes in groups.items():
                try:
                    with route.connection(node) as conn:
                        got = exchange(conn, [calls[i].command for i in indexes])
                        self._repair(conn, route.name(node), [calls[i] for i in indexes], got)
                except NodeUnreachable as unreachable:
                    got = [unreachable] * len(indexes)  # nothing sent: tried again next round
                for index, reply in zip(indexes, got, strict=True):
                    replies[index] = reply
                    if is_redirect(reply) and round_number < MAX_ROUNDS - 1:
                        again.append(index)
            if not again:
                break
            self.scripts.counters.add(Event.REDIRECTS, "pipeline", len(again))
            route.refresh()
            time.sleep(0.05 * round_number)
            pending = again
        return replies

    def _repair(self, conn: Any, node: str, calls: list[Call], replies: list[Any]) -> None:
        plan = RepairPlan.of(self.scripts.policy, node, calls, replies)
        if plan.resend:
            plan.apply(calls, replies, exchange(conn, plan.commands(calls)))

    # -------------------------------------------------------------- MULTI/EXEC

    def _transaction(self, calls: list[Call]) -> list[Any]:
        route = self.scripts.route
        slot = one_slot(calls, "pipeline(transaction=True)") if self.scripts.options.check_slots else calls[0].slot
        presence = Presence.of(calls)
        node = route.node(slot, False)
        for round_number in range(MAX_ROUNDS):
            name = route.name(node)
            try:
                outcome = self._exec_once(node, name, calls, presence)
            except NodeUnreachable as unreachable:
                outcome = ExecOutcome(None, queue_errors=(unreachable,))
            if outcome.replies is not None:
                return exec_replies(calls, outcome.replies, name)
            if not outcome.redirected or round_number == MAX_ROUNDS - 1:
                self.scripts.counters.add(Event.ABORTED, "pipeline")
                raise TransactionAborted([str(e) for e in outcome.queue_errors])
            self.scripts.counters.add(Event.REDIRECTS, "pipeline")
            route.refresh()
            time.sleep(0.05 * round_number)
            node = route.node(slot, False)
        raise AssertionError("unreachable")

    def _exec_once(self, node: Any, name: str, calls: list[Call], presence: Presence) -> ExecOutcome:
        """SCRIPT EXISTS, the loads it calls for (their own round trip), then MULTI...EXEC: one connection."""
        policy = self.scripts.policy
        with self.scripts.route.connection(node) as conn:
            checked = presence.missing(exchange(conn, presence.commands()))
            if isinstance(checked, Exception):
                if not is_redirect(checked):
                    raise checked
                return ExecOutcome(None, queue_errors=(checked,))
            loaders, loads = load_missing(policy, calls, checked, name)
            if loads:  # EXEC must never meet a load that failed
                for call, loaded in zip(loaders, exchange(conn, loads), strict=True):
                    policy.loaded(call, name, loaded)
            return ExecOutcome.read(exchange(conn, [("MULTI",), *(c.command for c in calls), ("EXEC",)]))
