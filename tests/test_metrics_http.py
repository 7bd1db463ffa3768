"""The metrics endpoint over real HTTP: /metrics (valid for promtool), /healthz, /readyz; and what
the metrics say of a node the daemon cannot check."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import NODE, http_get, populated_metrics, write_config
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.daemon.assembly import build_daemon
from redis_orchestrator.daemon.http import MetricsServer
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.node_worker import NodeWorker
from redis_orchestrator.daemon.readiness import Readiness as HttpReadiness
from redis_orchestrator.reconcile.node_pass import NodeReport, NodeState
from redis_orchestrator.reconcile.plan import NodePlan
from redis_orchestrator.topology.model import Node, Role
from redis_orchestrator.wire.connections import Connector


class Readiness:
    def __init__(self) -> None:
        self.state = HttpReadiness(False, "catalog not loaded yet")

    def __call__(self) -> HttpReadiness:
        return self.state


def get(port: int, path: str, accept: str | None = None) -> tuple[int, str, str]:
    return http_get(f"http://127.0.0.1:{port}{path}", accept)


@pytest.fixture
def served() -> Iterator[tuple[MetricsServer, Metrics, Readiness]]:
    metrics, ready = populated_metrics(), Readiness()
    server = MetricsServer("127.0.0.1:0", metrics, ready)
    server.start()
    try:
        yield server, metrics, ready
    finally:
        server.close()


def test_metrics_exposition(served: tuple[MetricsServer, Metrics, Readiness]) -> None:
    server, _, _ = served
    status, content_type, body = get(server.port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    text = body
    assert 'redis_orchestrator_slow_script_runs_total{node="127.0.0.1:7000",script="transfer"} 1.0' in text
    assert 'redis_orchestrator_script_kills_total{node="127.0.0.1:7000",result="unkillable"} 1.0' in text
    assert 'redis_orchestrator_node_busy{node="127.0.0.1:7000"} 1.0' in text
    status, content_type, body = get(server.port, "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert status == 200 and content_type.startswith("application/openmetrics-text") and body.endswith("# EOF\n")


def test_exposition_passes_promtool(served: tuple[MetricsServer, Metrics, Readiness]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    server, _, _ = served
    _, _, body = get(server.port, "/metrics")
    result = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True, timeout=30)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_healthz_and_readyz(served: tuple[MetricsServer, Metrics, Readiness]) -> None:
    server, _, ready = served
    assert get(server.port, "/healthz")[0] == 200
    status, _, body = get(server.port, "/readyz")
    assert status == 503 and body == "catalog not loaded yet\n"
    ready.state = HttpReadiness(True, "")
    assert get(server.port, "/readyz")[:3:2] == (200, "ready\n")
    assert get(server.port, "/nope")[0] == 404


def test_broken_readiness_check_answers_503() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("state not built")

    server = MetricsServer("127.0.0.1:0", Metrics(), broken)
    server.start()
    try:
        status, _, body = get(server.port, "/readyz")
        assert status == 503 and "state not built" in body
        assert get(server.port, "/healthz")[0] == 200  # still up
    finally:
        server.close()


def test_close_releases_the_port_and_a_taken_port_is_named() -> None:
    server = MetricsServer("127.0.0.1:0", Metrics(), lambda: (True, "ok"))
    server.start()
    port = server.port
    other = MetricsServer(f"127.0.0.1:{port}", Metrics(), lambda: (True, "ok"))
    with pytest.raises(OSError, match=rf"cannot listen on 127.0.0.1:{port} \(metrics.listen\)"):
        other.start()
    server.close()
    server.close()  # idempotent
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_forgotten_node_loses_its_slow_script_series() -> None:
    metrics = populated_metrics()
    assert (
        metrics.registry.get_sample_value(
            "redis_orchestrator_slow_script_runs_total", {"script": "transfer", "node": NODE}
        )
        == 1
    )
    metrics.node_forgotten(NODE)
    for name, labels in (
        ("redis_orchestrator_slow_script_runs_total", {"script": "transfer", "node": NODE}),
        ("redis_orchestrator_slow_script_limit_ratio", {"script": "transfer", "node": NODE}),
        ("redis_orchestrator_node_busy", {"node": NODE}),
        ("redis_orchestrator_script_time_limit_seconds", {"node": NODE}),
        ("redis_orchestrator_slowlog_poll_errors_total", {"node": NODE}),
    ):
        assert metrics.registry.get_sample_value(name, labels) is None, name
    # the duration histogram is per script only: kept
    assert (
        metrics.registry.get_sample_value(
            "redis_orchestrator_slow_script_duration_seconds_count", {"script": "transfer"}
        )
        == 1
    )


# ---------------------------------------------------------------------- a node that cannot be checked


def worker_on(tmp_path: Path) -> tuple[NodeWorker, Metrics, int]:
    """A node worker for a primary of the sample catalog (no server: only its bookkeeping is used),
    and how many entries that primary must hold."""
    config = load_config(write_config(tmp_path, ["127.0.0.1:7000"]))
    metrics = Metrics()
    node = Node("127.0.0.1", 7000, Role.PRIMARY)
    worker = NodeWorker(node, Connector(config.start.redis), lambda: config.desired, metrics)
    catalog = config.catalog
    return worker, metrics, len(catalog.shas) + len(catalog.functions)


def test_a_node_that_refuses_the_check_counts_every_script_missing_but_a_busy_one_does_not(tmp_path: Path) -> None:
    worker, metrics, expected = worker_on(tmp_path)
    node = worker.node

    def missing() -> float | None:
        labels = {"node": node.address, "role": "primary"}
        return metrics.registry.get_sample_value("redis_orchestrator_node_scripts_missing", labels)

    worker._record(NodeReport(node, NodeState.OK, plan=NodePlan(node)), 0.001)
    assert missing() == 0
    worker._record(NodeReport(node, NodeState.REFUSED, error="BUSY Redis is busy running a script"), 0.001)
    assert missing() == 0  # busy: node_busy says so; its scripts were there a moment ago
    for error in ("WRONGPASS: authentication failed", "NOPERM: the ACL user lacks a permission", "ERR unknown command"):
        worker._record(NodeReport(node, NodeState.REFUSED, error=error), 0.001)
        assert missing() == expected, error


@pytest.mark.live
def test_a_node_whose_acl_refuses_script_shows_its_scripts_missing(tmp_path: Path) -> None:
    with ChaosCluster(primaries=1, replicas_per_primary=0) as cluster:
        node = cluster.nodes[0]
        redis = {"mode": "standalone", "seeds": cluster.seeds, "timeout": "1s"}
        config = load_config(write_config(tmp_path, cluster.seeds, redis=redis, leader={"enabled": False}))
        expected = len(config.catalog.shas) + len(config.catalog.functions)
        metrics = Metrics()
        labels = {"node": node.address, "role": "primary"}

        async def scenario() -> list[float | None]:
            seen = []
            async with build_daemon(config, metrics=metrics, serve_metrics=False) as daemon:
                for grant in ("+@all", "-script", "+@all"):
                    with node.client() as c:
                        c.execute_command("ACL", "SETUSER", "default", grant)
                    await daemon.converge()
                    seen.append(metrics.registry.get_sample_value("redis_orchestrator_node_scripts_missing", labels))
            return seen

        assert asyncio.run(scenario()) == [0, expected, 0]
