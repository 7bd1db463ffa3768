"""deploy/systemd/redis-orchestrator.service under a real systemd: PID 1 of a podman container
(`--systemd=always`, host networking) with the unit installed as deploy/systemd/README.md says and
the venv of build.sh's image, against a password-protected cluster of local processes.

`systemctl start` returns once READY=1 came, and by then every node holds the catalog; the password
arrives by LoadCredential= (the config names `redis-password`, found in $CREDENTIALS_DIRECTORY);
`systemctl reload` applies an edit; a daemon frozen with SIGSTOP is killed by the watchdog and
started again; `systemd-analyze security` rates the unit; `systemctl stop` ends it cleanly."""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.chaos import ChaosCluster
from harness.containers import Engine, engine_or_skip, systemd_image
from harness.helpers import REPO, all_hold, catalog_shas, free_port, password_cluster, wait_for

pytestmark = [pytest.mark.live, pytest.mark.once, pytest.mark.timeout(600)]

PASSWORD = "systemd-credential-5f0c"
UNIT = "redis-orchestrator.service"
EXPOSURE_GOAL = 2.0
# The shipped WatchdogSec=30s would make the watchdog test wait half a minute: a drop-in, as an
# operator would write one, shortens it.
WATCHDOG_DROP_IN = "[Service]\nWatchdogSec=3s\n"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return engine_or_skip()


@pytest.fixture
def secured_cluster() -> Iterator[ChaosCluster]:
    cluster = password_cluster(PASSWORD)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class Machine:
    """A container whose PID 1 is systemd; commands run in it with `exec`."""

    def __init__(self, engine: Engine, cid: str) -> None:
        self.engine, self.cid = engine, cid

    def run(self, *command: str, timeout: float = 120, check: bool = True) -> str:
        return self.engine.run("exec", self.cid, *command, timeout=timeout, check=check).stdout.strip()

    def systemctl(self, verb: str) -> None:
        """`systemctl VERB` the unit; a failure names what the unit's journal says."""
        done = self.engine.run("exec", self.cid, "systemctl", verb, UNIT, timeout=120, check=False)
        assert done.returncode == 0, f"systemctl {verb}: {done.stderr}\n{self.journal()[-4000:]}"

    def journal(self) -> str:
        return self.run("journalctl", "-u", UNIT, "--no-pager", "-o", "cat", check=False)

    def show(self, *properties: str) -> dict[str, str]:
        text = self.run("systemctl", "show", UNIT, *(f"--property={p}" for p in properties))
        return dict(line.split("=", 1) for line in text.splitlines())


@pytest.fixture
def machine(engine: Engine, secured_cluster: ChaosCluster, tmp_path: Path) -> Iterator[Machine]:
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copytree(REPO / "examples" / "lua", etc / "lua")
    scripts = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())["catalog"]["scripts"]
    config = {
        "redis": {"mode": "cluster", "seeds": secured_cluster.seeds[:2], "password_file": "redis-password"},
        "daemon": {"reconcile_interval": "1s", "topology_interval": "2s", "watch_config": False},
        "metrics": {"enabled": True, "listen": f"127.0.0.1:{free_port()}"},
        "catalog": {"version": "systemd-1", "scripts": scripts},
    }
    (etc / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    secret = etc / "redis-password"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)  # root only: the dynamic user reads it through the credential
    for path in [etc, *(etc / "lua").rglob("*"), etc / "lua", etc / "config.yaml"]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    image = systemd_image(engine)
    # systemd sets up the unit's sandbox (ProtectSystem=, PrivateTmp=, namespaces): that needs
    # CAP_SYS_ADMIN, which podman's default set for a container lacks. It mounts each unit's
    # credentials in a namespace of its own and moves them under /run/credentials: with the
    # container's mounts private (podman's default) PID 1 and the unit see an empty directory
    # (seen with systemd 252: "Permission denied" even for root); a shared tmpfs there carries them.
    with engine.container(
        "--systemd=always",
        "--network=host",
        "--cap-add=SYS_ADMIN",
        "--tmpfs=/run/credentials:rw,rshared",
        "-v",
        f"{etc}:/etc/redis-orchestrator",
        image,
    ) as cid:
        box = Machine(engine, cid)
        wait_for(
            lambda: box.run("systemctl", "is-system-running", check=False) in ("running", "degraded"),
            60,
            "systemd to finish booting",
            interval=0.2,
        )
        box.run("mkdir", "-p", f"/etc/systemd/system/{UNIT}.d")
        box.run("sh", "-c", f"printf '{WATCHDOG_DROP_IN}' > /etc/systemd/system/{UNIT}.d/watchdog.conf")
        box.run("systemctl", "daemon-reload")
        yield box


def test_the_unit_under_systemd_starts_ready_reloads_survives_the_watchdog_and_stops(
    machine: Machine, secured_cluster: ChaosCluster, tmp_path: Path
) -> None:
    config = tmp_path / "etc" / "config.yaml"
    shas = catalog_shas(config)

    # start: Type=notify, so systemctl returns after READY=1, which the daemon sends once the
    # catalog is on every reachable node.
    machine.systemctl("start")
    assert all_hold(secured_cluster, shas)
    state = machine.show("ActiveState", "SubState", "StatusText", "NRestarts", "Environment")
    assert state["ActiveState"] == "active" and state["SubState"] == "running", state
    assert "6 nodes (6 ok)" in state["StatusText"], state
    assert PASSWORD not in state["Environment"]
    credential = machine.run("stat", "-c", "%a %U", f"/run/credentials/{UNIT}/redis-password")
    assert credential.startswith("400 ") and not credential.endswith(" root"), credential

    # reload: a new script in the config, applied by `systemctl reload` (SIGHUP; watch_config off).
    (tmp_path / "etc" / "lua" / "added.lua").write_text("return 'added by systemctl reload'\n")
    data = yaml.safe_load(config.read_text())
    data["catalog"]["scripts"].append({"name": "added", "version": 1, "file": "lua/added.lua"})
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    machine.systemctl("reload")
    wait_for(lambda: all_hold(secured_cluster, catalog_shas(config)), 30, "the reloaded catalog on every node")

    # the watchdog: a frozen daemon sends no WATCHDOG=1; systemd aborts it and Restart=on-failure
    # starts it again, READY=1 and all.
    frozen = machine.show("MainPID")["MainPID"]
    machine.run("kill", f"-{signal.SIGSTOP.name.removeprefix('SIG')}", frozen)

    def restarted() -> bool:
        now = machine.show("MainPID", "ActiveState", "NRestarts")
        return now["NRestarts"] == "1" and now["ActiveState"] == "active" and now["MainPID"] not in ("0", frozen)

    wait_for(restarted, 60, "the watchdog to kill the frozen daemon and systemd to start it again", interval=0.2)
    journal = machine.journal()
    assert "Watchdog timeout" in journal, journal[-3000:]

    # systemd-analyze's exposure score for the unit (0 = locked down, 10 = exposed)
    report = machine.run("systemd-analyze", "security", UNIT, "--no-pager")
    exposure = float(re.findall(r"Overall exposure level for \S+: ([0-9.]+)", report)[0])
    print(f"\nsystemd-analyze security {UNIT}: {exposure}")
    assert exposure <= EXPOSURE_GOAL, report

    machine.systemctl("stop")
    stopped = machine.show("ActiveState", "Result", "ExecMainStatus")
    assert stopped == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}, stopped
