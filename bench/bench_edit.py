"""Live catalog edit → on every node: how long, from the moment the config file is written.

A 3+3 cluster, the daemon as a real process with default intervals (config polled every 500 ms,
reconcile every 1 s). Each run appends a new script to the catalog and writes the file; the clock
stops when all six nodes answer SCRIPT EXISTS 1 for it. Goal: within 2 s. Baseline in the same run:
the same edit followed by an explicit SIGHUP (no waiting for the poll), which shows the poll's share.

    .venv/bin/python bench/bench_edit.py [--runs 5]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # harness/, the shared test support

from harness.chaos import ChaosCluster
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.devcluster.cluster import LocalNode, free_port_pair

REPO = Path(__file__).resolve().parent.parent


def everywhere(nodes: list[LocalNode], sha: str) -> bool:
    for node in nodes:
        with node.client() as c:
            if not int(c.execute_command("SCRIPT", "EXISTS", sha)[0]):
                return False
    return True


def edit(config: Path, directory: Path, name: str) -> str:
    body = f"-- live edit {name} {time.time_ns()}\nreturn redis.call('GET', KEYS[1])\n"
    (directory / f"{name}.lua").write_text(body)
    data = yaml.safe_load(config.read_text())
    data["catalog"]["scripts"].append({"name": name, "version": 1, "file": f"{name}.lua"})
    data["catalog"]["version"] = name
    config.write_text(yaml.safe_dump(data))
    return sha1_hex(body.encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with ChaosCluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        subprocess.run(["cp", "-r", str(REPO / "examples" / "lua"), str(directory / "lua")], check=True)
        data = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())
        data["redis"]["seeds"] = cluster.seeds[:1]
        data["metrics"] = {"listen": f"127.0.0.1:{free_port_pair()}"}
        config = directory / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        log = (directory / "daemon.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "redis_orchestrator", "--config", str(config), "run"], stdout=log, stderr=log
        )
        try:
            while " ready " not in (directory / "daemon.log").read_text():
                time.sleep(0.1)
            results: dict[str, list[float]] = {"file watch": [], "SIGHUP": []}
            for run in range(args.runs):
                for mode in results:
                    time.sleep(0.7)  # land at a random point of the poll cycle
                    started = time.monotonic()
                    sha = edit(config, directory, f"edit_{mode[:4].lower()}_{run}")
                    if mode == "SIGHUP":
                        proc.send_signal(signal.SIGHUP)
                    while not everywhere(cluster.nodes, sha):
                        time.sleep(0.005)
                    results[mode].append(time.monotonic() - started)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
            log.close()
    print(f"{'edit picked up by':<20}{'median':>10}{'max':>10}   (runs: {args.runs}; goal: within 2 s)")
    for mode, times in results.items():
        print(f"{mode:<20}{statistics.median(times) * 1000:>8.0f}ms{max(times) * 1000:>8.0f}ms")


if __name__ == "__main__":
    main()
