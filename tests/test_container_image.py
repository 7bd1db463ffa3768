"""The container image, built by deploy/container/build.sh and run against a local cluster with host
networking: small, non-root, read-only, JSON logs, a working healthcheck, a clean stop on SIGTERM,
and the restart policy bringing a crashed daemon back."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.containers import Engine, engine_or_skip, http_status, orchestrator_image, wait_status
from harness.helpers import all_hold, catalog_shas, free_port, libraries, wait_for, write_config

pytestmark = [pytest.mark.live, pytest.mark.once, pytest.mark.timeout(600)]

SIZE_GOAL = 120_000_000  # bytes, as the engine reports an image's size
HEALTHCHECK_PORT = 9840  # the image's HEALTHCHECK asks 127.0.0.1:9840 (its documented metrics.listen)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return engine_or_skip()


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    return orchestrator_image(engine)


def mounted_config(directory: Path, cluster: ChaosCluster, port: int) -> Path:
    """A config (and the sample catalog) the image's user, uid 10001, can read from a bind mount."""
    config = write_config(directory, cluster.seeds[:2], metrics={"enabled": True, "listen": f"127.0.0.1:{port}"})
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return config


def run_args(engine: Engine, directory: Path) -> list[str]:
    """Host networking, nothing writable (podman would otherwise mount tmpfs on /tmp, /run...), no
    capabilities, the config read-only."""
    no_tmpfs = ["--read-only-tmpfs=false"] if engine.command == "podman" else []
    return [
        "--network=host",
        "--read-only",
        *no_tmpfs,
        "--cap-drop=all",
        "--security-opt=no-new-privileges",
        "-v",
        f"{directory}:/etc/redis-orchestrator:ro",
    ]


def healthy(engine: Engine, cid: str) -> bool:
    """The image's HEALTHCHECK, run now (podman runs it on a timer only under systemd)."""
    if engine.command == "podman":
        return engine.run("healthcheck", "run", cid, check=False).returncode == 0
    return bool(engine.inspect(cid)["State"].get("Health", {}).get("Status") == "healthy")


def test_the_image_is_small_non_root_and_has_a_healthcheck(engine: Engine, image: str) -> None:
    info = engine.inspect(image)
    assert info["Size"] <= SIZE_GOAL, f"{info['Size'] / 1e6:.1f} MB"
    config = info["Config"]
    assert config["User"] == "10001:10001"
    check = info.get("Healthcheck") or config["Healthcheck"]  # where podman / docker put it
    assert check["Test"][0] == "CMD" and "/healthz" in check["Test"][-1]
    assert config["Entrypoint"][-2:] == ["--log-format", "json"] and config["Cmd"] == ["run"]
    # The final stage holds the runtime and the venv: pip and the wheels stayed in the build stage.
    code = "import os, sys; print(*map(os.path.exists, ['/opt/redis-orchestrator/bin/pip', '/build']), sys.prefix)"
    probe = engine.run("run", "--rm", "--network=host", "--entrypoint", "python3", image, "-c", code)
    assert probe.stdout.split() == ["False", "False", "/opt/redis-orchestrator"]


def test_the_image_loads_every_node_read_only_and_stops_cleanly_on_sigterm(
    engine: Engine, image: str, clean_cluster: ChaosCluster, tmp_path: Path
) -> None:
    port = HEALTHCHECK_PORT
    assert http_status(f"http://127.0.0.1:{port}/healthz") is None, f"something listens on {port} already"
    config = mounted_config(tmp_path, clean_cluster, port)
    with engine.container(*run_args(engine, tmp_path), image) as cid:
        wait_status(f"http://127.0.0.1:{port}/readyz", 200, 60, "/readyz 200 from the container")
        assert all_hold(clean_cluster, catalog_shas(config))
        assert all("orchestrator_lib" in libraries(node) for node in clean_cluster.primaries())
        process = engine.inspect(cid)["State"]["Pid"]
        ids = Path(f"/proc/{process}/status").read_text().split("\nUid:")[1].split()[:4]
        assert ids == ["10001"] * 4  # real, effective, saved, file-system uid
        assert healthy(engine, cid)
        engine.run("stop", "-t", "10", cid)
        state = engine.inspect(cid)["State"]
        assert state["ExitCode"] == 0 and not state.get("OOMKilled")
        logs = engine.run("logs", cid)
    lines = [json.loads(line) for line in (logs.stdout + logs.stderr).splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    assert "ready" in events and events[-1] == "stopped", events
    assert "stopping" in events and all(line["level"] in ("info", "warning") for line in lines), lines


def test_a_crashed_daemon_is_restarted_by_the_restart_policy(
    engine: Engine, image: str, fresh_cluster: ChaosCluster, tmp_path: Path
) -> None:
    port = free_port()
    mounted_config(tmp_path, fresh_cluster, port)
    readyz = f"http://127.0.0.1:{port}/readyz"
    with engine.container("--restart=on-failure:3", *run_args(engine, tmp_path), image) as cid:
        wait_status(readyz, 200, 60, "/readyz 200 from the container")
        first = engine.inspect(cid)["State"]["Pid"]
        os.kill(first, signal.SIGKILL)  # a crash: nothing the engine was asked to do

        def restarted() -> bool:
            info = engine.inspect(cid)
            return bool(info["RestartCount"] >= 1 and info["State"]["Running"] and info["State"]["Pid"] != first)

        wait_for(restarted, 60, "the engine to restart the container", interval=0.2)
        wait_status(readyz, 200, 60, "/readyz 200 after the restart")
        assert engine.inspect(cid)["RestartCount"] == 1
        engine.run("stop", "-t", "10", cid)
        info = engine.inspect(cid)
        # A clean stop (exit 0) is not a failure: the policy leaves it stopped.
        assert info["State"]["ExitCode"] == 0 and not info["State"]["Running"] and info["RestartCount"] == 1
