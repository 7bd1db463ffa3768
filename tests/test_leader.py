"""Several instances: exactly one leader by the lease in Redis; SIGKILL the leader and the other takes
over; the lease shard failing over; the manifest written by the leader only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess, free_port, scrape, wait_for, write_config
from redis_orchestrator.daemon.leader import LeaderLease, ManifestPublisher
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.devcluster.cluster import LocalNode
from redis_orchestrator.topology.cluster import parse_cluster_shards
from redis_orchestrator.topology.model import Node, Role, Topology

pytestmark = [pytest.mark.timeout(170), pytest.mark.slow]

LEASE = 2.0


def leader_gauge(port: int) -> float | None:
    return scrape(port, "redis_orchestrator_leader", timeout=2)


def key_value(cluster: ChaosCluster, key: str) -> str | None:
    for node in cluster.primaries():
        with node.client() as c, contextlib.suppress(redis.ResponseError):  # MOVED elsewhere
            value = c.get(key)
            return value.decode() if value is not None else None
    return None


class Instance:
    def __init__(
        self, tmp_path: Path, name: str, cluster: ChaosCluster, key: str | None, manifest: str | None = None
    ) -> None:
        """`key` None: the leader section left out, as in the sample config (the lease is on by default)."""
        directory = tmp_path / name
        directory.mkdir()
        self.port = free_port()
        sections: dict[str, object] = {"metrics": {"enabled": True, "listen": f"127.0.0.1:{self.port}"}}
        if key is not None:
            sections["leader"] = {"enabled": True, "key": key, "lease": f"{LEASE}s"}
        if manifest is not None:
            sections["manifest"] = {"key": manifest}
        self.daemon = DaemonProcess(write_config(directory, cluster.seeds[:1], **sections))

    def leader(self) -> float | None:
        return leader_gauge(self.port)


def both_report(instances: list[Instance]) -> bool:
    return all(i.leader() is not None for i in instances)


def leaders(instances: list[Instance]) -> list[Instance]:
    return [i for i in instances if i.leader() == 1.0]


def test_one_leader_and_a_takeover_after_sigkill(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    key = f"{{redis-orchestrator}}:leader-{uuid.uuid4().hex[:8]}"
    manifest = "{redis-orchestrator}:manifest-test"
    instances = [Instance(tmp_path, name, clean_cluster, key, manifest) for name in ("a", "b")]
    try:
        for instance in instances:
            instance.daemon.wait_log(" ready ", timeout=30)
        wait_for(lambda: both_report(instances) and len(leaders(instances)) == 1, 3 * LEASE, "exactly one leader")
        first = leaders(instances)[0]
        other = next(i for i in instances if i is not first)
        # The key holds the leader's token; only the leader wrote the manifest.
        token = key_value(clean_cluster, key)
        assert token is not None and f"owner={token}" in first.daemon.log()
        assert "manifest_written" in first.daemon.log() and "manifest_written" not in other.daemon.log()
        # Several renewals later it is still the same single leader (renewal is owner-checked).
        renewals_seen = clean_cluster_calls(clean_cluster, "evalsha")
        wait_for(lambda: clean_cluster_calls(clean_cluster, "evalsha") >= renewals_seen + 6, 5 * LEASE, "renewals")
        assert leaders(instances) == [first] and key_value(clean_cluster, key) == token

        first.daemon.stop(signal.SIGKILL)  # no release: the lease must run out
        wait_for(lambda: other.leader() == 1.0, LEASE + 2 * LEASE, "the other instance to take over")
        new_token = key_value(clean_cluster, key)
        assert new_token is not None and new_token != token
        # The manifest the first leader wrote is still right: the new one checks it, writes nothing,
        # and from now on keeps it (deleted, it is written again).
        assert "manifest_written" not in other.daemon.log()
        _delete(clean_cluster, manifest)
        other.daemon.wait_log("manifest_written")
        assert other.daemon.log().count("leader_acquired") == 1

        # A clean stop gives the lease back at once (owner-checked release.lua).
        assert other.daemon.stop(signal.SIGTERM) == 0
        assert "leader_released" in other.daemon.log()
        assert key_value(clean_cluster, key) is None
    finally:
        for instance in instances:
            instance.daemon.stop()
        _delete(clean_cluster, key, manifest)


def test_two_instances_with_the_default_config_elect_one_leader(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    """The sample config has no leader section: the lease is on by default, so two instances never
    both report redis_orchestrator_leader 1 (both would kill the same script)."""
    instances = [Instance(tmp_path, name, clean_cluster, None) for name in ("a", "b")]
    try:
        for instance in instances:
            instance.daemon.wait_log(" ready ", timeout=30)
        wait_for(lambda: both_report(instances) and len(leaders(instances)) == 1, 15, "exactly one leader")
        for _ in range(3):  # and it stays so, renewal after renewal
            time.sleep(1)
            assert len(leaders(instances)) == 1
        assert all(" leader_disabled " not in i.daemon.log() for i in instances)
    finally:
        for instance in instances:
            instance.daemon.stop()


def test_leader_disabled_is_said_at_start(clean_cluster: ChaosCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, clean_cluster.seeds[:1], leader={"enabled": False})
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ", timeout=30)
        assert daemon.log().count(" leader_disabled ") == 1


@pytest.mark.destructive
def test_the_lease_survives_a_failover_of_its_shard(fresh_cluster: ChaosCluster, tmp_path: Path) -> None:
    key = "{redis-orchestrator}:leader"
    instances = [Instance(tmp_path, name, fresh_cluster, key, "{redis-orchestrator}:manifest") for name in ("a", "b")]
    try:
        for instance in instances:
            instance.daemon.wait_log(" ready ", timeout=30)
        wait_for(lambda: both_report(instances) and len(leaders(instances)) == 1, 3 * LEASE, "exactly one leader")
        with fresh_cluster.nodes[0].client() as c:
            owner_slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
        shard_primary = next(n for n in fresh_cluster.primaries() if _serves(n, owner_slot))
        replica = fresh_cluster.replicas_of(shard_primary)[0]
        fresh_cluster.kill(shard_primary)
        wait_for(lambda: replica.role() == "primary", 30, "the replica to be promoted")
        # Renewals fail while the shard has no primary; afterwards one instance leads again (the
        # key may have been lost with an unreplicated write: then it is simply taken anew).
        try:
            wait_for(lambda: len(leaders(instances)) == 1, 30, "one leader after the failover")
        except AssertionError as exc:
            lines = [ln for i in instances for ln in i.daemon.log().splitlines() if "lease" in ln or "leader" in ln]
            raise AssertionError(
                f"{exc}; gauges {[i.leader() for i in instances]}:\n" + "\n".join(lines[-40:])
            ) from exc
        with replica.client() as c:
            assert c.get(key) is not None
    finally:
        for instance in instances:
            instance.daemon.stop()


def test_primary_for_routes_by_slot_and_standalone() -> None:
    from redis_orchestrator.daemon.leader import _moved_to, primary_for

    low = Node("10.0.0.1", 7000, slots=((0, 8191),))
    high = Node("10.0.0.2", 7000, slots=((8192, 16383),))
    replica = Node("10.0.0.3", 7000, role=Role.REPLICA)
    topology = Topology(nodes=(low, high, replica))
    # "{redis-orchestrator}" hashes to one slot; whichever side, the owner is a primary serving it.
    owner = primary_for(topology, "{redis-orchestrator}:leader")
    assert owner in (low, high) and owner == primary_for(topology, "{redis-orchestrator}:manifest")
    assert primary_for(Topology(nodes=(Node("127.0.0.1", 6379),)), "anything") == Node("127.0.0.1", 6379)
    assert primary_for(None, "k") is None
    assert _moved_to(redis.ResponseError("MOVED 3999 127.0.0.1:6381")) == Node("127.0.0.1", 6381)


def clean_cluster_calls(cluster: ChaosCluster, command: str) -> int:
    from harness.helpers import command_calls

    return sum(command_calls(n, command) for n in cluster.primaries())


def _serves(node: LocalNode, slot: int) -> bool:
    with node.client() as c:
        nodes = parse_cluster_shards(c.execute_command("CLUSTER", "SHARDS"))
    return any(n.port == node.port and any(a <= slot <= b for a, b in n.slots) for n in nodes)


def _delete(cluster: ChaosCluster, *keys: str) -> None:
    for node in cluster.primaries():
        with node.client() as c, contextlib.suppress(redis.ResponseError):
            c.delete(*keys)


# ---------------------------------------------------------------------------- in-process: fencing, a stalled loop


class FrozenClock:
    """A monotonic clock that stands still while `frozen`: a VM paused with its process, which wakes
    up believing no time passed."""

    def __init__(self) -> None:
        self.frozen_at: float | None = None
        self.lost = 0.0

    def __call__(self) -> float:
        return (self.frozen_at if self.frozen_at is not None else time.monotonic()) - self.lost

    def freeze(self) -> None:
        self.frozen_at = time.monotonic()

    def thaw(self) -> None:
        assert self.frozen_at is not None
        self.lost += time.monotonic() - self.frozen_at
        self.frozen_at = None


async def _topology(cluster: ChaosCluster) -> Topology:
    from redis_orchestrator.config.settings import RedisSettings
    from redis_orchestrator.topology.discovery import discover
    from redis_orchestrator.wire.connections import Connector

    connector = Connector(RedisSettings(seeds=tuple(cluster.seeds)))
    try:
        return await discover(connector, cluster.seeds)
    finally:
        await connector.aclose()


def _lease(key: str, topology: Topology, clock: Callable[[], float] = time.monotonic) -> tuple[LeaderLease, Metrics]:
    from redis_orchestrator.config.settings import LeaderSettings, RedisSettings

    metrics = Metrics()
    lease = LeaderLease(
        LeaderSettings(key=key, lease=LEASE),
        RedisSettings(seeds=(topology.nodes[0].address,), timeout=1.0),
        lambda: topology,
        metrics,
        clock=clock,
    )
    return lease, metrics


def _wait_gone(cluster: ChaosCluster, key: str) -> None:
    wait_for(lambda: key_value(cluster, key) is None, LEASE + 5, f"{key} to expire")


def test_a_leader_frozen_past_its_lease_is_fenced_by_the_server_not_its_own_clock(
    cluster: ChaosCluster, tmp_path: Path
) -> None:
    """Kleppmann's paused leader: its clock stood still while it was frozen (a paused VM), so by its
    own clock it still leads when it wakes. The lease lapsed on the server meanwhile and B took it.
    Its next act is refused by the server, which steps it down at once: a kill is preceded by an
    owner-checked renewal (`confirm`), a manifest write is a script that checks the lease key first
    (FENCED). Neither depends on the stale instance's own clock."""
    from redis_orchestrator.config.loader import load_config

    key = f"{{redis-orchestrator}}:leader-{uuid.uuid4().hex[:8]}"
    manifest_key = f"{{redis-orchestrator}}:manifest-{uuid.uuid4().hex[:8]}"
    catalog = load_config(write_config(tmp_path, cluster.seeds)).catalog

    async def frozen_past_its_lease(topology: Topology, b: LeaderLease) -> tuple[LeaderLease, Metrics]:
        """A stale leader: acquired, then frozen (its clock with it) until B took the lapsed lease."""
        clock = FrozenClock()
        stale, metrics = _lease(key, topology, clock)
        await b.release()
        assert await stale.tick() and metrics.registry.get_sample_value("redis_orchestrator_leader") == 1
        clock.freeze()
        _wait_gone(cluster, key)
        assert await b.tick()
        assert stale.is_leader()  # its own clock alone would let it act
        return stale, metrics

    async def scenario() -> None:
        topology = await _topology(cluster)
        b, _ = _lease(key, topology)
        try:
            a, a_metrics = await frozen_past_its_lease(topology, b)
            assert not await a.confirm()  # before a kill
            assert not a.is_leader() and a_metrics.registry.get_sample_value("redis_orchestrator_leader") == 0
            await a.aclose()
            c, c_metrics = await frozen_past_its_lease(topology, b)
            manifest = ManifestPublisher(manifest_key, c.router, lambda: catalog, lease=c, interval=lambda: 1.0)
            assert not await manifest.keep(c.is_leader())
            assert key_value(cluster, manifest_key) is None
            assert not c.is_leader() and c_metrics.registry.get_sample_value("redis_orchestrator_leader") == 0
            await c.aclose()
            assert key_value(cluster, key) == b.token  # neither stale instance renewed or released it
        finally:
            await b.aclose()

    try:
        asyncio.run(scenario())
    finally:
        _delete(cluster, key, manifest_key)


def test_a_leader_whose_event_loop_stalls_shows_leader_0_once_its_lease_lapsed(cluster: ChaosCluster) -> None:
    """Issue #23: a loop blocked by a call (a FIFO read, a huge YAML) renews nothing; the HTTP thread
    keeps serving /metrics. The gauge is read from the lease's clock at scrape time, so it says 0 the
    moment the lease has lapsed, not 1 until the loop comes back."""
    key = f"{{redis-orchestrator}}:leader-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        lease, metrics = _lease(key, await _topology(cluster))
        try:
            assert await lease.tick()
            assert metrics.registry.get_sample_value("redis_orchestrator_leader") == 1
            time.sleep(LEASE + 0.1)  # the loop stalls: no tick can run
            assert metrics.registry.get_sample_value("redis_orchestrator_leader") == 0
        finally:
            await lease.aclose()

    try:
        asyncio.run(scenario())
    finally:
        _delete(cluster, key)


def test_the_manifest_key_deleted_or_overwritten_is_rewritten_by_the_leader(
    clean_cluster: ChaosCluster, tmp_path: Path
) -> None:
    """Issue #23: the manifest key is reconciled like a script, every interval (one EVALSHA: the
    server compares its SHA1), not only when the catalog or the leader changes."""
    key = f"{{redis-orchestrator}}:leader-{uuid.uuid4().hex[:8]}"
    manifest_key = f"{{redis-orchestrator}}:manifest-{uuid.uuid4().hex[:8]}"
    config = write_config(
        tmp_path,
        clean_cluster.seeds[:1],
        leader={"enabled": True, "key": key, "lease": f"{LEASE}s"},
        manifest={"key": manifest_key},
    )
    try:
        with DaemonProcess(config) as daemon:
            daemon.wait_log("manifest_written", timeout=30)
            written = key_value(clean_cluster, manifest_key)
            assert written is not None and json.loads(written)["scripts"]
            _delete(clean_cluster, manifest_key)
            wait_for(lambda: key_value(clean_cluster, manifest_key) == written, 10, "the deleted manifest back")
            _set(clean_cluster, manifest_key, '{"scripts": {}}')
            wait_for(lambda: key_value(clean_cluster, manifest_key) == written, 10, "the overwritten manifest back")
            assert daemon.log().count("manifest_written") == 3
            assert " manifest_write_failed " not in daemon.log()
    finally:
        _delete(clean_cluster, key, manifest_key)


def _set(cluster: ChaosCluster, key: str, value: str) -> None:
    for node in cluster.primaries():
        with node.client() as c, contextlib.suppress(redis.ResponseError):
            c.set(key, value)
