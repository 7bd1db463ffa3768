"""One call, prepared before anything is sent, and what its replies mean. Pure: no I/O here, so the
sync and asyncio clients share every decision and differ only in how they wait.

A call on the wire:

    EVALSHA    <sha> <numkeys> <key>... <arg>...       (EVALSHA_RO for a `no-writes` script)
    FCALL <function> <numkeys> <key>... <arg>...       (FCALL_RO for a `no-writes` function)

and, after a NOSCRIPT, on the same connection (so on the node that answered it), one round trip:

    SCRIPT LOAD <the catalog's exact bytes>            (FUNCTION LOAD <library> for a function)
    EVALSHA ...                                        (the call again, once)

SCRIPT LOAD and never EVAL: on Redis >= 7.4 a script first created by EVAL stays evictable (LRU past
500 scripts), even after a later SCRIPT LOAD of the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.exceptions

from redis_orchestrator.analysis.slots import key_slot
from redis_orchestrator.client.counters import Counters, Event
from redis_orchestrator.client.errors import (
    NodeUnreachable,
    ScriptBusy,
    ScriptError,
    ScriptMissing,
    error_text,
    translate,
)
from redis_orchestrator.client.keys import Key, key_patterns, slot_of
from redis_orchestrator.client.manifest import KIND_FUNCTION, Manifest, Target

LOG = logging.getLogger("redis_orchestrator.client")

Command = tuple[Any, ...]  # one command on the wire: its words, as redis-py packs them


class Fallback(StrEnum):
    LOAD = "load"  # SCRIPT LOAD the catalog's bytes on that node, retry once (counted, logged)
    RAISE = "raise"  # ScriptMissing


@dataclass(frozen=True)
class Options:
    fallback: Fallback = Fallback.LOAD
    check_keys: bool = True  # refuse keys that do not match the catalog's `keys:` patterns
    check_slots: bool = True  # refuse keys in two slots, on every kind of client


@dataclass(frozen=True)
class Call:
    target: Target
    keys: tuple[Key, ...]
    args: tuple[Any, ...]
    slot: int | None

    @property
    def label(self) -> str:
        return self.target.label

    @property
    def readonly(self) -> bool:
        return self.target.readonly

    @property
    def command(self) -> Command:
        return (self.target.command, self.target.handle, len(self.keys), *self.keys, *self.args)


def prepare(
    manifest: Manifest,
    options: Options,
    name: str,
    keys: Sequence[Key],
    args: Sequence[Any],
    version: str | int | None,
) -> Call:
    """Resolve `name` and check its keys; raises UnknownScript / KeysRefused before anything is sent."""
    target = manifest.resolve(name, version)
    keys = tuple(keys)
    if options.check_keys and target.version.keys:
        key_patterns(target.label, target.version.keys).check(keys)
    if options.check_slots:
        return Call(target, keys, tuple(args), slot_of(keys, target.label))
    # Unchecked: the first key still says where to send it; the server judges the rest.
    return Call(target, keys, tuple(args), key_slot(keys[0]) if keys else None)


def is_missing(reply: object, call: Call) -> bool:
    """NOSCRIPT for a script; `ERR Function not found` for a function."""
    if isinstance(reply, redis.exceptions.NoScriptError):
        return True
    if call.target.function is not None and isinstance(reply, redis.exceptions.ResponseError):
        return "Function not found" in error_text(reply)
    return False


def load_command(call: Call) -> Command | None:
    source = call.target.version.source
    if source is None:
        return None
    if call.target.version.kind == KIND_FUNCTION:
        # Without REPLACE: it only adds a missing library, never replaces one the daemon put there.
        return ("FUNCTION", "LOAD", source)
    return ("SCRIPT", "LOAD", source)


def load_failed(reply: object) -> bool:
    """Whether a SCRIPT/FUNCTION LOAD reply is a failure. "Library ... already exists" is not one:
    another caller loaded it first (the retry then tells whether it is the catalog's)."""
    return isinstance(reply, BaseException) and "already exists" not in error_text(reply)


def is_redirect(reply: object) -> bool:
    """MOVED / ASK / TRYAGAIN / CLUSTERDOWN, or no connection at all: the command did not run, so
    another attempt is safe."""
    return isinstance(
        reply,
        redis.exceptions.MovedError
        | redis.exceptions.AskError
        | redis.exceptions.TryAgainError
        | redis.exceptions.ClusterDownError
        | NodeUnreachable,
    )


class Policy:
    """Counts, logs and decides: the NOSCRIPT policy and how a reply becomes a value or an error."""

    def __init__(self, options: Options, counters: Counters) -> None:
        self.options = options
        self.counters = counters

    def sent(self, call: Call) -> None:
        self.counters.add(Event.CALLS, call.label)

    def repair(self, call: Call, node: str, reply: BaseException) -> Command:
        """The load command to send before the retry, or ScriptMissing."""
        self.counters.add(Event.NOSCRIPT, call.label)
        if self.options.fallback is Fallback.RAISE:
            raise ScriptMissing(call.label, node, f'{error_text(reply)} (fallback="raise")')
        load = load_command(call)
        if load is None:
            raise ScriptMissing(call.label, node, "the manifest has no source to load (written by an older daemon?)")
        self.counters.add(Event.FALLBACKS, call.label)
        LOG.warning(
            "script_fallback script=%s node=%s load=%s - not on that node (%s): loading the catalog's bytes there",
            call.label,
            node,
            f"{load[0]} {load[1]}",
            "NOSCRIPT" if isinstance(reply, redis.exceptions.NoScriptError) else error_text(reply),
        )
        return load

    def loaded(self, call: Call, node: str, reply: object) -> None:
        """The reply to our SCRIPT/FUNCTION LOAD: an error there means we cannot repair."""
        if load_failed(reply):
            assert isinstance(reply, BaseException)
            if isinstance(reply, redis.exceptions.ResponseError) and isinstance(
                busy := translate(reply, call.label), ScriptBusy
            ):
                # The node is busy with another script: that, not the missing script, is what to act on.
                self.counters.add(Event.BUSY, call.label)
                raise busy from reply
            raise ScriptMissing(call.label, node, f"loading it failed: {error_text(reply)}") from reply

    def result(self, call: Call, reply: object) -> Any:
        """The value of a reply, or the typed error to raise for it."""
        if isinstance(reply, redis.exceptions.ResponseError):
            raise self.error(call, reply)
        return reply

    def error(self, call: Call, reply: redis.exceptions.ResponseError) -> Exception:
        error = translate(reply, call.label)
        if isinstance(error, ScriptBusy):
            self.counters.add(Event.BUSY, call.label)
        elif isinstance(error, ScriptError):
            self.counters.add(Event.SCRIPT_ERRORS, call.label)
        return error
