"""A transfer as one Lua script versus WATCH/MULTI retry loops, under contention; and what
`scripts.run` costs over a bare `evalsha`.

    .venv/bin/python bench/bench_transactions.py [--runs 3] [--seconds 3] [--workers 1,8,32]

One throwaway 3+3 cluster of real redis-server processes. Every account is under the {ledger} hash
tag (a transfer's keys must share a slot), so every transfer lands on one primary. For each number of
worker threads and each account pattern -- hot (2 accounts, every transfer between them) and spread
(1,000 accounts, random pairs) -- for `--seconds`, three ways to move money:

  lua          scripts.run("transfer", ...): the check and both writes in one EVALSHA, no retry ever
  watch-loop   the seed's Python pattern, the baseline: WATCH a b; GET a; GET b; MULTI; SET; SET; EXEC,
               again at once on WatchError (redis-py pipeline on the primary's own client)
  transaction  scripts.transaction([a, b], fn): the same reads and writes, retried after a jittered
               exponential backoff (base 2 ms, cap 100 ms)

Reported per cell: transfers/s (completed, refused-for-funds included, rare here), retries per
transfer, p99 latency of one transfer including its retries. Then `scripts.run` against a bare call of
the same script through redis-py on the same client, single thread, wall time and client CPU:
RedisCluster.evalsha / Redis.evalsha of capped_incr (a write), and RedisCluster.evalsha_ro of
counter_get (no-writes: redis-py 8.1 asks the server COMMAND GETKEYS twice for each such call;
scripts.run computes the slot itself). `--overhead-only` skips the transfer table.

The machine is shared and noisy: run several times and read the ranges, not one figure. All threads
run in one Python process, so at 32 workers the client's GIL is part of what is measured, equally
for every method.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.chaos import ChaosCluster
from redis_orchestrator.client import ScriptError, Scripts, Tx

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "config.yaml"
START = 10**12  # balances large enough that a transfer is almost never refused for funds


@dataclass
class Cell:
    method: str
    workers: int
    pattern: str
    done: int = 0
    retries: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def retries_per_transfer(self) -> float:
        return self.retries / self.done if self.done else 0.0

    @property
    def p99_ms(self) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


Transfer = Callable[[str, str, int], int]  # -> retries it took


def lua_transfer(scripts: Scripts) -> Transfer:
    def move(a: str, b: str, amount: int) -> int:
        try:
            scripts.run("transfer", keys=[a, b], args=[amount])
        except ScriptError as exc:
            if exc.code != "INSUFFICIENT_FUNDS":
                raise
        return 0

    return move


def watch_loop_transfer(node_client: redis.Redis) -> Transfer:
    """The seed's optimistic pattern: no backoff, no bound."""

    def move(a: str, b: str, amount: int) -> int:
        retries = 0
        with node_client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(a, b)
                    balance_a = int(pipe.get(a))
                    balance_b = int(pipe.get(b))
                    if balance_a < amount:
                        pipe.unwatch()
                        return retries
                    pipe.multi()
                    pipe.set(a, balance_a - amount)
                    pipe.set(b, balance_b + amount)
                    pipe.execute()
                    return retries
                except redis.WatchError:
                    retries += 1

    return move


def transaction_transfer(scripts: Scripts) -> Transfer:
    def move(a: str, b: str, amount: int) -> int:
        def fn(tx: Tx) -> None:
            balance_a = int(tx.get(a))
            balance_b = int(tx.get(b))
            if balance_a < amount:
                return
            tx.multi()
            tx.execute_command("SET", a, balance_a - amount)
            tx.execute_command("SET", b, balance_b + amount)

        result = scripts.transaction([a, b], fn, retries=100_000, uses=())
        return int(result.attempts) - 1

    return move


def measure(method: str, move: Transfer, accounts: list[str], workers: int, pattern: str, seconds: float) -> Cell:
    cell = Cell(method, workers, pattern)
    lock = threading.Lock()
    start_gate = threading.Barrier(workers + 1)
    deadline = [0.0]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        done = retries = 0
        latencies: list[float] = []
        start_gate.wait()
        while time.monotonic() < deadline[0]:
            a, b = rng.sample(accounts, 2)
            began = time.perf_counter()
            retries += move(a, b, rng.randint(1, 100))
            latencies.append(time.perf_counter() - began)
            done += 1
        with lock:
            cell.done += done
            cell.retries += retries
            cell.latencies.extend(latencies)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline[0] = began + seconds
    start_gate.wait()
    for thread in threads:
        thread.join()
    cell.seconds = time.monotonic() - began
    return cell


def overhead(
    rc: RedisCluster, node_client: redis.Redis, scripts: Scripts, calls: int
) -> dict[str, tuple[float, float]]:
    """Microseconds per call, single thread, wall clock and this process' CPU (what the client itself
    costs, less disturbed by a busy machine): the median of 5 batches of `calls`."""
    counter = "{quota}:overhead"
    rc.set(counter, 5)
    incr_sha = scripts.manifest.resolve("capped_incr").handle
    get_sha = scripts.manifest.resolve("counter_get").handle
    cap = 2**53 - 1
    on_node = scripts.bind(node_client)
    cases: dict[str, Callable[[], object]] = {
        "RedisCluster.evalsha (capped_incr: writes)": lambda: rc.evalsha(incr_sha, 1, counter, 1, cap),
        "scripts.run over RedisCluster (capped_incr)": lambda: scripts.run(
            "capped_incr", keys=[counter], args=[1, cap]
        ),
        "Redis.evalsha on the primary (capped_incr)": lambda: node_client.evalsha(incr_sha, 1, counter, 1, cap),
        "scripts.run over that Redis (capped_incr)": lambda: on_node.run("capped_incr", keys=[counter], args=[1, cap]),
        "RedisCluster.evalsha_ro (counter_get: no-writes)": lambda: rc.evalsha_ro(get_sha, 1, counter),
        "scripts.run over RedisCluster (counter_get: EVALSHA_RO)": lambda: scripts.run("counter_get", keys=[counter]),
    }
    # Loaded where the bare calls will go (they cannot load anything themselves).
    scripts.run("counter_get", keys=[counter])
    scripts.run("capped_incr", keys=[counter], args=[1, cap])
    for call in cases.values():  # warm up: connections, caches
        for _ in range(200):
            call()
    return {name: per_call_us(call, calls) for name, call in cases.items()}


def per_call_us(call: Callable[[], object], calls: int) -> tuple[float, float]:
    """Microseconds per call of `call`, wall clock and this process' CPU: the median of 5 batches of
    `calls` (bench_tracing.py measures the same way)."""
    wall, cpu = [], []
    for _ in range(5):
        began, began_cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            call()
        wall.append((time.perf_counter() - began) / calls * 1e6)
        cpu.append((time.process_time() - began_cpu) / calls * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def getkeys_calls(cluster: ChaosCluster) -> int:
    total = 0
    for node in cluster.nodes:
        with node.client() as c:
            total += int(c.info("commandstats").get("cmdstat_command|getkeys", {}).get("calls", 0))
    return total


def span(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else f"{format(low, fmt)}-{format(high, fmt)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", default="1,8,32")
    parser.add_argument("--overhead-calls", type=int, default=2000)
    parser.add_argument("--overhead-only", action="store_true", help="skip the transfer table")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    patterns = {"hot": 2, "spread": 1000}
    cells: dict[tuple[int, str, str], list[Cell]] = {}
    overheads: dict[str, list[tuple[float, float]]] = {}
    getkeys: list[tuple[int, int]] = []
    with ChaosCluster(primaries=3, replicas_per_primary=1) as cluster:
        host, port = cluster.seeds[0].split(":")
        rc = RedisCluster(host=host, port=int(port), decode_responses=True, max_connections=256)
        scripts = Scripts.from_config(CONFIG, rc)
        primary = rc.get_node_from_key("{ledger}:x")
        node_client = redis.Redis(host=primary.host, port=primary.port, decode_responses=True, max_connections=256)
        methods: dict[str, Transfer] = {
            "lua": lua_transfer(scripts),
            "watch-loop": watch_loop_transfer(node_client),
            "transaction": transaction_transfer(scripts),
        }
        for run in range(args.runs):
            for pattern, count in ({} if args.overhead_only else patterns).items():
                accounts = [f"{{ledger}}:acct:{pattern}-{i}" for i in range(count)]
                for account in accounts:
                    node_client.set(account, START)
                for workers in worker_counts:
                    for method, move in methods.items():
                        cell = measure(method, move, accounts, workers, pattern, args.seconds)
                        cells.setdefault((workers, pattern, method), []).append(cell)
                        print(
                            f"run {run + 1} {pattern:6} {workers:2} workers {method:11} {cell.rate:8.0f}/s "
                            f"retries/transfer {cell.retries_per_transfer:6.2f} p99 {cell.p99_ms:7.2f} ms",
                            file=sys.stderr,
                        )
                total = sum(int(v) for v in node_client.mget(accounts))
                assert total == START * count, f"{pattern}: money created or destroyed ({total})"
            for name, micros in overhead(rc, node_client, scripts, args.overhead_calls).items():
                overheads.setdefault(name, []).append(micros)
            before = getkeys_calls(cluster)
            for _ in range(100):
                rc.evalsha_ro(scripts.manifest.resolve("counter_get").handle, 1, "{quota}:overhead")
            middle = getkeys_calls(cluster)
            for _ in range(100):
                scripts.run("counter_get", keys=["{quota}:overhead"])
            getkeys.append((middle - before, getkeys_calls(cluster) - middle))
        rc.close()
        node_client.close()

    print(f"\n## Transfers under contention ({args.runs} runs of {args.seconds:g} s per cell; ranges over runs)\n")
    print("| accounts | workers | method | transfers/s | retries/transfer | p99 ms |")
    print("|---|---:|---|---:|---:|---:|")
    for pattern in {} if args.overhead_only else patterns:
        for workers in worker_counts:
            for method in methods:
                runs = cells[(workers, pattern, method)]
                rate = span([c.rate for c in runs], ".0f")
                retries = span([c.retries_per_transfer for c in runs], ".2f")
                p99 = span([c.p99_ms for c in runs], ".2f")
                print(f"| {pattern} ({patterns[pattern]}) | {workers} | {method} | {rate} | {retries} | {p99} |")
    print(f"\n## scripts.run against a bare call (single thread, µs per call, median of 5x{args.overhead_calls})\n")
    print("| call | µs/call (wall) | µs/call (client CPU) |")
    print("|---|---:|---:|")
    for name, values in overheads.items():
        print(f"| {name} | {span([v[0] for v in values], '.0f')} | {span([v[1] for v in values], '.0f')} |")
    print(
        "\nCOMMAND GETKEYS sent to the cluster per 100 calls: RedisCluster.evalsha_ro "
        f"{span([float(g[0]) for g in getkeys], '.0f')}, scripts.run {span([float(g[1]) for g in getkeys], '.0f')}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
