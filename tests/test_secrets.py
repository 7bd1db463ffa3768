"""The password never shows: not in any verb's output, the daemon's logs (text or JSON), /metrics,
/readyz or errors. A wrong password is one clear error naming WRONGPASS and the seed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.chaos import ChaosCluster
from harness.helpers import (
    DaemonProcess,
    acl_log_fields,
    cli,
    free_port,
    http_get,
    password_cluster,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.timeout(170), pytest.mark.slow]

PASSWORD = "pw-9f3Kq-never-print-me"
WRONG = "pw-wrong-7Hx2-never-print-me-either"


@pytest.fixture(scope="module")
def auth_cluster() -> Iterator[ChaosCluster]:
    with password_cluster(PASSWORD) as cluster:
        yield cluster


def auth_failures(cluster: ChaosCluster) -> int:
    """Refused AUTHs on every node, from ACL LOG (7.0 has no acl_access_denied_auth in INFO)."""
    total = 0
    for node in cluster.nodes:
        with node.client() as c:
            for entry in c.execute_command("ACL", "LOG"):
                fields = acl_log_fields(entry)
                if str(fields.get("reason")) in ("auth", "b'auth'"):
                    total += int(str(fields["count"]))
    return total


def test_nothing_prints_the_password(auth_cluster: ChaosCluster, tmp_path: Path) -> None:
    port = free_port()
    redis = {"seeds": auth_cluster.seeds[:1], "timeout": "2s", "password_env": "ORCH_TEST_PASSWORD"}
    config = write_config(
        tmp_path, auth_cluster.seeds[:1], redis=redis, metrics={"enabled": True, "listen": f"127.0.0.1:{port}"}
    )
    env = {"ORCH_TEST_PASSWORD": PASSWORD}
    seen: list[str] = []
    for args in (
        ["check"],
        ["plan"],
        ["plan", "--format", "json"],
        ["sync"],
        ["status"],
        ["status", "--format", "json"],
        ["manifest"],
        ["--log-format", "json", "status"],
    ):
        done = cli(config, *args, env=env)
        assert done.returncode in (0, 1), f"{args}: {done.stdout}{done.stderr}"
        seen += [done.stdout, done.stderr]

    for log_format in ("text", "json"):
        with DaemonProcess(config, "--log-format", log_format, env=env) as daemon:
            daemon.wait_log("ready", timeout=30)
            for path in ("/metrics", "/readyz", "/healthz", "/", "/nope"):
                seen.append(http_get(f"http://127.0.0.1:{port}{path}", timeout=3)[2])
            daemon.process.send_signal(1)  # SIGHUP: a reload logs the config it read
            daemon.wait_log("catalog_reload")
            assert daemon.stop() == 0
        seen.append(daemon.log())

    # A config that writes the password inline is refused without echoing it.
    data = yaml.safe_load(config.read_text())
    data["redis"]["password"] = PASSWORD
    inline = tmp_path / "inline.yaml"
    inline.write_text(yaml.safe_dump(data))
    done = cli(inline, "status", env=env)
    assert done.returncode == 2 and "never read from the config file" in done.stderr
    seen += [done.stdout, done.stderr]

    everything = "\n".join(seen)
    assert "ready" in everything and "redis_orchestrator_node_up" in everything  # we did look at real output
    assert PASSWORD not in everything


def test_a_wrong_password_is_one_clear_error(auth_cluster: ChaosCluster, tmp_path: Path) -> None:
    seed = auth_cluster.seeds[0]
    (tmp_path / "secret").write_text(WRONG + "\n")
    redis = {"seeds": [seed], "timeout": "2s", "password_file": str(tmp_path / "secret")}
    config = write_config(tmp_path, [seed], redis=redis)

    for verb in ("status", "plan", "sync"):
        done = cli(config, verb)
        assert done.returncode == 3, done.stdout + done.stderr
        assert "WRONGPASS" in done.stderr and seed in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line, no traceback
        assert WRONG not in done.stdout + done.stderr

    # The daemon keeps retrying with backoff and says so once, not once per attempt.
    with DaemonProcess(config) as daemon:
        daemon.wait_log("no_seed_reachable", timeout=15)
        before = auth_failures(auth_cluster)
        wait_for(lambda: auth_failures(auth_cluster) >= before + 3, 30, "three more refused attempts")
        assert daemon.alive()
        assert daemon.log().count("no_seed_reachable") == 1
        assert "WRONGPASS" in daemon.log()
        assert daemon.stop() == 0
    assert WRONG not in daemon.log()


def test_password_file_from_systemd_credentials(auth_cluster: ChaosCluster, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "redis-password").write_text(PASSWORD)
    redis = {"seeds": auth_cluster.seeds[:1], "timeout": "2s", "password_file": "redis-password"}
    config = write_config(tmp_path, auth_cluster.seeds[:1], redis=redis)
    done = cli(config, "status", env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert done.returncode in (0, 1), done.stderr
    assert "WRONGPASS" not in done.stdout + done.stderr and "NOAUTH" not in done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr
