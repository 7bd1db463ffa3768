"""`redis-orchestrator run` as a process against real clusters: what only a process shows (signals,
stop time, exit codes). The loop's behaviour (repairs, reloads) is driven in-process in
test_daemon_inprocess.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess, all_hold, catalog_shas, present, wait_for, write_config
from redis_orchestrator.catalog.model import sha1_hex

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_run_repairs_a_flushed_replica_within_two_intervals_and_stops_on_sigterm(
    clean_cluster: ChaosCluster, tmp_path: Path
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


def test_sigint_stops_cleanly_too(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ")
        assert daemon.stop(signal.SIGINT) == 0


def test_sighup_reloads(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
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


def test_with_block_on_none_loading_does_not_wait_for_the_analysis(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    """Nothing waits for an analysis that guards nothing: the nodes are loaded and the daemon says
    ready first; the findings (here a global write) come after."""
    (tmp_path / "global.lua").write_text("counter = 1\nreturn redis.call('GET', KEYS[1])\n")
    config = write_config(
        tmp_path,
        clean_cluster.seeds[:1],
        scripts=[{"name": "global", "version": 1, "file": "global.lua"}],
        analysis={"block_on": "none"},
    )
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" finding ", timeout=30)
        log = daemon.log()
        assert log.index(" ready ") < log.index(" finding ")
        assert "code=global-write" in log
