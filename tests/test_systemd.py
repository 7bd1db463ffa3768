"""systemd integration: sd_notify datagrams on a real AF_UNIX socket (path and abstract), READY=1 /
STATUS= / WATCHDOG=1 / STOPPING=1 from a real daemon process, the watchdog withheld when the loops
stop making progress, and `systemd-analyze verify` on the shipped unit."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import REPO, DaemonProcess, wait_for, write_config
from redis_orchestrator.daemon.health import LoopHealth
from redis_orchestrator.daemon.systemd import Notifier, watchdog_interval, watchdog_loop

pytestmark = [pytest.mark.timeout(120)]

UNIT = REPO / "deploy" / "systemd" / "redis-orchestrator.service"


class NotifySocket:
    """The receiving end systemd would hold: collects every datagram."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def count(self, prefix: str) -> int:
        return sum(1 for m in self.drain() if m.startswith(prefix))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifySocket]:
    address = str(tmp_path / "notify.sock") if request.param == "path" else f"@orch-test-{uuid.uuid4().hex}"
    receiver = NotifySocket(address)
    try:
        yield receiver
    finally:
        receiver.close()


def test_notifier_sends_datagrams_and_skips_repeated_status(notify_socket: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.address})
    assert notifier.enabled
    assert notifier.notify("READY=1")
    assert notifier.notify("STATUS=one")
    assert not notifier.notify("STATUS=one")  # unchanged: not resent
    assert notifier.notify("STATUS=two")
    assert notifier.notify("WATCHDOG=1") and notifier.notify("WATCHDOG=1")
    notifier.close()
    assert notify_socket.drain() == ["READY=1", "STATUS=one", "STATUS=two", "WATCHDOG=1", "WATCHDOG=1"]


def test_no_socket_no_op_and_a_vanished_socket_does_not_raise(tmp_path: Path) -> None:
    assert not Notifier({}).notify("READY=1")
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    assert gone.enabled and not gone.notify("READY=1") and not gone.notify("WATCHDOG=1")


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_pid_only() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "42"}, pid=42) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "42"}, pid=43) is None


def test_loop_health_by_heartbeat_and_reconcile_passes() -> None:
    now = [100.0]
    beat = [100.0]
    passes = [0]
    health = LoopHealth(lambda: beat[0], lambda: passes[0], stale_after=5.0, clock=lambda: now[0])
    now[0] = 200.0
    assert health.check() == (True, "starting")  # no pass yet: still looking for a seed
    passes[0], beat[0] = 3, 200.0
    assert health.check()[0]
    now[0] = 204.0
    beat[0] = 204.0
    assert health.check()[0]  # no new pass for 4 s: within 5 s
    now[0] = 206.0
    beat[0] = 206.0
    ok, reason = health.check()
    assert not ok and "no reconcile pass" in reason
    passes[0] = 4
    assert health.check()[0]
    now[0] = 212.0
    passes[0] = 5
    ok, reason = health.check()
    assert not ok and "silent" in reason  # heartbeat 6 s old


def test_watchdog_pings_only_while_the_loops_progress(notify_socket: NotifySocket) -> None:
    passes = [1]

    async def scenario() -> tuple[int, int]:
        notifier = Notifier({"NOTIFY_SOCKET": notify_socket.address})
        health = LoopHealth(lambda: asyncio.get_running_loop().time(), lambda: passes[0], stale_after=0.3)

        async def progressing() -> None:
            while True:
                passes[0] += 1
                await asyncio.sleep(0.02)

        worker = asyncio.create_task(progressing())
        dog = asyncio.create_task(watchdog_loop(notifier, 0.02, health))
        while notify_socket.count("WATCHDOG=1") < 10:
            await asyncio.sleep(0.01)
        worker.cancel()  # the reconcile loop is now "stuck": no more passes
        await asyncio.sleep(0.5)
        stuck_at = notify_socket.count("WATCHDOG=1")
        await asyncio.sleep(0.3)
        after = notify_socket.count("WATCHDOG=1")
        dog.cancel()
        notifier.close()
        return stuck_at, after

    stuck_at, after = asyncio.run(scenario())
    assert stuck_at >= 10
    assert after == stuck_at  # no ping once the passes stopped


@pytest.mark.slow
def test_daemon_notifies_ready_status_watchdog_reload_and_stopping(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    receiver = NotifySocket(f"@orch-test-{uuid.uuid4().hex}")
    config = write_config(tmp_path, clean_cluster.seeds[:1])
    try:
        env = {"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "400000"}
        with DaemonProcess(config, env=env) as daemon:
            wait_for(lambda: receiver.count("READY=1") == 1, 30, "READY=1")
            assert " ready " in daemon.log()  # READY=1 comes with (after) the catalog reconciled
            wait_for(lambda: receiver.count("WATCHDOG=1") >= 5, 10, "five watchdog pings")
            statuses = [m for m in receiver.drain() if m.startswith("STATUS=")]
            assert any("6 nodes (6 ok)" in s for s in statuses), statuses
            daemon.process.send_signal(signal.SIGHUP)
            wait_for(lambda: receiver.count("STATUS=reloading") == 1, 5, "the reload status")
            assert daemon.stop(signal.SIGTERM) == 0
        assert receiver.count("STOPPING=1") == 1
        messages = receiver.drain()
        assert messages.index("READY=1") < messages.index("STOPPING=1")
        assert all(m.startswith(("READY=", "STATUS=", "WATCHDOG=", "STOPPING=")) for m in messages)
    finally:
        receiver.close()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart= exists: point it at this environment's entry point.
    binary = shutil.which("redis-orchestrator") or str(REPO / ".venv" / "bin" / "redis-orchestrator")
    if not Path(binary).exists():
        pytest.skip("the redis-orchestrator entry point is not installed")
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/redis-orchestrator " in text
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace("/usr/local/bin/redis-orchestrator", binary))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.strip() == "", done.stderr
    for line in (
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "WatchdogSec=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "LoadCredential=redis-password:",
        "LimitNOFILE=",
    ):
        assert line in text, line


def test_a_full_notify_queue_drops_messages_instead_of_blocking(notify_socket: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.address})
    results = [notifier.notify("WATCHDOG=1") for _ in range(5000)]  # nobody reads meanwhile
    notifier.close()
    assert results[0] and not results[-1]  # the queue filled up; we went on without waiting
    assert 0 < notify_socket.count("WATCHDOG=1") < 5000


# ---------------------------------------------------------------------- the other deployment files
# Checked statically here, in the pure suite; built and run for real by tests/test_container_image.py,
# tests/test_compose.py and tests/test_systemd_real.py (live, once).

DEPLOY = REPO / "deploy"


def _compose() -> dict[str, object]:
    import yaml

    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_file_is_consistent() -> None:
    compose = _compose()
    services: dict[str, dict[str, object]] = compose["services"]  # type: ignore[assignment]
    redis_nodes = [name for name in services if name.startswith("redis-")]
    assert len(redis_nodes) == 6
    for name, service in services.items():
        # host networking, loopback ports: clients on the host follow MOVED to what the nodes announce
        assert service["network_mode"] == "host" and "ports" not in service and "networks" not in service, name
        image = str(service["image"])
        assert image.startswith("${") and ":-" in image, f"{name}: the image is named by a variable"
        for dependency in service.get("depends_on", {}) or {}:  # type: ignore[union-attr]
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []) or []:  # type: ignore[union-attr]
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"  # type: ignore[operator]
        for secret in service.get("secrets", []) or []:  # type: ignore[union-attr]
            assert secret in compose["secrets"]  # type: ignore[operator]
    for secret in compose["secrets"].values():  # type: ignore[attr-defined]
        assert (DEPLOY / secret["file"]).is_file()
    ports = sorted(int(services[n]["environment"]["REDIS_PORT"]) for n in redis_nodes)  # type: ignore[index]
    assert ports == list(range(7001, 7007))
    assert "--cluster create" in (DEPLOY / "container" / "cluster-init.sh").read_text()
    assert services["cluster-init"]["depends_on"] == {n: {"condition": "service_healthy"} for n in redis_nodes}
    orchestrator = services["orchestrator"]
    assert orchestrator["depends_on"] == {"cluster-init": {"condition": "service_started"}}
    assert orchestrator["read_only"] is True and orchestrator["cap_drop"] == ["ALL"]
    assert "./container/config.yaml:/etc/redis-orchestrator/config.yaml:ro" in orchestrator["volumes"]  # type: ignore[operator]
    prometheus_volumes = services["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus_volumes  # type: ignore[operator]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus_volumes  # type: ignore[operator]
    grafana_volumes = " ".join(services["grafana"]["volumes"])  # type: ignore[arg-type]
    assert "./grafana/redis-orchestrator.json:" in grafana_volumes and "./grafana/provisioning/" in grafana_volumes


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client")
def test_docker_compose_config_when_the_plugin_exists() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin here")
    done = subprocess.run(
        ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "container" / "Dockerfile").read_text()
    assert text.startswith("#") and "ARG BASE=docker.io/library/python:3.11-slim-bookworm" in text
    assert (
        text.count("FROM ${BASE}") == 2 and "COPY --from=build /opt/redis-orchestrator /opt/redis-orchestrator" in text
    )
    assert "USER 10001" in text and "HEALTHCHECK" in text and "/healthz" in text and "EXPOSE 9840" in text
    assert '"/etc/redis-orchestrator/config.yaml"' in text
    # exec form only: the base needs no shell; installs from the wheels build.sh made, no index
    runs = [line for line in text.splitlines() if line.startswith("RUN ")]
    assert runs and all(line.startswith("RUN [") for line in runs)
    assert '"--no-index"' in text
    # The leader's lock scripts are package data: nothing is copied beside the package.
    assert "/usr/share/redis-orchestrator" not in text


def test_container_config_is_valid_and_the_init_script_parses(tmp_path: Path) -> None:
    from redis_orchestrator.config.loader import parse_config

    secret = tmp_path / "orchestrator-password"
    secret.write_text((DEPLOY / "container" / "secrets" / "orchestrator-password").read_text())
    text = (DEPLOY / "container" / "config.yaml").read_text().replace("/run/secrets/orchestrator-password", str(secret))
    # what compose mounts beside it
    shutil.copytree(REPO / "examples" / "lua", tmp_path / "lua", symlinks=True)
    shutil.copytree(REPO / "redis_orchestrator" / "daemon" / "lua" / "lock", tmp_path / "lock")
    config = parse_config(text, tmp_path / "config.yaml", environ={})
    assert config.start.metrics.listen == "127.0.0.1:9840"  # the image's HEALTHCHECK and prometheus.yml
    assert config.start.redis.seeds[0] == "127.0.0.1:7001"
    assert config.start.leader.enabled and config.start.manifest.key == "{redis-orchestrator}:manifest"
    assert config.start.redis.username == "redis-orchestrator" and config.start.redis.password is not None
    script = DEPLOY / "container" / "cluster-init.sh"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True, timeout=10).returncode == 0
    rules = subprocess.run(
        ["sed", "-n", "s/^user redis-orchestrator //p", str(DEPLOY / "acl" / "orchestrator.acl")],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()
    assert rules[0] == "on" and rules[-1] == "~{redis-orchestrator}:*"
