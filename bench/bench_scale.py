"""What the daemon costs at scale: 30, 100 and 200 nodes (half primaries, half replicas) times
1,000 and 10,000 scripts, each with the daemon as a real process at the default intervals.

Per cell:
  ready   start of the process -> /readyz answers 200 (every node holds the catalog); the caches are
          flushed first, so this includes the cold load of every script on every node
  our CPU the daemon's own CPU seconds from its start to ready (imports, config, topology, loads)
  loads   node-loads per second during that start, beside the servers' own CPU for that start: every
          node's utime+stime from /proc over it, less what they burn at idle (gossip), spread over
          this machine's cores (what the servers alone needed; the daemon cannot be faster)
  CPU     the daemon's utime+stime from /proc over a steady window, as a share of one core
  RSS     the daemon's resident memory at the end of the window
  cmd/s   commands per node per second over the window, counted by the servers (INFO commandstats)
The floor, measured in the same run: a bare interpreter that imported the daemon's modules (RSS), and
per-node CPU figures at each size (the cost per node should not grow with the number of nodes).

    .venv/bin/python bench/bench_scale.py [--nodes 30,100,200] [--scripts 1000,10000] [--window 30]

A 200-node cluster of real processes needs about 2.8 GB and most of a core at idle (its gossip); it
takes a minute or two to start. The daemon's CPU is read from its own /proc entry, not the machine's.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_daemon_load import bare_interpreter_rss, commands, cpu_seconds, rss_mb
from bench_sync import make_catalog

from harness.chaos import ChaosCluster
from harness.helpers import free_port
from redis_orchestrator.devcluster.cluster import LocalNode

SETTLE = 5.0  # after ready: the first slowlog polls, threshold reads and full checks go by


def flush(cluster: ChaosCluster) -> None:
    for node in cluster.nodes:
        with node.client() as c:
            c.execute_command("SCRIPT", "FLUSH")
            c.execute_command("CONFIG", "RESETSTAT")


def load_calls(node: LocalNode) -> int:
    """SCRIPT LOAD calls on the node since the last CONFIG RESETSTAT."""
    with node.client() as c:
        return int(c.info("commandstats").get("cmdstat_script|load", {}).get("calls", 0))


def servers_cpu(cluster: ChaosCluster) -> float:
    return sum(cpu_seconds(n.pid) for n in cluster.nodes if n.pid is not None)


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def configure(directory: Path, catalog: Path, seeds: list[str], port: int) -> Path:
    text = catalog.read_text().replace("metrics: {enabled: false}", "")
    config = directory / "config.yaml"
    relative = os.path.relpath(catalog.parent, directory)
    text = text.replace("file: s", f"file: {relative}/s")
    config.write_text(
        text
        + f"\nredis: {{seeds: [{seeds[0]}], timeout: 5s}}\nmetrics: {{listen: 127.0.0.1:{port}}}\n"
        + "leader: {enabled: false}\n"
    )
    return config


def cell(cluster: ChaosCluster, catalog: Path, window: float, workdir: Path) -> dict[str, float]:
    flush(cluster)
    port = free_port()
    directory = Path(tempfile.mkdtemp(dir=workdir))
    config = configure(directory, catalog, cluster.seeds, port)
    log = directory / "daemon.log"
    idle0, idle_t0 = servers_cpu(cluster), time.monotonic()
    time.sleep(2)
    idle_rate = (servers_cpu(cluster) - idle0) / (time.monotonic() - idle_t0)
    with log.open("wb") as out:
        servers0 = servers_cpu(cluster)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "redis_orchestrator", "--config", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            while not ready(port):
                if proc.poll() is not None or time.monotonic() - started > 600:
                    raise SystemExit(f"daemon not ready:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)
            ready_s = time.monotonic() - started
            daemon_start_cpu = cpu_seconds(proc.pid)
            servers_busy = servers_cpu(cluster) - servers0 - idle_rate * ready_s
            calls = sum(load_calls(n) for n in cluster.nodes)
            time.sleep(SETTLE)
            before = sum(commands(n) for n in cluster.nodes)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(window)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            after = sum(commands(n) for n in cluster.nodes)
            rss = rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    server_s = max(0.0, servers_busy) / (os.cpu_count() or 1)
    elapsed = t1 - t0
    return {
        "ready_s": ready_s,
        "node_loads": calls,
        "loads_per_s": calls / ready_s,
        "server_bound_s": server_s,
        "daemon_start_cpu_s": daemon_start_cpu,
        "cpu_pct": 100 * (cpu1 - cpu0) / elapsed,
        "rss_mb": rss,
        "cmd_per_node_s": (after - before) / elapsed / len(cluster.nodes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="30,100,200")
    parser.add_argument("--scripts", default="1000,10000")
    parser.add_argument("--window", type=float, default=30)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    catalogs = {}
    for count in (int(c) for c in args.scripts.split(",")):
        directory = workdir / f"catalog-{count}"
        directory.mkdir()
        catalogs[count] = make_catalog(directory, count)
    rows = []
    floor = bare_interpreter_rss()
    for nodes in (int(n) for n in args.nodes.split(",")):
        print(f"== {nodes} nodes: starting the cluster", file=sys.stderr, flush=True)
        started = time.monotonic()
        with ChaosCluster(primaries=nodes // 2, replicas_per_primary=1, node_timeout_ms=15000) as cluster:
            print(f"   up in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            for count, catalog in catalogs.items():
                print(f"== {nodes} nodes x {count} scripts", file=sys.stderr, flush=True)
                result = cell(cluster, catalog, args.window, workdir)
                rows.append((nodes, count, result))
                print(f"   {result}", file=sys.stderr, flush=True)
    print()
    print(
        f"Daemon at scale (default intervals; steady window {args.window:.0f} s; bare interpreter RSS {floor:.1f} MB)"
    )
    header = (
        f"{'nodes':>5} {'scripts':>7} {'ready':>8} {'node-loads/s':>13} {'servers alone':>14} {'our CPU':>8} "
        f"{'CPU %':>6} {'CPU %/node':>10} {'RSS MB':>7} {'cmd/node/s':>10}"
    )
    print(header)
    print("-" * len(header))
    for nodes, count, r in rows:
        print(
            f"{nodes:>5} {count:>7} {r['ready_s']:>7.1f}s {r['loads_per_s']:>13,.0f} {r['server_bound_s']:>13.1f}s "
            f"{r['daemon_start_cpu_s']:>7.1f}s "
            f"{r['cpu_pct']:>6.2f} {r['cpu_pct'] / nodes:>10.4f} {r['rss_mb']:>7.1f} {r['cmd_per_node_s']:>10.2f}"
        )
    print(
        "\nservers alone: the servers' own CPU during the start (utime+stime, all nodes, less their idle "
        f"gossip) over this machine's {os.cpu_count()} cores, the floor of any cold start"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
