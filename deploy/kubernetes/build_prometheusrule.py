"""Write prometheusrule.yaml: deploy/prometheus/alerts.yml's groups, unchanged, in a PrometheusRule.

    python deploy/kubernetes/build_prometheusrule.py

Run it after editing alerts.yml; tests/test_kubernetes.py fails while the two differ.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent / "prometheus" / "alerts.yml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = """\
# prometheus-operator: the alert rules of deploy/prometheus/alerts.yml, unchanged (their unit tests
# are deploy/prometheus/alerts_test.yml). Written by build_prometheusrule.py: edit alerts.yml, then
# run it. Your Prometheus resource's ruleSelector must match these labels (often `release: ...`).
"""


def render() -> str:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "redis-orchestrator", "labels": {"app.kubernetes.io/name": "redis-orchestrator"}},
        "spec": {"groups": yaml.safe_load(ALERTS.read_text())["groups"]},
    }
    return HEADER + yaml.safe_dump(rule, sort_keys=False, width=100, allow_unicode=True)


if __name__ == "__main__":
    TARGET.write_text(render())
