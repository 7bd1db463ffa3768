"""The client over Sentinel-managed clients and plain `redis.Redis`, sync and asyncio: a real group of
one primary, one replica and one Sentinel (non-cluster redis-server processes on free loopback ports,
stopped at the end even when a test fails), including a Sentinel failover the client rides through."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel

from harness.helpers import wait_for
from redis_orchestrator.client import AsyncScripts, AsyncTx, CrossSlotError, Scripts, Tx
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.devcluster.cluster import free_port_pair, redis_server_binary

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "examples" / "config.yaml"
SERVICE = "orchestrator-test"

pytestmark = pytest.mark.timeout(120)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class SentinelGroup:
    """A primary, a replica and one Sentinel watching them (quorum 1)."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="redis-orch-sentinel-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.primary_port, self.replica_port, self.sentinel_port = (free_port_pair() for _ in range(3))

    def _start(self, name: str, lines: list[str], *extra: str) -> None:
        conf = self.directory / f"{name}.conf"
        conf.write_text("\n".join([*lines, f'dir "{self.directory}"', f'logfile "{self.directory / name}.log"']) + "\n")
        self.processes.append(
            subprocess.Popen(
                [redis_server_binary(), str(conf), *extra],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        )

    def start(self) -> SentinelGroup:
        common = ["bind 127.0.0.1", "protected-mode no", 'save ""', "appendonly no"]
        self._start("primary", [f"port {self.primary_port}", *common])
        self._start("replica", [f"port {self.replica_port}", *common, f"replicaof 127.0.0.1 {self.primary_port}"])
        wait_for(self._replica_up, 15, "the replica to sync")
        self._start(
            "sentinel",
            [
                f"port {self.sentinel_port}",
                "bind 127.0.0.1",
                "protected-mode no",
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1",
                f"sentinel down-after-milliseconds {SERVICE} 1000",
                f"sentinel failover-timeout {SERVICE} 10000",
            ],
            "--sentinel",
        )
        wait_for(self._sentinel_knows_the_replica, 15, "Sentinel to discover the replica")
        return self

    def _replica_up(self) -> bool:
        try:
            with redis.Redis(port=self.replica_port) as r:
                return r.info("replication").get("master_link_status") == "up"
        except redis.exceptions.ConnectionError:
            return False

    def _sentinel_knows_the_replica(self) -> bool:
        try:
            with redis.Redis(port=self.sentinel_port, decode_responses=True) as s:
                replicas = s.execute_command("SENTINEL", "REPLICAS", SERVICE)
        except (redis.exceptions.ResponseError, redis.exceptions.ConnectionError):
            return False
        # Promotable: linked, its INFO read, its link to the primary up (else NOGOODSLAVE).
        for raw in replicas:
            fields = dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) else raw
            if fields.get("flags") == "slave" and fields.get("master-link-status") == "ok":
                return True
        return False

    def sentinel(self) -> redis.sentinel.Sentinel:
        return redis.sentinel.Sentinel([("127.0.0.1", self.sentinel_port)], socket_timeout=2)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def group() -> Iterator[SentinelGroup]:
    made = SentinelGroup()
    try:
        yield made.start()
    finally:
        made.stop()


def test_master_for_and_slave_for_sync(group: SentinelGroup) -> None:
    sentinel = group.sentinel()
    primary = sentinel.master_for(SERVICE, decode_responses=True)
    replica = sentinel.slave_for(SERVICE, decode_responses=True)
    scripts = Scripts.from_config(CONFIG, primary)
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"{{ledger}}:acct:{tag}-a", f"{{ledger}}:acct:{tag}-b"
    primary.set(alice, 100)
    primary.set(bob, 0)
    assert scripts.run("transfer", keys=[alice, bob], args=[30], wait_replicas=1) == [70, 30, 1]
    # The replica's own cache gets the script the first time a no-writes call lands there.
    before = command_calls_port(group.replica_port, "evalsha_ro")
    assert scripts.bind(replica).run("balances", keys=[alice, bob]) == [100, 0, 70, 30]
    assert command_calls_port(group.replica_port, "evalsha_ro") == before + 2  # NOSCRIPT, then the retry
    # One node serves every slot here, yet keys in two slots are refused as a cluster would refuse them...
    with pytest.raises(CrossSlotError):
        Scripts.from_config(CONFIG, primary, check_keys=False).run("transfer", keys=["{a}:x", "{b}:y"], args=[1])
    # ...unless asked not to.
    primary.set("{a}:x", 5)
    primary.set("{b}:y", 0)
    assert Scripts.from_config(CONFIG, primary, check_keys=False, check_slots=False).run(
        "transfer", keys=["{a}:x", "{b}:y"], args=[1]
    ) == [4, 1, 1]

    def move(tx: Tx) -> int:
        balance = int(tx.get(alice))
        tx.multi()
        tx.run("transfer", keys=[alice, bob], args=[balance // 2])
        return balance

    assert scripts.transaction([alice, bob], move).replies == [[35, 65, 1]]
    with scripts.pipeline() as pipe:
        assert pipe.run("transfer", keys=[bob, alice], args=[5]).run("balances", keys=[alice, bob]).execute() == [
            [60, 40, 1],
            [100, 0, 40, 60],
        ]
    assert scripts.counters.snapshot().by_name[("fallbacks", "transfer@1")] == 1


def master_port(sentinel: redis.sentinel.Sentinel) -> int | None:
    try:
        return int(sentinel.discover_master(SERVICE)[1])
    except redis.sentinel.MasterNotFoundError:  # between the primary's death and the promotion
        return None


def command_calls_port(port: int, command: str) -> int:
    with redis.Redis(port=port) as r:
        entry = r.info("commandstats").get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


def test_master_for_and_slave_for_asyncio(group: SentinelGroup) -> None:
    async def scenario() -> None:
        sentinel = redis.asyncio.sentinel.Sentinel([("127.0.0.1", group.sentinel_port)], socket_timeout=2)
        primary = sentinel.master_for(SERVICE, decode_responses=True)
        replica = sentinel.slave_for(SERVICE, decode_responses=True)
        key = f"{{quota}}:{uuid.uuid4().hex}"
        manifest_key = f"{{redis-orchestrator}}:manifest-{uuid.uuid4().hex[:6]}"
        await primary.set(manifest_key, _manifest_text())
        scripts = await AsyncScripts.from_redis(primary, key=manifest_key)
        assert await scripts.run("capped_incr", keys=[key], args=[4, 10], wait_replicas=1) == [4, 1]
        assert await scripts.bind(replica).run("counter_get", keys=[key]) == 4

        async def double(tx: AsyncTx) -> None:
            value = int(await tx.get(key))
            tx.multi()
            await tx.run("capped_incr", keys=[key], args=[value, 10])

        assert (await scripts.transaction([key], double)).replies == [[8, 1]]
        async with scripts.pipeline(transaction=True) as pipe:
            pipe.run("capped_incr", keys=[key], args=[1, 10]).run("counter_get", keys=[key])
            assert await pipe.execute() == [[9, 1], 9]
        await primary.delete(manifest_key, key)
        await primary.aclose()
        await replica.aclose()

    asyncio.run(scenario())


def _manifest_text() -> str:
    return json.dumps(load_config(CONFIG).catalog.manifest())


def test_a_sentinel_failover_costs_one_load_on_the_new_primary(group: SentinelGroup) -> None:
    """Without the daemon (it manages clusters), the promoted replica's cache lacks transfer: the client
    loads it there once (SCRIPT LOAD, never EVAL) and carries on. Run last: it kills the primary.

    (Seen with SENTINEL FAILOVER instead of a kill: until Sentinel demoted the live old primary, a
    pooled connection kept writing to it, and its full sync then dropped those writes.)"""
    sentinel = group.sentinel()
    primary = sentinel.master_for(SERVICE, decode_responses=True)
    scripts = Scripts.from_config(CONFIG, primary)
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"{{ledger}}:acct:{tag}-a", f"{{ledger}}:acct:{tag}-b"
    primary.set(alice, 100)
    primary.set(bob, 0)
    scripts.run("transfer", keys=[alice, bob], args=[1], wait_replicas=1)
    loads = scripts.counters.fallbacks
    with redis.Redis(port=group.replica_port) as r:
        r.execute_command("SCRIPT", "FLUSH")  # what a restart leaves: scripts are not replicated
    group.processes[0].kill()  # kill -9 of the primary: Sentinel promotes the replica after down-after (1 s)
    group.processes[0].wait(10)
    wait_for(lambda: master_port(sentinel) == group.replica_port, 30, "the replica promoted")
    done = 0
    deadline = time.monotonic() + 30
    while done < 5:
        assert time.monotonic() < deadline, "the client never reached the new primary"
        try:
            scripts.run("transfer", keys=[alice, bob], args=[1])
            done += 1
        except (redis.exceptions.ConnectionError, redis.exceptions.ReadOnlyError, redis.exceptions.TimeoutError):
            time.sleep(0.1)  # the old primary is gone; the pool reconnects to the new one
    assert scripts.counters.fallbacks == loads + 1
    assert command_calls_port(group.replica_port, "eval") == 0
    assert primary.get(alice) == "94"  # 100 - 1 before, - 5 after: every acknowledged transfer kept
