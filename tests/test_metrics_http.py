"""The metrics endpoint over real HTTP: /metrics (valid for promtool), /healthz, /readyz."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest

from harness.helpers import NODE, http_get, populated_metrics
from redis_orchestrator.daemon.http import MetricsServer
from redis_orchestrator.daemon.http import Readiness as HttpReadiness
from redis_orchestrator.daemon.metrics import Metrics


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
    server = MetricsServer("127.0.0.1:0", metrics.registry, ready)
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

    server = MetricsServer("127.0.0.1:0", Metrics().registry, broken)
    server.start()
    try:
        status, _, body = get(server.port, "/readyz")
        assert status == 503 and "state not built" in body
        assert get(server.port, "/healthz")[0] == 200  # still up
    finally:
        server.close()


def test_close_releases_the_port_and_a_taken_port_is_named() -> None:
    server = MetricsServer("127.0.0.1:0", Metrics().registry, lambda: (True, "ok"))
    server.start()
    port = server.port
    other = MetricsServer(f"127.0.0.1:{port}", Metrics().registry, lambda: (True, "ok"))
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
