"""What tracing costs per `scripts.run`: µs per call without OpenTelemetry, with its API alone, with
the SDK sampling nothing, and with the SDK recording every span, next to a bare redis-py `evalsha`
measured in the same run.

    .venv/bin/python bench/bench_tracing.py [--runs 3] [--calls 5000]

One throwaway 3-primary cluster; every call goes to the primary serving `{quota}` through its own
`redis.Redis` (no cluster routing in the figures). Each mode runs in a process of its own, so that
"without OpenTelemetry" really has none imported (its import is made to fail, as when the `otel`
extra is not installed), and the modes take turns, `--runs` times, so the machine's drift hits them
alike:

  bare          redis.Redis.evalsha of capped_incr: the baseline, no client library
  no-otel       scripts.run, OpenTelemetry not importable: the duration histogram only
  api-only      scripts.run, opentelemetry-api installed, no tracer provider set: non-recording spans
  sdk-sampled   scripts.run, the SDK's TracerProvider with sampler ALWAYS_OFF (a production head
                sampler that drops this trace)
  sdk-recorded  scripts.run, the SDK recording every span into a BatchSpanProcessor whose exporter
                drops them (the export itself, on its own thread, is the application's choice)

Per mode: the median over runs of the median of 5 batches of `--calls`, wall µs and this process'
CPU µs per call; the overhead of each tracing mode against no-otel (the goal: at most 5 % for a
recorded span on `run`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = ROOT / "examples" / "config.yaml"
MODES = ("bare", "no-otel", "api-only", "sdk-sampled", "sdk-recorded")
KEY = "{quota}:bench-tracing"
CAP = 2**53 - 1


def child(mode: str, host: str, port: int, calls: int) -> dict[str, float]:
    """In a process of its own: µs per call (wall, CPU), the median of 5 batches."""
    if mode == "no-otel":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    import redis

    from bench.bench_transactions import per_call_us
    from redis_orchestrator.client import Scripts

    provider = None
    if mode.startswith("sdk"):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

        class Dropped(SpanExporter):
            def export(self, spans: object) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider(sampler=ALWAYS_OFF if mode == "sdk-sampled" else ALWAYS_ON)
        provider.add_span_processor(BatchSpanProcessor(Dropped(), max_queue_size=1 << 16, schedule_delay_millis=100))
    client = redis.Redis(host=host, port=port)
    scripts = Scripts.from_config(CONFIG, client, tracer_provider=provider)
    sha = scripts.manifest.resolve("capped_incr").handle
    scripts.run("capped_incr", keys=[KEY], args=[1, CAP])  # loaded on that node
    if mode == "bare":

        def call() -> object:
            return client.evalsha(sha, 1, KEY, 1, CAP)
    else:

        def call() -> object:
            return scripts.run("capped_incr", keys=[KEY], args=[1, CAP])

    for _ in range(500):  # warm up: the connection, the caches
        call()
    wall, cpu = per_call_us(call, calls)
    figures = {"wall": wall, "cpu": cpu}
    if provider is not None:
        tracer = provider.get_tracer("bench")
        began = time.perf_counter()
        for _ in range(calls):
            tracer.start_span("empty").end()
        figures["sdk_span"] = (time.perf_counter() - began) / calls * 1e6  # the SDK's own cost, no I/O
        provider.shutdown()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--node", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        host, port = args.node.rsplit(":", 1)
        print(json.dumps(child(args.child, host, int(port), args.calls)))
        return 0

    from redis.cluster import RedisCluster

    from harness.chaos import ChaosCluster

    figures: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with ChaosCluster(primaries=3, replicas_per_primary=0) as cluster:
        host, port = cluster.seeds[0].split(":")
        rc = RedisCluster(host=host, port=int(port))
        node = rc.get_node_from_key(KEY)
        address = f"{node.host}:{node.port}"
        rc.close()
        for _ in range(args.runs):
            for mode in MODES:
                command = [sys.executable, __file__, "--child", mode, "--node", address, "--calls", str(args.calls)]
                done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
                figures[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = statistics.median(f["wall"] for f in figures["no-otel"])
    base_cpu = statistics.median(f["cpu"] for f in figures["no-otel"])
    print(f"capped_incr, {args.runs} runs x 5 batches of {args.calls} calls, µs per call (median; range over runs)")
    print(f"{'mode':<14} {'wall':>20} {'client CPU':>20} {'vs no-otel (wall / CPU)':>26}")
    for mode in MODES:
        walls = [f["wall"] for f in figures[mode]]
        cpus = [f["cpu"] for f in figures[mode]]
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        versus = (
            f"{(wall / base - 1) * 100:+.1f} % / {(cpu / base_cpu - 1) * 100:+.1f} %"
            if mode != "bare"
            else "(baseline)"
        )
        print(
            f"{mode:<14} {wall:7.1f} ({min(walls):.1f}-{max(walls):.1f}) {cpu:7.1f} ({min(cpus):.1f}-{max(cpus):.1f})"
            f" {versus:>26}"
        )
    for mode in ("sdk-sampled", "sdk-recorded"):
        empty = statistics.median(f["sdk_span"] for f in figures[mode])
        print(f"{mode}: the SDK's own start and end of an empty span, no I/O: {empty:.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
