"""What the daemon costs a cluster and a host at default intervals.

A 30-node cluster (15 primaries + 15 replicas on loopback), a catalog of 1,000 scripts, the daemon
as a real process with the default intervals (reconcile 1 s, topology 5 s, slowlog poll 1 s).
After it is ready, over a window: commands per second per node (counted by the servers' own INFO
commandstats), the daemon's CPU (utime+stime from /proc) as a share of one core, and its RSS.

Baselines measured in the same run: the same daemon enforcing the 8-script sample catalog on the
same cluster (what catalog size costs), and a bare interpreter that only imported the daemon's
modules (what Python itself costs).

    .venv/bin/python bench/bench_daemon_load.py [--window 30]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sync import make_catalog

from harness.chaos import ChaosCluster
from redis_orchestrator.devcluster.cluster import LocalNode

REPO = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# Not ours: our own measurement (INFO, and HELLO on its connections) and replication traffic
# between the nodes themselves (REPLCONF ACK every second from each replica to its primary;
# the primary's PINGs to its replicas).
NOT_OURS = {"cmdstat_info", "cmdstat_hello", "cmdstat_replconf", "cmdstat_ping"}


def command_counts(node: LocalNode) -> dict[str, int]:
    with node.client() as c:
        stats = c.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k not in NOT_OURS}


def commands(node: LocalNode) -> int:
    return sum(command_counts(node).values())


def measure(config: Path, cluster: ChaosCluster, window: float, label: str, loop: str = "auto") -> dict[str, float]:
    log = config.parent / f"{label}.log"
    env = {**os.environ, "REDIS_ORCHESTRATOR_EVENT_LOOP": loop}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "redis_orchestrator", "--config", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 120
            while " ready " not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            if " ready " not in log.read_text():
                raise SystemExit(f"{label}: daemon not ready:\n{log.read_text()[-2000:]}")
            time.sleep(3)  # let start-up work (first slowlog polls, threshold reads) pass
            before = {n.address: commands(n) for n in cluster.nodes}
            detail_before = {n.address: command_counts(n) for n in cluster.nodes[:1] + cluster.nodes[-1:]}
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(window)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            after = {n.address: commands(n) for n in cluster.nodes}
            for node in cluster.nodes[:1] + cluster.nodes[-1:]:
                now = command_counts(node)
                delta = {k: round((v - detail_before[node.address].get(k, 0)) / window, 2) for k, v in now.items()}
                print(
                    f"  {label}: {node.address} ({node.role()}): per second { ({k: v for k, v in delta.items() if v}) }"
                )
            rss = rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    elapsed = t1 - t0
    rates = [(after[a] - before[a]) / elapsed for a in before]
    return {
        "cmd_per_s_node_mean": sum(rates) / len(rates),
        "cmd_per_s_node_max": max(rates),
        "cpu_pct": 100 * (cpu1 - cpu0) / elapsed,
        "rss_mb": rss,
    }


def bare_interpreter_rss() -> float:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, redis_orchestrator.daemon.lifecycle, redis_orchestrator.daemon.slowlog,"
            " redis_orchestrator.daemon.http;"
            " time.sleep(30)",
        ]
    )
    try:
        time.sleep(3)
        return rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def write(directory: Path, seeds: list[str], scripts: list[dict[str, object]] | None, port: int) -> Path:
    if scripts is None:
        path = make_catalog(directory, 1000)
        data = yaml.safe_load(path.read_text())
    else:
        data = {"catalog": {"version": "sample", "scripts": scripts}}
        path = directory / "config.yaml"
    data["redis"] = {"seeds": seeds[:1]}
    data["metrics"] = {"listen": f"127.0.0.1:{port}"}
    path.write_text(yaml.safe_dump(data))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=30)
    parser.add_argument("--primaries", type=int, default=15)
    args = parser.parse_args()
    sample = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())["catalog"]["scripts"]
    started = time.monotonic()
    with (
        ChaosCluster(primaries=args.primaries, replicas_per_primary=1) as cluster,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"{len(cluster.nodes)}-node cluster up in {time.monotonic() - started:.1f}s")
        big_dir, small_dir = Path(tmp, "big"), Path(tmp, "small")
        big_dir.mkdir()
        small_dir.mkdir()
        for entry in sample:
            target = small_dir / entry["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((REPO / entry["file"]).read_bytes())
        small = measure(write(small_dir, cluster.seeds, sample, 19841), cluster, args.window, "sample")
        big_config = write(big_dir, cluster.seeds, None, 19842)
        big = measure(big_config, cluster, args.window, "big")
        big_stdlib = measure(big_config, cluster, args.window, "big-stdlib-loop", loop="asyncio")
        bare = bare_interpreter_rss()
    print()
    print(f"{'':38}{'cmd/s/node (mean/max)':>24}{'CPU % of a core':>18}{'RSS MB':>9}")
    rows = (
        ("daemon, 9-entry sample catalog", small),
        ("daemon, 1,000-script catalog", big),
        ("same, stdlib asyncio loop (no uvloop)", big_stdlib),
    )
    for label, row in rows:
        print(
            f"{label:<38}{row['cmd_per_s_node_mean']:>15.2f} / {row['cmd_per_s_node_max']:<6.2f}"
            f"{row['cpu_pct']:>16.2f}{row['rss_mb']:>11.1f}"
        )
    print(f"{'bare interpreter, modules imported':<38}{'-':>24}{'-':>18}{bare:>9.1f}")
    print("goals: <= 3 cmd/s/node, < 2% of one core, RSS < 80 MB")


if __name__ == "__main__":
    main()
