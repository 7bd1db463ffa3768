"""The daemon's own loop driven in-process (Daemon.converge: arq's burst mode), with an injected
registry and clock: repairs, reloads and what a reload may change, asserted on values (reports,
metrics, the desired state) instead of log lines. What only a process shows (signals, exit codes,
systemd, the liveness watch across a kill -9) stays in test_daemon.py, test_systemd.py and
test_self_healing.py."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from harness.chaos import ChaosCluster
from harness.helpers import all_hold, catalog_shas, libraries, present, wait_for, write_config
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.cli import main
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.daemon.assembly import build_daemon
from redis_orchestrator.daemon.lifecycle import Daemon
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.reload import ReloadResult
from redis_orchestrator.reconcile.node_pass import NodeState

pytestmark = pytest.mark.timeout(120)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def daemon_for(config: Path) -> Daemon:
    return build_daemon(
        load_config(config), metrics=Metrics(CollectorRegistry()), serve_metrics=False, clock=FakeClock()
    )


def sample(daemon: Daemon, name: str, **labels: str) -> float | None:
    return daemon.metrics.registry.get_sample_value(name, labels)


def test_converge_loads_every_node_then_repairs_a_flushed_replica(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    shas = catalog_shas(config)
    replica = clean_cluster.replicas()[1]

    async def scenario() -> None:
        async with daemon_for(config) as daemon:
            first = await daemon.converge()
            assert first.converged and len(first.passes) == 2  # one pass loads, the next finds all there
            reports = first.reports
            assert set(reports) == {n.address for n in clean_cluster.nodes}
            assert all(r.state == NodeState.OK and r.in_sync for r in reports.values())
            assert daemon.readiness.current.ready
            for node in clean_cluster.nodes:
                assert sample(daemon, "redis_orchestrator_node_up", node=node.address, role=node.role()) == 1
            with replica.client() as c:
                c.execute_command("SCRIPT", "FLUSH")
            again = await daemon.converge()
            assert {a for a, r in again.passes[0].items() if r.loads} == {replica.address}
            assert len(again.loaded(replica.address)) == len(shas)
            assert sample(daemon, "redis_orchestrator_script_loads_total", node=replica.address) == 2 * len(shas)
            # A pass with nothing to change is one command per node (SCRIPT EXISTS of the marker; FUNCTION
            # LIST and ROLE on primaries with libraries), plus INFO stats in the same round trip where
            # the server can evict a catalog script (Redis >= 7.4: servers.py).
            steady = await daemon.converge()
            assert len(steady.passes) == 1
            for address, report in steady.reports.items():
                server = daemon.fleet[address].server
                assert server is not None
                expected = (3 if report.node.role == "primary" else 1) + (1 if server.scripts_can_vanish else 0)
                assert (report.commands, report.round_trips) == (expected, 1), (address, server.label)

    asyncio.run(scenario())
    assert all_hold(clean_cluster, shas)


def test_a_broken_edit_is_rejected_whole_and_the_fix_rolls_out(
    clean_cluster: ChaosCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    shas = catalog_shas(config)
    good = yaml.safe_load(config.read_text())

    async def scenario() -> None:
        async with daemon_for(config) as daemon:
            await daemon.converge()
            before = daemon.desired
            # 1. YAML that does not parse; 2. a script Redis refuses to compile; 3. a missing file
            config.write_text(config.read_text() + "\n  - {name: oops\n")
            assert await daemon.catalog_keeper.reload() == ReloadResult.REJECTED
            (tmp_path / "bad.lua").write_text("return redis.call('GET', KEYS[1]\n")
            broken = {**good, "catalog": {**good["catalog"], "scripts": [*good["catalog"]["scripts"]]}}
            broken["catalog"]["scripts"].append({"name": "bad", "version": 1, "file": "bad.lua"})
            config.write_text(yaml.safe_dump(broken))
            assert await daemon.catalog_keeper.reload() == ReloadResult.REJECTED
            broken["catalog"]["scripts"][-1] = {"name": "bad", "version": 1, "file": "nowhere.lua"}
            config.write_text(yaml.safe_dump(broken))
            assert await daemon.catalog_keeper.reload() == ReloadResult.REJECTED
            assert daemon.desired is before  # nothing of the rejected candidates applied
            assert sample(daemon, "redis_orchestrator_catalog_reloads_total", result="rejected") == 3
            await daemon.converge()
            assert all_hold(clean_cluster, shas)  # nothing unloaded anywhere
            # 4. the fix
            (tmp_path / "new.lua").write_text("return redis.call('INCR', KEYS[1])\n")
            broken["catalog"]["scripts"][-1] = {"name": "incr", "version": 1, "file": "new.lua"}
            broken["catalog"]["version"] = "test-2"
            config.write_text(yaml.safe_dump(broken))
            assert await daemon.catalog_keeper.reload() == ReloadResult.ACCEPTED
            assert await daemon.catalog_keeper.reload() == ReloadResult.UNCHANGED
            await daemon.converge()
            assert sample(daemon, "redis_orchestrator_catalog_info", version="test-2") == 1

    with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
        asyncio.run(scenario())
    rejected = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "catalog_rejected"]
    assert len(rejected) == 3
    assert "YAML syntax error" in rejected[0]
    assert "bad@1 (bad.lua): Redis refused it" in rejected[1]
    assert "nowhere.lua does not exist" in rejected[2]
    new_sha = sha1_hex((tmp_path / "new.lua").read_bytes())
    assert all_hold(clean_cluster, shas | {new_sha})


def test_a_reload_applies_every_live_setting_and_names_what_needs_a_restart(
    clean_cluster: ChaosCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    data = yaml.safe_load(config.read_text())

    async def scenario() -> None:
        async with daemon_for(config) as daemon:
            await daemon.converge()
            watcher = daemon.fleet[clean_cluster.seeds[0]].tasks[-1]
            data["daemon"] = {**data["daemon"], "reconcile_interval": "3s", "down_poll_interval": "50ms"}
            data["slow_scripts"] = {"poll_interval": "2s", "warn_ratio": 0.9, "kill": {"enabled": True, "after": "1s"}}
            data["analysis"] = {"block_on": "error"}
            data["functions"] = {"delete_unlisted": True}
            data["redis"] = {**data["redis"], "timeout": "5s"}  # start-time: named, not applied
            data["metrics"] = {"enabled": True, "listen": "127.0.0.1:0"}
            config.write_text(yaml.safe_dump(data))
            assert await daemon.catalog_keeper.reload() == ReloadResult.ACCEPTED
            live = daemon.desired
            assert live.daemon.reconcile_interval == 3.0 and live.daemon.down_poll_interval == 0.05
            assert live.slow_scripts.warn_ratio == 0.9 and live.slow_scripts.kill.enabled
            assert live.analysis.block_on == "error" and live.functions.delete_unlisted
            # Every node's tasks read the new values, the nodes found before the reload included.
            assert watcher.settings.poll_interval == 2.0  # type: ignore[attr-defined]
            # The start-time settings stay as they were, and the gauge says a restart is pending.
            assert daemon.catalog_keeper.config.start.redis.timeout == 1.0
            assert daemon.connector.settings.timeout == 1.0
            assert sample(daemon, "redis_orchestrator_config_restart_pending") == 3
            # Only the start-time change left: the desired state is unchanged, the restart still pending.
            assert await daemon.catalog_keeper.reload() == ReloadResult.UNCHANGED
            assert sample(daemon, "redis_orchestrator_config_restart_pending") == 3

    with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
        asyncio.run(scenario())
    restart = [r for r in caplog.records if getattr(r, "event", "") == "config_restart_needed"]
    assert len(restart) == 1  # once per change of the pending keys, not once per reload
    assert restart[0].fields["keys"] == "redis.timeout,metrics.enabled,metrics.listen"  # type: ignore[attr-defined]
    reloaded = next(r for r in caplog.records if getattr(r, "event", "") == "catalog_reloaded")
    assert reloaded.fields["settings"] == "daemon,slow_scripts,analysis,functions"  # type: ignore[attr-defined]


def test_a_library_replaced_by_hand_is_put_back(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    source = (tmp_path / "lua/functions/orchestrator_lib.lua").read_bytes()
    primary = clean_cluster.primaries()[1]
    replica = clean_cluster.replicas_of(primary)[0]
    rogue = b"#!lua name=orchestrator_lib\nredis.register_function('counter_get', function() return 'rogue' end)\n"

    async def scenario() -> None:
        async with daemon_for(config) as daemon:
            await daemon.converge()
            with primary.client() as c:
                c.execute_command("FUNCTION", "LOAD", "REPLACE", rogue)
            repaired = await daemon.converge()
            assert [s.name for s in repaired.loaded(primary.address)] == ["orchestrator_lib"]
            assert not any(repaired.loaded(a) for a in repaired.reports if a != primary.address)

    asyncio.run(scenario())
    assert all(libraries(p).get("orchestrator_lib") == source for p in clean_cluster.primaries())
    wait_for(lambda: libraries(replica).get("orchestrator_lib") == source, 5, "the replica to follow by replication")


def test_versioned_rollout_keeps_the_old_sha_while_kept(
    clean_cluster: ChaosCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = clean_cluster
    config = write_config(tmp_path, cluster.seeds[:1])
    data = yaml.safe_load(config.read_text())
    v1_file = tmp_path / "lua/counters/get.lua"
    v2_file = tmp_path / "lua/counters/get_v2.lua"
    v2_file.write_bytes(v1_file.read_bytes() + b"-- v2: same behaviour, new bytes, new sha\n")
    v1, v2 = sha1_hex(v1_file.read_bytes()), sha1_hex(v2_file.read_bytes())
    scripts = [s for s in data["catalog"]["scripts"] if s["name"] != "counter_get"]
    flushed = cluster.replicas()[0]

    def edit(catalog_version: str, current: int, keep: int) -> None:
        entry = {
            "name": "counter_get",
            "versions": [
                {"version": 1, "file": "lua/counters/get.lua"},
                {"version": 2, "file": "lua/counters/get_v2.lua"},
            ],
            "current": current,
            "keep": keep,
        }
        data["catalog"]["version"] = catalog_version
        data["catalog"]["scripts"] = [*scripts, entry]
        config.write_text(yaml.safe_dump(data, sort_keys=False))

    def flush() -> None:
        with flushed.client() as c:
            c.execute_command("SCRIPT", "FLUSH")

    async def scenario() -> None:
        edit("rollout-1", current=1, keep=0)  # v2 declared, not live yet
        async with daemon_for(config) as daemon:
            await daemon.converge()
            assert all_hold(cluster, {v1}) and not any(present(n, {v2}) for n in cluster.nodes)
            edit("rollout-2", current=2, keep=1)  # v2 current, v1 kept beside it
            assert await daemon.catalog_keeper.reload() == ReloadResult.ACCEPTED
            await daemon.converge()
            assert all_hold(cluster, {v1, v2})
            flush()
            await daemon.converge()
            assert present(flushed, {v1, v2}) == {v1, v2}  # both kept versions repaired
            edit("rollout-3", current=2, keep=0)  # v1 retired: no longer loaded, but never unloaded
            assert await daemon.catalog_keeper.reload() == ReloadResult.ACCEPTED
            flush()
            await daemon.converge()
            assert present(flushed, {v1, v2}) == {v2}  # retired: not reloaded
            assert all(present(n, {v1}) == {v1} for n in cluster.nodes if n is not flushed)  # nor unloaded

    asyncio.run(scenario())
    capsys.readouterr()
    assert main(["--config", str(config), "manifest"]) == 0
    assert '"current": "2"' in capsys.readouterr().out
    assert main(["--config", str(config), "prune"]) == 1  # the retired v1 waits for `prune --yes`
    assert "counter_get@1" in capsys.readouterr().out


def test_the_analysis_cache_file_spares_a_restart_the_analysis(
    clean_cluster: ChaosCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With block_on set, the first catalog is analysed before anything is loaded; analysis.cache_file
    keeps the analyses by SHA so the next start takes them from the file."""
    cache = tmp_path / "state" / "analysis.json"
    config = write_config(tmp_path, clean_cluster.seeds[:1], analysis={"block_on": "error", "cache_file": str(cache)})
    entries = len(load_config(config).catalog.entries)

    async def start() -> None:
        async with daemon_for(config) as daemon:
            await daemon.converge()

    with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
        asyncio.run(start())
        assert cache.exists()
        asyncio.run(start())
    loaded = [r.fields["loaded"] for r in caplog.records if getattr(r, "event", "") == "analysis_cache"]  # type: ignore[attr-defined]
    assert loaded == [0, entries]  # nothing the first time; every entry the second
    cache.write_text('{"stamp": "other code", "entries": []}')
    with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
        caplog.clear()
        asyncio.run(start())
    assert [r.fields["loaded"] for r in caplog.records if getattr(r, "event", "") == "analysis_cache"] == [0]  # type: ignore[attr-defined]
