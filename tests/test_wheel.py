"""The wheel is what users install: built from this tree, installed into a fresh virtualenv, and run
from a directory that has nothing of the repository in it, every verb and the daemon with the leader
lease on (its lock scripts must come from inside the package)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import REPO, wait_for, write_config

pytestmark = [pytest.mark.live, pytest.mark.once, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the wheel; its dependencies are this environment's, by path (no network,
    and none of this tree's editable install)."""
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)]
    subprocess.run(build, check=True, capture_output=True)
    (wheel,) = out.glob("redis_orchestrator-*.whl")
    venv = out / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_wheel_holds_one_package_and_its_data(wheel_venv: Path) -> None:
    python = wheel_venv / "bin" / "python"
    probe = (
        "import json, redis_orchestrator, importlib.resources as r; "
        "base = r.files('redis_orchestrator'); "
        "print(json.dumps({'file': redis_orchestrator.__file__, "
        "'lock': sorted(p.name for p in (base / 'daemon' / 'lua' / 'lock').iterdir()), "
        "'keyspecs': (base / 'analysis' / 'keyspecs.json').is_file()}))"
    )
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=wheel_venv)
    found = json.loads(done.stdout)
    assert found["file"].startswith(str(wheel_venv))  # the wheel's copy, not this checkout
    assert found["lock"] == ["acquire.lua", "extend.lua", "release.lua"]
    assert found["keyspecs"]
    top_level = {p.name for p in (wheel_venv / "lib").glob("python*/site-packages/*") if not p.name.endswith(".pth")}
    assert {n for n in top_level if not n.endswith(".dist-info")} == {"redis_orchestrator"}


def test_every_verb_and_the_daemon_with_the_leader_run_from_anywhere(
    wheel_venv: Path, clean_cluster: ChaosCluster, tmp_path: Path
) -> None:
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    config = write_config(
        catalog_dir,
        clean_cluster.seeds[:1],
        leader={"enabled": True, "lease": "2s"},
        manifest={"key": "{redis-orchestrator}:manifest"},
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    program = str(wheel_venv / "bin" / "redis-orchestrator")

    def verb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [program, "--config", str(config), *args], capture_output=True, text=True, timeout=60, cwd=elsewhere
        )

    assert verb("--version").returncode == 0
    assert verb("check").returncode in (0, 1), verb("check").stderr
    assert verb("manifest").returncode == 0
    assert verb("keyslot", "{a}:1", "{a}:2").returncode == 0
    assert verb("plan").returncode == 1  # an empty cluster: everything to load
    synced = verb("sync")
    assert synced.returncode == 0, synced.stderr
    assert verb("status").returncode == 0
    assert verb("plan").returncode == 0
    assert verb("prune").returncode == 0, verb("prune").stdout
    module = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-m", "redis_orchestrator", "--version"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
    )
    assert module.returncode == 0 and "redis-orchestrator" in module.stdout

    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [program, "--config", str(config), "run"], stdout=out, stderr=subprocess.STDOUT, cwd=elsewhere
        )
        try:
            wait_for(
                lambda: "leader_acquired" in log.read_text() and " ready " in log.read_text(), 30, "leader + ready"
            )
            wait_for(lambda: "manifest_written" in log.read_text(), 10, "the manifest key")
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=10)
    assert code == 0, log.read_text()[-3000:]
