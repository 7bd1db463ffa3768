"""`redis.mode: sentinel` against a real group (1 primary, 2 replicas, 3 Sentinels) of the server
under test: every verb, the daemon's repairs (SCRIPT FLUSH on a replica, a replica added later),
the leader lease and the slow-script watch, a wrong service_name, Sentinels that disagree.
Failovers, which break the group, are in test_sentinel_failover.py."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from harness.chaos import ChaosSentinel
from harness.helpers import (
    DaemonProcess,
    catalog_shas,
    cli,
    free_port,
    libraries,
    present,
    wait_for,
    write_config,
)
from harness.sentinel import RECONCILE, gauge, group_holds, sentinel_config, slow_runs, started_group
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.daemon.assembly import build_daemon
from redis_orchestrator.daemon.metrics import Metrics

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def group() -> Iterator[ChaosSentinel]:
    with started_group() as started:
        yield started


@pytest.fixture
def clean_group(group: ChaosSentinel) -> ChaosSentinel:
    """The module's group with every script cache and library emptied (libraries replicate)."""
    primary = group.primary()
    with primary.client() as c:
        c.execute_command("FUNCTION", "FLUSH")
    for node in group.running_nodes():
        with node.client() as c:
            c.execute_command("SCRIPT", "FLUSH")
    return group


def test_every_verb_on_a_sentinel_group(clean_group: ChaosSentinel, tmp_path: Path) -> None:
    group = clean_group
    config = sentinel_config(tmp_path, group)
    shas = catalog_shas(config)
    plan = cli(config, "plan")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    primary = group.primary()
    scripts = len(shas)  # every script on every node, the one library on the primary only
    assert f"{primary.address:<22} primary  {scripts + 1} change(s)" in plan.stdout, plan.stdout
    assert plan.stdout.count(f" replica  {scripts} change(s)") == 2, plan.stdout  # no FUNCTION LOAD on replicas
    assert cli(config, "sync").returncode == 0
    # The catalog on all three data nodes; the library on the replicas came by replication.
    assert group_holds(group, shas)
    source = (tmp_path / "lua/functions/orchestrator_lib.lua").read_bytes()
    wait_for(
        lambda: all(libraries(n).get("orchestrator_lib") == source for n in group.running_nodes()),
        10,
        "the library replicated",
    )
    status = cli(config, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count(f" yes       {len(shas)}/{len(shas)} ") == 3, status.stdout
    assert cli(config, "plan").returncode == 0
    assert cli(config, "manifest").returncode == 0
    prune = cli(config, "prune")
    assert prune.returncode == 0 and prune.stdout.count("  nothing to prune (") == 3, prune.stdout + prune.stderr


def test_a_wrong_service_name_is_one_clear_error_and_exit_3(group: ChaosSentinel, tmp_path: Path) -> None:
    config = sentinel_config(tmp_path, group, redis={"service_name": "mymastr"})
    for verb in ("plan", "sync", "status", "prune"):
        done = cli(config, verb)
        assert done.returncode == 3, f"{verb}: {done.stdout}{done.stderr}"
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, done.stderr
        assert "no Sentinel monitors a primary named 'mymastr'" in lines[0]
        for sentinel in group.seeds:
            assert f"{sentinel}: monitors mymaster" in lines[0]


def test_keyslot_and_check_say_slots_only_matter_in_cluster_mode(group: ChaosSentinel, tmp_path: Path) -> None:
    config = sentinel_config(tmp_path, group)
    keyslot = cli(config, "keyslot", "{a}x", "b")
    assert "only in Redis Cluster" in keyslot.stdout + keyslot.stderr, keyslot.stdout + keyslot.stderr
    check = cli(config, "check")
    assert "only in Redis Cluster" in check.stdout + check.stderr, check.stdout + check.stderr


def test_daemon_repairs_a_flushed_replica_and_loads_a_new_one(clean_group: ChaosSentinel, tmp_path: Path) -> None:
    group = clean_group
    config = sentinel_config(tmp_path, group)
    shas = catalog_shas(config)
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ", timeout=30)
        assert group_holds(group, shas)
        for sentinel in group.seeds:
            daemon.wait_log(f"sentinel_subscribed sentinel={sentinel}")
        replica = group.replicas()[0]
        with replica.client() as c:
            c.execute_command("SCRIPT", "FLUSH")
        took = wait_for(lambda: present(replica, shas) == shas, 2 * RECONCILE + 1.5, "the flushed replica repaired")
        print(f"\n{replica} repaired {took * 1000:.0f} ms after SCRIPT FLUSH (reconcile interval {RECONCILE:.0f} s)")
        started = time.monotonic()
        added = group.add_replica()
        synced = time.monotonic() - started
        took = wait_for(lambda: present(added, shas) == shas, 15, f"{added} loaded", interval=0.005)
        print(
            f"new replica {added} loaded {took * 1000:.0f} ms after its REPLICAOF link was up ({synced:.1f} s to sync)"
        )
        daemon.wait_log(f"node_added node={added.address}")
        assert group_holds(group, shas)
        assert daemon.alive()
    assert daemon.log().count(f"node_added node={added.address}") == 1


def test_leader_lease_and_slow_scripts_in_sentinel_mode(group: ChaosSentinel, tmp_path: Path) -> None:
    key = f"{{redis-orchestrator}}:leader-{uuid.uuid4().hex[:8]}"
    port = free_port()
    config = sentinel_config(
        tmp_path,
        group,
        leader={"enabled": True, "key": key, "lease": "2s"},
        metrics={"enabled": True, "listen": f"127.0.0.1:{port}"},
        slow_scripts={"poll_interval": "200ms"},
    )
    replica = group.replicas()[0]
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ", timeout=30)
        daemon.wait_log("leader_acquired")
        for sentinel in group.seeds:
            what = f"redis_orchestrator_sentinel_subscribed {sentinel}"
            wait_for(lambda s=sentinel: gauge(port, "sentinel_subscribed", sentinel=s) == 1, 10, what)
        with group.primary().client() as c:
            token = c.get(key)
        assert token is not None and f"owner={token.decode()}" in daemon.log()
        # A catalog script run on a replica shows in that replica's slowlog, named.
        counter_get = sha1_hex((tmp_path / "lua/counters/get.lua").read_bytes())
        with replica.client() as c:
            c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "0")
            try:
                for _ in range(3):
                    c.execute_command("EVALSHA_RO", counter_get, 1, "k")
                wait_for(lambda: slow_runs(port, "counter_get", replica.address) >= 3, 10, "three slow runs counted")
            finally:
                c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        assert daemon.stop() == 0
    assert "leader_released" in daemon.log()


def test_sentinels_that_disagree_majority_wins_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """One of three Sentinels is told to monitor a replica under the service's name: two name the
    real primary, one the replica. The daemon follows the two and logs the disagreement once."""
    with started_group(replicas=1) as group:
        primary, replica = group.primary(), group.replicas()[0]
        rogue = group.sentinels[2]
        with group.sentinel_client(rogue) as c:
            c.execute_command("SENTINEL", "REMOVE", group.service_name)
            c.execute_command("SENTINEL", "MONITOR", group.service_name, replica.host, replica.port, 2)
        config = sentinel_config(tmp_path, group)
        daemon = build_daemon(load_config(config), metrics=Metrics(CollectorRegistry()), serve_metrics=False)

        async def scenario() -> None:
            async with daemon:
                for _ in range(3):
                    await daemon.topology_keeper.refresh(raise_errors=True)
                assert daemon.topology is not None
                assert [n.address for n in daemon.topology.primaries] == [primary.address]
                done = await daemon.converge()
                assert done.converged and set(done.reports) == {primary.address, replica.address}

        with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
            asyncio.run(scenario())
        notes = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "topology_note"]
        assert len(notes) == 1, notes
        assert (
            f"{primary.address} by {group.seeds[0]}, {group.seeds[1]}; {replica.address} by {rogue.address}"
            in (notes[0])
        )
        status = cli(config, "status")
        assert status.returncode == 0
        assert "warning: Sentinels disagree on the primary of mymaster" in status.stderr


def test_run_local_sentinel_starts_and_stops_everything(tmp_path: Path) -> None:
    path = write_config(tmp_path, ["127.0.0.1:1"])  # the file's mode and seeds are replaced
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "redis_orchestrator", "--config", str(path), "run", "--local-sentinel"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        try:
            wait_for(lambda: " ready " in log.read_text(), 30, "ready")
            text = log.read_text()
            assert "mode=sentinel service=mymaster" in text
            assert text.count("sentinel_subscribed") == 3
            assert text.count(" repaired ") == 3
        finally:
            process.terminate()
            assert process.wait(timeout=15) == 0
    up = next(line for line in log.read_text().splitlines() if "local sentinel group up" in line)
    ports = [int(word.rstrip(",").split(":")[1]) for word in up.split() if word.startswith("127.0.0.1:")]
    assert len(ports) == 6
    for port in ports:  # every process of the group is gone
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
