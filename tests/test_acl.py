"""deploy/acl/orchestrator.acl on a real cluster: every verb and the daemon work as that user and
nothing is denied (ACL LOG stays empty); a permission taken away is named in the error."""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from harness.chaos import ChaosCluster
from harness.helpers import (
    REPO,
    DaemonProcess,
    acl_log_fields,
    all_hold,
    catalog_shas,
    cli,
    command_calls,
    password_cluster,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.timeout(170), pytest.mark.slow]

ACL_FILE = REPO / "deploy" / "acl" / "orchestrator.acl"
ADMIN_PASSWORD = "admin-secret-for-tests"
USER_PASSWORD = "orch-Secret-4-acl-tests"
USER = "redis-orchestrator"


def acl_rules() -> list[str]:
    """The rules of the file's one `user` line (comments and blank lines aside)."""
    lines = [ln for ln in ACL_FILE.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    users = [ln for ln in lines if ln.split()[0] == "user"]
    assert len(users) == 1 and len(lines) == 1, "the file holds exactly one user line"
    words = shlex.split(users[0])
    assert words[1] == USER
    return words[2:]


def set_user(cluster: ChaosCluster, *rules: str) -> None:
    """ACLs are per node: apply on every node, primaries and replicas."""
    for node in cluster.nodes:
        with node.client() as c:
            c.execute_command("ACL", "SETUSER", USER, *rules)


def acl_log(cluster: ChaosCluster) -> list[str]:
    denials = []
    for node in cluster.nodes:
        with node.client() as c:
            for entry in c.execute_command("ACL", "LOG"):
                fields = acl_log_fields(entry)
                who, why, what = fields.get("username"), fields.get("reason"), fields.get("object")
                denials.append(f"{node.address}: {who} {why} {what}")
    return denials


def reset_acl_log(cluster: ChaosCluster) -> None:
    for node in cluster.nodes:
        with node.client() as c:
            c.execute_command("ACL", "LOG", "RESET")


@pytest.fixture(scope="module")
def acl_cluster() -> Iterator[ChaosCluster]:
    # The admin (default user) keeps every right and a password; replicas authenticate with it.
    with password_cluster(ADMIN_PASSWORD) as cluster:
        set_user(cluster, "reset", *acl_rules(), f">{USER_PASSWORD}")
        yield cluster


@pytest.fixture
def acl_config(acl_cluster: ChaosCluster, tmp_path: Path) -> Path:
    for node in acl_cluster.nodes:
        with node.client() as c:
            c.execute_command("SCRIPT", "FLUSH")
            if node.role() == "primary":
                c.execute_command("FUNCTION", "FLUSH")
                with contextlib.suppress(redis.ResponseError):  # MOVED: not this shard's slot
                    c.execute_command("DEL", "{redis-orchestrator}:leader", "{redis-orchestrator}:manifest")
    set_user(acl_cluster, "reset", *acl_rules(), f">{USER_PASSWORD}")
    reset_acl_log(acl_cluster)
    (tmp_path / "redis-password").write_text(USER_PASSWORD + "\n")
    return write_config(
        tmp_path,
        acl_cluster.seeds[:1],
        redis={"seeds": acl_cluster.seeds[:1], "timeout": "2s", "username": USER, "password_file": "redis-password"},
        leader={"enabled": True, "lease": "3s"},
        manifest={"key": "{redis-orchestrator}:manifest"},
        metrics={"enabled": False},
    )


def test_the_file_is_one_user_line_without_password_or_broad_grants() -> None:
    rules = acl_rules()
    assert not any(r.startswith((">", "#", "<", "!")) or r == "nopass" for r in rules), "no password in the file"
    for broad in ("+@all", "allcommands", "+@dangerous", "+@admin", "+@write", "allkeys", "~*", "allchannels"):
        assert broad not in rules
    assert "-@all" in rules
    assert [r for r in rules if r.startswith(("~", "%"))] == ["~{redis-orchestrator}:*"]


def test_every_verb_and_the_daemon_run_as_the_acl_user_with_nothing_denied(
    acl_cluster: ChaosCluster, acl_config: Path
) -> None:
    shas = catalog_shas(acl_config)
    for verb in (["plan"], ["sync"], ["status"], ["status", "--format", "json"], ["plan"]):
        done = cli(acl_config, *verb)
        assert done.returncode in (0, 1), f"{verb}: {done.stdout}{done.stderr}"
        assert "NOPERM" not in done.stdout + done.stderr, f"{verb}: {done.stdout}{done.stderr}"
    assert cli(acl_config, "status").returncode == 0
    assert all_hold(acl_cluster, shas)

    replica = acl_cluster.replicas()[0]
    with replica.client() as c:
        c.execute_command("SCRIPT", "FLUSH")
    with DaemonProcess(acl_config) as daemon:
        daemon.wait_log(" ready ", timeout=30)
        daemon.wait_log("leader_acquired")
        daemon.wait_log("manifest_written")
        assert all_hold(acl_cluster, shas)
        # A few slowlog polls (SLOWLOG GET, CONFIG GET) and lease renewals go by.
        primary = acl_cluster.primaries()[0]
        before = command_calls(primary, "slowlog|get")
        wait_for(lambda: command_calls(primary, "slowlog|get") >= before + 2, 10, "two slowlog polls")
        assert daemon.stop() == 0
    log = daemon.log()
    assert "NOPERM" not in log and "slowlog_poll_failed" not in log and "leader_lease_failed" not in log, log
    assert "leader_released" in log  # the lease was given back (owner-checked release.lua)
    manifest = _get(acl_cluster, "{redis-orchestrator}:manifest")
    assert manifest is not None and "transfer" in json.loads(manifest)["scripts"]
    assert acl_log(acl_cluster) == []


def test_a_missing_permission_is_named(acl_cluster: ChaosCluster, acl_config: Path) -> None:
    set_user(acl_cluster, "-script|load")
    done = cli(acl_config, "sync")
    assert done.returncode == 1
    assert "no permissions to run the 'script|load' command" in done.stderr, done.stderr

    set_user(acl_cluster, "-script|exists")
    done = cli(acl_config, "status")
    assert done.returncode == 1
    assert "NOPERM" in done.stdout and "'script|exists'" in done.stdout, done.stdout

    set_user(acl_cluster, "-cluster|shards")
    done = cli(acl_config, "status")
    assert done.returncode == 3
    assert "NOPERM" in done.stderr and "'cluster|shards'" in done.stderr, done.stderr
    assert "deploy/acl/orchestrator.acl" in done.stderr

    # The daemon: each refusal is logged once per node with the permission named, retried with
    # backoff, and the daemon recovers by itself when the permission is given back.
    set_user(acl_cluster, "reset", *acl_rules(), f">{USER_PASSWORD}", "-script|load")
    scripts = len(catalog_shas(acl_config))
    with DaemonProcess(acl_config) as daemon:
        wait_for(
            lambda: daemon.log().count("load_failed") >= scripts * len(acl_cluster.nodes),
            20,
            "every node's refusal in the log",
        )
        primary = acl_cluster.primaries()[0]
        tries = command_calls(primary, "script|exists")
        wait_for(lambda: command_calls(primary, "script|exists") >= tries + 2, 20, "two more attempts")
        assert daemon.log().count("load_failed") == scripts * len(acl_cluster.nodes)  # no repeats
        assert "leader_lease_failed" in daemon.log()  # its NOSCRIPT fallback needs SCRIPT LOAD too
        set_user(acl_cluster, "+script|load")
        daemon.wait_log(" ready ", timeout=30)
        assert daemon.stop() == 0


def _get(cluster: ChaosCluster, key: str) -> str | None:
    for node in cluster.primaries():
        with node.client() as c:
            try:
                value = c.get(key)
            except redis.ResponseError:  # MOVED: asked the wrong primary
                continue
            if value is not None:
                return value.decode()
    return None
