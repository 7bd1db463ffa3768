"""Sentinel mode with passwords and the least-privilege ACL users: deploy/acl/orchestrator.acl on
the data nodes, deploy/acl/sentinel.acl on the Sentinels (each with its own password, given as
redis.* and redis.sentinel.*). Every verb and the daemon (its event subscriptions included) run
with nothing denied: every node's and every Sentinel's ACL LOG stays empty."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.chaos import ChaosSentinel
from harness.helpers import REPO, DaemonProcess, acl_log_fields, catalog_shas, cli, present, wait_for
from harness.sentinel import group_holds, repairs_and_hears_sentinels, sentinel_config, started_group
from redis_orchestrator.devcluster.cluster import LocalNode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ADMIN = "admin-secret-for-tests"  # the data nodes' default user (replication and Sentinel use it too)
SENTINEL_ADMIN = "sentinel-admin-secret"  # the Sentinels' default user (they talk to each other with it)
USER = "redis-orchestrator"
DATA_PASSWORD = "orch-data-Secret-1"
SENTINEL_PASSWORD = "orch-sentinel-Secret-2"


def rules(name: str) -> list[str]:
    """The rules of the one `user` line in deploy/acl/<name>."""
    lines = [ln for ln in (REPO / "deploy" / "acl" / name).read_text().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].split()[:2] == ["user", USER], f"{name}: one user line"
    return shlex.split(lines[0])[2:]


def test_the_sentinel_file_is_one_user_line_without_password_or_broad_grants() -> None:
    words = rules("sentinel.acl")
    assert not any(r.startswith((">", "#", "<", "!")) or r == "nopass" for r in words)
    for broad in ("+@all", "allcommands", "+@dangerous", "+@admin", "allchannels", "&*", "+sentinel"):
        assert broad not in words
    assert "-@all" in words


def set_user(node: LocalNode, client_kwargs: dict[str, object], *user_rules: str) -> None:
    with node.client(**client_kwargs) as c:
        c.execute_command("ACL", "SETUSER", USER, "reset", *user_rules)


def acl_log(node: LocalNode, client_kwargs: dict[str, object]) -> list[str]:
    with node.client(**client_kwargs) as c:
        entries = [acl_log_fields(e) for e in c.execute_command("ACL", "LOG")]
    # redis-py sends CLIENT SETINFO on every connection and ignores the refusal; servers >= 7.2
    # log it (a known, documented cost: deploy/acl/README.md). Anything else is a missing right.
    return [
        f"{node.address}: {e.get('username')} {e.get('reason')} {e.get('object')}"
        for e in entries
        if str(e.get("object", b"")).find("client|setinfo") < 0
    ]


@pytest.fixture
def acl_group() -> Iterator[ChaosSentinel]:
    with started_group(
        data_config=[f"requirepass {ADMIN}", f"masterauth {ADMIN}"],
        sentinel_config=[
            f"sentinel auth-pass mymaster {ADMIN}",
            f"requirepass {SENTINEL_ADMIN}",
            f"sentinel sentinel-pass {SENTINEL_ADMIN}",
        ],
        client_kwargs={"password": ADMIN},
        sentinel_client_kwargs={"password": SENTINEL_ADMIN},
    ) as group:
        for node in group.nodes:
            set_user(node, {}, *rules("orchestrator.acl"), f">{DATA_PASSWORD}")
        for sentinel in group.sentinels:
            set_user(sentinel, {}, *rules("sentinel.acl"), f">{SENTINEL_PASSWORD}")
        yield group


def acl_config(tmp_path: Path, group: ChaosSentinel) -> Path:
    """Both users, each with its password in a file of its own."""
    (tmp_path / "data-password").write_text(DATA_PASSWORD + "\n")
    (tmp_path / "sentinel-password").write_text(SENTINEL_PASSWORD + "\n")
    return sentinel_config(
        tmp_path,
        group,
        redis={
            "username": USER,
            "password_file": str(tmp_path / "data-password"),
            "sentinel": {"username": USER, "password_file": str(tmp_path / "sentinel-password")},
        },
    )


def test_every_verb_and_the_daemon_as_the_acl_users(acl_group: ChaosSentinel, tmp_path: Path) -> None:
    group = acl_group
    config = acl_config(tmp_path, group)
    shas = catalog_shas(config)
    for verb in (["plan"], ["sync"], ["status"], ["status", "--format", "json"]):
        done = cli(config, *verb)
        assert done.returncode in (0, 1), f"{verb}: {done.stdout}{done.stderr}"
        assert "NOPERM" not in done.stdout + done.stderr, f"{verb}: {done.stdout}{done.stderr}"
    assert cli(config, "status").returncode == 0
    assert group_holds(group, shas)

    with DaemonProcess(config) as daemon:
        repairs_and_hears_sentinels(daemon, group, shas)
        assert daemon.stop() == 0
    log = daemon.log()
    assert "NOPERM" not in log and "WRONGPASS" not in log and "sentinel_subscription_failed" not in log, log
    denied = [line for n in group.running_nodes() for line in acl_log(n, {})]
    denied += [line for s in group.sentinels for line in acl_log(s, {})]
    assert denied == []


def test_a_missing_sentinel_permission_is_named(acl_group: ChaosSentinel, tmp_path: Path) -> None:
    config = acl_config(tmp_path, acl_group)
    for sentinel in acl_group.sentinels:
        set_user(sentinel, {}, *rules("sentinel.acl"), f">{SENTINEL_PASSWORD}", "-sentinel|replicas")
    done = cli(config, "status")
    assert done.returncode == 3
    assert "'sentinel|replicas'" in done.stderr and "deploy/acl/sentinel.acl" in done.stderr, done.stderr
    wrong = sentinel_config(tmp_path, acl_group, redis={"sentinel": {"username": USER}})
    done = cli(wrong, "status")
    assert done.returncode == 3
    assert "WRONGPASS" in done.stderr and "check redis.sentinel.username" in done.stderr, done.stderr


def test_a_replica_that_refuses_loads_is_reported_and_blocks_no_one(acl_group: ChaosSentinel, tmp_path: Path) -> None:
    config = acl_config(tmp_path, acl_group)
    shas = catalog_shas(config)
    refusing = acl_group.replicas()[0]
    set_user(refusing, {}, *rules("orchestrator.acl"), f">{DATA_PASSWORD}", "-script|load")
    others = [n for n in acl_group.running_nodes() if n is not refusing]
    done = cli(config, "sync")
    assert done.returncode == 1
    assert "no permissions to run the 'script|load' command" in done.stderr, done.stderr
    assert all(present(n, shas) == shas for n in others)
    with DaemonProcess(config) as daemon:
        daemon.wait_log(f"load_failed node={refusing.address}", timeout=15)
        set_user(refusing, {}, *rules("orchestrator.acl"), f">{DATA_PASSWORD}")  # the operator fixes it
        wait_for(lambda: present(refusing, shas) == shas, 15, "the replica loaded once it may")
        daemon.wait_log(" ready ", timeout=15)
    assert all(
        f"node={n.address}" not in line for n in others for line in daemon.log().splitlines() if "load_failed" in line
    )


def test_without_subscriptions_the_daemon_polls_and_still_follows_a_failover(
    acl_group: ChaosSentinel, tmp_path: Path
) -> None:
    """The Sentinels' user may not SUBSCRIBE: no event ever comes, the topology is polled every
    second instead, and a failover is followed all the same."""
    config = acl_config(tmp_path, acl_group)
    shas = catalog_shas(config)
    no_subscribe = [r for r in rules("sentinel.acl") if r != "+subscribe"]
    for sentinel in acl_group.sentinels:
        set_user(sentinel, {}, *no_subscribe, f">{SENTINEL_PASSWORD}")
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ", timeout=30)
        for sentinel in acl_group.seeds:
            daemon.wait_log(f"sentinel_subscription_failed sentinel={sentinel}")
        assert "polling=" in daemon.log() and "NOPERM" in daemon.log()
        old = acl_group.primary()
        acl_group.kill(old)
        new = acl_group.wait_primary_not(old)
        daemon.wait_log(f"role_changed node={new.address}", timeout=10)
        assert "sentinel_event" not in daemon.log()
        assert all(present(n, shas) == shas for n in acl_group.running_nodes())
    assert daemon.log().count("sentinel_subscription_failed") == len(acl_group.seeds)  # once each
