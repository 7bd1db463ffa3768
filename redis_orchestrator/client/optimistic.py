"""Optimistic transactions, the parts with no I/O: the backoff between attempts, the result, the slot,
what the WATCH round trip checks, what fn queued and how EXEC's replies read. The transactions that
send them are in _async/transaction.py (and _sync/transaction.py, generated).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.exceptions

from redis_orchestrator.analysis.slots import key_slot
from redis_orchestrator.client.batches import Presence
from redis_orchestrator.client.calls import Call, Command, Policy, is_missing
from redis_orchestrator.client.errors import CrossSlotError, ScriptMissing
from redis_orchestrator.client.keys import Key, key_text, slot_of
from redis_orchestrator.client.manifest import Manifest, Target


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
