"""Hostile and careless input against real servers (issue #23): a node whose password the daemon
lacks, a manifest key of the wrong type or weight, a server refusal that looks like a script's own
error. What needs no server is in test_hostile.py; prune's handling of other applications' scripts
is in test_prune.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess, local_key, write_config
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.client import ManifestError, ScriptError, Scripts
from redis_orchestrator.devcluster.cluster import LocalNode

pytestmark = pytest.mark.timeout(90)

NODE_PASSWORD = "only-this-node-knows-it-3f9"


def refused_auths(node: LocalNode) -> int:
    """WRONGPASS replies the node has sent (INFO errorstats, Redis >= 7.0 and Valkey)."""
    with node.client(password=NODE_PASSWORD) as c:
        stats = c.info("errorstats")
    return int(stats.get("errorstat_WRONGPASS", {}).get("count", 0))


@pytest.fixture
def replica_with_its_own_password(cluster: ChaosCluster) -> Iterator[LocalNode]:
    """A replica of the session cluster that answers only to NODE_PASSWORD (restored afterwards)."""
    replica = cluster.replicas()[0]
    with replica.client() as c:
        c.config_set("requirepass", NODE_PASSWORD)
    try:
        yield replica
    finally:
        with replica.client(password=NODE_PASSWORD) as c:
            c.config_set("requirepass", "")


def test_a_node_that_refuses_our_password_is_retried_with_backoff(
    cluster: ChaosCluster, replica_with_its_own_password: LocalNode, tmp_path: Path
) -> None:
    replica = replica_with_its_own_password
    # `default` has no password on the other nodes, where any password is accepted for it.
    redis_section = {"seeds": cluster.seeds[:1], "timeout": "1s", "username": "default", "password_env": "ORCH_PW"}
    config = write_config(tmp_path, cluster.seeds[:1], redis=redis_section)
    before = refused_auths(replica)
    with DaemonProcess(config, env={"ORCH_PW": "the-cluster-password"}) as daemon:
        daemon.wait_log(f"node={replica.address}", timeout=30)
        started = refused_auths(replica)
        time.sleep(6)  # a window of the refusals, not a timing assertion: what is asserted is a count
        during = refused_auths(replica) - started
        assert daemon.alive()
        log = daemon.log()
        assert daemon.stop() == 0
    # Before: the node was probed as if down, every 10 ms then 100 ms, plus the liveness watch
    # every second: about 12 refused AUTHs a second (over 60 in this window). Backed off now, like
    # any refusal: doubling up to 5 s, for the reconcile loop and the liveness watch alike.
    assert during <= 12, f"{during} refused AUTHs in 6 s"
    assert refused_auths(replica) > before  # it was asked, and refused
    assert log.count("node_refused") == 1 and "WRONGPASS" in log and "node_down" not in log, log
    assert "the-cluster-password" not in log


@pytest.fixture
def manifest_key(rc: RedisCluster) -> Iterator[str]:
    key = "{hostile-test}:manifest"
    yield key
    rc.delete(key)


def test_a_manifest_key_of_another_type_is_a_manifest_error(rc: RedisCluster, manifest_key: str) -> None:
    rc.hset(manifest_key, "scripts", "{}")
    with pytest.raises(ManifestError) as info:
        Scripts.from_redis(rc, key=manifest_key)
    assert manifest_key in str(info.value) and "WRONGTYPE" in str(info.value)


def test_an_oversized_manifest_key_is_refused_without_reading_it(rc: RedisCluster, manifest_key: str) -> None:
    rc.setrange(manifest_key, 65 << 20, b"}")  # 65 MiB: built on the server, never sent whole
    with pytest.raises(ManifestError) as info:
        Scripts.from_redis(rc, key=manifest_key)
    assert "MiB" in str(info.value) and "manifest.sources" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        "#!lua\nreturn redis.call('INCR', KEYS[1])",  # refused before it runs: `ERR Can not execute ...`
        "return redis.call('INCR', KEYS[1])",  # refused at its write: `ERR Write commands are not allowed ...`
    ],
)
def test_a_server_refusal_is_not_the_scripts_own_error_code(
    clean_cluster: ChaosCluster, rc: RedisCluster, manifest_key: str, body: str
) -> None:
    # A broken manifest says no-writes for a script that writes: the client sends EVALSHA_RO and the
    # server refuses the write with an ERR of its own, whose first word is not the script's code.
    manifest = {
        "catalog_version": "1",
        "scripts": {
            "incr": {
                "kind": "script",
                "current": "1",
                "versions": {"1": {"sha": sha1_hex(body.encode()), "flags": ["no-writes"], "keys": [], "source": body}},
            }
        },
    }
    rc.set(manifest_key, json.dumps(manifest))
    scripts = Scripts.from_redis(rc, key=manifest_key)
    key = local_key(clean_cluster.primaries()[0], "hostile")
    with pytest.raises(ScriptError) as info:
        scripts.run("incr", keys=[key])
    assert info.value.code == "ERR", str(info.value)
    assert "write" in str(info.value).lower()
    assert isinstance(info.value, redis.ResponseError)  # still redis-py's class for code that catches those
