"""Faults beyond a clean kill -9 (issue #21), each asserting what a user sees: a partition between the
daemon and one node (packets dropped, not refused), seeds cut off at start, the leader cut off from
the lease's shard or frozen past its lease, links slowed to 200 ms, a frozen node beside slow-loris
clients of the metrics port.

The daemon runs in a network namespace of the test's own where every node answers at its own
address through a proxy link (harness/faults.py's Mirror): a DROP rule there partitions the daemon
from one node, a toxic slows a link, and the cluster itself, the test's own clients and any other
daemon see nothing of it. Latencies are printed (`-s`), never asserted: the figures of
docs/operations.md's failure table come from these runs.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.faults import Mirror, SlowLoris, namespaces_unavailable
from harness.helpers import (
    DaemonProcess,
    all_hold,
    catalog_shas,
    free_port,
    http_get,
    present,
    primary_serving,
    scrape,
    wait_for,
    write_config,
)
from redis_orchestrator.devcluster.cluster import LocalNode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

RECONCILE = 1.0  # write_config's reconcile_interval
TIMEOUT = 1.0  # write_config's redis.timeout


@pytest.fixture
def mirror(clean_cluster: ChaosCluster) -> Iterator[Mirror]:
    """The daemon's namespace (skipped, saying why, where namespaces cannot be made: not root)."""
    why_not = namespaces_unavailable()
    if why_not is not None:
        pytest.skip(f"partitions and proxies: {why_not}")
    with Mirror(clean_cluster) as made:
        yield made


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Daemons started by a test; each stopped at the end even when the test fails."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()
    for daemon in started:  # no fault may reach a traceback: a task restarted by its supervisor is a bug
        assert "Traceback" not in daemon.log() and " node_task_failed " not in daemon.log(), daemon.log()[-3000:]


def config_with_metrics(directory: Path, seeds: list[str], **sections: object) -> tuple[Path, int]:
    port = free_port()
    metrics = {"enabled": True, "listen": f"127.0.0.1:{port}"}
    return write_config(directory, seeds, metrics=metrics, **sections), port


def start_inside(
    mirror: Mirror, daemons: list[DaemonProcess], directory: Path, cluster: ChaosCluster
) -> tuple[DaemonProcess, int, set[str]]:
    """A daemon in the mirror's namespace, its metrics reachable outside, ready: (it, metrics port, SHAs)."""
    config, port = config_with_metrics(directory, cluster.seeds[:1])
    mirror.expose(port)
    daemon = mirror.namespaced(config)
    daemons.append(daemon)
    daemon.wait_log(" ready ", timeout=60)
    return daemon, port, catalog_shas(config)


def lines(daemon: DaemonProcess, event: str, node: LocalNode | None = None) -> list[str]:
    return daemon.events(event, node.address if node is not None else None)


def pass_cost(port: int, seconds: float) -> tuple[int, float]:
    """Reconcile passes of every node over `seconds`, and their mean duration (the daemon's histogram)."""

    def read() -> tuple[float, float]:
        count = scrape(port, "redis_orchestrator_reconcile_duration_seconds_count")
        total = scrape(port, "redis_orchestrator_reconcile_duration_seconds_sum")
        return count or 0.0, total or 0.0

    count, total = read()
    time.sleep(seconds)
    later_count, later_total = read()
    passes = int(later_count - count)
    return passes, (later_total - total) / max(passes, 1)


def flush(node: LocalNode) -> None:
    with node.client() as c:
        c.execute_command("SCRIPT", "FLUSH")


def test_a_partition_between_the_daemon_and_one_node(
    clean_cluster: ChaosCluster, mirror: Mirror, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    """Packets to and from one node vanish (no RST, no refusal): the node is shown down after its
    timeout, the other nodes are repaired as before, and once the link heals the node is whole
    again at once, although it was flushed while cut off."""
    cluster = clean_cluster
    daemon, port, shas = start_inside(mirror, daemons, tmp_path, cluster)
    cut, other = cluster.replicas()[0], cluster.primaries()[1]

    mirror.partition(cut)
    seen_down = wait_for(lambda: lines(daemon, "node_down", cut), 15, f"{cut} shown down")
    repairs_before = len(lines(daemon, "repaired", other))
    flush(other)
    repaired = wait_for(lambda: present(other, shas) == shas, 15, f"{other} repaired", interval=0.005)
    flush(cut)  # the test reaches it; the daemon does not
    assert scrape(port, "redis_orchestrator_node_up", node=cut.address, role="replica") == 0
    assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200  # every node it can reach is whole

    mirror.heal(cut)
    whole = wait_for(lambda: present(cut, shas) == shas, 15, f"{cut} whole after the heal", interval=0.005)
    print(
        f"\npartition: {cut} down {seen_down:.2f} s after the cut (timeout {TIMEOUT} s, interval {RECONCILE} s); "
        f"a flush of {other} repaired {repaired * 1000:.0f} ms later meanwhile; {cut} whole "
        f"{whole * 1000:.0f} ms after the heal"
    )
    daemon.wait_log(f"node_recovered node={cut.address}")
    assert len(lines(daemon, "node_down", cut)) == 1
    assert len(lines(daemon, "node_recovered", cut)) == 1
    assert len(lines(daemon, "repaired", other)) == repairs_before + 1
    assert not lines(daemon, "node_down", other)
    assert all_hold(cluster, shas)
    assert daemon.alive()


def test_a_daemon_whose_seeds_are_cut_off_finds_the_cluster_through_any_that_answers(
    clean_cluster: ChaosCluster, mirror: Mirror, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    """Two seeds, both cut off at start (packets dropped: each connect waits out its timeout): the
    daemon says so once and keeps asking each seed on its own; the first one that answers serves,
    without waiting for the other's timeout."""
    cluster = clean_cluster
    first, second = cluster.primaries()[0], cluster.primaries()[1]
    mirror.partition(first)
    mirror.partition(second)
    daemon = mirror.namespaced(write_config(tmp_path, [first.address, second.address]))
    daemons.append(daemon)
    daemon.wait_log(" no_seed_reachable ", timeout=15)
    time.sleep(2 * TIMEOUT)
    mirror.heal(second)
    found = daemon.wait_log(" topology_available ", timeout=10)
    daemon.wait_log(" ready ", timeout=30)
    print(f"\nseeds cut off: the cluster found {found * 1000:.0f} ms after the second seed's link healed")
    assert len(lines(daemon, "no_seed_reachable")) == 1
    assert f"answered_by={second.address}" in lines(daemon, "topology_available")[0]
    mirror.heal(first)
    assert daemon.alive()


# ---------------------------------------------------------------------------------------- the leader

LEASE = 2.0


def leader_config(directory: Path, cluster: ChaosCluster, key: str, manifest: str) -> tuple[Path, int]:
    directory.mkdir()
    return config_with_metrics(
        directory,
        cluster.seeds[:1],
        leader={"enabled": True, "key": key, "lease": f"{LEASE}s"},
        manifest={"key": manifest},
    )


def gauges(ports: list[int]) -> list[float | None]:
    return [scrape(port, "redis_orchestrator_leader") for port in ports]


def sample_until_leads(ports: list[int], new: int, within: float) -> tuple[float, int]:
    """Read the instances' leader gauges every 50 ms until ports[new] shows 1: (seconds it took,
    readings where two showed 1)."""
    started = time.monotonic()
    both = 0
    while time.monotonic() - started < within:
        values = gauges(ports)
        both += values.count(1.0) > 1
        if values[new] == 1.0:
            return time.monotonic() - started, both
        time.sleep(0.05)
    raise AssertionError(f"no handover within {within} s: gauges {gauges(ports)}")


def test_the_leader_partitioned_from_the_lease_shard_hands_over(
    clean_cluster: ChaosCluster, mirror: Mirror, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    """The leader (in the namespace) loses the lease's shard, nothing else: it steps down on its own
    clock before the key can expire, the other instance takes the lapsed lease, never both at once;
    healed, the old leader stays a follower."""
    key = f"{{redis-orchestrator}}:leader-{time.monotonic_ns()}"
    manifest = "{redis-orchestrator}:manifest-faults"
    config_a, port_a = leader_config(tmp_path / "a", clean_cluster, key, manifest)
    config_b, port_b = leader_config(tmp_path / "b", clean_cluster, key, manifest)
    mirror.expose(port_a)
    a = mirror.namespaced(config_a)
    daemons.append(a)
    a.wait_log(" leader_acquired ", timeout=30)
    b = DaemonProcess(config_b)
    daemons.append(b)
    b.wait_log(" ready ", timeout=30)
    assert gauges([port_a, port_b]) == [1.0, 0.0]

    lease_shard = primary_serving(clean_cluster, key)
    mirror.partition(lease_shard)
    took, both = sample_until_leads([port_a, port_b], 1, LEASE + 10)
    a.wait_log(" leader_lost ")
    gap = b.stamp("leader_acquired") - a.stamp("leader_lost")
    print(
        f"\nleader partitioned from the lease's shard (lease {LEASE} s): the other leads {took:.2f} s later; "
        f"no leader for {gap * 1000:.0f} ms (old one's leader_lost -> new one's leader_acquired)"
    )
    assert both == 0
    mirror.heal(lease_shard)
    time.sleep(LEASE)
    assert gauges([port_a, port_b]) == [0.0, 1.0]
    assert a.log().count(" leader_acquired ") == 1 and b.log().count(" leader_acquired ") == 1


def test_a_leader_frozen_past_its_lease_is_replaced_and_knows_it_at_once_on_resume(
    clean_cluster: ChaosCluster, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    """SIGSTOP of the leader for twice its lease (a GC pause, a VM freeze), then SIGCONT: the other
    instance leads within lease + L/10; the thawed one shows leader 0 at its first scrape, and acts
    on nothing (no manifest write: the server fences it, see test_leader.py)."""
    key = f"{{redis-orchestrator}}:leader-{time.monotonic_ns()}"
    manifest = "{redis-orchestrator}:manifest-faults"
    config_a, port_a = leader_config(tmp_path / "a", clean_cluster, key, manifest)
    config_b, port_b = leader_config(tmp_path / "b", clean_cluster, key, manifest)
    a = DaemonProcess(config_a)
    daemons.append(a)
    a.wait_log(" leader_acquired ", timeout=30)
    b = DaemonProcess(config_b)
    daemons.append(b)
    b.wait_log(" ready ", timeout=30)

    a.process.send_signal(signal.SIGSTOP)
    try:
        took, _ = sample_until_leads([port_b], 0, LEASE + 10)  # the frozen one answers no scrape
        time.sleep(max(0.0, 2 * LEASE - took))
        written_before = a.log().count("manifest_written")
    finally:
        a.process.send_signal(signal.SIGCONT)
    resumed = scrape(port_a, "redis_orchestrator_leader")
    print(f"\nleader frozen {2 * LEASE:.0f} s: the other leads {took:.2f} s after the SIGSTOP (lease {LEASE} s)")
    assert resumed == 0.0
    a.wait_log(" leader_lost ")
    time.sleep(LEASE)
    assert gauges([port_a, port_b]) == [0.0, 1.0]
    assert a.log().count("manifest_written") == written_before
    assert a.alive() and b.alive()


# ---------------------------------------------------------------------------------------- slow links


def test_links_slowed_to_200_ms_converge_without_a_false_down(
    clean_cluster: ChaosCluster, mirror: Mirror, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    """Every link between the daemon and a node pays 200 ms +- 50 ms per round trip (100 +- 25 ms
    each way): the daemon converges, shows no node down, /readyz says ready only once every node
    is whole, and a pass costs one round trip."""
    cluster = clean_cluster
    for link in mirror.links.values():
        link.toxics.latency, link.toxics.jitter = 0.1, 0.025
    daemon, port, shas = start_inside(mirror, daemons, tmp_path, cluster)
    assert all_hold(cluster, shas)
    slow = pass_cost(port, 3 * RECONCILE)
    victim = cluster.primaries()[0]
    flush(victim)
    repaired = wait_for(lambda: present(victim, shas) == shas, 15, f"{victim} repaired", interval=0.005)
    for link in mirror.links.values():
        link.toxics.latency, link.toxics.jitter = 0.0, 0.0
    time.sleep(RECONCILE)  # passes already under way still pay the latency
    baseline = pass_cost(port, 3 * RECONCILE)
    print(
        f"\nlinks at 200 +- 50 ms: a pass costs {slow[1] * 1000:.0f} ms ({slow[0]} passes; without the "
        f"latency, same run: {baseline[1] * 1000:.1f} ms, {baseline[0]} passes); a flush repaired "
        f"{repaired * 1000:.0f} ms later"
    )
    assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200
    for node in cluster.nodes:
        assert scrape(port, "redis_orchestrator_node_up", node=node.address, role=node.role()) == 1
    assert not lines(daemon, "node_down") and not lines(daemon, "load_failed")
    assert daemon.alive()


# ---------------------------------------------------------------------------------------- a frozen node, a slow loris


def test_a_frozen_node_and_a_slow_loris_on_the_metrics_port_at_once(
    clean_cluster: ChaosCluster, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    """A replica frozen (SIGSTOP) while 16 clients hold the metrics port with requests they never
    finish: the other nodes are repaired as usual, and scrapes are answered."""
    cluster = clean_cluster
    config, port = config_with_metrics(tmp_path, cluster.seeds[:1])
    shas = catalog_shas(config)
    daemon = DaemonProcess(config)
    daemons.append(daemon)
    daemon.wait_log(" ready ", timeout=30)
    frozen, victim = cluster.replicas()[0], cluster.primaries()[0]
    repaired = []
    with SlowLoris("127.0.0.1", port, count=16, every=0.5):
        cluster.freeze(frozen)
        try:
            daemon.wait_log(f"node_down node={frozen.address}", timeout=15)
            for _ in range(2):
                flush(victim)
                repaired.append(wait_for(lambda: present(victim, shas) == shas, 15, f"{victim} repaired", 0.005))
                status, _, body = http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                assert status == 200 and "redis_orchestrator_node_up" in body
        finally:
            cluster.thaw(frozen)
    print(f"\nfrozen node + slow loris: flushes repaired in {', '.join(f'{r * 1000:.0f}' for r in repaired)} ms")
    daemon.wait_log(f"node_recovered node={frozen.address}", timeout=15)
    cluster.wait_healthy()
    assert len(lines(daemon, "node_down", frozen)) == 1
    assert all_hold(cluster, shas)
    assert daemon.alive()
