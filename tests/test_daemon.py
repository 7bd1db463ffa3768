"""`redis-orchestrator run` as a process against real clusters: repair, live edits, signals."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml

from redis_orchestrator.catalog import sha1_hex
from redis_orchestrator.local_cluster import LocalCluster
from tests.helpers import DaemonProcess, all_hold, catalog_shas, present, wait_for, write_config

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_run_repairs_a_flushed_replica_within_two_intervals_and_stops_on_sigterm(
    clean_cluster: LocalCluster, tmp_path: Path
) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    shas = catalog_shas(config)
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ")
        assert all_hold(clean_cluster, shas)
        replica = clean_cluster.replicas()[1]
        with replica.client() as c:
            c.execute_command("SCRIPT", "FLUSH")
        wait_for(lambda: present(replica, shas) == shas, 2 * 1.0 + 1.5, "the flushed replica to be repaired")
        # The other nodes never lost anything.
        assert all_hold(clean_cluster, shas)
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 2.0
        assert " stopped" in daemon.log()


def test_sigint_stops_cleanly_too(clean_cluster: LocalCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ")
        assert daemon.stop(signal.SIGINT) == 0


def test_broken_edit_is_rejected_and_the_fix_rolls_out(clean_cluster: LocalCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    shas = catalog_shas(config)
    good_text = config.read_text()
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ")
        # 1. YAML that does not parse
        config.write_text(good_text + "\n  - {name: oops\n")
        daemon.wait_log("catalog_rejected")
        assert "YAML syntax error" in daemon.log()
        # 2. a script Redis refuses to compile
        (tmp_path / "bad.lua").write_text("return redis.call('GET', KEYS[1]\n")
        data = yaml.safe_load(good_text)
        data["catalog"]["scripts"].append({"name": "bad", "version": 1, "file": "bad.lua"})
        config.write_text(yaml.safe_dump(data))
        wait_for(lambda: daemon.log().count("catalog_rejected") >= 2, 10, "the second rejection")
        assert "bad@1 (bad.lua): Redis refused it" in daemon.log()
        # 3. a missing file
        data["catalog"]["scripts"][-1] = {"name": "bad", "version": 1, "file": "nowhere.lua"}
        config.write_text(yaml.safe_dump(data))
        wait_for(lambda: daemon.log().count("catalog_rejected") >= 3, 10, "the third rejection")
        assert "nowhere.lua does not exist" in daemon.log()
        # Through all of it: daemon up, nothing unloaded anywhere.
        assert daemon.alive()
        assert all_hold(clean_cluster, shas)
        # 4. the fix: a valid new script reaches every node
        (tmp_path / "new.lua").write_text("return redis.call('INCR', KEYS[1])\n")
        data["catalog"]["scripts"][-1] = {"name": "incr", "version": 1, "file": "new.lua"}
        data["catalog"]["version"] = "test-2"
        config.write_text(yaml.safe_dump(data))
        new_sha = sha1_hex((tmp_path / "new.lua").read_bytes())
        wait_for(lambda: all_hold(clean_cluster, shas | {new_sha}), 2.0 + 3.0, "the fixed catalog on every node")
        daemon.wait_log("catalog_reloaded")
        assert daemon.alive()


def test_sighup_reloads(clean_cluster: LocalCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1], daemon={"watch_config": False, "reconcile_interval": "1s"})
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ")
        data = yaml.safe_load(config.read_text())
        (tmp_path / "hup.lua").write_text("return 'hup'\n")
        data["catalog"]["scripts"].append({"name": "hup", "version": 1, "file": "hup.lua"})
        config.write_text(yaml.safe_dump(data))
        time.sleep(0.5)
        assert "catalog_reloaded" not in daemon.log()  # watching is off: only SIGHUP reloads
        daemon.process.send_signal(signal.SIGHUP)
        sha = sha1_hex((tmp_path / "hup.lua").read_bytes())
        wait_for(lambda: all_hold(clean_cluster, {sha}), 5, "the SIGHUP catalog on every node")
