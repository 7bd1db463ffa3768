"""What the servers of the matrix do differently, measured here rather than assumed, each on a
throwaway cluster (some of it breaks a node). Where a server differs from ../shared/REDIS_FACTS.md,
the test says so; where a server has a known defect, the test records it (xfail naming the server)
instead of hiding it, and tests/helpers.py works around it for the rest of the suite."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from harness.chaos import ChaosCluster
from harness.helpers import REFUSED_KEY, heal_poisoned_scripts, local_key_of, scripts_poisoned
from redis_orchestrator.devcluster.cluster import server_version

pytestmark = [pytest.mark.slow, pytest.mark.destructive, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def scratch() -> Iterator[ChaosCluster]:
    with ChaosCluster(primaries=3, replicas_per_primary=0) as cluster:
        yield cluster


def test_a_failed_multi_key_call_leaves_later_scripts_alone(scratch: ChaosCluster) -> None:
    """A script whose DEL mixes a key of this node with one of another node fails ("non local key";
    Redis 8.0.2 says "don't hash to the same slot"), as it should. Afterwards, scripts on keys this
    node serves must still run.

    Seen on Valkey 9.1.2: they do not. Every later script with keys on that node fails with "non
    local key", even on the failed script's own slot, until the node restarts (SCRIPT FLUSH does not
    help). Redis 7.0.15, Redis 8.0.2 and Valkey 8.1.1: unaffected. Single-key calls (GET of a remote
    key) do not trigger it."""
    rc = RedisCluster(host="127.0.0.1", port=scratch.nodes[0].port)
    try:
        declared = "quirk:declared"
        home = scratch.node_at(rc.get_node_from_key(declared).name)
        remote = next(
            f"quirk:{i}" for i in itertools.count() if rc.get_node_from_key(f"quirk:{i}").name != home.address
        )
        with home.client() as c, pytest.raises(redis.ResponseError, match=REFUSED_KEY):
            c.eval("return redis.call('DEL', KEYS[1], ARGV[1])", 1, declared, remote)
        poisoned = scripts_poisoned(home, local_key_of(home))
    finally:
        rc.close()
    healed = heal_poisoned_scripts(scratch)
    assert not any(scripts_poisoned(n, local_key_of(n)) for n in scratch.primaries())  # a restart clears it
    if poisoned:
        assert healed
        pytest.xfail(
            f"{server_version(scratch.binary)}: after that failure the node refused every script with keys "
            '("non local key") until restarted'
        )
