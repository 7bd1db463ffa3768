"""The client's errors: each says what happened, where, and what to do about it.

They subclass redis-py's own classes where one exists (`ScriptError` is a `ResponseError`,
`TransactionConflict` a `WatchError`, ...), so code that already catches redis-py's errors keeps
working, and code that wants the detail catches ours.

A script's own error reply starts with a stable code, e.g. `INSUFFICIENT_FUNDS balance 5 < amount 9`;
`ScriptError.code` is that first word (`ERR` for the server's generic errors).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import redis.exceptions

# An error code is a word in capitals, as the server's own (ERR, WRONGTYPE, NOSCRIPT). redis-py strips
# the `ERR ` of a generic error, so the server's `ERR Can not execute a script with write flag using
# *_ro command.` arrives as `Can not execute...`: its first word is no code, and the code is ERR.
_CODE = re.compile(r"[A-Z][A-Z0-9_-]*")


def reply_code(message: str) -> str:
    """An error reply's code: its first word when that is one, else ERR."""
    first = message.split(" ", 1)[0]
    return first if _CODE.fullmatch(first) else "ERR"


class ClientError(Exception):
    """Base of every error raised by redis_orchestrator.client itself."""


class ManifestError(ClientError):
    """The manifest cannot be read or is invalid; carries every problem found."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in the script manifest:\n{lines}")


class UnknownScript(ClientError, LookupError):
    """A name the manifest does not have."""

    def __init__(self, name: str, known: Sequence[str], detail: str = "") -> None:
        self.name = name
        self.known = tuple(known)
        why = detail or f"no script or function named {name!r} in the catalog"
        super().__init__(f"{why}; callable names: {', '.join(self.known) or '(none)'}")


class KeysRefused(ClientError, ValueError):
    """The keys of a call were refused before anything was sent."""


class CrossSlotError(KeysRefused):
    """Keys in more than one hash slot: Redis Cluster would answer CROSSSLOT (or `non local key`)."""

    def __init__(self, what: str, slots: Mapping[str, int], suggestions: Sequence[str] = ()) -> None:
        self.slots = dict(slots)
        self.suggestions = tuple(suggestions)
        listed = ", ".join(f"{k} (slot {s})" for k, s in self.slots.items())
        help_text = "; ".join(self.suggestions) or "give the keys one hash tag, e.g. {order:42}:a and {order:42}:b"
        super().__init__(
            f"{what}: keys in {len(set(self.slots.values()))} hash slots: {listed}; nothing was sent. "
            f"To fix: {help_text}"
        )


class KeyPatternError(KeysRefused):
    """A key that does not match the catalog's `keys:` pattern for its position."""

    def __init__(self, label: str, key: str, position: int, pattern: str | None, detail: str = "") -> None:
        self.label = label
        self.key = key
        self.position = position
        self.pattern = pattern
        why = detail or f"KEYS[{position}] = {key!r} does not match the catalog's pattern {pattern!r}"
        super().__init__(
            f"{label}: {why}; nothing was sent. Use a key of that form, fix the catalog's `keys:` for this "
            "script, or pass check_keys=False"
        )


class ScriptError(ClientError, redis.exceptions.ResponseError):
    """An error reply from a script (its own code, e.g. INSUFFICIENT_FUNDS) or from the server."""

    def __init__(self, label: str, message: str) -> None:
        self.label = label
        self.message = message
        self.code = reply_code(message)
        super().__init__(
            f"{label}: {message} (ScriptError.code = {self.code!r}; the catalog's scripts list their codes in their "
            "header and write nothing when they return one)"
        )


class ScriptBusy(ScriptError):
    """BUSY: the server is running a slow script and serves nothing else until it ends."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(label, message)
        self.args = (
            f"{label}: {message} -- the node is busy running another slow script. Retry after a short wait; "
            "if that script has not written yet, SCRIPT KILL (FUNCTION KILL for a function) ends it "
            "(redis-orchestrator's slow_scripts.kill does it for you)",
        )


class ScriptMissing(ClientError, redis.exceptions.NoScriptError):
    """NOSCRIPT (or a missing function) with fallback="raise", or a load that could not be done."""

    def __init__(self, label: str, node: str, detail: str) -> None:
        self.label = label
        self.node = node
        super().__init__(
            f"{label} is not loaded on {node}: {detail}. The redis-orchestrator daemon keeps every catalog script on "
            "every node; is it running against this cluster? (`redis-orchestrator status` shows what each node lacks)"
        )


class NodeUnreachable(ClientError, redis.exceptions.ConnectionError):
    """No connection to the node could be made: nothing was sent, so another attempt is always safe."""

    def __init__(self, node: str, cause: BaseException) -> None:
        self.node = node
        super().__init__(
            f"cannot connect to {node} ({cause}); nothing was sent. A failover may be under way: the client "
            "re-reads the topology and tries again a few times before raising this"
        )


class NotReplicated(ClientError):
    """The script ran on the primary, but WAIT saw fewer replicas than asked: a failover now may lose it."""

    def __init__(self, label: str, reply: Any, acked: int, wanted: int) -> None:
        self.label = label
        self.reply = reply
        self.acked = acked
        self.wanted = wanted
        super().__init__(
            f"{label} ran (reply kept in .reply) but only {acked} of {wanted} replica(s) acknowledged it in time: "
            "a failover now could lose it. Retry with the same idempotency key to confirm, or raise the WAIT timeout"
        )


class TransactionConflict(ClientError, redis.exceptions.WatchError):
    """A watched key kept changing: every attempt's EXEC was refused."""

    def __init__(self, keys: Sequence[str], attempts: int) -> None:
        self.keys = tuple(keys)
        self.attempts = attempts
        super().__init__(
            f"transaction on {', '.join(self.keys)} gave up after {attempts} attempt(s): another client changed a "
            "watched key each time. Allow more retries, make the keys less hot, or do the read-modify-write in one "
            "Lua script (no WATCH needed)"
        )


class TransactionAborted(ClientError, redis.exceptions.ExecAbortError):
    """EXECABORT: a command was rejected while queued, so nothing of the transaction ran."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__(
            f"transaction discarded, nothing ran: a queued command was rejected ({'; '.join(self.errors)}). "
            "Fix that command (unknown name or wrong number of arguments) and run the transaction again"
        )


def error_text(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def translate(exc: redis.exceptions.ResponseError, label: str) -> Exception:
    """Our typed error for a reply redis-py left as a plain ResponseError; any other class passes as is
    (MOVED, READONLY, OOM, ... keep redis-py's own classes)."""
    if type(exc) is not redis.exceptions.ResponseError:
        return exc
    text = error_text(exc)
    if text.startswith("BUSY"):
        return ScriptBusy(label, text)
    return ScriptError(label, text)
