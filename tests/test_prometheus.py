"""deploy/: alert rules under `promtool test rules`, and a real Prometheus scraping a MetricsServer.

The end-to-end test starts the OS package's `prometheus` on a free loopback port with a temporary
config and TSDB directory, waits until a PromQL query over its HTTP API returns our series, checks
that every query of the Grafana dashboard is valid PromQL there, and stops it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.helpers import NODE, free_port, http_get, populated_metrics
from redis_orchestrator.daemon.http import MetricsServer, Readiness
from redis_orchestrator.daemon.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "redis-orchestrator.json"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install -y prometheus)")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_alert_rules_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_and_rules_are_valid() -> None:
    result = run(tool("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 rules found" in result.stdout


def dashboard_exprs() -> list[str]:
    exprs: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("expr"), str):
                exprs.append(value["expr"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(DASHBOARD.read_text()))
    return exprs


def exported_names(metrics: Metrics) -> set[str]:
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_dashboard_uses_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    used = {name for expr in exprs for name in re.findall(r"redis_orchestrator_[a-z_]+", expr)}
    missing = used - exported_names(populated_metrics())
    assert not missing, f"dashboard queries metrics nobody exports: {sorted(missing)}"
    for metric in (
        "node_scripts_missing",
        "slow_script_limit_ratio",
        "node_busy",
        "script_kills_total",
        "catalog_info",
        "catalog_reloads_total",
        "check_findings",
        "reconcile_duration_seconds_bucket",
    ):
        assert f"redis_orchestrator_{metric}" in used, metric


def api(port: int, path: str, **params: str) -> dict[str, Any]:
    # A bad query answers 400 with a JSON body that says why: http_get returns it like a 200.
    return dict(json.loads(http_get(f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}")[2]))


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[int, MetricsServer]]:
    binary = tool("prometheus")
    metrics = populated_metrics()
    server = MetricsServer("127.0.0.1:0", metrics.registry, lambda: Readiness(True, "ready"))
    server.start()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {PROMETHEUS_DIR / 'alerts.yml'}\n"
        "scrape_configs:\n  - job_name: redis-orchestrator\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port, server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        server.close()


def wait_for_result(port: int, query: str, timeout: float = 90.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = api(port, "/api/v1/query", query=query)
        except OSError:  # not listening yet
            reply = {}
        if reply.get("status") == "success" and reply["data"]["result"]:
            return list(reply["data"]["result"])
        time.sleep(0.25)
    raise AssertionError(f"no result for {query} within {timeout}s")


@pytest.mark.once
@pytest.mark.slow
def test_real_prometheus_scrapes_the_metrics_server(prometheus: tuple[int, MetricsServer]) -> None:
    port, _ = prometheus
    result = wait_for_result(port, 'redis_orchestrator_slow_script_runs_total{script="transfer"}')
    assert result[0]["metric"]["node"] == NODE and result[0]["value"][1] == "1"
    up = wait_for_result(port, 'up{job="redis-orchestrator"}')
    assert up[0]["value"][1] == "1"
    for expr in dashboard_exprs():
        concrete = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
        reply = api(port, "/api/v1/query", query=concrete)
        assert reply.get("status") == "success", f"{expr}: {reply.get('error')}"
    rules = api(port, "/api/v1/rules")
    names = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
    assert {"RedisScriptsMissingOnNode", "RedisNodeBusy", "RedisSlowScriptNearTimeLimit"} <= names
