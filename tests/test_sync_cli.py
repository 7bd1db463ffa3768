"""The one-shot verbs against a real 3+3 cluster: sync, plan, status, exit codes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import all_hold, catalog_shas, command_calls, present, wait_for, write_config
from redis_orchestrator.cli import main
from redis_orchestrator.devcluster.cluster import free_port_pair

pytestmark = pytest.mark.timeout(120)


def test_sync_loads_every_script_on_all_six_nodes_then_plan_is_clean(
    clean_cluster: ChaosCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    shas = catalog_shas(config)
    assert main(["--config", str(config), "plan"]) == 1  # cold cluster: everything pending
    assert main(["--config", str(config), "sync"]) == 0
    assert all_hold(clean_cluster, shas)
    # Functions reach every primary, and replicas by replication (asynchronous: wait a little).
    for node in clean_cluster.nodes:
        wait_for(lambda node=node: "orchestrator_lib" in _libraries(node), 5, f"library on {node}")
    capsys.readouterr()
    assert main(["--config", str(config), "plan"]) == 0
    assert "all 6 nodes in sync" in capsys.readouterr().out
    assert main(["--config", str(config), "status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert len(status["nodes"]) == 6 and all(n["in_sync"] for n in status["nodes"])
    assert {n["role"] for n in status["nodes"]} == {"primary", "replica"}


def test_flush_on_one_replica_is_named_by_plan_and_repaired_by_sync(
    clean_cluster: ChaosCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    shas = catalog_shas(config)
    assert main(["--config", str(config), "sync"]) == 0
    replica = clean_cluster.replicas()[0]
    with replica.client() as c:
        c.execute_command("SCRIPT", "FLUSH")
    capsys.readouterr()
    assert main(["--config", str(config), "plan"]) == 1
    out = capsys.readouterr().out
    flagged = [line for line in out.splitlines() if "change(s)" in line]
    assert len(flagged) == 1 and flagged[0].startswith(replica.address) and "replica" in flagged[0]
    assert main(["--config", str(config), "plan", "--format", "json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["node"] for r in rows if not r["in_sync"]] == [replica.address]
    assert main(["--config", str(config), "sync"]) == 0
    assert present(replica, shas) == shas


def test_steady_state_costs_one_command_per_node(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    # Without function libraries in the catalog a pass is one SCRIPT EXISTS per node, nothing more.
    scripts = [s for s in _sample_scripts() if s.get("kind") != "function"]
    config = write_config(tmp_path, clean_cluster.seeds[:1], scripts=scripts)
    assert main(["--config", str(config), "sync"]) == 0
    watched = ("script|exists", "script|load", "function|list", "function|load")
    before = {n.address: {c: command_calls(n, c) for c in watched} for n in clean_cluster.nodes}
    assert main(["--config", str(config), "sync"]) == 0
    for node in clean_cluster.nodes:
        delta = {c: command_calls(node, c) - before[node.address][c] for c in watched}
        assert delta == {"script|exists": 1, "script|load": 0, "function|list": 0, "function|load": 0}, node


def test_reconcile_reports_one_round_trip_when_nothing_changed(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    import asyncio

    from redis_orchestrator.config.loader import load_config
    from redis_orchestrator.reconcile.settle import one_shot_passes, settle
    from redis_orchestrator.topology.discovery import discover
    from redis_orchestrator.topology.model import Topology
    from redis_orchestrator.wire.connections import Connector

    config = load_config(write_config(tmp_path, clean_cluster.seeds[:1]))

    async def two_passes() -> list[tuple[str, str, int, int]]:
        connector = Connector(config.start.redis)
        try:
            topology = await discover(connector, config.start.redis.seeds)
            run = one_shot_passes(connector, config.catalog, write=True)

            async def same() -> Topology:
                return topology

            await settle(run, topology, same)
            reports = (await settle(run, topology, same)).reports.values()
        finally:
            await connector.aclose()
        return [(r.node.address, r.node.role, r.round_trips, r.commands) for r in reports]

    for address, role, round_trips, commands in asyncio.run(two_passes()):
        assert round_trips == 1, address
        # primaries: SCRIPT EXISTS + FUNCTION LIST WITHCODE + ROLE pipelined (the catalog has a
        # library, and the node's own ROLE decides FUNCTION LOAD); replicas: SCRIPT EXISTS alone
        assert commands == (3 if role == "primary" else 1), address


def _libraries(node) -> set[str]:  # type: ignore[no-untyped-def]
    with node.client(protocol=3) as c:
        return {lib[b"library_name"].decode() for lib in c.execute_command("FUNCTION", "LIST")}


def _calls(node):  # type: ignore[no-untyped-def]
    with node.client() as c:
        stats = c.info("commandstats")
    # Our own probing connection's INFO is excluded by reading before/after with the same cost.
    return {k: int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"}


def _sample_scripts() -> list[dict[str, object]]:
    import yaml

    from harness.helpers import REPO

    return list(yaml.safe_load((REPO / "examples" / "config.yaml").read_text())["catalog"]["scripts"])


def test_script_redis_refuses_is_named_and_the_others_still_load(
    clean_cluster: ChaosCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.lua").write_text("return redis.call('GET', KEYS[1]\n")
    (tmp_path / "fine.lua").write_text("return redis.call('GET', KEYS[1])\n")
    config = write_config(
        tmp_path,
        clean_cluster.seeds[:1],
        scripts=[
            {"name": "broken", "version": 1, "file": "broken.lua"},
            {"name": "fine", "version": 1, "file": "fine.lua"},
        ],
        copy_lua=False,
    )
    assert main(["--config", str(config), "sync"]) == 1
    err = capsys.readouterr().err
    assert "broken@1 (broken.lua)" in err and "Error compiling script" in err
    assert err.count("Redis refused") == 1  # once per script, not once per node
    from redis_orchestrator.catalog.model import sha1_hex

    fine = sha1_hex((tmp_path / "fine.lua").read_bytes())
    assert all_hold(clean_cluster, {fine})


def test_no_seed_reachable_exits_3_naming_each_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = [f"127.0.0.1:{free_port_pair()}", f"127.0.0.1:{free_port_pair()}"]
    config = write_config(tmp_path, dead)
    assert main(["--config", str(config), "status"]) == 3
    err = capsys.readouterr().err
    assert "no seed reachable" in err
    for seed in dead:
        assert seed in err


def test_seed_option_overrides_config(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, [f"127.0.0.1:{free_port_pair()}"])
    assert main(["--config", str(config), "--seed", clean_cluster.seeds[2], "sync"]) == 0


def test_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "absent.yaml"), "plan"]) == 2
    assert "absent.yaml does not exist" in capsys.readouterr().err


def test_broken_yaml_exits_2_with_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("catalog:\n  version: 1\n  scripts: [\n  - {name: a\n")
    assert main(["--config", str(path), "check"]) == 2
    err = capsys.readouterr().err
    assert "YAML syntax error" in err and f"{path}:" in err
