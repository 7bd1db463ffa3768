"""`redis-orchestrator prune` against a real 3+3 cluster: dry run, the real thing, zero NOSCRIPT."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.chaos import ChaosCluster
from harness.helpers import EvalshaOnlyClient, all_hold, local_key, present, wait_for, write_config
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FOREIGN = "return 'not in any catalog'"


def _versioned_config(tmp_path: Path, seeds: list[str], keep: int | None) -> tuple[Path, str, str]:
    config = write_config(tmp_path, seeds)
    data = yaml.safe_load(config.read_text())
    v1_file = tmp_path / "lua/counters/get.lua"
    v2_file = tmp_path / "lua/counters/get_v2.lua"
    v2_file.write_bytes(v1_file.read_bytes() + b"-- v2\n")
    entry: dict[str, object] = {
        "name": "counter_get",
        "versions": [{"version": 1, "file": "lua/counters/get.lua"}, {"version": 2, "file": "lua/counters/get_v2.lua"}],
        "current": 2,
    }
    if keep is not None:
        entry["keep"] = keep
    data["catalog"]["scripts"] = [*(s for s in data["catalog"]["scripts"] if s["name"] != "counter_get"), entry]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config, sha1_hex(v1_file.read_bytes()), sha1_hex(v2_file.read_bytes())


def _with_v1_retired(tmp_path: Path, cluster: ChaosCluster) -> tuple[Path, str, str]:
    """Both versions of counter_get synced to every node, then the config that retires v1 (keep: 0)."""
    config, _v1, _v2 = _versioned_config(tmp_path, cluster.seeds[:1], keep=None)
    assert main(["--config", str(config), "sync"]) == 0
    return _versioned_config(tmp_path, cluster.seeds[:1], keep=0)


def _live_shas(config: Path) -> set[str]:
    from redis_orchestrator.config.loader import load_config

    return {s.sha for s in load_config(config).catalog.scripts}


def test_dry_run_names_retired_and_foreign_scripts_and_changes_nothing(
    clean_cluster: ChaosCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = clean_cluster
    config, v1, _v2 = _versioned_config(tmp_path, cluster.seeds[:1], keep=None)  # both versions live
    assert main(["--config", str(config), "sync"]) == 0
    assert all_hold(cluster, {v1})
    capsys.readouterr()
    assert main(["--config", str(config), "prune"]) == 0  # nothing retired, nothing foreign
    assert "nothing to prune" in capsys.readouterr().out
    config, v1, _v2 = _versioned_config(tmp_path, cluster.seeds[:1], keep=0)  # v1 retired
    replica = cluster.replicas()[0]
    with replica.client() as c:
        c.script_load(FOREIGN)
    assert main(["--config", str(config), "prune"]) == 1
    out = capsys.readouterr().out
    assert out.count("counter_get@1") == 6  # every node still holds the retired version
    line = next(ln for ln in out.splitlines() if ln.startswith(replica.address))
    assert "will not flush" in line and "1 script(s) not in the catalog" in line and "--flush-unknown-scripts" in line
    assert "run `prune --yes`" in out
    assert main(["--config", str(config), "prune", "--flush-unknown-scripts"]) == 1
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(replica.address))
    assert "would flush" in line and "1 not in the catalog" in line
    assert all_hold(cluster, {v1})
    assert present(replica, {sha1_hex(FOREIGN.encode())})  # a dry run writes nothing


def test_prune_yes_keeps_other_applications_scripts_and_says_so(
    clean_cluster: ChaosCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = clean_cluster
    config, v1, _v2 = _with_v1_retired(tmp_path, cluster)
    replica = cluster.replicas()[0]
    foreign = sha1_hex(FOREIGN.encode())
    with replica.client() as c:
        c.script_load(FOREIGN)  # another application's script, on one node
    capsys.readouterr()
    assert main(["--config", str(config), "prune", "--yes"]) == 1  # not everything could be pruned
    out = capsys.readouterr().out
    kept = [ln for ln in out.splitlines() if "will not flush" in ln]
    assert len(kept) == 1 and kept[0].startswith(replica.address), out
    assert "another application" in kept[0] and "--flush-unknown-scripts" in kept[0]
    assert len([ln for ln in out.splitlines() if " pruned " in ln]) == 5
    assert present(replica, {foreign, v1}) == {foreign, v1}  # nothing flushed there
    assert all(not present(n, {v1}) for n in cluster.nodes if n is not replica)


def test_prune_yes_with_the_opt_in_drops_retired_and_foreign_with_zero_noscript_for_live_scripts(
    clean_cluster: ChaosCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = clean_cluster
    config, v1, v2 = _with_v1_retired(tmp_path, cluster)
    live = _live_shas(config)
    foreign = sha1_hex(FOREIGN.encode())
    for node in cluster.nodes:
        with node.client() as c:
            c.script_load(FOREIGN)
    primary, replica = cluster.primaries()[0], cluster.replicas()[0]
    clients = [EvalshaOnlyClient(n, sorted(live), local_key(n, "prune")) for n in (primary, replica)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: all(c.ok >= 20 for c in clients), 10, "the clients' first answers")
        capsys.readouterr()
        assert main(["--config", str(config), "prune", "--yes", "--flush-unknown-scripts"]) == 0
        calls = [c.calls for c in clients]
        wait_for(lambda: all(c.calls > n + 50 for c, n in zip(clients, calls, strict=True)), 10, "more calls")
    finally:
        for client in clients:
            client.stop()
    out = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + out)
    pruned = [ln for ln in out.splitlines() if " pruned " in ln]
    assert len(pruned) == 6
    assert all("NOSCRIPT window 0.0 ms" in ln for ln in pruned), out
    for client in clients:
        assert client.noscript == 0, f"{client.node}: {client.noscript} NOSCRIPT of {client.calls}"
        assert client.connection_errors == 0
    for node in cluster.nodes:
        assert present(node, live) == live
        assert present(node, {v1, foreign}) == set()
        with node.client() as c:
            # exactly the live set, plus the daemon's cache marker (observe.MARKER_SOURCE)
            assert int(c.info("memory")["number_of_cached_scripts"]) == len(live) + 1
    capsys.readouterr()
    assert main(["--config", str(config), "prune"]) == 0  # nothing left
    assert v2 in live
