"""Topologies in motion and servers that differ, against real processes on every server of the matrix:
roles that lag behind (a fresh cluster, a promotion in the middle of a batch), a new shard that must
get its libraries before slots land on it, commands a hosted service renames or forbids, and scripts
that leave the cache on their own (Redis >= 7.4)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry

from harness.chaos import ChaosCluster
from harness.helpers import all_hold, catalog_shas, cli, libraries, present, wait_for, write_config
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.daemon.assembly import build_daemon
from redis_orchestrator.daemon.lifecycle import Daemon
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.devcluster.cluster import LocalNode, server_version
from redis_orchestrator.reconcile.node_pass import NodeState
from redis_orchestrator.wire.features import Feature
from redis_orchestrator.wire.servers import ServerInfo

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(240)]


def in_process(config: Path) -> Daemon:
    return build_daemon(load_config(config), metrics=Metrics(CollectorRegistry()), serve_metrics=False)


def sample(daemon: Daemon, name: str, **labels: str) -> float | None:
    return daemon.metrics.registry.get_sample_value(name, labels)


# ---------------------------------------------------------------------------- roles that lag behind


@pytest.mark.destructive
def test_sync_right_after_redis_cli_cluster_create_exits_0_every_time(tmp_path: Path) -> None:
    """`redis-cli --cluster create` returns while roles still settle: FUNCTION LOAD to a node that has
    just become a replica answered READONLY, and sync exited 1 in 1 of 3 to 1 of 5 fresh clusters."""
    for attempt in range(4):
        cluster = ChaosCluster(primaries=3, replicas_per_primary=1).start_with_redis_cli()
        try:
            directory = tmp_path / str(attempt)
            directory.mkdir()
            config = write_config(directory, cluster.seeds[:1])
            done = cli(config, "sync")
            assert done.returncode == 0, f"attempt {attempt}: {done.stdout}{done.stderr}"
            assert "READONLY" not in done.stdout + done.stderr
            cluster.wait_healthy()
            for primary in cluster.primaries():
                assert "orchestrator_lib" in libraries(primary)
            assert all_hold(cluster, catalog_shas(config))
        finally:
            cluster.stop()


@pytest.mark.destructive
def test_a_promotion_in_the_middle_of_a_batch_is_no_load_failure(fresh_cluster: ChaosCluster, tmp_path: Path) -> None:
    """A big batch of loads on a primary while its replica takes over: the FUNCTION LOAD that lands
    after the demotion answers READONLY. That is the topology moving, not a failed load: sync keeps
    going until the deployment settles (reconcile/settle.py: the moved node is re-planned with its
    own ROLE, the promoted one as the primary it now is), exits 0, and every node of the settled
    topology holds the catalog, the new primary its library, with no second run."""
    cluster = fresh_cluster
    scripts_dir = tmp_path / "many"
    scripts_dir.mkdir()
    many = []
    for i in range(3000):
        (scripts_dir / f"s{i}.lua").write_text(f"-- filler {i}: makes the batch take a while\nreturn {i}\n")
        many.append({"name": f"filler_{i}", "version": 1, "file": f"many/s{i}.lua"})
    sample_scripts = [
        {"name": "orchestrator_lib", "kind": "function", "version": 1, "file": "lua/functions/orchestrator_lib.lua"}
    ]
    config = write_config(tmp_path, cluster.seeds[:1], scripts=[*many, *sample_scripts])
    shas = catalog_shas(config)
    for round_ in range(3):
        primary = cluster.primaries()[0]
        replica = cluster.replicas_of(primary)[0]
        for node in cluster.nodes:
            with node.client() as c:
                c.execute_command("SCRIPT", "FLUSH")
        with primary.client() as c:
            c.execute_command("FUNCTION", "FLUSH")
        result: list[subprocess.CompletedProcess[str]] = []
        sync = threading.Thread(target=lambda out=result: out.append(cli(config, "sync")))
        sync.start()
        time.sleep(0.15 * round_)  # land the failover at different points of the batch
        with replica.client() as c:
            c.execute_command("CLUSTER", "FAILOVER", "FORCE")
        sync.join(timeout=120)
        done = result[0]
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"round {round_}: {output[-2000:]}"
        assert "READONLY" not in output, output[-2000:]
        assert f"{len(cluster.nodes)} of {len(cluster.nodes)} node(s) hold the catalog" in done.stdout, output[-2000:]
        wait_for(lambda r=replica: r.role() == "primary", 30, "the replica to be promoted")
        assert "orchestrator_lib" in libraries(replica), f"round {round_}: {output[-2000:]}"
        assert all_hold(cluster, shas)


# ---------------------------------------------------------------------------- a new shard


@pytest.mark.destructive
def test_a_new_primary_gets_the_libraries_before_slots_move_to_it(fresh_cluster: ChaosCluster, tmp_path: Path) -> None:
    """Functions are not spread between shards, and Valkey 9's atomic slot migration does not carry
    them: a primary that joins with no slots must hold the libraries before a slot lands on it."""
    cluster = fresh_cluster
    config = write_config(tmp_path, cluster.seeds[:1])

    async def scenario() -> LocalNode:
        async with in_process(config) as daemon:
            await daemon.converge()
            joined = cluster.add_node()  # a primary without slots
            result = await daemon.converge()
            assert joined.address in result.reports
            assert [s.name for s in result.loaded(joined.address) if s.kind == "function"] == ["orchestrator_lib"]
            return joined

    joined = asyncio.run(scenario())
    assert "orchestrator_lib" in libraries(joined)
    key = next(f"newshard:{i}" for i in range(10_000) if redis.crc.key_slot(f"newshard:{i}".encode()) == 100)
    cluster.move_slot(100, joined)
    with joined.client() as c:
        assert c.execute_command("FCALL", "capped_incr_fn", 1, key, 1, 10) == [1, 1]  # served there, library there


# ---------------------------------------------------------------------------- managed services


def test_renamed_commands_cost_their_feature_not_the_pass(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Hosted services rename or forbid CONFIG, SLOWLOG, FUNCTION, ROLE. Each costs exactly the feature
    that needs it: one log line per node and feature, feature_unavailable at 1, and the scripts are
    still loaded on every node."""
    renamed = [
        'rename-command CONFIG ""',
        'rename-command SLOWLOG ""',
        'rename-command FUNCTION ""',
        'rename-command ROLE ""',
    ]
    with ChaosCluster(primaries=3, replicas_per_primary=1, extra_config=renamed) as cluster:
        config = write_config(tmp_path, cluster.seeds[:1])
        shas = catalog_shas(config)

        async def scenario() -> None:
            async with in_process(config) as daemon:
                first = await daemon.converge()
                second = await daemon.converge()
                for report in (*first.reports.values(), *second.reports.values()):
                    assert report.state == NodeState.OK, (report.node, report.error)
                for supervisor in daemon.fleet:
                    address = supervisor.address
                    watcher = supervisor.tasks[-1]
                    await watcher.poll_once()  # type: ignore[attr-defined]
                    await watcher.poll_once()  # type: ignore[attr-defined]
                    lost = supervisor.worker.features.lost
                    assert {Feature.SLOWLOG, Feature.TIME_LIMIT} <= set(lost), (address, lost)
                    if supervisor.node.role == "primary":
                        assert Feature.FUNCTIONS in lost, lost
                    for feature in lost:
                        assert (
                            sample(daemon, "redis_orchestrator_feature_unavailable", node=address, feature=feature) == 1
                        )

        with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
            asyncio.run(scenario())
        assert all_hold(cluster, shas)
    lines = [
        (r.fields["node"], r.fields["feature"])
        for r in caplog.records
        if getattr(r, "event", "") == "feature_unavailable"
    ]  # type: ignore[attr-defined]
    assert len(lines) == len(set(lines))  # once per node and feature, however many passes
    assert not [r for r in caplog.records if getattr(r, "event", "") in ("node_refused", "load_failed")]


# ---------------------------------------------------------------------------- scripts that leave the cache


def evicts(node: LocalNode) -> bool:
    with node.client() as c:
        return "evicted_scripts" in c.info("stats")


def test_evictions_turn_the_next_quick_check_into_a_full_one(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    """Where scripts can leave the cache one at a time, INFO stats rides with the cache marker and
    any growth of evicted_scripts means a full check in the same pass. The mechanics run on any
    server that reports evictions; which servers need them is ServerInfo.scripts_can_vanish."""
    node = clean_cluster.replicas()[0]
    if not evicts(node):
        pytest.skip(f"{server_version(clean_cluster.binary)} reports no evicted_scripts: it never evicts scripts")
    config = write_config(tmp_path, clean_cluster.seeds[:1])

    async def scenario() -> None:
        async with in_process(config) as daemon:
            await daemon.converge()
            node_pass = daemon.fleet[node.address].worker.node_pass
            assert node_pass.server is not None
            # This node's server may keep what SCRIPT LOAD saw (Valkey): treat it as one that does not.
            node_pass.server = dataclasses.replace(node_pass.server, name="redis")
            await daemon.converge()
            quiet = await daemon.converge()
            assert quiet.reports[node.address].quick  # nothing evicted: the marker (+ INFO stats) suffices
            with node.client() as c:
                for i in range(600):
                    c.execute_command("EVAL", f"return {i} -- a client's generated script", 0)
            after = await daemon.converge()
            report = after.reports[node.address]
            assert not report.quick and report.round_trips == 2  # the quick look saw evictions: full check
            assert (
                sample(daemon, "redis_orchestrator_node_evicted_scripts_total", node=node.address)
                == report.cache.evicted_scripts
            )

    try:
        asyncio.run(scenario())
    finally:
        with node.client() as c:
            c.execute_command("SCRIPT", "FLUSH")


def test_the_marker_trap_is_closed_where_the_server_sets_it(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    """Redis >= 7.4: a script first created by EVAL stays evictable after SCRIPT LOAD. A client EVALs a
    catalog script before the daemon loads it; 600 other EVALs later it is gone while the marker is
    still there. The daemon must notice within one pass. Asked of the server, not assumed: where the
    script survives (Valkey promotes on SCRIPT LOAD; Redis 7.0 never evicts) there is no trap."""
    node = clean_cluster.replicas()[0]
    probe = "return 'does SCRIPT LOAD make an EVAL script permanent here?'"
    with node.client() as c:
        c.execute_command("EVAL", probe, 0)
        sha = c.execute_command("SCRIPT", "LOAD", probe).decode()
        for i in range(600):
            c.execute_command("EVAL", f"return {i} -- probe filler", 0)
        survived = c.execute_command("SCRIPT", "EXISTS", sha) == [1]
        c.execute_command("SCRIPT", "FLUSH")
    if survived:
        pytest.skip(
            f"{server_version(clean_cluster.binary)}: a script EVALed, then SCRIPT LOADed, survived 600 other EVALs: "
            "no trap to close here"
        )
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    source = (tmp_path / "lua/counters/get.lua").read_bytes()
    target = sha1_hex(source)

    async def scenario() -> None:
        async with in_process(config) as daemon:
            with node.client() as c, contextlib.suppress(redis.ResponseError):
                c.execute_command("EVAL", source, 0)  # a client's EVAL fallback, before we load it
            await daemon.converge()  # SCRIPT LOAD: on such a server, it stays evictable
            with node.client() as c:
                for i in range(600):
                    c.execute_command("EVAL", f"return {i} -- filler", 0)
            await daemon.converge()
            assert present(node, {target}) == {target}

    asyncio.run(scenario())


def test_cache_gauges_match_what_the_node_says(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    """number_of_cached_scripts and used_memory_scripts_eval, read every tenth pass."""
    config = write_config(tmp_path, clean_cluster.seeds[:1])

    async def scenario() -> None:
        async with in_process(config) as daemon:
            for _ in range(11):  # passes 0 and 10 read INFO memory; the catalog is loaded by then
                await daemon.converge(max_passes=1)
            for node in clean_cluster.nodes:
                with node.client() as c:
                    memory = c.info("memory")
                assert sample(daemon, "redis_orchestrator_node_cached_scripts", node=node.address) == int(
                    memory["number_of_cached_scripts"]
                )
                assert sample(daemon, "redis_orchestrator_node_scripts_eval_memory_bytes", node=node.address) == int(
                    memory["used_memory_scripts_eval"]
                )

    asyncio.run(scenario())


def test_server_info_from_the_live_node(clean_cluster: ChaosCluster) -> None:
    with clean_cluster.nodes[0].client() as c:
        connection = c.connection_pool.get_connection()
        try:  # raw text: redis-py's INFO callback would parse it into a dict
            connection.send_command("INFO", "server")
            server = connection.read_response().decode()
            connection.send_command("INFO", "stats")
            stats = connection.read_response().decode()
        finally:
            c.connection_pool.release(connection)
    info = ServerInfo.parse(server, stats)
    assert info.label == server_version(clean_cluster.binary).lower()  # "valkey 9.1.2", not its redis_version
    assert info.reports_evictions == ("evicted_scripts" in stats)
