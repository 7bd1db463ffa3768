"""The daemon's own endpoint, end to end: a real process, real nodes, /metrics as Prometheus reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess, http_get, spin_lua, wait_for, write_config
from redis_orchestrator.devcluster.cluster import free_port_pair

pytestmark = pytest.mark.timeout(90)

# Spins for ~30 ms of server time: a slow script by any slowlog threshold we set here.
SLOW = spin_lua("30").decode()


def _get(url: str) -> tuple[int, str]:
    status, _, body = http_get(url)
    return status, body


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_daemon_metrics_name_slow_scripts_and_count_repairs(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    import yaml

    (tmp_path / "slow.lua").write_text(SLOW)
    sample = yaml.safe_load((Path(__file__).parent.parent / "examples" / "config.yaml").read_text())["catalog"][
        "scripts"
    ]
    port = free_port_pair()
    config = write_config(
        tmp_path,
        clean_cluster.seeds[:1],
        scripts=[*sample, {"name": "slow_spin", "version": 1, "file": "slow.lua"}],
        metrics={"enabled": True, "listen": f"127.0.0.1:{port}"},
    )
    base = f"http://127.0.0.1:{port}"
    node = clean_cluster.primaries()[0]
    with node.client() as c:
        old = c.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
        c.config_set("slowlog-log-slower-than", 10000)
    try:
        with DaemonProcess(config) as daemon:
            daemon.wait_log(" ready ")
            assert _get(f"{base}/healthz")[0] == 200
            wait_for(lambda: _get(f"{base}/readyz")[0] == 200, 10, "/readyz to answer 200")
            text = _get(f"{base}/metrics")[1]
            for n in clean_cluster.nodes:
                assert _sample(text, "redis_orchestrator_node_up", node=n.address) == 1.0, n
                assert _sample(text, "redis_orchestrator_node_scripts_missing", node=n.address) == 0.0, n
            assert _sample(text, "redis_orchestrator_catalog_info", version="test-1") == 1.0
            # A slow catalog script, run by sha on one node, shows up under its name.
            from redis_orchestrator.catalog.model import sha1_hex

            sha = sha1_hex((tmp_path / "slow.lua").read_bytes())
            wait_for(
                lambda: _sample(_get(f"{base}/metrics")[1], "redis_orchestrator_node_up", node=node.address) == 1.0,
                5,
                "up",
            )
            with node.client() as c:
                c.execute_command("EVALSHA", sha, 0)
            wait_for(
                lambda: (
                    (
                        _sample(
                            _get(f"{base}/metrics")[1],
                            "redis_orchestrator_slow_script_runs_total",
                            script="slow_spin",
                            node=node.address,
                        )
                        or 0
                    )
                    >= 1
                ),
                10,
                "the slow run under its catalog name",
            )
            # A flush is repaired and counted as loads on that node.
            before = (
                _sample(_get(f"{base}/metrics")[1], "redis_orchestrator_script_loads_total", node=node.address) or 0
            )
            with node.client() as c:
                c.execute_command("SCRIPT", "FLUSH")
            wait_for(
                lambda: (
                    (
                        _sample(_get(f"{base}/metrics")[1], "redis_orchestrator_script_loads_total", node=node.address)
                        or 0
                    )
                    > before
                ),
                10,
                "script_loads_total to count the repair",
            )
    finally:
        with node.client() as c:
            c.config_set("slowlog-log-slower-than", old)
