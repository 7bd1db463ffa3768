"""deploy/: alert rules under `promtool test rules`, and a real Prometheus scraping a MetricsServer.

The end-to-end tests start the OS package's `prometheus` on a free loopback port with a temporary
config and TSDB directory, wait until a PromQL query over its HTTP API returns our series (or its
targets page says how a scrape went), check that every query of the Grafana dashboard is valid
PromQL there, and stop it. One scrapes an endpoint locked by a web config file: mutual TLS and
basic auth, with a job that has the right credentials and jobs that have not.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from harness.helpers import NODE, populated_metrics, wait_for
from redis_orchestrator.client.counters import Counters, Outcome
from redis_orchestrator.daemon.http import MetricsServer
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.readiness import Readiness
from tests.certs import make_test_certificates
from tests.http_endpoint import (
    PASSWORD,
    USER,
    hashed,
    prometheus_api,
    running_prometheus,
    sample,
    served,
    tool,
    wait_for_targets,
    write_web_config,
)

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "redis-orchestrator.json"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_alert_rules_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_and_rules_are_valid() -> None:
    result = run(tool("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "11 rules found" in result.stdout


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
    client = Counters()  # the applications' export (redis_orchestrator.client), on a registry of theirs
    client.observe("transfer", Outcome.OK, 0.001)
    registry = CollectorRegistry()
    client.register(registry)
    client_names = {s.name for family in registry.collect() for s in family.samples}
    missing = used - exported_names(populated_metrics()) - client_names
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
        "client_call_duration_seconds_bucket",
    ):
        assert f"redis_orchestrator_{metric}" in used, metric


api = prometheus_api


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[int, MetricsServer]]:
    metrics = populated_metrics()
    server = MetricsServer("127.0.0.1:0", metrics, lambda: Readiness(True, "ready"))
    server.start()
    scrape = f"  - job_name: redis-orchestrator\n    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
    try:
        with running_prometheus(tmp_path, scrape, (PROMETHEUS_DIR / "alerts.yml",)) as port:
            yield port, server
    finally:
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


@pytest.mark.live
@pytest.mark.once
@pytest.mark.slow
def test_real_prometheus_scrapes_over_mutual_tls_with_basic_auth_and_is_refused_without(tmp_path: Path) -> None:
    certs = make_test_certificates(tmp_path / "certs")
    metrics = populated_metrics()
    web = write_web_config(
        tmp_path / "web.yml", tls=certs, client_auth="RequireAndVerifyClientCert", users={USER: hashed(PASSWORD, 10)}
    )
    with served(metrics, web) as server:
        target = f"['127.0.0.1:{server.port}']"
        client_tls = (
            f"{{ca_file: {certs.ca_file}, cert_file: {certs.client_cert_file}, key_file: {certs.client_key_file}}}"
        )

        def job(name: str, scheme: str, tls: str, password: str | None) -> str:
            auth = f"    basic_auth: {{username: {USER}, password: {password}}}\n" if password else ""
            return (
                f"  - job_name: {name}\n    scheme: {scheme}\n    tls_config: {tls}\n{auth}"
                f"    static_configs:\n      - targets: {target}\n"
            )

        jobs = (
            job("locked", "https", client_tls, PASSWORD)
            + job("wrong-password", "https", client_tls, "guessed")
            + job("no-password", "https", client_tls, None)
            + job("no-client-cert", "https", f"{{ca_file: {certs.ca_file}}}", PASSWORD)
            + job("plain-http", "http", "{}", PASSWORD)
        )
        with running_prometheus(tmp_path, jobs) as port:
            names = {"locked", "wrong-password", "no-password", "no-client-cert", "plain-http"}
            targets = wait_for_targets(port, names, until_up={"locked"})

            def refused_for_credentials() -> bool:  # a first scrape may meet another job's check: 429
                errors = [wait_for_targets(port, names)[job]["lastError"] for job in ("wrong-password", "no-password")]
                return all("401 Unauthorized" in error for error in errors)

            wait_for(refused_for_credentials, 30, "the jobs without the password to get 401")
            assert targets["no-client-cert"]["health"] == "down"  # the handshake is refused
            assert "400 Bad Request" in targets["plain-http"]["lastError"]
            reply = prometheus_api(port, "/api/v1/query", query='redis_orchestrator_node_busy{job="locked"}')
            assert reply["data"]["result"][0]["value"][1] == "1"
    assert sample(metrics, "redis_orchestrator_http_connections_dropped_total", reason="tls_failed") >= 1
    assert sample(metrics, "redis_orchestrator_http_connections_dropped_total", reason="plain_http") >= 1
    # Prometheus keeps its connection open between scrapes and its credentials are checked once
    # (the cache); the wrong password is checked once too (a failure seen is cached)
    assert sample(metrics, "redis_orchestrator_http_password_checks_total") <= 4
