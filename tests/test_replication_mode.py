"""`redis.mode: replication`: a primary and its replicas without Sentinel, found from any of them
by ROLE. Real processes of the server under test (ChaosSentinel with no Sentinels)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.chaos import ChaosSentinel
from harness.helpers import DaemonProcess, catalog_shas, cli, free_port, present, wait_for
from harness.sentinel import RECONCILE, group_holds, replication_config, slow_runs, started_group
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.devcluster.cluster import LocalNode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def group() -> Iterator[ChaosSentinel]:
    with started_group(sentinels=0) as started:
        yield started


def test_any_node_is_a_seed_and_every_verb_works(group: ChaosSentinel, tmp_path: Path) -> None:
    replica = group.replicas()[0]
    config = replication_config(tmp_path, [replica.address])
    shas = catalog_shas(config)
    assert cli(config, "plan").returncode == 1
    done = cli(config, "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert group_holds(group, shas)
    status = cli(config, "status")
    assert status.returncode == 0
    assert f"{group.primary().address:<22} primary" in status.stdout, status.stdout
    assert status.stdout.count(" replica ") == 2, status.stdout
    assert cli(config, "manifest").returncode == 0
    prune = cli(config, "prune")
    assert prune.returncode == 0 and prune.stdout.count("  nothing to prune (") == 3, prune.stdout + prune.stderr
    unreachable = replication_config(tmp_path, ["127.0.0.1:1"])
    done = cli(unreachable, "status")
    assert done.returncode == 3 and "127.0.0.1:1: unreachable" in done.stderr


def test_daemon_follows_a_new_replica_and_a_manual_promotion_and_keeps_the_lease(
    group: ChaosSentinel, tmp_path: Path
) -> None:
    key = f"{{redis-orchestrator}}:leader-{uuid.uuid4().hex[:8]}"
    old = group.primary()
    port = free_port()
    config = replication_config(
        tmp_path,
        [old.address],
        leader={"enabled": True, "key": key, "lease": "2s"},
        metrics={"enabled": True, "listen": f"127.0.0.1:{port}"},
        slow_scripts={"poll_interval": "200ms"},
    )
    shas = catalog_shas(config)
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ", timeout=30)
        daemon.wait_log("leader_acquired")
        added = group.add_replica()
        took = wait_for(lambda: present(added, shas) == shas, 15, f"{added} loaded", interval=0.005)
        print(f"\nnew replica {added} loaded {took * 1000:.0f} ms after its link was up")
        # An operator promotes a replica and points the others at it.
        promoted = group.replicas()[0]
        with promoted.client() as c:
            c.execute_command("REPLICAOF", "NO", "ONE")
        for node in group.running_nodes():
            if node is not promoted:
                with node.client() as c:
                    c.execute_command("REPLICAOF", promoted.host, promoted.port)
        daemon.wait_log(f"role_changed node={promoted.address}", timeout=15)
        daemon.wait_log(f"role_changed node={old.address}", timeout=15)
        wait_for(
            lambda: all(group.replicates_from(n, promoted) for n in group.running_nodes() if n is not promoted),
            15,
            "the replicas to follow the promoted node",
        )
        # The lease now lives on the promoted node, still held by this daemon.
        token = next(w.split("=", 1)[1] for w in daemon.log().split() if w.startswith("owner="))
        wait_for(lambda: _get(promoted, key) == token, 10, "the lease renewed on the new primary")
        flushed = group.replicas()[0]
        with flushed.client() as c:
            c.execute_command("SCRIPT", "FLUSH")
        wait_for(lambda: present(flushed, shas) == shas, 2 * RECONCILE + 1.5, "the flushed replica repaired")
        assert group_holds(group, shas)
        assert "leader_lost" not in daemon.log()
        # The slow-script watch names a catalog script run on a replica.
        counter_get = sha1_hex((tmp_path / "lua/counters/get.lua").read_bytes())
        with flushed.client() as c:
            c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "0")
            try:
                c.execute_command("EVALSHA_RO", counter_get, 1, "k")
                wait_for(lambda: slow_runs(port, "counter_get", flushed.address) >= 1, 10, "the slow run counted")
            finally:
                c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        assert daemon.alive()


def _get(node: LocalNode, key: str) -> str | None:
    with node.client() as c:
        value = c.get(key)
    return value.decode() if value is not None else None
