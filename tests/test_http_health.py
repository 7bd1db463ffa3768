"""The endpoint on a running daemon. /healthz tells whether the daemon's loops make progress (issue
#23): the daemon runs in-process on its own event loop, a call blocks that loop, and the endpoint,
on its own thread, answers 503 while it is blocked and 200 again once it moves (before, it answered
200 throughout). And `run --web.config.file`: a broken file is exit 2, a good one locks the endpoint."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess, cli, free_port, wait_for, write_config
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.daemon.assembly import build_daemon
from redis_orchestrator.daemon.metrics import Metrics
from tests.certs import make_test_certificates
from tests.http_endpoint import PASSWORD, USER, hashed, request, write_web_config

pytestmark = pytest.mark.timeout(120)


def test_healthz_fails_while_the_daemon_loop_is_blocked_and_answers_meanwhile(
    clean_cluster: ChaosCluster, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        clean_cluster.seeds[:1],
        metrics={"enabled": True, "listen": "127.0.0.1:0"},
        leader={"enabled": False},
        daemon={"reconcile_interval": "300ms", "topology_interval": "1s", "config_poll_interval": "200ms"},
        redis={"mode": "cluster", "seeds": clean_cluster.seeds[:1], "timeout": "500ms"},
    )
    daemon = build_daemon(load_config(config), metrics=Metrics())
    assert daemon.http is not None
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(daemon.run(),), daemon=True)
    runner.start()
    try:
        wait_for(lambda: daemon.readiness.current.ready, 30, "the daemon to be ready")
        port = daemon.http.port
        assert request(port, "/healthz").status == 200
        # Block the daemon's loop with a call, as a read of a FIFO would (issue #23): 1.5 s is the
        # staleness bound here (3 x redis.timeout), so 5 s of blocking shows it.
        loop.call_soon_threadsafe(time.sleep, 5)
        stuck = []
        wait_for(lambda: stuck.append(request(port, "/healthz")) or stuck[-1].status == 503, 5, "/healthz to fail")
        assert stuck[-1].body.startswith(b"daemon loops silent for ")
        assert request(port, "/readyz").status == 503
        wait_for(lambda: request(port, "/healthz").status == 200, 20, "/healthz to recover")
    finally:
        loop.call_soon_threadsafe(daemon.stop)
        runner.join(timeout=15)
        loop.close()


def test_run_refuses_a_broken_web_config_and_serves_a_good_one_locked(cluster: ChaosCluster, tmp_path: Path) -> None:
    certs = make_test_certificates(tmp_path / "certs")
    port = free_port()
    config = write_config(tmp_path, cluster.seeds[:1], metrics={"enabled": True, "listen": f"127.0.0.1:{port}"})
    broken = tmp_path / "broken.yml"
    broken.write_text("basic_auth_users: {prometheus: not-a-hash}\n")
    refused = cli(config, "run", "--web.config.file", str(broken))
    assert refused.returncode == 2 and "basic_auth_users.prometheus: not a bcrypt hash" in refused.stderr
    # the setting, relative to the config file (the flag above takes the same path to the same loader)
    write_web_config(tmp_path / "web.yml", tls=certs, users={USER: hashed(PASSWORD)})
    metrics = {"enabled": True, "listen": f"127.0.0.1:{port}", "web_config_file": "web.yml"}
    config = write_config(tmp_path, cluster.seeds[:1], metrics=metrics)
    with DaemonProcess(config) as daemon:
        daemon.wait_log("metrics_listening")
        assert f"metrics=https://127.0.0.1:{port}/metrics" in daemon.log()
        wait_for(lambda: request(port, "/readyz", auth=(USER, PASSWORD), tls=certs).status == 200, 30, "ready")
        assert request(port, "/readyz", tls=certs).status == 401
