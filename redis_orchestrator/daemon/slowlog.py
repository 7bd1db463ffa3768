"""Slow scripts: each node's SLOWLOG read with a cursor, entries attributed to catalog scripts.

One `SLOWLOG GET 128` per node per poll, sent raw (redis-py's parsed form joins argv with spaces).
The reply, newest first, is the same array in RESP2 and RESP3:

    1) 1) (integer) 17                 id: +1 per entry per node, never reused until a restart
       2) (integer) 1795325026         unix seconds
       3) (integer) 556061             microseconds, the whole script run
       4) 1) "EVALSHA"                 argv: at most 32 args, each cut to 128 bytes +
          2) "23a48ec8d4..."                 "... (N more bytes)"
          3) "0"
       5) "127.0.0.1:35404"
       6) ""                           client name

Decisions:
- Metric label `script` is the catalog *name* ("transfer"), not "name@version": a name's series stay
  the same through rollouts and cardinality is bounded by the catalog's names plus one "unknown"
  for every script that is not ours (never one series per foreign sha). Logs carry "name@version".
- The first poll only sets the cursor: entries older than the daemon's start are not counted, so a
  restart of the daemon never counts the same entries twice. One exception: when the node was
  already BUSY at start, the script entry that ends the BUSY is counted (and named in the log).
- Entries are counted once (id > cursor). A gap in ids between the cursor and the oldest entry
  returned (the ring wrapped, more than 128 entries arrived, or someone ran SLOWLOG RESET) is
  counted in `slowlog_missed_entries_total`. A newest id below the cursor means the node
  restarted: its ids start again at 0.
- The time limit (`busy-reply-threshold`, `lua-time-limit` on servers older than 7.0) is read with
  CONFIG GET every `threshold_refresh_interval`, not every poll.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from redis_orchestrator import logs
from redis_orchestrator.catalog.model import Catalog, Kind, Script, sha1_hex
from redis_orchestrator.config.settings import DesiredState, SlowScriptSettings
from redis_orchestrator.daemon import busy
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.wire import batch
from redis_orchestrator.wire.connections import describe_error
from redis_orchestrator.wire.features import Feature, NodeFeatures, refused
from redis_orchestrator.wire.replies import as_map, text

UNKNOWN = "unknown"
FETCH_COUNT = 128
SLOWLOG_MAX_STRING = 128
MAX_ERROR_BACKOFF = 10.0

_EVAL_COMMANDS = frozenset({b"EVAL", b"EVAL_RO"})
_EVALSHA_COMMANDS = frozenset({b"EVALSHA", b"EVALSHA_RO"})
_FCALL_COMMANDS = frozenset({b"FCALL", b"FCALL_RO"})
_SCRIPT_COMMANDS = _EVAL_COMMANDS | _EVALSHA_COMMANDS | _FCALL_COMMANDS
_CUT = re.compile(rb"\A(.{%d})\.\.\. \((\d+) more bytes\)\Z" % SLOWLOG_MAX_STRING, re.DOTALL)


@dataclass(frozen=True)
class SlowlogEntry:
    id: int
    timestamp: int
    duration_us: int
    argv: tuple[bytes, ...]
    client: str
    client_name: str

    @property
    def seconds(self) -> float:
        return self.duration_us / 1_000_000

    @property
    def command(self) -> bytes:
        return self.argv[0].upper() if self.argv else b""


# ---------------------------------------------------------------------- parsing


def parse_slowlog(reply: Any, after: int | None = None) -> list[SlowlogEntry]:
    """SLOWLOG GET's reply -> entries, newest first (the server's order).

    Accepts the raw array (RESP2 and RESP3 are the same), bytes or str (decode_responses=True), and
    the dicts of redis-py's parsed `slowlog_get` (`id`, `start_time`, `duration`, `command`, ...),
    whose joined command is split back on spaces (lossy: prefer the raw reply).

    `after` (a cursor) stops at the first entry it already covers: the watcher polls every second
    and most of the reply is old. When even the newest id is below it (the node restarted), every
    entry is returned. `advance` gives the same result on this list as on the whole reply.
    """
    entries: list[SlowlogEntry] = []
    for item in reply or ():
        entry = _parse_entry(item)
        if after is not None and entry.id <= after:
            if entries or entry.id == after:
                break
            after = None  # the newest is below the cursor: a restart, every entry counts
        entries.append(entry)
    return entries


def _parse_entry(item: Any) -> SlowlogEntry:
    if isinstance(item, dict):
        fields: dict[str, Any] = as_map(item)
        command = fields.get("command", b"")
        argv = command if isinstance(command, list | tuple) else _bytes(command).split(b" ")
        return SlowlogEntry(
            id=int(fields["id"]),
            timestamp=int(fields.get("start_time", 0)),
            duration_us=int(fields.get("duration", 0)),
            argv=tuple(_bytes(a) for a in argv),
            client=text(fields.get("client_address", "")),
            client_name=text(fields.get("client_name", "")),
        )
    if not isinstance(item, list | tuple) or len(item) < 4:
        raise ValueError(f"not a SLOWLOG entry: {item!r}")
    return SlowlogEntry(
        id=int(item[0]),
        timestamp=int(item[1]),
        duration_us=int(item[2]),
        argv=tuple(_bytes(a) for a in item[3]),
        client=text(item[4]) if len(item) > 4 else "",  # absent before Redis 4.0
        client_name=text(item[5]) if len(item) > 5 else "",
    )


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


# ---------------------------------------------------------------------- attribution


@dataclass(frozen=True)
class Match:
    """Who ran: `label` for metrics (a catalog name or "unknown"), `detail` for logs."""

    label: str
    detail: str
    script: Script | None = None


def is_script_command(entry: SlowlogEntry) -> bool:
    return entry.command in _SCRIPT_COMMANDS


def match(entry: SlowlogEntry, catalog: Catalog) -> Match | None:
    """The catalog script behind a script entry; None when the entry is not a script command.

    EVALSHA by its sha; EVAL by the sha1 of its body or, when the slowlog cut the body, by its first
    128 bytes *and* its full length (the "(N more bytes)" count) against the catalog's sources;
    FCALL by function name.
    """
    command = entry.command
    if command not in _SCRIPT_COMMANDS:
        return None
    if len(entry.argv) < 2:
        return Match(UNKNOWN, f"{command.decode(errors='replace')} without arguments")
    arg = entry.argv[1]
    if command in _EVALSHA_COMMANDS:
        sha = arg.decode("ascii", "replace").lower()
        return _one(catalog.by_sha(sha), f"sha {sha}")
    if command in _FCALL_COMMANDS:
        function = arg.decode("utf-8", "replace")
        return _one(catalog.by_function(function), f"function {function}")
    cut = _CUT.match(arg)
    if cut is None:
        sha = sha1_hex(arg)
        return _one(catalog.by_sha(sha), f"EVAL body sha {sha}")
    prefix, length = cut.group(1), SLOWLOG_MAX_STRING + int(cut.group(2))
    candidates = [
        s for s in catalog.entries if s.kind == Kind.SCRIPT and len(s.source) == length and s.source.startswith(prefix)
    ]
    names = sorted({s.name for s in candidates})
    if len(names) == 1:
        if len(candidates) == 1:
            return Match(names[0], candidates[0].label, candidates[0])
        versions = "|".join(s.version for s in candidates)
        return Match(names[0], f"{names[0]}@{versions}")
    if names:  # two names whose bodies agree on 128 bytes and length: say so, count as unknown
        return Match(UNKNOWN, f"EVAL body cut at 128 bytes, ambiguous between {', '.join(names)}")
    return Match(UNKNOWN, f"EVAL body cut at 128 bytes: {prefix[:40]!r}...")


def _one(script: Script | None, what: str) -> Match:
    if script is None:
        return Match(UNKNOWN, f"not in the catalog: {what}")
    return Match(script.name, script.label, script)


def attribute(entry: SlowlogEntry, catalog: Catalog) -> str | None:
    """The metric label for a script entry ("unknown" when not ours); None for other commands."""
    found = match(entry, catalog)
    return found.label if found is not None else None


# ---------------------------------------------------------------------- cursor


@dataclass(frozen=True)
class Advance:
    new: tuple[SlowlogEntry, ...]  # oldest first
    missed: int
    cursor: int
    restarted: bool = False


def advance(cursor: int | None, entries: Sequence[SlowlogEntry]) -> Advance:
    """Move the cursor (the newest id already counted) over one SLOWLOG GET reply.

    `cursor=None` is the first poll: remember where the log is, count nothing. A log empty at the
    first poll gives cursor -1: whatever comes next is new, and no gap can be computed (SLOWLOG
    RESET empties the log but ids go on). A newest id below the cursor: the node restarted and its
    ids start again at 0, so ids below the oldest one returned were lost.
    """
    if not entries:
        return Advance((), 0, -1 if cursor is None else cursor)
    newest = max(e.id for e in entries)
    if cursor is None:
        return Advance((), 0, newest)
    ordered = tuple(sorted(entries, key=lambda e: e.id))
    if newest < cursor:
        return Advance(ordered, ordered[0].id, newest, restarted=True)
    if cursor == -1:
        return Advance(ordered, 0, newest)
    new = tuple(e for e in ordered if e.id > cursor)
    missed = (newest - cursor) - len(new) if new else 0
    return Advance(new, missed, newest if new else cursor)


def parse_config_value(reply: Any, name: str) -> str | None:
    """CONFIG GET's answer for one name: RESP3 map, RESP2 [name, value], or redis-py's dict."""
    try:
        value = as_map(reply).get(name)
    except ValueError:  # not a map at all
        return None
    return None if value is None else text(value)


# ---------------------------------------------------------------------- the watcher


async def always_confirmed() -> bool:
    """A single instance (no lease): nobody else could lead."""
    return True


class SlowlogWatcher:
    """Polls one node: slow scripts by name, ratio to the time limit, BUSY and the kill policy. The
    catalog and `slow_scripts` settings are read from the desired state at every poll, so a reload
    applies to every node at once."""

    name = "slowlog"

    def __init__(
        self,
        node: str,
        client: redis.asyncio.Redis,
        desired: Callable[[], DesiredState],
        metrics: Metrics,
        is_leader: Callable[[], bool] = lambda: True,
        *,
        confirm_leader: Callable[[], Awaitable[bool]] = always_confirmed,
        features: NodeFeatures | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.client = client
        self._desired = desired
        self.metrics = metrics
        self.is_leader = is_leader
        self.confirm_leader = confirm_leader  # the lease's server, asked right before a kill
        self.features = features if features is not None else NodeFeatures(node, metrics)
        self.clock = clock
        self.cursor: int | None = None
        self.limit_seconds: float | None = None  # None: not read yet or unknown; 0: no limit
        self.episode: busy.BusyEpisode | None = None
        self._threshold_due = 0.0
        self._ended: busy.BusyEpisode | None = None  # busy just ended: name it from the slowlog
        self._error: str | None = None
        self._failures = 0

    def catalog(self) -> Catalog:
        return self._desired().catalog

    @property
    def settings(self) -> SlowScriptSettings:
        return self._desired().slow_scripts

    # ------------------------------------------------------------------ one poll

    async def poll_once(self) -> None:
        """SLOWLOG GET (+ CONFIG GET when due). On BUSY: flag the node, maybe kill. Redis errors
        other than BUSY propagate (run() logs and counts them). A node that refuses SLOWLOG (renamed,
        hosted, NOPERM) is still watched for BUSY, with PING."""
        now = self.clock()
        try:
            if now >= self._threshold_due and self.features.available(Feature.TIME_LIMIT):
                await self._refresh_limit(now)
            if not self.features.available(Feature.SLOWLOG):
                await batch.call(self.client, "PING")  # answers BUSY like any command would
                self._busy_over(now)
                return
            if self.cursor is not None and self.episode is None and await self._nothing_new():
                return
            reply = await batch.call(self.client, "SLOWLOG", "GET", FETCH_COUNT)
        except redis.ResponseError as exc:
            if busy.is_busy_error(exc):
                await self._on_busy(str(exc), now)
                return
            if refused(exc):
                self.features.refuse(Feature.SLOWLOG, "SLOWLOG GET", exc)
                return
            raise
        self._busy_over(now)
        self._record(parse_slowlog(reply, after=self.cursor))

    async def _nothing_new(self) -> bool:
        """`SLOWLOG GET 1`: is the newest entry still the one counted last? A full ring is up to
        128 entries (hundreds of KB with long arguments) re-sent every second otherwise; with this
        probe a quiet node costs one small reply, and a poll with news one extra round trip."""
        newest = parse_slowlog(await batch.call(self.client, "SLOWLOG", "GET", 1))
        if not newest:
            return self.cursor == -1  # still empty; an emptied log (RESET, restart) is read in full
        return newest[0].id == self.cursor

    async def _refresh_limit(self, now: float) -> None:
        try:
            reply = await batch.call(self.client, "CONFIG", "GET", "busy-reply-threshold")
        except redis.ResponseError as exc:
            if not refused(exc):
                raise
            self.features.refuse(Feature.TIME_LIMIT, "CONFIG GET", exc)
            return
        value = parse_config_value(reply, "busy-reply-threshold")
        if value is None:  # before 7.0 only the old name exists
            value = parse_config_value(
                await batch.call(self.client, "CONFIG", "GET", "lua-time-limit"), "lua-time-limit"
            )
        self._threshold_due = now + self.settings.threshold_refresh_interval
        limit = max(0, int(value)) / 1000 if value is not None and value.lstrip("-").isdigit() else None
        if limit != self.limit_seconds:
            logs.event("script_time_limit", node=self.node, limit_ms=None if limit is None else int(limit * 1000))
        self.limit_seconds = limit
        if limit is not None:
            self.metrics.script_time_limit_read(self.node, limit)

    def _record(self, entries: list[SlowlogEntry]) -> None:
        if self.cursor is None and self._ended is not None:
            # Started while the node was busy: the script that held it is the newest script entry
            # (it ended just before this reply). Count it; everything older predates our start.
            held = next((e for e in entries if is_script_command(e)), None)
            step = Advance((held,) if held else (), 0, entries[0].id if entries else -1)
        else:
            step = advance(self.cursor, entries)
        self.cursor = step.cursor
        if step.restarted:
            logs.event("slowlog_cursor_reset", "slowlog ids went back: the node restarted", node=self.node)
        if step.missed:
            self.metrics.slowlog_entries_missed(self.node, step.missed)
            logs.warning(
                "slowlog_missed",
                "entries lost to the slowlog ring between two polls (raise slowlog-max-len or poll faster)",
                node=self.node,
                missed=step.missed,
            )
        catalog = self.catalog()
        ratios: dict[str, float] = {}
        longest: tuple[SlowlogEntry, Match] | None = None
        for entry in step.new:
            found = match(entry, catalog)
            if found is None:
                continue
            self.metrics.slow_script_run(found.label, self.node, entry.seconds)
            if longest is None or entry.duration_us > longest[0].duration_us:
                longest = (entry, found)
            if not self.limit_seconds:
                continue
            ratio = entry.seconds / self.limit_seconds
            ratios[found.label] = max(ratio, ratios.get(found.label, 0.0))
            if ratio >= self.settings.warn_ratio:
                logs.warning(
                    "slow_script",
                    "script run close to (or past) the node's busy-reply-threshold",
                    node=self.node,
                    script=found.detail,
                    duration_ms=round(entry.seconds * 1000, 1),
                    limit_ms=round(self.limit_seconds * 1000),
                    ratio=round(ratio, 3),
                    client=entry.client,
                    client_name=entry.client_name or None,
                    slowlog_id=entry.id,
                )
        for label, ratio in ratios.items():
            self.metrics.slow_script_ratio(label, self.node, ratio)
        if self._ended is not None:
            self._log_busy_ended(self._ended, longest)
            self._ended = None

    # ------------------------------------------------------------------ BUSY

    async def _on_busy(self, text: str, now: float) -> None:
        kind = busy.busy_kind(text)
        episode = self.episode
        if episode is None or episode.kind != kind:
            episode = self.episode = busy.BusyEpisode(kind=kind, first_seen=now)
            self.metrics.node_busy_changed(self.node, True)
            if kind == Kind.FUNCTION:
                episode.function = await busy.running_function(self.client)
            logs.warning(
                "node_busy",
                "the node answers BUSY: a script is past busy-reply-threshold",
                node=self.node,
                kind=kind,
                script=self._function_detail(episode),
                kill_policy=f"after {self.settings.kill.after}s" if self.settings.kill.enabled else "off",
            )
        if self.features.available(Feature.KILL) and busy.kill_due(self.settings.kill, episode, now, self.is_leader):
            if not await self.confirm_leader():  # a stale leader is refused by the server, not its own clock
                if not episode.leader_refused_logged:
                    episode.leader_refused_logged = True
                    logs.event("script_kill_skipped", "the lease's server did not confirm us as leader", node=self.node)
                return
            result, command, reply = await busy.send_kill(self.client, kind)
            if result == busy.KillResult.REFUSED:
                self.features.refuse(Feature.KILL, command, redis.ResponseError(reply))
            episode.kill_result = result
            episode.next_kill_at = now + self.settings.kill.after if result == busy.KillResult.ERROR else None
            self.metrics.script_kill(self.node, result)
            logs.warning(
                "script_kill",
                "the script already wrote: left running (only SHUTDOWN NOSAVE would stop it, never ours to send)"
                if result == busy.KillResult.UNKILLABLE
                else "",
                node=self.node,
                result=result,
                command=command,
                kind=kind,
                script=self._function_detail(episode),
                busy_for_s=round(episode.busy_for(now), 3),
                reply=None if result == busy.KillResult.KILLED else reply,
            )
        elif self.settings.kill.enabled and not episode.leader_refused_logged and not self.is_leader():
            episode.leader_refused_logged = True
            logs.event("script_kill_skipped", "not the leader: the leader decides kills", node=self.node)

    def _busy_over(self, now: float) -> None:
        if self.episode is None:
            return
        self.episode.ended_at = now
        self._ended, self.episode = self.episode, None
        self.metrics.node_busy_changed(self.node, False)

    def _log_busy_ended(self, episode: busy.BusyEpisode, longest: tuple[SlowlogEntry, Match] | None) -> None:
        """The script that held the node, named by its slowlog entry now that it has ended."""
        entry, found = longest if longest is not None else (None, None)
        logs.event(
            "node_busy_ended",
            "" if found is not None else "its slowlog entry was not seen (lost to the ring?)",
            node=self.node,
            kind=episode.kind,
            script=found.detail if found is not None else self._function_detail(episode),
            duration_ms=round(entry.seconds * 1000, 1) if entry is not None else None,
            kill=episode.kill_result,
            busy_for_s=round(episode.busy_for(episode.ended_at or episode.first_seen), 3),
        )

    def _function_detail(self, episode: busy.BusyEpisode) -> str | None:
        if episode.function is None:
            return None
        script = self.catalog().by_function(episode.function)
        return script.label if script is not None else f"{UNKNOWN} (function {episode.function})"

    # ------------------------------------------------------------------ cadence

    async def run(self) -> None:
        """poll_once every `poll_interval` (drift-corrected) until cancelled; idle while
        `slow_scripts.enabled` is false. Redis errors are counted, logged once per change of error,
        and retried with backoff; never raised."""
        next_at = self.clock()
        while True:
            settings = self.settings
            interval = settings.poll_interval
            if settings.enabled:
                try:
                    await self.poll_once()
                except (redis.RedisError, OSError) as exc:
                    self._failed(exc)
                else:
                    self._recovered()
            delay = interval if not self._failures else min(interval * 2 ** (self._failures - 1), MAX_ERROR_BACKOFF)
            next_at += delay
            now = self.clock()
            if next_at < now:  # fell behind (a slow node): skip the lost ticks, keep the cadence
                next_at = now + delay
            await asyncio.sleep(next_at - now)

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        self.metrics.slowlog_poll_failed(self.node)
        text = describe_error(exc)
        if text != self._error:
            logs.warning("slowlog_poll_failed", node=self.node, error=text)
            self._error = text

    def _recovered(self) -> None:
        if self._error is not None:
            logs.event("slowlog_poll_recovered", node=self.node, after_failures=self._failures)
        self._error = None
        self._failures = 0
