"""deploy/kubernetes/ checked offline; no Kubernetes cluster ran these manifests.

Every manifest of a built-in kind is validated strictly (unknown fields are errors) against
Kubernetes' own OpenAPI schemas for the newest release kubernetes-validate ships; so is the catalog
ConfigMap the README's `kubectl create configmap` makes. The prometheus-operator kinds have no
schema there: the PrometheusRule is deploy/prometheus/alerts.yml unchanged, which promtool checks,
and the ServiceMonitor must select the Service's metrics port. The Deployment keeps its promises
(two replicas, probes, non-root, read-only, no capabilities, the password from a Secret), and its
config passes the daemon's own validation with the files the pod would see."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.kubernetes.build_prometheusrule import render
from harness.helpers import REPO
from redis_orchestrator.config.loader import parse_config
from tests.http_endpoint import tool

K8S = REPO / "deploy" / "kubernetes"
VERSION = kubernetes_validate.latest_version()
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# What the README's `kubectl create configmap redis-orchestrator-catalog --from-file=DIR...` reads:
# each regular file of each directory, keyed by its name.
CATALOG_DIRS = ["ledger", "counters", "ratelimit", "lock", "functions"]


def manifests() -> dict[str, dict[str, Any]]:
    """kind -> the manifest, from every YAML file of deploy/kubernetes/."""
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"] if doc["kind"] != "ConfigMap" else doc["metadata"]["name"]] = doc
    return found


def catalog_configmap() -> dict[str, Any]:
    files = [p for d in CATALOG_DIRS for p in sorted((REPO / "examples" / "lua" / d).iterdir()) if p.is_file()]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "redis-orchestrator-catalog"},
        "data": {p.name: p.read_text() for p in files},
    }


def test_every_manifest_is_valid_against_the_kubernetes_schemas() -> None:
    found = manifests()
    assert set(found) == {
        "redis-orchestrator-config", "Deployment", "Service", "PodDisruptionBudget", *OPERATOR_KINDS
    }  # fmt: skip
    for name, doc in [*found.items(), ("catalog", catalog_configmap())]:
        if doc["kind"] in OPERATOR_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):  # a CRD: checked below
                kubernetes_validate.validate(doc, VERSION, strict=True)
        else:
            assert kubernetes_validate.validate(doc, VERSION, strict=True), name
    # The check bites: a misspelt field is refused.
    broken = copy.deepcopy(found["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)
    readme = (K8S / "README.md").read_text()
    assert all(f"--from-file=examples/lua/{d}" in readme for d in CATALOG_DIRS)


def test_the_prometheus_rule_is_the_alert_rules_unchanged_and_promtool_accepts_them(tmp_path: Path) -> None:
    assert (K8S / "prometheusrule.yaml").read_text() == render(), "run deploy/kubernetes/build_prometheusrule.py"
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": manifests()["PrometheusRule"]["spec"]["groups"]}))
    done = subprocess.run([tool("promtool"), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_service_monitor_scrapes_the_metrics_port_of_every_replica() -> None:
    found = manifests()
    pod_labels = found["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = found["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = found["ServiceMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in [p["name"] for p in service["spec"]["ports"]]
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_the_deployment_runs_two_locked_down_replicas_with_probes() -> None:
    spec = manifests()["Deployment"]["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 2
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["password"]["secret"]["secretName"] == "redis-orchestrator"
    sources = [s["configMap"]["name"] for s in volumes["config"]["projected"]["sources"]]
    assert sources == ["redis-orchestrator-config", "redis-orchestrator-catalog"]


def test_the_config_is_valid_with_the_files_the_pod_sees(tmp_path: Path) -> None:
    """The projected volume as the pod sees it: config.yaml beside every catalog file."""
    text = manifests()["redis-orchestrator-config"]["data"]["config.yaml"]
    for name, source in catalog_configmap()["data"].items():
        (tmp_path / name).write_text(source)
    (tmp_path / "password").write_text("from-the-secret")
    text = text.replace("/run/secrets/redis-orchestrator/password", str(tmp_path / "password"))
    config = parse_config(text, tmp_path / "config.yaml", environ={})
    assert config.start.metrics.listen == "0.0.0.0:9840"  # the probes come from the kubelet, not loopback
    assert config.start.leader.enabled and config.start.redis.password is not None
    assert config.start.redis.password.reveal() == "from-the-secret"
