"""Failovers under Sentinel with `redis-orchestrator run` beside the group: a kill -9 of the primary
(then the old primary back, empty, as a stray primary), and a graceful `SENTINEL FAILOVER` with a
Sentinel killed during it. An EVALSHA-only client that follows Sentinel (redis-py's
`Sentinel.master_for`) counts NOSCRIPT; the promoted node's own INFO errorstats counts them too.
Latencies are printed, never asserted."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from harness.helpers import DaemonProcess, catalog_shas, libraries, wait_for
from harness.sentinel import (
    SentinelClient,
    calls_of,
    group_holds,
    noscript_errors,
    sentinel_config,
    started_group,
)
from redis_orchestrator.devcluster.cluster import LocalNode

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.destructive, pytest.mark.timeout(150)]


@dataclass
class BackOnline:
    """What a poller saw of a restarted node: its first PONG, when it first held every catalog SHA
    and when it first held the catalog's library, each with the role it answered at that moment."""

    first_pong: float | None = None
    scripts_at: float | None = None
    scripts_role: str | None = None
    library_at: float | None = None
    library_role: str | None = None

    def ms_after_pong(self, at: float | None) -> float:
        assert self.first_pong is not None and at is not None
        return max(0.0, at - self.first_pong) * 1000


def poll_back_online(node: LocalNode, shas: set[str], library: bytes, deadline: float, seen: BackOnline) -> None:
    """PING until it answers, then `SCRIPT EXISTS` + `FUNCTION LIST` + `ROLE` every ~2 ms until every
    SHA and the library have been seen."""
    ordered = sorted(shas)
    while time.monotonic() < deadline:
        try:
            with node.client(socket_timeout=0.5, socket_connect_timeout=0.2) as c:
                while time.monotonic() < deadline:
                    if seen.first_pong is None:
                        c.ping()
                        seen.first_pong = time.monotonic()
                    pipe = c.pipeline(transaction=False)
                    pipe.execute_command("SCRIPT", "EXISTS", *ordered)
                    pipe.execute_command("FUNCTION", "LIST", "WITHCODE")
                    pipe.execute_command("ROLE")
                    flags, functions, role = pipe.execute()
                    now, said = time.monotonic(), role[0].decode()
                    if seen.scripts_at is None and all(int(f) for f in flags):
                        seen.scripts_at, seen.scripts_role = now, said
                    codes = [f[b"library_code"] for f in functions]  # redis-py: one dict per library
                    if seen.library_at is None and library in codes:
                        seen.library_at, seen.library_role = now, said
                    if seen.scripts_at is not None and seen.library_at is not None:
                        return
                    time.sleep(0.002)
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.002)
        except redis.ResponseError as exc:  # LOADING: not an answer yet
            if "LOADING" not in str(exc):
                raise
            time.sleep(0.002)


def wait_subscribed(daemon: DaemonProcess, sentinels: list[str]) -> None:
    for sentinel in sentinels:
        daemon.wait_log(f"sentinel_subscribed sentinel={sentinel}")


def log_count(daemon: DaemonProcess, *words: str) -> int:
    return sum(1 for line in daemon.log().splitlines() if all(w in line for w in words))


def test_kill_9_of_the_primary_zero_noscript_then_the_old_primary_is_whole_before_sentinel_converts_it(
    tmp_path: Path,
) -> None:
    with started_group() as group:
        config = sentinel_config(tmp_path, group)
        shas = catalog_shas(config)
        with DaemonProcess(config) as daemon:
            daemon.wait_log(" ready ", timeout=30)
            wait_subscribed(daemon, group.seeds)
            old = group.primary()
            with SentinelClient(group, sorted(shas)) as client:
                wait_for(lambda: client.ok + client.refused >= 50, 10, "the client's first answers")
                killed = time.monotonic()
                group.kill(old)
                new = group.wait_primary_not(old)
                promotion = time.monotonic() - killed
                before = calls_of(new, "evalsha")
                wait_for(lambda: calls_of(new, "evalsha") >= before + 200, 20, "calls on the promoted replica")
            assert client.noscript == 0, f"{client.noscript} NOSCRIPT of {client.calls} calls"
            assert noscript_errors(new) == 0
            daemon.wait_log(f"role_changed node={new.address}", timeout=10)
            assert log_count(daemon, "sentinel_event", "channel=+switch-master", f"node={new.address}") == 1
            assert log_count(daemon, "node_down", f"node={old.address}") == 1

            # The old primary comes back empty (no persistence) and still a primary: Sentinel turns
            # it into a replica only after it has watched it a while (about 10 s). The daemon
            # knows it already (SENTINEL REPLICAS lists it, down) and repairs it at its first answer:
            # scripts, and the library too (it answers ROLE as a primary, so nothing replicates it).
            seen = BackOnline()
            library = (tmp_path / "lua/functions/orchestrator_lib.lua").read_bytes()
            poller = threading.Thread(
                target=poll_back_online, args=(old, shas, library, time.monotonic() + 30, seen), daemon=True
            )
            poller.start()
            group.restart(old)  # in this thread: the process dies with the thread that started it
            poller.join(31)
            assert seen.scripts_at is not None, f"{old} did not get its scripts within 30 s of its restart"
            assert seen.scripts_role == "master", "scripts loaded only after Sentinel converted it"
            assert seen.library_at is not None, f"{old} did not get the library within 30 s of its restart"
            assert seen.library_role == "master", "library only after Sentinel converted it (by replication)"
            print(
                f"\npromotion {promotion:.1f} s after kill -9; {client.calls} calls, {client.noscript} NOSCRIPT; "
                f"old primary, still a stray primary: scripts {seen.ms_after_pong(seen.scripts_at):.0f} ms and "
                f"library {seen.ms_after_pong(seen.library_at):.0f} ms after its first PONG"
            )
            converted = time.monotonic()
            wait_for(lambda: group.link_up(old), 40, f"Sentinel to convert {old}")
            print(f"Sentinel converted it {time.monotonic() - converted:.1f} s later")
            assert log_count(daemon, "sentinel_event", "channel=+convert-to-slave", f"node={old.address}") == 1
            group.wait_settled()
            assert group_holds(group, shas)
            assert daemon.alive()


def test_sentinel_failover_with_a_sentinel_killed_during_it(tmp_path: Path) -> None:
    with started_group() as group:
        config = sentinel_config(tmp_path, group)
        shas = catalog_shas(config)
        source = (tmp_path / "lua/functions/orchestrator_lib.lua").read_bytes()
        with DaemonProcess(config) as daemon:
            daemon.wait_log(" ready ", timeout=30)
            wait_subscribed(daemon, group.seeds)
            old = group.primary()
            victim, survivor = group.sentinels[0], group.sentinels[1]
            with SentinelClient(group, sorted(shas)) as client:
                wait_for(lambda: client.ok + client.refused >= 50, 10, "the client's first answers")
                group.failover(via=survivor)
                group.kill(victim)
                new = group.wait_primary_not(old)
                before = calls_of(new, "evalsha")
                wait_for(lambda: calls_of(new, "evalsha") >= before + 200, 20, "calls on the promoted replica")
            assert client.noscript == 0, f"{client.noscript} NOSCRIPT of {client.calls} calls"
            assert noscript_errors(new) == 0
            daemon.wait_log(f"role_changed node={new.address}", timeout=10)
            assert log_count(daemon, "role_changed", f"node={new.address}") == 1
            assert log_count(daemon, "sentinel_subscription_lost", f"sentinel={victim.address}") == 1
            group.wait_settled(new)  # the old primary is a replica of the new one; two Sentinels left
            assert libraries(new).get("orchestrator_lib") == source
            assert group_holds(group, shas)
            group.restart(victim)
            daemon.wait_log(f"sentinel_subscription_restored sentinel={victim.address}", timeout=15)
            print(
                f"\nSENTINEL FAILOVER with {victim.address} killed: {client.calls} calls, "
                f"{client.noscript} NOSCRIPT, {client.connection_errors} connection errors"
            )
            assert daemon.alive()
