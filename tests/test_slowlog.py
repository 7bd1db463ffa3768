"""Slow scripts: parsing and attribution (pure), then the watcher against real redis-server nodes.

Node-level tests use a one-node cluster of their own (module-scoped, configs restored after each
test); the UNKILLABLE test gets a throwaway node, because a script that wrote and then spins can
only be stopped with SHUTDOWN NOSAVE / kill -9.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from harness.chaos import ChaosCluster
from harness.helpers import spin_lua
from redis_orchestrator.catalog.model import Catalog, Kind, Script, mark_live, sha1_hex
from redis_orchestrator.config.settings import DesiredState, KillPolicy, SlowScriptSettings
from redis_orchestrator.daemon import busy
from redis_orchestrator.daemon.busy import KillResult
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.slowlog import (
    SlowlogEntry,
    SlowlogWatcher,
    advance,
    attribute,
    match,
    parse_config_value,
    parse_slowlog,
)
from redis_orchestrator.devcluster.cluster import LocalNode

# Spins for ARGV[1] milliseconds on any server (longer than 128 bytes: EVAL gets cut).
SPIN = spin_lua()
# Writes first, then spins: UNKILLABLE.
SPIN_AFTER_WRITE = b"redis.call('SET', KEYS[1], 'x')\n" + SPIN
SHORT = b"return redis.call('GET', KEYS[1])"
LIBRARY = (
    b"#!lua name=slowlib\n"
    b"redis.register_function{function_name='spin_fn', flags={'no-writes'}, callback=function(keys, args)\n"
    + SPIN.replace(b"ARGV", b"args")
    + b"end}\n"
)


def script(name: str, version: str, source: bytes, kind: Kind = Kind.SCRIPT, **extra: Any) -> Script:
    return Script(
        name=name, version=version, kind=kind, file=f"{name}.lua", source=source, sha=sha1_hex(source), **extra
    )


def make_catalog(*scripts: Script) -> Catalog:
    return Catalog(version="test", entries=tuple(mark_live(scripts, {}, {})))


CATALOG = make_catalog(
    script("spin", "1", SPIN),
    script("spin_write", "1", SPIN_AFTER_WRITE),
    script("short", "2", SHORT),
    script("slowlib", "1", LIBRARY, kind=Kind.FUNCTION, library="slowlib", functions=("spin_fn",)),
)


def entry(id: int, *argv: bytes, duration_us: int = 20_000) -> SlowlogEntry:
    return SlowlogEntry(id, 1_700_000_000, duration_us, tuple(argv), "127.0.0.1:5000", "")


def cut(body: bytes) -> bytes:
    """What SLOWLOG shows for an argument longer than 128 bytes."""
    return body[:128] + b"... (%d more bytes)" % (len(body) - 128)


# ---------------------------------------------------------------------- parsing (pure)

RESP_REPLY: list[list[Any]] = [
    [
        18,
        1795325026,
        556061,
        [b"EVALSHA", b"23a48ec8d45c9d8168aab5c8bfc571da945a0f3d", b"0"],
        b"127.0.0.1:35404",
        b"worker-1",
    ],
    [17, 1795325025, 12, [b"SET", b"a", b"b"], b"127.0.0.1:35392", b""],
]


def test_parse_raw_reply_bytes_and_str() -> None:
    for reply in (
        RESP_REPLY,
        [[e[0], e[1], e[2], [a.decode() for a in e[3]], e[4].decode(), e[5].decode()] for e in RESP_REPLY],
    ):
        entries = parse_slowlog(reply)
        assert [e.id for e in entries] == [18, 17]
        assert entries[0].argv == (b"EVALSHA", b"23a48ec8d45c9d8168aab5c8bfc571da945a0f3d", b"0")
        assert entries[0].duration_us == 556061
        assert entries[0].client == "127.0.0.1:35404"
        assert entries[0].client_name == "worker-1"
    assert parse_slowlog([]) == [] and parse_slowlog(None) == []


def test_parse_redis_py_parsed_dicts() -> None:
    parsed = [
        {
            "id": 5,
            "start_time": 1795325026,
            "duration": 900,
            "command": b"FCALL spin_fn 0",
            "client_address": b"127.0.0.1:1",
            "client_name": b"",
        }
    ]
    (only,) = parse_slowlog(parsed)
    assert only.argv == (b"FCALL", b"spin_fn", b"0")
    assert attribute(only, CATALOG) == "slowlib"


def test_parse_real_replies_in_resp2_and_resp3(solo_node: LocalNode) -> None:
    for protocol in (2, 3):
        with solo_node.client(protocol=protocol) as c:
            c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "0")
            c.execute_command("EVALSHA", c.execute_command("SCRIPT", "LOAD", SHORT), 1, "k")
            reply = c.execute_command("SLOWLOG", "GET", 3)
            config = c.execute_command("CONFIG", "GET", "busy-reply-threshold")
        entries = parse_slowlog(reply)
        assert entries[0].id > entries[1].id
        evalsha = next(e for e in entries if e.command == b"EVALSHA")
        assert evalsha.argv == (b"EVALSHA", sha1_hex(SHORT).encode(), b"1", b"k")
        assert attribute(evalsha, CATALOG) == "short"
        assert parse_config_value(config, "busy-reply-threshold") == "5000"


# ---------------------------------------------------------------------- attribution (pure)


@pytest.mark.parametrize(
    ("argv", "label", "detail"),
    [
        ((b"EVALSHA", sha1_hex(SPIN).encode(), b"0", b"5"), "spin", "spin@1"),
        ((b"evalsha_ro", sha1_hex(SPIN).upper().encode(), b"0"), "spin", "spin@1"),
        ((b"EVALSHA", b"0" * 40, b"0"), "unknown", "not in the catalog: sha " + "0" * 40),
        ((b"EVAL", SHORT, b"1", b"k"), "short", "short@2"),
        ((b"EVAL_RO", cut(SPIN), b"0", b"5"), "spin", "spin@1"),
        ((b"EVAL", cut(SPIN_AFTER_WRITE), b"1", b"k"), "spin_write", "spin_write@1"),
        ((b"EVAL", cut(SPIN + b"-- one more line\n"), b"0"), "unknown", None),  # same prefix, other length
        ((b"EVAL", b"return 1", b"0"), "unknown", None),
        ((b"FCALL", b"spin_fn", b"0", b"5"), "slowlib", "slowlib@1"),
        ((b"FCALL_RO", b"other_fn", b"0"), "unknown", "not in the catalog: function other_fn"),
        ((b"EVALSHA",), "unknown", None),
    ],
)
def test_attribution(argv: tuple[bytes, ...], label: str, detail: str | None) -> None:
    found = match(entry(1, *argv), CATALOG)
    assert found is not None
    assert found.label == label
    if detail is not None:
        assert found.detail == detail


def test_not_a_script_is_not_attributed() -> None:
    assert attribute(entry(1, b"SET", b"k", b"v"), CATALOG) is None
    assert attribute(entry(1, b"SCRIPT", b"LOAD", SPIN), CATALOG) is None


def test_cut_body_shared_by_two_versions_of_one_name_keeps_the_name() -> None:
    v1, v2 = SPIN + b"-- v1\n", SPIN + b"-- v2\n"
    catalog = make_catalog(script("spin", "1", v1), script("spin", "2", v2))
    found = match(entry(1, b"EVAL", cut(v1), b"0"), catalog)
    assert found is not None and found.label == "spin" and found.detail == "spin@1|2"


def test_cut_body_shared_by_two_names_is_unknown() -> None:
    catalog = make_catalog(script("a", "1", SPIN + b"-- a\n"), script("b", "1", SPIN + b"-- b\n"))
    found = match(entry(1, b"EVAL", cut(SPIN + b"-- a\n"), b"0"), catalog)
    assert found is not None and found.label == "unknown" and "ambiguous" in found.detail


# ---------------------------------------------------------------------- cursor (pure)


def entries(*ids: int) -> list[SlowlogEntry]:
    return [entry(i, b"EVAL", b"return 1", b"0") for i in sorted(ids, reverse=True)]


def test_first_poll_sets_the_cursor_and_counts_nothing() -> None:
    assert advance(None, entries(3, 4, 5)) == advance(None, entries(5))
    step = advance(None, entries(3, 4, 5))
    assert (step.new, step.missed, step.cursor) == ((), 0, 5)
    step = advance(None, [])
    assert (step.new, step.missed, step.cursor) == ((), 0, -1)


def test_entries_are_counted_once() -> None:
    step = advance(5, entries(3, 4, 5, 6, 7))
    assert [e.id for e in step.new] == [6, 7] and step.missed == 0 and step.cursor == 7
    step = advance(step.cursor, entries(3, 4, 5, 6, 7))
    assert step.new == () and step.missed == 0 and step.cursor == 7


def test_a_jump_in_ids_is_counted_as_missed() -> None:
    # cursor 5; ring of 4 now holds 12..15: 6..11 were lost.
    step = advance(5, entries(12, 13, 14, 15))
    assert [e.id for e in step.new] == [12, 13, 14, 15]
    assert step.missed == 6 and step.cursor == 15


def test_ids_going_back_mean_a_restart() -> None:
    step = advance(40, entries(1, 2, 3))
    assert step.restarted and [e.id for e in step.new] == [1, 2, 3] and step.missed == 1  # id 0 gone
    assert step.cursor == 3


def test_log_empty_at_start_counts_what_comes_next_without_a_gap() -> None:
    # SLOWLOG RESET empties the log but ids go on: the first ids seen say nothing about losses.
    first = advance(None, [])
    step = advance(first.cursor, entries(15, 16))
    assert [e.id for e in step.new] == [15, 16] and step.missed == 0 and step.cursor == 16


def test_empty_log_keeps_the_cursor() -> None:
    step = advance(9, [])
    assert step.cursor == 9 and step.new == () and step.missed == 0


# ---------------------------------------------------------------------- BUSY policy (pure)


def test_busy_text_and_kill_choice() -> None:
    script_busy = redis.ResponseError(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    )
    function_busy = redis.ResponseError(
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    )
    assert busy.is_busy_error(script_busy) and busy.is_busy_error(function_busy)
    assert not busy.is_busy_error(redis.ResponseError("BUSYKEY Target key name already exists."))
    assert not busy.is_busy_error(redis.ResponseError("BUSYGROUP Consumer Group name already exists"))
    assert busy.kill_command(busy.busy_kind(str(script_busy))) == ("SCRIPT", "KILL")
    assert busy.kill_command(busy.busy_kind(str(function_busy))) == ("FUNCTION", "KILL")
    assert busy.classify_kill_reply(None) == "killed"
    assert busy.classify_kill_reply(redis.ResponseError("UNKILLABLE Sorry the script ...")) == "unkillable"
    assert busy.classify_kill_reply(redis.ResponseError("NOTBUSY No scripts in execution right now.")) == "notbusy"
    assert busy.classify_kill_reply(redis.ConnectionError("reset")) == "error"


def test_kill_due() -> None:
    on = KillPolicy(enabled=True, after=5)
    episode = busy.BusyEpisode(kind="script", first_seen=100.0)
    assert not busy.kill_due(KillPolicy(), episode, 200.0, lambda: True)  # off by default
    assert not busy.kill_due(on, episode, 104.9, lambda: True)
    assert busy.kill_due(on, episode, 105.0, lambda: True)
    assert not busy.kill_due(on, episode, 105.0, lambda: False)  # followers never kill
    episode.kill_result = "unkillable"
    assert not busy.kill_due(on, episode, 500.0, lambda: True)  # asked once, never again
    episode.kill_result, episode.next_kill_at = "error", 110.0
    assert not busy.kill_due(on, episode, 109.0, lambda: True)
    assert busy.kill_due(on, episode, 110.0, lambda: True)


def test_running_function_from_function_stats_shapes() -> None:
    resp3 = {
        b"running_script": {b"name": b"spin_fn", b"command": [b"FCALL", b"spin_fn", b"0"], b"duration_ms": 503},
        b"engines": {},
    }
    resp2 = [b"running_script", [b"name", b"spin_fn", b"command", [b"FCALL"], b"duration_ms", 5], b"engines", []]
    assert busy.parse_running_function(resp3) == "spin_fn"
    assert busy.parse_running_function(resp2) == "spin_fn"
    assert busy.parse_running_function({b"running_script": None}) is None


# ---------------------------------------------------------------------- real nodes


@pytest.fixture(scope="module")
def solo() -> Iterator[ChaosCluster]:
    with ChaosCluster(primaries=1, replicas_per_primary=0) as cluster:
        yield cluster


@pytest.fixture
def solo_node(solo: ChaosCluster) -> Iterator[LocalNode]:
    node = solo.nodes[0]
    reset(node)
    yield node
    reset(node)


def reset(node: LocalNode) -> None:
    with node.client() as c:
        for _ in range(100):  # a test that failed mid-way may have left a script running
            try:
                c.execute_command("SCRIPT", "KILL")
            except redis.ResponseError as exc:
                if str(exc).startswith("NOTBUSY"):
                    break
                if "FUNCTION KILL" in str(exc):
                    c.execute_command("FUNCTION", "KILL")
            time.sleep(0.05)
        c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        c.execute_command("CONFIG", "SET", "slowlog-max-len", "128")
        c.execute_command("CONFIG", "SET", "busy-reply-threshold", "5000")
        c.execute_command("SCRIPT", "FLUSH")
        c.execute_command("FUNCTION", "FLUSH")
        c.execute_command("SLOWLOG", "RESET")


def settings(**kill: Any) -> SlowScriptSettings:
    return SlowScriptSettings(kill=KillPolicy(**kill))


def desired(slow_scripts: SlowScriptSettings) -> Callable[[], DesiredState]:
    state = DesiredState(catalog=CATALOG, slow_scripts=slow_scripts)
    return lambda: state


def watcher(
    node: LocalNode, metrics: Metrics, settings: SlowScriptSettings | None = None, **kwargs: Any
) -> SlowlogWatcher:
    client = redis.asyncio.Redis(host=node.host, port=node.port, protocol=3, socket_timeout=5)
    return SlowlogWatcher(node.address, client, desired(settings or SlowScriptSettings()), metrics, **kwargs)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def runs(metrics: Metrics, script: str, node: LocalNode) -> float:
    return sample(metrics, "redis_orchestrator_slow_script_runs_total", script=script, node=node.address)


def busy_threshold_200ms(node: LocalNode, *load: Any) -> Any:
    """busy-reply-threshold 200 ms (a long spin gets the node answering BUSY soon), then `load`
    (SCRIPT LOAD or FUNCTION LOAD): its reply."""
    with node.client() as c:
        c.execute_command("CONFIG", "SET", "busy-reply-threshold", "200")
        return c.execute_command(*load)


def in_background(node: LocalNode, *command: Any) -> tuple[threading.Thread, list[Any]]:
    """`command` from a thread, on a client of its own that waits up to a minute for the reply."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(node.client(socket_timeout=60).execute_command(*command))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def wait_busy(node: LocalNode, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    with node.client() as c:
        while time.monotonic() < deadline:
            try:
                c.ping()
            except redis.ResponseError as exc:
                if busy.is_busy_error(exc):
                    return str(exc)
                raise
            time.sleep(0.02)
    raise AssertionError(f"{node.address} never answered BUSY")


def test_slow_catalog_script_is_named_within_one_poll(solo_node: LocalNode) -> None:
    metrics = Metrics()

    async def scenario() -> None:
        w = watcher(solo_node, metrics)
        await w.poll_once()  # sets the cursor, reads the limit
        assert sample(metrics, "redis_orchestrator_script_time_limit_seconds", node=solo_node.address) == 5.0
        with solo_node.client() as c:
            sha = c.execute_command("SCRIPT", "LOAD", SPIN)
            c.execute_command("FUNCTION", "LOAD", LIBRARY)
            c.execute_command("EVALSHA", sha, 0, 50)
            c.execute_command("EVAL", SPIN, 0, 30)  # body cut to 128 bytes in the slowlog
            c.execute_command("FCALL", "spin_fn", 0, 30)
            c.execute_command("EVAL", SPIN + b"-- not ours\n", 0, 30)
            c.execute_command("EVAL", SHORT, 1, "k")  # fast: not in the slowlog at all
        await w.poll_once()
        assert runs(metrics, "spin", solo_node) == 2
        assert runs(metrics, "slowlib", solo_node) == 1
        assert runs(metrics, "unknown", solo_node) == 1
        assert runs(metrics, "short", solo_node) == 0
        assert sample(metrics, "redis_orchestrator_slow_script_duration_seconds_count", script="spin") == 2
        ratio = sample(metrics, "redis_orchestrator_slow_script_limit_ratio", script="spin", node=solo_node.address)
        assert 0.05 / 5 <= ratio < 1  # the slowest of the poll: >= 50 ms of 5 s
        await w.poll_once()  # nothing new: nothing counted twice
        assert runs(metrics, "spin", solo_node) == 2
        assert sample(metrics, "redis_orchestrator_slowlog_missed_entries_total", node=solo_node.address) == 0
        await w.client.aclose()

    asyncio.run(scenario())


def test_run_close_to_the_limit_is_logged(solo_node: LocalNode, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    with solo_node.client() as c:
        c.execute_command("CONFIG", "SET", "busy-reply-threshold", "100")

    async def scenario() -> None:
        w = watcher(solo_node, metrics)
        await w.poll_once()
        with solo_node.client() as c:
            c.execute_command("EVAL", SPIN, 0, 60)
        with caplog.at_level(logging.WARNING, logger="redis_orchestrator"):
            await w.poll_once()
        await w.client.aclose()

    asyncio.run(scenario())
    assert sample(metrics, "redis_orchestrator_script_time_limit_seconds", node=solo_node.address) == 0.1
    assert sample(metrics, "redis_orchestrator_slow_script_limit_ratio", script="spin", node=solo_node.address) >= 0.6
    warned = [r for r in caplog.records if getattr(r, "event", "") == "slow_script"]
    assert len(warned) == 1
    assert warned[0].fields["script"] == "spin@1" and warned[0].fields["ratio"] >= 0.6  # type: ignore[attr-defined]


def test_ring_wrapping_between_polls_is_counted_as_missed(solo_node: LocalNode) -> None:
    metrics = Metrics()
    with solo_node.client() as c:
        c.execute_command("CONFIG", "SET", "slowlog-max-len", "4")
        sha = c.execute_command("SCRIPT", "LOAD", SPIN)
        c.execute_command("EVALSHA", sha, 0, 15)  # gives the cursor a base id

    async def scenario() -> None:
        w = watcher(solo_node, metrics)
        await w.poll_once()
        with solo_node.client() as c:
            for _ in range(10):
                c.execute_command("EVALSHA", sha, 0, 15)
        await w.poll_once()
        await w.client.aclose()

    asyncio.run(scenario())
    assert sample(metrics, "redis_orchestrator_slowlog_missed_entries_total", node=solo_node.address) == 6
    assert runs(metrics, "spin", solo_node) == 4


def test_busy_read_only_script_is_flagged_and_killed(solo_node: LocalNode, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    sha = busy_threshold_200ms(solo_node, "SCRIPT", "LOAD", SPIN)

    async def scenario() -> None:
        w = watcher(solo_node, metrics, settings=settings(enabled=True, after=0.5))
        await w.poll_once()
        thread, outcome = in_background(solo_node, "EVALSHA", sha, 0, 10_000)
        assert "SCRIPT KILL" in wait_busy(solo_node)
        await w.poll_once()
        assert sample(metrics, "redis_orchestrator_node_busy", node=solo_node.address) == 1
        assert sample(metrics, "redis_orchestrator_script_kills_total", node=solo_node.address, result="killed") == 0
        await asyncio.sleep(0.6)  # past kill.after
        await w.poll_once()
        assert sample(metrics, "redis_orchestrator_script_kills_total", node=solo_node.address, result="killed") == 1
        thread.join(timeout=30)
        assert isinstance(outcome[0], redis.ResponseError) and "killed" in str(outcome[0])
        await w.poll_once()  # the node answers again: its slowlog entry names the script
        assert sample(metrics, "redis_orchestrator_node_busy", node=solo_node.address) == 0
        assert runs(metrics, "spin", solo_node) == 1
        assert sample(metrics, "redis_orchestrator_slow_script_limit_ratio", script="spin", node=solo_node.address) >= 1
        await w.client.aclose()

    with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
        asyncio.run(scenario())
    kill = next(r for r in caplog.records if getattr(r, "event", "") == "script_kill")
    assert kill.fields["command"] == "SCRIPT KILL" and kill.fields["result"] == "killed"  # type: ignore[attr-defined]
    ended = next(r for r in caplog.records if getattr(r, "event", "") == "node_busy_ended")
    assert ended.fields["script"] == "spin@1" and ended.fields["kill"] == "killed"  # type: ignore[attr-defined]


def test_busy_function_gets_function_kill(solo_node: LocalNode, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    busy_threshold_200ms(solo_node, "FUNCTION", "LOAD", LIBRARY)

    async def scenario() -> None:
        w = watcher(solo_node, metrics, settings=settings(enabled=True, after=0.5))
        thread, outcome = in_background(solo_node, "FCALL_RO", "spin_fn", 0, 10_000)
        assert "FUNCTION KILL" in wait_busy(solo_node)
        await w.poll_once()  # first poll while busy: no cursor yet
        assert w.episode is not None and w.episode.function == "spin_fn"  # named by FUNCTION STATS
        await asyncio.sleep(0.6)
        await w.poll_once()
        thread.join(timeout=30)
        assert isinstance(outcome[0], redis.ResponseError)
        await w.poll_once()
        assert runs(metrics, "slowlib", solo_node) == 1  # counted although it ended the first read
        await w.client.aclose()

    with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
        asyncio.run(scenario())
    assert sample(metrics, "redis_orchestrator_script_kills_total", node=solo_node.address, result="killed") == 1
    kill = next(r for r in caplog.records if getattr(r, "event", "") == "script_kill")
    assert kill.fields["command"] == "FUNCTION KILL"  # type: ignore[attr-defined]
    assert kill.fields["script"] == "slowlib@1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("who", ["follower", "stale leader"])
def test_no_kill_unless_leader(solo_node: LocalNode, who: str) -> None:
    """A follower never kills. A leader by its own clock is asked once more right before the kill;
    a stale one is not confirmed by the lease's server (test_leader.py shows the refusal): no kill."""
    metrics = Metrics()
    sha = busy_threshold_200ms(solo_node, "SCRIPT", "LOAD", SPIN)
    asked = []

    async def refused() -> bool:
        asked.append(1)
        return False

    leadership: dict[str, Any] = {"is_leader": lambda: False} if who == "follower" else {"confirm_leader": refused}

    async def scenario() -> None:
        w = watcher(solo_node, metrics, settings=settings(enabled=True, after=0.1), **leadership)
        thread, _ = in_background(solo_node, "EVALSHA", sha, 0, 3000)
        wait_busy(solo_node)
        await w.poll_once()
        await asyncio.sleep(0.2)
        await w.poll_once()
        assert sample(metrics, "redis_orchestrator_node_busy", node=solo_node.address) == 1
        for result in KillResult:
            assert sample(metrics, "redis_orchestrator_script_kills_total", node=solo_node.address, result=result) == 0
        with solo_node.client() as c:
            c.execute_command("SCRIPT", "KILL")
        thread.join(timeout=30)
        await w.client.aclose()

    asyncio.run(scenario())
    assert asked == ([] if who == "follower" else [1])


@pytest.mark.live
@pytest.mark.destructive
def test_script_that_wrote_is_unkillable_and_left_running(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    with ChaosCluster(primaries=1, replicas_per_primary=0) as throwaway:
        node = throwaway.nodes[0]
        sha = busy_threshold_200ms(node, "SCRIPT", "LOAD", SPIN_AFTER_WRITE)

        async def scenario() -> None:
            w = watcher(node, metrics, settings=settings(enabled=True, after=0.5))
            await w.poll_once()
            in_background(node, "EVALSHA", sha, 1, "k", 60_000)
            wait_busy(node)
            await w.poll_once()
            await asyncio.sleep(0.6)
            await w.poll_once()
            await w.poll_once()  # asked once: an unkillable script is not asked again
            await w.client.aclose()

        with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
            asyncio.run(scenario())
        wait_busy(node)  # still running: we never send SHUTDOWN NOSAVE
    # leaving the with-block kill -9s the node: the only way to stop that script
    assert sample(metrics, "redis_orchestrator_script_kills_total", node=node.address, result="unkillable") == 1
    assert sample(metrics, "redis_orchestrator_script_kills_total", node=node.address, result="killed") == 0
    assert sample(metrics, "redis_orchestrator_node_busy", node=node.address) == 1
    kill = next(r for r in caplog.records if getattr(r, "event", "") == "script_kill")
    assert kill.fields["result"] == "unkillable" and kill.fields["reply"].startswith("UNKILLABLE")  # type: ignore[attr-defined]


@pytest.mark.live  # the daemon as a process
def test_run_survives_an_unreachable_node() -> None:
    metrics = Metrics()

    async def scenario() -> None:
        client = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
        w = SlowlogWatcher("127.0.0.1:1", client, desired(SlowScriptSettings(poll_interval=0.01)), metrics)
        task = asyncio.create_task(w.run())
        while sample(metrics, "redis_orchestrator_slowlog_poll_errors_total", node="127.0.0.1:1") < 2:
            await asyncio.sleep(0.01)
        assert not task.done()  # errors are counted and retried, never raised
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
        await client.aclose()

    asyncio.run(scenario())
