"""`check` and `keyslot` as a user runs them, and the daemon's analysis gate (analysis.block_on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redis_orchestrator.cli import main
from redis_orchestrator.local_cluster import LocalCluster
from tests.helpers import REPO, DaemonProcess, write_config

UNSAFE = """\
-- builds its key from ARGV: works on one node, fails in a cluster on the unlucky key
local key = 'user:' .. ARGV[1]
return redis.call('GET', key)
"""


def test_check_is_clean_on_the_sample_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(REPO / "config.yaml"), "check"]) == 0
    assert "0 error(s)" in capsys.readouterr().out


def test_check_reports_compiler_style_and_json_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "unsafe.lua").write_text(UNSAFE)
    config = write_config(
        tmp_path,
        ["127.0.0.1:1"],
        scripts=[
            {"name": "unsafe", "version": 1, "file": "unsafe.lua"},
            {
                "name": "profile",
                "version": 1,
                "file": "lua/counters/get.lua",
                "keys": ["account:<id>:profile", "account:<id>:events"],
            },
        ],
    )
    assert main(["--config", str(config), "check"]) == 1
    out = capsys.readouterr().out
    assert "unsafe.lua:3:" in out and "error[undeclared-key]" in out
    assert "error[cross-slot]" in out and "{account:<id>}" in out
    assert main(["--config", str(config), "check", "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)
    codes = {(f["script"], f["version"], f["code"]) for f in findings}
    assert ("unsafe", "1", "undeclared-key") in codes
    assert ("profile", "1", "cross-slot") in codes
    for finding in findings:
        assert set(finding) >= {"file", "script", "version", "line", "column", "severity", "code", "message"}


def test_keyslot_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keyslot", "{user1000}.following", "{user1000}.followers"]) == 0
    assert "3443" in capsys.readouterr().out
    assert main(["keyslot", "account:42:profile", "account:42:events"]) == 1
    assert "{account:42}:profile" in capsys.readouterr().out


@pytest.mark.timeout(60)
def test_daemon_refuses_a_catalog_with_errors_when_block_on_is_error(
    clean_cluster: LocalCluster, tmp_path: Path
) -> None:
    (tmp_path / "unsafe.lua").write_text(UNSAFE)
    config = write_config(
        tmp_path,
        clean_cluster.seeds[:1],
        scripts=[{"name": "unsafe", "version": 1, "file": "unsafe.lua"}],
        analysis={"block_on": "error"},
    )
    daemon = DaemonProcess(config)
    code = daemon.process.wait(timeout=30)
    log = daemon.log()
    daemon.stop()
    assert code == 1, log
    assert "undeclared-key" in log and "analysis.block_on=error" in log


@pytest.mark.timeout(60)
def test_daemon_rejects_an_edit_that_adds_an_unsafe_script_when_blocking(
    clean_cluster: LocalCluster, tmp_path: Path
) -> None:
    import yaml

    config = write_config(tmp_path, clean_cluster.seeds[:1], analysis={"block_on": "error"})
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ")
        (tmp_path / "unsafe.lua").write_text(UNSAFE)
        data = yaml.safe_load(config.read_text())
        data["catalog"]["scripts"].append({"name": "unsafe", "version": 1, "file": "unsafe.lua"})
        config.write_text(yaml.safe_dump(data))
        daemon.wait_log("catalog_rejected")
        assert "undeclared-key" in daemon.log()
        assert daemon.alive()


@pytest.mark.timeout(60)
def test_daemon_logs_the_findings_of_a_new_script_on_reload(clean_cluster: LocalCluster, tmp_path: Path) -> None:
    import yaml

    config = write_config(tmp_path, clean_cluster.seeds[:1])
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ")
        (tmp_path / "unsafe.lua").write_text(UNSAFE)
        data = yaml.safe_load(config.read_text())
        data["catalog"]["scripts"].append({"name": "unsafe", "version": 1, "file": "unsafe.lua"})
        config.write_text(yaml.safe_dump(data))
        daemon.wait_log("catalog_reloaded")
        findings = [line for line in daemon.log().splitlines() if " finding " in line]
        assert findings and all("unsafe@1" in line for line in findings)
        assert any("undeclared-key" in line and "unsafe.lua:3:" in line for line in findings)
