"""`check` and `keyslot` as a user runs them, and the daemon's analysis gate (analysis.block_on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.chaos import ChaosCluster
from harness.helpers import REPO, DaemonProcess, write_config
from redis_orchestrator.cli import main

UNSAFE = """\
-- builds its key from ARGV: works on one node, fails in a cluster on the unlucky key
local key = 'user:' .. ARGV[1]
return redis.call('GET', key)
"""


def test_check_is_clean_on_the_sample_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(REPO / "examples" / "config.yaml"), "check"]) == 0
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
    clean_cluster: ChaosCluster, tmp_path: Path
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
    clean_cluster: ChaosCluster, tmp_path: Path
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
def test_daemon_logs_the_findings_of_a_new_script_on_reload(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
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


QUEUE = """\
--[[
  Moves a job to the done list.
    KEYS[1] 'jobs' list
    KEYS[2] -> done counter
    ARGV[1] key prefix of job hashes
]]
local id = redis.call('RPOP', KEYS[1])
redis.call('HSET', ARGV[1] .. id, 'state', 'done')
redis.call('INCR', KEYS[2])
return redis.call('EXPIRE', KEYS[1] .. ':seen', 60)
"""


def test_check_suggests_keys_and_write_keys_accepts_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "queue.lua").write_text(QUEUE)
    config = write_config(tmp_path, ["127.0.0.1:1"], scripts=[{"name": "queue", "version": 2, "file": "queue.lua"}])
    config.write_text("# the team's catalog\n" + config.read_text())
    # ARGV[1] .. id and KEYS[1] .. ':seen' hang on what is not declared: warnings, not errors.
    assert main(["--config", str(config), "check"]) == 0
    out = capsys.readouterr().out
    assert "warning[undeclared-key] (queue@2)" in out and "error[" not in out
    assert 'argv: ["ARGV[1] = {<tag>}:<prefix-job-hashes>"]' in out
    assert '  keys: ["{<tag>}:jobs", "{<tag>}:done-counter"]' in out
    assert "names from the script's comments" in out
    assert main(["--config", str(config), "check", "--fail-on", "warning"]) == 1
    capsys.readouterr()

    assert main(["--config", str(config), "check", "--write-keys"]) == 0
    err = capsys.readouterr().err
    assert "queue@2: wrote keys:" in err
    text = config.read_text()
    assert text.startswith("# the team's catalog\n")
    entry = yaml.safe_load(text)["catalog"]["scripts"][0]
    assert entry["keys"] == ["{<tag>}:jobs", "{<tag>}:done-counter"]
    assert entry["argv"] == ["ARGV[1] = {<tag>}:<prefix-job-hashes>"]

    # Declared, the same keys are proved to share the slot: notes, not warnings.
    assert main(["--config", str(config), "check", "--fail-on", "warning"]) == 0
    out = capsys.readouterr().out
    assert "0 error(s), 0 warning(s), 2 note(s)" in out and "info[same-slot-undeclared]" in out
    assert "Suggested keys:" not in out
    assert main(["--config", str(config), "check", "--same-slot", "warning"]) == 0
    assert "0 error(s), 2 warning(s)" in capsys.readouterr().out
    assert main(["--config", str(config), "check", "--write-keys"]) == 0
    assert "no entry needs suggested keys:" in capsys.readouterr().err


def test_argv_patterns_under_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "queue.lua").write_text(QUEUE)
    (tmp_path / "queue2.lua").write_text(QUEUE + "-- version 2\n")
    entry = {
        "name": "queue",
        "keys": ["{<q>}:jobs", "{<q>}:done"],
        "versions": [{"version": 1, "file": "queue.lua", "argv": ["{<q>}:job:"]}, {"version": 2, "file": "queue2.lua"}],
    }
    config = write_config(tmp_path, ["127.0.0.1:1"], scripts=[entry])
    assert main(["--config", str(config), "check", "--format", "json", "--fail-on", "warning"]) == 1
    findings = json.loads(capsys.readouterr().out)
    by_version = {(f["version"], f["severity"], f["code"]) for f in findings}
    assert ("1", "info", "same-slot-undeclared") in by_version and ("1", "warning", "undeclared-key") not in by_version
    # Version 2 declares no argv: its prefix could carry the tag or not, a warning naming the argv: entry.
    [v2] = [f for f in findings if f["version"] == "2" and f["code"] == "undeclared-key"]
    assert v2["severity"] == "warning" and 'argv: ["ARGV[1] = {<q>}:<prefix>"]' in v2["suggestion"]
    assert v2["declare"] == 'argv: ["ARGV[1] = {<q>}:<prefix-job-hashes>"]'


def test_the_daemon_refuses_no_catalog_for_a_script_only_some_servers_run(tmp_path: Path) -> None:
    """`check` says server.call runs on Valkey only; the daemon, which knows each node's server,
    does not refuse the catalog for it (analysis.block_on)."""
    from redis_orchestrator.analysis.checks import CatalogAnalysis
    from redis_orchestrator.analysis.findings import Severity
    from redis_orchestrator.config.loader import load_config

    (tmp_path / "alias.lua").write_text("return server.call('GET', KEYS[1])\n")
    config = write_config(tmp_path, ["127.0.0.1:1"], scripts=[{"name": "alias", "version": 1, "file": "alias.lua"}])
    result = CatalogAnalysis().run(load_config(config).catalog, block_on=Severity.ERROR)
    assert [(f.code, f.severity) for f in result.findings] == [("portability", "error")]
    assert result.blocking == ()
