"""BUSY: a node stuck in a script past its busy-reply-threshold, and the opt-in kill policy.

Past the threshold every other client gets

    BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.

(`...FUNCTION KILL...` when a function runs). The text is our only way to tell the two apart, and
the kill command must match it: `SCRIPT KILL` during a function answers the other BUSY text. Only a
script that has not written can be killed; otherwise the answer is `KillResult.UNKILLABLE ...` and the node
stays busy until the script ends. We report that and leave it: the only other way out is
`SHUTDOWN NOSAVE`, which loses data and is never ours to decide.

While an EVAL runs the node tells nobody which script it is (FUNCTION STATS answers BUSY too); a
function is named by FUNCTION STATS:

    running_script => {name => "spin", command => ["FCALL", "spin", "0"], duration_ms => 503}

`BusyEpisode` is one stretch of BUSY replies on one node. `kill_due` is the policy, a pure function;
`send_kill` and `running_function` do the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from redis_orchestrator.catalog.model import Kind
from redis_orchestrator.config.settings import KillPolicy
from redis_orchestrator.wire.batch import call
from redis_orchestrator.wire.features import refused
from redis_orchestrator.wire.replies import as_map, error_code, text


class KillResult(enum.StrEnum):
    """How a SCRIPT KILL / FUNCTION KILL ended: the values of redis_orchestrator_script_kills_total{result}."""

    KILLED = "killed"
    UNKILLABLE = "unkillable"
    NOTBUSY = "notbusy"
    REFUSED = "refused"  # the kill command itself is renamed away, not offered, or not granted (NOPERM)
    ERROR = "error"


def is_busy_error(exc: BaseException) -> bool:
    """True for the BUSY reply; not for BUSYKEY (RESTORE) or BUSYGROUP (XGROUP CREATE)."""
    return isinstance(exc, redis.ResponseError) and error_code(exc) == "BUSY"


def busy_kind(text: str) -> Kind:
    """What runs (an EVAL script or a function), as the BUSY text tells: the kill must match it."""
    return Kind.FUNCTION if "FUNCTION KILL" in text else Kind.SCRIPT


def kill_command(kind: Kind) -> tuple[str, str]:
    return ("FUNCTION", "KILL") if kind == Kind.FUNCTION else ("SCRIPT", "KILL")


@dataclass
class BusyEpisode:
    """One node answering BUSY, from the first BUSY reply we saw until it answers normally."""

    kind: Kind
    first_seen: float  # monotonic seconds of the first BUSY reply
    function: str | None = None  # from FUNCTION STATS, when a function runs
    kill_result: KillResult | None = None  # last kill attempt's result, if any
    next_kill_at: float | None = None  # after an "error" result: when to try again
    leader_refused_logged: bool = False
    ended_at: float | None = None  # the first normal reply after it

    def busy_for(self, now: float) -> float:
        return max(0.0, now - self.first_seen)


def kill_due(policy: KillPolicy, episode: BusyEpisode, now: float, is_leader: Callable[[], bool]) -> bool:
    """The kill policy: on, `after` seconds past the first BUSY reply, once per episode, leader only.

    An KillResult.UNKILLABLE script is never asked again (it stays unkillable); a failed attempt ("error") is
    retried `after` seconds later. `is_leader` is called last so followers never touch it needlessly.
    """
    if not policy.enabled:
        return False
    if episode.kill_result in (KillResult.KILLED, KillResult.UNKILLABLE, KillResult.NOTBUSY):
        return False
    if episode.next_kill_at is not None and now < episode.next_kill_at:
        return False
    if episode.busy_for(now) < policy.after:
        return False
    return is_leader()


def classify_kill_reply(exc: BaseException | None) -> KillResult:
    """OK -> killed; KillResult.UNKILLABLE, KillResult.NOTBUSY by their code; a command the node refuses -> refused;
    anything else -> error."""
    if exc is None:
        return KillResult.KILLED
    code = error_code(exc)
    if code in ("UNKILLABLE", "NOTBUSY"):
        return KillResult.UNKILLABLE if code == "UNKILLABLE" else KillResult.NOTBUSY
    return KillResult.REFUSED if refused(exc) else KillResult.ERROR


async def send_kill(client: redis.asyncio.Redis, kind: Kind) -> tuple[KillResult, str, str]:
    """SCRIPT KILL or FUNCTION KILL as `kind` says -> (result, command sent, server's text).

    If the node answers with the *other* BUSY text (a function started after an EVAL ended, or the
    reverse), the other command is sent once.
    """
    for attempt in range(2):
        command = kill_command(kind)
        try:
            await call(client, *command)
            return KillResult.KILLED, " ".join(command), "OK"
        except redis.RedisError as exc:
            if attempt == 0 and is_busy_error(exc) and busy_kind(str(exc)) != kind:
                kind = busy_kind(str(exc))
                continue
            return classify_kill_reply(exc), " ".join(command), str(exc)
    raise AssertionError("unreachable")


def parse_running_function(reply: Any) -> str | None:
    """The running function's name from FUNCTION STATS (RESP3 map or RESP2 flat list), or None."""
    try:
        running = as_map(reply).get("running_script")
        name = as_map(running).get("name") if running else None
    except ValueError:  # not a map
        return None
    return text(name) if isinstance(name, bytes | str) else None


async def running_function(client: redis.asyncio.Redis) -> str | None:
    """FUNCTION STATS' running function; None when unknown (an EVAL runs, or the call failed)."""
    try:
        return parse_running_function(await call(client, "FUNCTION", "STATS"))
    except redis.RedisError:
        return None
