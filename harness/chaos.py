"""Breaking local deployments on purpose: kill -9, SIGSTOP, restarts, failovers, nodes added and
removed, slots moved. What tests and benchmarks do to a devcluster; never part of the package,
whose `run --local-cluster` only starts and stops one."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess

import redis

from redis_orchestrator.devcluster.cluster import (
    LocalCluster,
    LocalClusterError,
    LocalNode,
    release_port,
    sees_slot_served,
    serves_slot,
    wait_answers,
    wait_until,
)
from redis_orchestrator.devcluster.sentinel import LocalSentinel


def signal_node(node: LocalNode, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to a node (data node or Sentinel); after SIGKILL or SIGTERM, wait until it is gone."""
    if node.process is None:
        return
    node.process.send_signal(sig)
    if sig in (signal.SIGKILL, signal.SIGTERM):
        node.process.wait(timeout=10)


class ChaosCluster(LocalCluster):
    """A LocalCluster that can also be broken."""

    def start_with_redis_cli(self, timeout: float = 30.0) -> LocalCluster:
        """Form the cluster the way operators do, with `redis-cli --cluster create`, and return as
        soon as it exits: the roles are still settling then (a node may still think it is a primary
        for a moment), which is what a `sync` run right after cluster creation meets."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise LocalClusterError("redis-cli is not installed (apt-get install redis-tools)")
        try:
            total = self.primaries_count * (1 + self.replicas_per_primary)
            self.nodes = [self._spawn_new_node() for _ in range(total)]
            for node in self.nodes:
                self._wait_ping(node, timeout)
                node.node_id = self._myid(node)
            create = [cli, "--cluster", "create", *self.seeds, "--cluster-replicas", str(self.replicas_per_primary)]
            done = subprocess.run(
                [*create, "--cluster-yes"], capture_output=True, text=True, timeout=timeout, check=False
            )
            if done.returncode != 0:
                raise LocalClusterError(f"redis-cli --cluster create failed: {(done.stdout + done.stderr)[-1500:]}")
        except BaseException:
            self.stop()
            raise
        return self

    def move_slot(self, slot: int, target: LocalNode, timeout: float = 30.0) -> None:
        """Migrate one slot, keys and all, to `target` (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT
        NODE on both ends, as redis-cli --cluster reshard does it)."""
        source = next(n for n in self.primaries() if serves_slot(n, slot))
        with target.client() as dst, source.client() as src:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
            for node in (target, source):
                with node.client() as c:
                    c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        self._wait(
            lambda: all(sees_slot_served(n, slot, target) for n in self.nodes if n.running()),
            timeout,
            f"slot {slot} to move",
        )

    def kill(self, node: LocalNode, sig: int = signal.SIGKILL) -> None:
        signal_node(node, sig)

    def freeze(self, node: LocalNode) -> None:
        self.kill(node, signal.SIGSTOP)

    def thaw(self, node: LocalNode) -> None:
        self.kill(node, signal.SIGCONT)

    def restart(self, node: LocalNode, timeout: float = 30.0, wait_healthy: bool = True) -> None:
        """Kill -9 and start the node again on its port and directory (it keeps its nodes.conf)."""
        if node.running():
            self.kill(node)
        node.process = self._launch(node)
        self._wait_ping(node, timeout)
        if wait_healthy:
            self.wait_healthy(timeout)

    def add_node(self, replica_of: LocalNode | None = None, timeout: float = 30.0) -> LocalNode:
        """Start a new node, MEET it into the cluster; make it a replica of `replica_of` if given,
        otherwise leave it as a primary without slots."""
        node = self._spawn_new_node()
        self.nodes.append(node)
        self._wait_ping(node, timeout)
        node.node_id = self._myid(node)
        anchor = next(n for n in self.nodes if n is not node and n.running())
        with anchor.client() as c:
            c.execute_command("CLUSTER", "MEET", node.host, node.port)
        self._wait(lambda: self._all_know_each_other(), timeout, f"{node.address} to join")
        if replica_of is not None:
            self._replicate(node, replica_of, timeout)
        self.wait_healthy(timeout)
        return node

    def remove_node(self, node: LocalNode, timeout: float = 30.0) -> None:
        """Stop the node and make every other node FORGET it (the node must hold no slots)."""
        self._terminate(node)
        self.nodes.remove(node)
        for other in self.nodes:
            if other.running():
                with other.client() as c, contextlib.suppress(redis.ResponseError):
                    c.execute_command("CLUSTER", "FORGET", node.node_id)
        release_port(node.port)
        self.wait_healthy(timeout)

    def failover(self, replica: LocalNode, timeout: float = 30.0) -> None:
        """Coordinated CLUSTER FAILOVER on a replica; returns once it is a primary."""
        with replica.client() as c:
            c.execute_command("CLUSTER", "FAILOVER")
        self._wait(lambda: replica.role() == "primary", timeout, f"{replica.address} to be promoted")
        self.wait_healthy(timeout)


class ChaosSentinel(LocalSentinel):
    """A LocalSentinel that can also be broken."""

    def kill(self, node: LocalNode, sig: int = signal.SIGKILL) -> None:
        signal_node(node, sig)

    def restart(self, node: LocalNode, timeout: float = 30.0) -> None:
        """Kill -9 (if running) and start again on the same port with its config file as it is now
        (Sentinel rewrites a data node's replicaof there when it reconfigures one that is up; a
        primary killed before a failover therefore comes back as a primary: a stray one)."""
        if node.running():
            self.kill(node)
        is_sentinel = node in self.sentinels
        node.process = self._spawn(node, sentinel=is_sentinel)
        wait_answers(node, self.binary, timeout, log_name="sentinel.log" if is_sentinel else "redis.log")

    def add_replica(self, timeout: float = 30.0) -> LocalNode:
        """A new data node told `REPLICAOF` the current primary; returns once its link is up."""
        primary = self.primary()
        node = self._new_data_node(replica_of=None)
        wait_answers(node, self.binary, timeout)
        with node.client() as c:
            c.execute_command("REPLICAOF", primary.host, primary.port)
        wait_until(lambda: self.link_up(node), timeout, f"{node.address} to sync from {primary.address}")
        return node

    def failover(self, via: LocalNode | None = None) -> None:
        """`SENTINEL FAILOVER` (a graceful failover, no agreement asked) on `via` or the first
        running Sentinel. Returns at once: wait for its outcome with wait_primary_not()."""
        sentinel = via or next(s for s in self.sentinels if s.running())
        with self.sentinel_client(sentinel) as c:
            c.execute_command("SENTINEL", "FAILOVER", self.service_name)
