"""Sync 1,000 distinct scripts onto a cold 3+3 cluster; baseline: redis-py's RedisCluster.script_load.

redis-py's cluster `script_load` sends SCRIPT LOAD to every primary, one script at a time (and never
to replicas), so it does 3 node-loads per call; we do 6 per script (primaries and replicas), one
SCRIPT EXISTS + one pipelined batch per node, all nodes in parallel. The figure compared is
node-loads per second, measured in the same run on the same cluster, caches flushed before each run.

Also counts the commands each node receives in a reconcile pass when nothing changed (goal: 1).

    .venv/bin/python bench/bench_sync.py [--scripts 1000] [--rounds 3]
    .venv/bin/python bench/bench_sync.py --whole-process --scripts 5000

--whole-process times what a user runs, each as its own process from start to exit: `redis-orchestrator
sync` (interpreter start, imports, config and catalog, discovery, the loads) against a Python program
that imports redis-py, reads the same files and calls RedisCluster.script_load for each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # harness/, the shared test support

from harness.chaos import ChaosCluster
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.reconcile.settle import one_shot_passes, settle
from redis_orchestrator.topology.discovery import discover
from redis_orchestrator.topology.model import Topology
from redis_orchestrator.wire.connections import Connector


def make_catalog(directory: Path, count: int) -> Path:
    lines = ["catalog:", '  version: "bench"', "  scripts:"]
    for i in range(count):
        body = (
            f"-- bench script {i}: capped increment with a per-script constant\n"
            "local current = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
            f"local cap = tonumber(ARGV[1]) or {1000 + i}\n"
            "if current >= cap then return {current, 0} end\n"
            "local value = redis.call('INCRBY', KEYS[1], 1)\n"
            f"return {{value, {i}}}\n"
        )
        (directory / f"s{i}.lua").write_text(body)
        lines.append(f"    - {{name: s{i}, version: 1, file: s{i}.lua}}")
    path = directory / "config.yaml"
    path.write_text("\n".join(lines) + "\nmetrics: {enabled: false}\n")
    return path


def flush_all(cluster: ChaosCluster) -> None:
    for node in cluster.nodes:
        with node.client() as c:
            c.execute_command("SCRIPT", "FLUSH")


def cached(cluster: ChaosCluster) -> int:
    total = 0
    for node in cluster.nodes:
        with node.client() as c:
            total += int(c.info("memory")["number_of_cached_scripts"])
    return total


def total_commands(node: object) -> dict[str, int]:
    with node.client() as c:  # type: ignore[attr-defined]
        stats = c.info("commandstats")
    return {k: int(v["calls"]) for k, v in stats.items()}


async def ours(config_path: Path, seeds: list[str]) -> tuple[float, int]:
    config = load_config(config_path, seeds)
    connector = Connector(config.start.redis)
    try:
        started = time.perf_counter()
        topology = await discover(connector, seeds)
        run = one_shot_passes(connector, config.catalog, write=True)

        async def same() -> Topology:
            return topology

        reports = (await settle(run, topology, same, max_rounds=1)).reports.values()
        elapsed = time.perf_counter() - started
    finally:
        await connector.aclose()
    loads = sum(len(r.loaded) for r in reports)
    assert all(r.in_sync for r in reports), [r.error for r in reports]
    return elapsed, loads


def theirs(sources: list[str], seed: str) -> tuple[float, int]:
    host, port = seed.rsplit(":", 1)
    rc = RedisCluster(host=host, port=int(port))
    try:
        started = time.perf_counter()
        for source in sources:
            rc.script_load(source)
        elapsed = time.perf_counter() - started
        primaries = len(rc.get_primaries())
    finally:
        rc.close()
    return elapsed, len(sources) * primaries


_THEIRS_PROGRAM = """
import sys
from pathlib import Path
from redis.cluster import RedisCluster
host, port, directory, count = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
rc = RedisCluster(host=host, port=port)
for i in range(count):
    rc.script_load((directory / f"s{i}.lua").read_text())
print(len(rc.get_primaries()) * count)
rc.close()
"""


def whole_process(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, ChaosCluster(primaries=3, replicas_per_primary=1) as cluster:
        directory = Path(tmp)
        config_path = make_catalog(directory, args.scripts)
        host, port = cluster.seeds[0].rsplit(":", 1)
        ours_rates, theirs_rates = [], []
        for round_ in range(args.rounds):
            flush_all(cluster)
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _THEIRS_PROGRAM, host, port, str(directory), str(args.scripts)],
                capture_output=True,
                text=True,
                check=True,
            )
            t_elapsed, t_loads = time.perf_counter() - started, int(done.stdout.strip())
            flush_all(cluster)
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "redis_orchestrator",
                    "--config",
                    str(config_path),
                    "--seed",
                    cluster.seeds[0],
                    "sync",
                ],
                capture_output=True,
                check=True,
            )
            o_elapsed, o_loads = time.perf_counter() - started, len(cluster.nodes) * args.scripts
            assert cached(cluster) == len(cluster.nodes) * (args.scripts + 1)  # + our cache marker
            theirs_rates.append(t_loads / t_elapsed)
            ours_rates.append(o_loads / o_elapsed)
            print(
                f"round {round_ + 1}: redis-py process {t_loads} node-loads in {t_elapsed:.2f}s | "
                f"redis-orchestrator sync process {o_loads} node-loads in {o_elapsed:.2f}s"
            )
        o, t = statistics.median(ours_rates), statistics.median(theirs_rates)
        print()
        print(f"whole processes, {args.scripts} scripts, node-loads/s (median of {args.rounds})")
        print(f"{'python + redis-py RedisCluster.script_load loop':<50}{t:>12,.0f}   (primaries only)")
        print(f"{'redis-orchestrator sync':<50}{o:>12,.0f}   (primaries + replicas)")
        print(f"{'ratio':<50}{o / t:>12.1f}x  (goal >= 5x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scripts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--whole-process", action="store_true", help="time both as processes, start to exit")
    args = parser.parse_args()
    if args.whole_process:
        whole_process(args)
        return
    with tempfile.TemporaryDirectory() as tmp, ChaosCluster(primaries=3, replicas_per_primary=1) as cluster:
        directory = Path(tmp)
        config_path = make_catalog(directory, args.scripts)
        sources = [(directory / f"s{i}.lua").read_text() for i in range(args.scripts)]
        ours_rates, theirs_rates = [], []
        for round_ in range(args.rounds):
            flush_all(cluster)
            t_elapsed, t_loads = theirs(sources, cluster.seeds[0])
            theirs_rates.append(t_loads / t_elapsed)
            after_theirs = cached(cluster)
            flush_all(cluster)
            o_elapsed, o_loads = asyncio.run(ours(config_path, cluster.seeds))
            ours_rates.append(o_loads / o_elapsed)
            after_ours = cached(cluster)
            print(
                f"round {round_ + 1}: redis-py {t_loads} node-loads in {t_elapsed:.3f}s "
                f"({t_loads / t_elapsed:,.0f}/s; {after_theirs} scripts cached cluster-wide) | "
                f"orchestrator {o_loads} node-loads in {o_elapsed:.3f}s "
                f"({o_loads / o_elapsed:,.0f}/s; {after_ours} cached)"
            )
        # Steady state: a pass when nothing changed, counted by the servers themselves.
        before = {n.address: total_commands(n) for n in cluster.nodes}
        asyncio.run(ours(config_path, cluster.seeds))
        per_node = {}
        for node in cluster.nodes:
            after = total_commands(node)
            delta = {k: after[k] - before[node.address].get(k, 0) for k in after}
            # Exclude our own measurement (INFO) and connection set-up (HELLO, CLIENT SETNAME) and
            # the discovery on the seed (CLUSTER SHARDS): what remains is the reconcile pass.
            skip = {"cmdstat_info", "cmdstat_hello", "cmdstat_client|setname", "cmdstat_cluster|shards"}
            per_node[node.address] = {k: v for k, v in delta.items() if v and k not in skip}
        o, t = statistics.median(ours_rates), statistics.median(theirs_rates)
        print()
        print(f"{'':28}{'node-loads/s (median of ' + str(args.rounds) + ')':>34}")
        print(f"{'redis-py RedisCluster.script_load':<36}{t:>18,.0f}   (primaries only)")
        print(f"{'redis-orchestrator sync':<36}{o:>18,.0f}   (primaries + replicas)")
        print(f"{'ratio':<36}{o / t:>18.1f}x  (goal >= 8x)")
        print()
        print("commands per node in a reconcile pass with nothing to do (goal: 1):")
        for address, delta in per_node.items():
            print(f"  {address:<22} {sum(delta.values())}  {delta}")
        _ = redis


if __name__ == "__main__":
    main()
