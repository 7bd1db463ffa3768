"""Writes redis-orchestrator.json, the Grafana dashboard, from the panel list below.

    python deploy/grafana/build_dashboard.py

Edit here rather than in the JSON: every query selects `instance=~"$instance"` and uses
`$__rate_interval`, and tests/test_prometheus.py checks each one against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("redis-orchestrator.json")
SEL = 'instance=~"$instance"'
DS = {"type": "prometheus", "uid": "${datasource}"}


def q(expr: str) -> str:
    """Add the instance selector to every redis_orchestrator_* metric in `expr` but the client's
    (redis_orchestrator_client_*: the applications export those, under instances of their own)."""

    def add(m: re.Match[str]) -> str:
        name, labels = m.group(1), m.group(2)
        if name.startswith("redis_orchestrator_client_"):
            return m.group(0)
        if labels:
            return f"{name}{{{SEL},{labels[1:-1]}}}"
        return f"{name}{{{SEL}}}"

    return re.sub(r"(redis_orchestrator_[a-z_]+)(\{[^}]*\})?", add, expr)


class Layout:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.y = 0
        self.x = 0
        self.row_height = 0

    def row(self, title: str) -> None:
        self.newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "id": len(self.panels) + 1,
                "panels": [],
            }
        )
        self.y += 1

    def newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.newline()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["id"] = len(self.panels) + 1
        panel["datasource"] = DS
        for target in panel.get("targets", []):
            target["datasource"] = DS
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def targets(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"expr": q(expr), "legendFormat": legend, "refId": chr(ord("A") + i)} for i, (expr, legend) in enumerate(pairs)
    ]


def stat(
    title: str,
    expr: str,
    legend: str = "",
    *,
    unit: str = "none",
    steps: list[Any] | None = None,
    description: str = "",
    text_mode: str = "value",
) -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "targets": targets((expr, legend)),
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "textMode": text_mode,
            "graphMode": "none",
        },
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps or [{"color": "green", "value": None}]},
            },
            "overrides": [],
        },
    }


def series(
    title: str,
    *pairs: tuple[str, str],
    unit: str = "none",
    description: str = "",
    steps: list[Any] | None = None,
    stack: bool = False,
) -> dict[str, Any]:
    custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    if steps:
        custom["thresholdsStyle"] = {"mode": "line"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "targets": targets(*pairs),
        "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]}},
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": custom,
                "thresholds": {"mode": "absolute", "steps": steps or [{"color": "green", "value": None}]},
            },
            "overrides": [],
        },
    }


RED_IF_ANY = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
RATIO_STEPS = [{"color": "green", "value": None}, {"color": "orange", "value": 0.5}, {"color": "red", "value": 0.8}]


def build() -> dict[str, Any]:
    lay = Layout()
    lay.row("Nodes")
    lay.add(
        stat("Nodes up", "sum(redis_orchestrator_node_up)", description="Nodes that answered the last reconcile"), 4, 4
    )
    lay.add(stat("Nodes down", "count(redis_orchestrator_node_up == 0) or vector(0)", steps=RED_IF_ANY), 4, 4)
    lay.add(
        stat(
            "Nodes missing scripts",
            "count(redis_orchestrator_node_scripts_missing > 0) or vector(0)",
            steps=RED_IF_ANY,
            description="Nodes where a catalog script or library is absent: calls there fail with NOSCRIPT",
        ),
        4,
        4,
    )
    lay.add(stat("Nodes busy", "sum(redis_orchestrator_node_busy) or vector(0)", steps=RED_IF_ANY), 4, 4)
    lay.add(
        stat(
            "Ready",
            "min(redis_orchestrator_ready)",
            steps=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
        ),
        4,
        4,
    )
    lay.add(stat("Leader", "max(redis_orchestrator_leader)"), 4, 4)
    lay.add(series("Scripts missing per node", ("redis_orchestrator_node_scripts_missing", "{{node}} {{role}}")), 12, 8)
    lay.add(series("Node up", ("redis_orchestrator_node_up", "{{node}} {{role}}")), 12, 8)

    lay.row("Reconcile")
    lay.add(
        series(
            "Script / library loads",
            ("sum by (node) (rate(redis_orchestrator_script_loads_total[$__rate_interval]))", "{{node}}"),
            unit="ops",
            description="SCRIPT LOAD / FUNCTION LOAD that repaired a node",
        ),
        8,
        8,
    )
    lay.add(
        series(
            "Reconcile duration",
            (
                "histogram_quantile(0.5, sum by (le) "
                "(rate(redis_orchestrator_reconcile_duration_seconds_bucket[$__rate_interval])))",
                "p50",
            ),
            (
                "histogram_quantile(0.99, sum by (le) "
                "(rate(redis_orchestrator_reconcile_duration_seconds_bucket[$__rate_interval])))",
                "p99",
            ),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        series(
            "Reconcile errors",
            ("sum by (node) (increase(redis_orchestrator_reconcile_errors_total[$__rate_interval]))", "{{node}}"),
        ),
        8,
        8,
    )

    lay.row("Slow scripts")
    lay.add(
        series(
            "Slow runs by script",
            ("sum by (script) (rate(redis_orchestrator_slow_script_runs_total[$__rate_interval]))", "{{script}}"),
            unit="ops",
            stack=True,
            description='Slowlog entries attributed to catalog scripts; "unknown" = scripts not in the catalog',
        ),
        12,
        8,
    )
    lay.add(
        series(
            "Slow run duration p99 by script",
            (
                "histogram_quantile(0.99, sum by (script, le) "
                "(rate(redis_orchestrator_slow_script_duration_seconds_bucket[$__rate_interval])))",
                "{{script}}",
            ),
            unit="s",
        ),
        12,
        8,
    )
    lay.add(
        series(
            "Call duration p99 by script, from the applications",
            (
                "histogram_quantile(0.99, sum by (script, le) "
                '(rate(redis_orchestrator_client_call_duration_seconds_bucket{outcome="ok"}[$__rate_interval])))',
                "{{script}}",
            ),
            unit="s",
            description="What the applications waited per call (redis_orchestrator.client's histogram, "
            "exported by each application on its own registry): network, queueing and NOSCRIPT repairs "
            "included, next to the slowlog's server-side view",
        ),
        12,
        8,
    )
    lay.add(
        series(
            "Slowest run / time limit",
            ("max by (script, node) (redis_orchestrator_slow_script_limit_ratio)", "{{script}} on {{node}}"),
            unit="percentunit",
            steps=RATIO_STEPS,
            description="1 = the node answered BUSY to everyone else; alert above 0.8",
        ),
        12,
        8,
    )
    lay.add(
        series(
            "Time limit (busy-reply-threshold)", ("redis_orchestrator_script_time_limit_seconds", "{{node}}"), unit="s"
        ),
        6,
        8,
    )
    lay.add(
        series(
            "Slowlog entries missed",
            ("sum by (node) (increase(redis_orchestrator_slowlog_missed_entries_total[$__rate_interval]))", "{{node}}"),
            description="Lost to the slowlog ring before the daemon read them: raise slowlog-max-len",
        ),
        6,
        8,
    )

    lay.row("BUSY and kills")
    lay.add(series("Busy nodes", ("redis_orchestrator_node_busy", "{{node}}"), steps=RED_IF_ANY), 12, 8)
    lay.add(
        series(
            "Script kills by result",
            ("sum by (result) (increase(redis_orchestrator_script_kills_total[$__rate_interval]))", "{{result}}"),
            stack=True,
            description="SCRIPT KILL / FUNCTION KILL sent by the kill policy (slow_scripts.kill, off by default)",
        ),
        12,
        8,
    )

    lay.row("Catalog")
    lay.add(
        stat("Catalog version", "max by (version) (redis_orchestrator_catalog_info)", "{{version}}", text_mode="name"),
        6,
        6,
    )
    lay.add(series("Catalog entries", ("redis_orchestrator_catalog_scripts", "{{kind}}")), 6, 6)
    lay.add(
        series(
            "Catalog reloads",
            ("sum by (result) (increase(redis_orchestrator_catalog_reloads_total[$__rate_interval]))", "{{result}}"),
            stack=True,
        ),
        6,
        6,
    )
    lay.add(series("Analysis findings", ("redis_orchestrator_check_findings", "{{severity}}")), 6, 6)

    return {
        "__inputs": [],
        "title": "redis-orchestrator",
        "uid": "redis-orchestrator",
        "description": "Catalog scripts on every node of a Redis Cluster: missing scripts, loads, slow scripts, BUSY",
        "tags": ["redis", "redis-orchestrator"],
        "timezone": "",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
                {
                    "name": "instance",
                    "label": "Orchestrator",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": "label_values(redis_orchestrator_catalog_info, instance)", "refId": "A"},
                    "definition": "label_values(redis_orchestrator_catalog_info, instance)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": lay.panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")
