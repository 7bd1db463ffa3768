"""Soak: two daemon instances beside a 3+3 cluster under constant churn for half an hour, with their
RSS, open files and asyncio tasks sampled and their slopes reported (goal: flat), and EVALSHA-only
clients on every node counting NOSCRIPT outside the fault windows (goal: 0). Not run in CI.

    taskset -c 1 nice .venv/bin/python bench/bench_soak.py [--minutes 30] [--server PATH] [--every 3]

Run it on one core (taskset) on a shared machine: the cluster, both daemons and the clients all
inherit it. Every `--every` seconds one event, in turn:

  restart    kill -9 of a node, 0.3 s down, started again on its port and directory
  flush      SCRIPT FLUSH on a node
  edit       the catalog's churn script rewritten (a new SHA every time: the file watch reloads)
  failover   CLUSTER FAILOVER on a replica (one event in six)

Each event opens a *fault window* on its node, closed when the bench sees the node whole again
(every catalog SHA present); a NOSCRIPT inside one is the fault, outside one a bug. Failovers open
a window on both nodes of the shard. The clients call EVALSHA_RO (after READONLY) of every catalog
script but the churn one, on their node, 50 rounds a second.

Sampled every 10 s per daemon: RSS and open files (/proc), asyncio tasks (the daemon runs under a
probe, `--as-daemon`, that counts them on its own loop). Slopes: least squares over the samples
after the first 2 minutes (warm-up), per hour. The baseline, in the same run: the first sample
after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.chaos import ChaosCluster
from harness.faults import when_whole
from harness.helpers import DaemonProcess, EvalshaOnlyClient, catalog_shas, free_port, local_key, write_config
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.devcluster.cluster import LocalNode, redis_server_binary, server_version

WARMUP = 120.0
SAMPLE_EVERY = 10.0
TASKS_FILE = "SOAK_TASKS_FILE"
REPO = Path(__file__).resolve().parent.parent
CHURN = "lua/soak/churn.lua"


# ---------------------------------------------------------------------------------------- the probe


def run_as_daemon(argv: list[str]) -> int:
    """`redis-orchestrator ... run` in this process, its asyncio task count appended to
    $SOAK_TASKS_FILE every SAMPLE_EVERY s (`<unix time> <tasks>`), counted on its own loop."""
    from redis_orchestrator import cli
    from redis_orchestrator.daemon import service

    loops: list[asyncio.AbstractEventLoop] = []
    make = service._loop_factory() or asyncio.new_event_loop

    def recorded() -> asyncio.AbstractEventLoop:
        loops.append(make())
        return loops[-1]

    service._loop_factory = lambda: recorded  # type: ignore[assignment]

    async def count() -> int:
        return len(asyncio.all_tasks())

    def sample() -> None:
        path = Path(os.environ[TASKS_FILE])
        while True:
            time.sleep(SAMPLE_EVERY)
            if loops and not loops[0].is_closed():
                with contextlib.suppress(Exception):
                    tasks = asyncio.run_coroutine_threadsafe(count(), loops[0]).result(timeout=5)
                    with path.open("a") as out:
                        out.write(f"{time.time():.1f} {tasks}\n")

    threading.Thread(target=sample, name="soak tasks probe", daemon=True).start()
    return cli.main(argv[argv.index("redis_orchestrator") + 1 :])


# ---------------------------------------------------------------------------------------- the soak


@dataclass
class Instance:
    daemon: DaemonProcess
    tasks_file: Path
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # time, RSS MB, open files

    def sample(self) -> None:
        pid = self.daemon.process.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        files = len(os.listdir(f"/proc/{pid}/fd"))
        self.samples.append((time.time(), rss_kb / 1024, files))

    def tasks(self) -> list[tuple[float, float]]:
        if not self.tasks_file.exists():
            return []
        pairs = (line.split() for line in self.tasks_file.read_text().splitlines() if line.strip())
        return [(float(t), float(n)) for t, n in pairs]


@dataclass
class Window:
    node: str
    start: float
    end: float = float("inf")


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len({t for t, _ in points}) < 2:  # linear_regression needs two distinct times
        return 0.0
    times, values = zip(*points, strict=True)
    return statistics.linear_regression(times, values).slope * 3600


class Soak:
    def __init__(self, cluster: ChaosCluster, directory: Path, every: float) -> None:
        self.cluster = cluster
        self.directory = directory
        self.every = every
        self.windows: list[Window] = []
        self.events: dict[str, int] = {}
        self.instances: list[Instance] = []
        self.clients: dict[str, EvalshaOnlyClient] = {}
        self.edits = 0

    def start(self) -> None:
        sample = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())["catalog"]["scripts"]
        homes = []
        for name in ("a", "b"):
            home = self.directory / name
            home.mkdir()
            config = write_config(  # copies the sample lua/ beside it
                home,
                self.cluster.seeds[:2],
                scripts=[*sample, {"name": "churn", "version": 1, "file": CHURN}],
                metrics={"enabled": True, "listen": f"127.0.0.1:{free_port()}"},
                leader={"enabled": True, "key": "{redis-orchestrator}:leader", "lease": "5s"},
                manifest={"key": "{redis-orchestrator}:manifest"},
            )
            (home / CHURN).parent.mkdir()
            (home / CHURN).write_text("-- edit 0\nreturn 1\n")
            tasks = home / "tasks.txt"
            daemon = DaemonProcess(
                config, prefix=[sys.executable, __file__, "--as-daemon"], env={TASKS_FILE: str(tasks)}
            )
            self.instances.append(Instance(daemon, tasks))
            homes.append(home)
        for instance in self.instances:
            instance.daemon.wait_log(" ready ", timeout=60)
        self.shas = catalog_shas(homes[0] / "config.yaml") - {sha1_hex((homes[0] / CHURN).read_bytes())}
        for node in self.cluster.nodes:
            client = EvalshaOnlyClient(node=node, shas=sorted(self.shas), key=local_key(node), pause=0.02)
            self.clients[node.address] = client.start()

    def stop(self) -> None:
        for client in self.clients.values():
            client.stop()
        for instance in self.instances:
            instance.daemon.stop()

    # ------------------------------------------------------------------ events

    def event(self, index: int) -> None:
        kind = "failover" if index % 6 == 5 else ("restart", "flush", "edit")[index % 3]
        self.events[kind] = self.events.get(kind, 0) + 1
        node = random.choice([n for n in self.cluster.nodes if n.running()])
        if kind == "restart":
            window = self._open(node)
            self.cluster.kill(node)
            time.sleep(0.3)
            self.cluster.restart(node, wait_healthy=False)
            self._close_when_whole(window, node)
            self.cluster.wait_healthy(60)
        elif kind == "flush":
            window = self._open(node)
            with node.client() as c:
                c.execute_command("SCRIPT", "FLUSH")
            self._close_when_whole(window, node)
        elif kind == "edit":
            self.edits += 1
            for instance in self.instances:
                churn = instance.daemon.log_path.parent / CHURN
                churn.write_text(f"-- edit {self.edits}\nreturn 1\n")
        else:
            replica = random.choice(self.cluster.replicas())
            primary = next(p for p in self.cluster.primaries() if replica in self.cluster.replicas_of(p))
            windows = [self._open(replica), self._open(primary)]
            self.cluster.failover(replica, timeout=60)
            for window, member in zip(windows, (replica, primary), strict=True):
                self._close_when_whole(window, member)

    def _open(self, node: LocalNode) -> Window:
        window = Window(node.address, time.monotonic())
        self.windows.append(window)
        return window

    def _close_when_whole(self, window: Window, node: LocalNode, timeout: float = 30) -> None:
        _pong, whole = when_whole(node, self.shas, time.monotonic() + timeout)
        if whole is None:
            print(f"   !! {node.address} not whole {timeout:.0f} s after the event", flush=True)
        else:
            window.end = whole + 0.05  # the client's call may be in flight

    def noscript(self) -> tuple[int, int, int]:
        """(calls, NOSCRIPT inside fault windows, NOSCRIPT outside any)."""
        inside = outside = calls = 0
        for address, client in self.clients.items():
            calls += client.calls
            mine = [w for w in self.windows if w.node == address]
            for at in client.noscript_times:
                if any(w.start <= at <= w.end for w in mine):
                    inside += 1
                else:
                    outside += 1
        return calls, inside, outside


def soak(binary: str, minutes: float, every: float) -> None:
    print(f"== {server_version(binary)}: {minutes:.0f} min, one event every {every:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, ChaosCluster(server=binary) as cluster:
        run = Soak(cluster, Path(tmp), every)
        run.start()
        started = time.monotonic()
        next_sample = next_event = next_report = time.monotonic()
        index = 0
        try:
            while time.monotonic() - started < minutes * 60:
                now = time.monotonic()
                if now >= next_sample:
                    for instance in run.instances:
                        instance.sample()
                    next_sample = now + SAMPLE_EVERY
                if now >= next_event:
                    run.event(index)
                    index += 1
                    next_event = max(time.monotonic(), next_event + every)
                if now >= next_report:
                    calls, inside, outside = run.noscript()
                    rss = ", ".join(f"{i.samples[-1][1]:.1f} MB" for i in run.instances if i.samples)
                    print(
                        f"   {(now - started) / 60:5.1f} min: {index} events, RSS {rss}, {calls} calls, "
                        f"NOSCRIPT {inside} in fault windows / {outside} outside",
                        flush=True,
                    )
                    next_report = now + 60
                time.sleep(0.05)
        finally:
            alive = [i.daemon.alive() for i in run.instances]
            run.stop()
        report(run, alive)


def report(run: Soak, alive: list[bool]) -> None:
    calls, inside, outside = run.noscript()
    print(f"\nevents: {run.events}; daemons alive at the end: {alive}")
    print(f"EVALSHA_RO calls: {calls}; NOSCRIPT inside fault windows {inside}, outside {outside} (goal 0)")
    for name, instance in zip("ab", run.instances, strict=True):
        begin = instance.samples[0][0] + WARMUP
        kept = [s for s in instance.samples if s[0] >= begin]
        tasks = [t for t in instance.tasks() if t[0] >= begin]
        if not kept:
            print(f"instance {name}: no samples after the warm-up")
            continue
        first, last = _window(kept, 0, 300), _window(kept, -300, None)
        print(
            f"instance {name}: medians of the first / last 5 minutes after the warm-up: RSS "
            f"{_median(first, 1):.1f} / {_median(last, 1):.1f} MB, open files {_median(first, 2):.0f} / "
            f"{_median(last, 2):.0f} (max {max(s[2] for s in last)})"
        )
        print(
            f"instance {name}: RSS {kept[0][1]:.1f} -> {kept[-1][1]:.1f} MB, slope "
            f"{slope_per_hour([(t, r) for t, r, _ in kept]):+.2f} MB/h; open files {kept[0][2]} -> {kept[-1][2]}, "
            f"slope {slope_per_hour([(t, float(f)) for t, _, f in kept]):+.2f}/h; asyncio tasks "
            f"{tasks[0][1] if tasks else '?'} -> {tasks[-1][1] if tasks else '?'}, slope "
            f"{slope_per_hour(tasks):+.2f}/h ({len(kept)} samples)"
        )
        log = instance.daemon.log()
        print(
            f"   log: {log.count(' node_task_failed ')} node_task_failed, {log.count('Traceback')} tracebacks, "
            f"{log.count(' leader_acquired ')} leader_acquired, {log.count(' catalog_reloaded ')} reloads"
        )


def _window(samples: list[tuple[float, float, int]], start: float, end: float | None) -> list[tuple[float, float, int]]:
    """The samples from `start` to `end` seconds after the first (negative: before the last)."""
    origin = samples[0][0] if start >= 0 else samples[-1][0]
    return [s for s in samples if origin + start <= s[0] and (end is None or s[0] <= origin + end)] or samples


def _median(samples: list[tuple[float, float, int]], column: int) -> float:
    return float(statistics.median(s[column] for s in samples))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--as-daemon":
        return run_as_daemon(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between events")
    parser.add_argument("--server", help="server binary; default redis-server on PATH")
    args = parser.parse_args()
    soak(redis_server_binary(args.server), args.minutes, args.every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
