"""Pipelines and MULTI/EXEC batches on one connection: what to send and what the replies mean. Pure: no
I/O here; the pipelines that send them are in _async/pipeline.py (and _sync/pipeline.py, generated).

    one_slot       the slot a transaction's calls share (CrossSlotError otherwise)
    Presence       SCRIPT EXISTS / FUNCTION LIST before EXEC, and what their replies say is missing
    load_missing   the loads those missing scripts need, before EXEC
    RepairPlan     after NOSCRIPT replies in a batch: the loads, then only the failed calls again
    ExecOutcome    MULTI, queued..., EXEC read back: committed, a WATCH conflict, or EXECABORT
    settle         replies as values and typed errors (the first raised with raise_on_error)
    exec_replies   EXEC's replies, a NOSCRIPT there (a flush after the check) as ScriptMissing
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.exceptions

from redis_orchestrator.client.calls import Call, Command, Policy, is_missing, is_redirect, load_failed
from redis_orchestrator.client.counters import Event
from redis_orchestrator.client.errors import CrossSlotError, ScriptMissing
from redis_orchestrator.client.keys import key_text
from redis_orchestrator.client.manifest import KIND_FUNCTION

MAX_ROUNDS = 5  # rounds of a batch after MOVED/ASK/TRYAGAIN/CLUSTERDOWN (or no connection) before giving up


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


def settle(policy: Policy, calls: Sequence[Call], replies: Sequence[Any]) -> list[Any]:
    """Replies as values and typed errors (a script's error reply becomes its ScriptError), in order."""
    return [
        policy.error(call, reply)
        if isinstance(reply, redis.exceptions.ResponseError) and not isinstance(reply, ScriptMissing)
        else reply
        for call, reply in zip(calls, replies, strict=True)
    ]


def raise_first(results: Sequence[Any]) -> None:
    """Raise the first error among a batch's results: called after every call was sent and
    recorded, so the others' effects stand and their outcomes are counted."""
    for result in results:
        if isinstance(result, Exception):
            raise result


def exec_replies(calls: Sequence[Call], replies: Sequence[Any], node: str) -> list[Any]:
    """EXEC's replies; a NOSCRIPT there (a flush between the check and EXEC) becomes ScriptMissing."""
    return [
        ScriptMissing(call.label, node, "NOSCRIPT inside EXEC: flushed between the check and EXEC")
        if is_missing(reply, call)
        else reply
        for call, reply in zip(calls, replies, strict=True)
    ]
