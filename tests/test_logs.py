"""`--log-format json`: the daemon writes one JSON object per line, each with ts, level and event,
and node events name their node (what journald and container log collectors ingest)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess, catalog_shas, present, wait_for, write_config

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_json_logs_are_one_object_per_line(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1], leader={"enabled": True, "lease": "2s"})
    shas = catalog_shas(config)
    with DaemonProcess(config, "--log-format", "json") as daemon:
        daemon.wait_log('"event": "ready"', timeout=30)
        replica = clean_cluster.replicas()[0]
        with replica.client() as c:
            c.execute_command("SCRIPT", "FLUSH")
        wait_for(lambda: present(replica, shas) == shas, 10, "the flushed replica repaired")
        daemon.wait_log('"event": "leader_acquired"')
        assert daemon.stop() == 0
    lines = [ln for ln in daemon.log().splitlines() if ln.strip()]
    records = []
    for line in lines:
        record = json.loads(line)  # every line parses on its own: no multi-line messages, no tracebacks
        assert isinstance(record, dict), line
        records.append(record)
    for record in records:
        assert TS.match(record["ts"]), record
        assert record["level"] in ("debug", "info", "warning", "error"), record
        assert isinstance(record["event"], str) and record["event"], record
    events = [r["event"] for r in records]
    assert events[0] == "starting" and events[-1] == "stopped"
    for expected in ("ready", "repaired", "leader_acquired", "stopping"):
        assert expected in events
    repaired = [r for r in records if r["event"] == "repaired"]
    assert any(r["node"] == replica.address for r in repaired)
    assert all(r["node"] in clean_cluster.seeds for r in records if "node" in r)
    ready = next(r for r in records if r["event"] == "ready")
    assert ready["nodes"] == len(clean_cluster.nodes) and ready["catalog"] == "test-1"
