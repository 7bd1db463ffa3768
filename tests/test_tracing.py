"""OpenTelemetry spans of script calls, read from the SDK's in-memory exporter, and the client's
per-script duration histogram: real calls on the session cluster (run, NOSCRIPT repair, script
errors, pipelines, transactions, asyncio), what the spans hold, and that no key or argument value
is anywhere in them. Without the `otel` extra nothing of OpenTelemetry is imported."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio.cluster
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry
from redis.cluster import RedisCluster

from harness.chaos import ChaosCluster
from redis_orchestrator.client import AsyncScripts, ScriptError, Scripts, Tx
from redis_orchestrator.client.counters import Counters, Outcome
from redis_orchestrator.client.tracing import Telemetry

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "config.yaml"


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def keys(rc: RedisCluster) -> Iterator[dict[str, str]]:
    """Key names unique to the test (so their text can be looked for in the spans); deleted after."""
    tag = uuid.uuid4().hex[:12]
    made = {
        "alice": f"{{ledger}}:acct:alice-{tag}",
        "bob": f"{{ledger}}:acct:bob-{tag}",
        "quota": f"{{quota}}:q-{tag}",
    }
    rc.set(made["alice"], 1000)
    rc.set(made["bob"], 0)
    yield made
    rc.delete(*made.values())


def text_of(span: ReadableSpan) -> str:
    return span.to_json()


def assert_no_values(spans: tuple[ReadableSpan, ...], keys: dict[str, str], *args: object) -> None:
    """Nothing the application passed shows in any span: no key name (not even its unique part), no
    argument value."""
    for span in spans:
        text = text_of(span)
        for key in keys.values():
            assert key not in text and key.rsplit("-", 1)[1] not in text, (key, text)
        for arg in args:
            assert f'"{arg}"' not in text and f": {arg}," not in text, (arg, text)


def node_serving(rc: RedisCluster, key: str) -> tuple[str, int]:
    node = rc.get_node_from_key(key)
    return node.host, int(node.port)


def test_run_makes_one_client_span_named_after_the_script_with_its_node(
    cluster: ChaosCluster, rc: RedisCluster, keys: dict[str, str], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    scripts = Scripts.from_config(CONFIG, rc, tracer_provider=provider)
    assert scripts.run("capped_incr", keys=[keys["quota"]], args=[7, 7919]) == [7, 1]
    [span] = exporter.get_finished_spans()
    target = scripts.manifest.resolve("capped_incr")
    host, port = node_serving(rc, keys["quota"])
    assert span.name == "EVALSHA capped_incr" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "db.system.name": "redis",
        "db.operation.name": "EVALSHA",
        "db.stored_procedure.name": "capped_incr",
        "redis_orchestrator.script.name": "capped_incr",
        "redis_orchestrator.script.version": str(target.version.version),
        "redis_orchestrator.script.sha": target.version.sha,
        "server.address": host,
        "server.port": port,
    }
    assert_no_values(exporter.get_finished_spans(), keys, 7919)


def test_a_noscript_repair_is_an_event_and_a_script_error_is_recorded_by_its_code_only(
    cluster: ChaosCluster, rc: RedisCluster, keys: dict[str, str], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    scripts = Scripts.from_config(CONFIG, rc, tracer_provider=provider)
    node = cluster.node_at("{}:{}".format(*node_serving(rc, keys["alice"])))
    with node.client() as c:
        c.execute_command("SCRIPT", "FLUSH")  # the daemon is not running here: the client repairs
    assert scripts.run("transfer", keys=[keys["alice"], keys["bob"]], args=[250]) == [750, 250, 1]
    with pytest.raises(ScriptError) as caught:
        scripts.run("transfer", keys=[keys["alice"], keys["bob"]], args=[98765])
    assert caught.value.code == "INSUFFICIENT_FUNDS" and "98765" in str(caught.value)  # the message has it
    repaired, refused = exporter.get_finished_spans()
    [event] = repaired.events
    assert event.name == "redis_orchestrator.noscript_repair"
    assert dict(event.attributes or {}) == {
        "redis_orchestrator.node": node.address,
        "redis_orchestrator.script.names": ("transfer",),
    }
    assert repaired.status.status_code is StatusCode.UNSET
    assert refused.status.status_code is StatusCode.ERROR and refused.status.description == "INSUFFICIENT_FUNDS"
    attributes = refused.attributes or {}
    assert attributes["error.type"] == attributes["db.response.status_code"] == "INSUFFICIENT_FUNDS"
    assert_no_values((repaired, refused), keys, 250, 98765)
    durations = scripts.counters.snapshot().durations
    assert durations[("transfer", Outcome.OK)].count == 1 and durations[("transfer", Outcome.SCRIPT_ERROR)].count == 1


def test_a_pipeline_is_one_batch_span_and_a_transaction_one_span_with_its_retry(
    cluster: ChaosCluster, rc: RedisCluster, keys: dict[str, str], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    scripts = Scripts.from_config(CONFIG, rc, tracer_provider=provider)
    alice, bob = keys["alice"], keys["bob"]
    with scripts.pipeline() as pipe:
        pipe.run("transfer", keys=[alice, bob], args=[11])
        pipe.run("transfer", keys=[bob, alice], args=[5])
        pipe.run("capped_incr", keys=[keys["quota"]], args=[3, 4093])
        pipe.execute()
    attempts: list[int] = []

    def fee(tx: Tx) -> None:
        tx.get(alice)
        if not attempts:
            rc.incrby(alice, 1)  # a concurrent writer: the first EXEC is refused
        attempts.append(1)
        tx.multi()
        tx.run("transfer", keys=[alice, bob], args=[2])

    scripts.transaction([alice, bob], fee, name="fee")
    batch, transaction = exporter.get_finished_spans()
    assert batch.name == "BATCH EVALSHA"
    assert batch.attributes is not None and batch.attributes["db.operation.batch.size"] == 3
    assert batch.attributes["redis_orchestrator.script.names"] == ("capped_incr", "transfer")
    servers = {node_serving(rc, alice), node_serving(rc, keys["quota"])}
    assert ("server.address" in batch.attributes) == (len(servers) == 1)  # named only when one node answered
    assert transaction.name == "MULTI transfer"
    assert transaction.attributes is not None and transaction.attributes["redis_orchestrator.transaction.name"] == "fee"
    assert [e.name for e in transaction.events] == ["redis_orchestrator.retry"]
    assert (transaction.events[0].attributes or {})["redis_orchestrator.attempt"] == 1
    assert_no_values((batch, transaction), keys, 11, 4093)
    registry = CollectorRegistry()
    scripts.counters.register(registry)
    count = registry.get_sample_value(
        "redis_orchestrator_client_call_duration_seconds_count", {"script": "transfer", "outcome": "ok"}
    )
    assert count == 3  # two in the pipeline, one in the transaction


def test_a_script_error_in_a_pipeline_is_a_script_error_outcome_whether_raised_or_returned(
    rc: RedisCluster, keys: dict[str, str], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """The histogram's outcome comes from the typed result, as for a single call: a pipeline used to
    record the raw error reply, so a script's own refusal counted as `error`, not `script_error`."""
    provider, exporter = spans
    scripts = Scripts.from_config(CONFIG, rc, tracer_provider=provider)
    alice, bob = keys["alice"], keys["bob"]
    for raise_on_error in (False, True):
        with scripts.pipeline() as pipe:
            pipe.run("transfer", keys=[alice, bob], args=[1])
            pipe.run("transfer", keys=[alice, bob], args=[98765])
            if raise_on_error:
                with pytest.raises(ScriptError):
                    pipe.execute()
            else:
                _, refused = pipe.execute(raise_on_error=False)
                assert isinstance(refused, ScriptError) and refused.code == "INSUFFICIENT_FUNDS"
    durations = scripts.counters.snapshot().durations
    assert durations[("transfer", Outcome.OK)].count == 2
    assert durations[("transfer", Outcome.SCRIPT_ERROR)].count == 2
    assert ("transfer", Outcome.ERROR) not in durations
    returned, raised = exporter.get_finished_spans()
    assert (returned.attributes or {})["redis_orchestrator.failed_calls"] == 1
    assert returned.status.status_code is StatusCode.UNSET  # the caller took the errors as values
    assert raised.status.status_code is StatusCode.ERROR and raised.status.description == "INSUFFICIENT_FUNDS"


def test_the_asyncio_client_makes_the_same_spans(
    cluster: ChaosCluster, keys: dict[str, str], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    host, port = cluster.seeds[0].split(":")

    async def scenario() -> None:
        client = redis.asyncio.cluster.RedisCluster(host=host, port=int(port))
        try:
            scripts = AsyncScripts.from_config(CONFIG, client, tracer_provider=provider)
            await scripts.run("transfer", keys=[keys["alice"], keys["bob"]], args=[1])
        finally:
            await client.aclose()

    asyncio.run(scenario())
    [span] = exporter.get_finished_spans()
    assert span.name == "EVALSHA transfer" and (span.attributes or {})["server.port"] > 0


def test_redirects_are_events_and_a_lost_node_records_its_class(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    scripts = Scripts.from_config(CONFIG)
    call = scripts.prepare("counter_get", keys=["c"])
    telemetry = Telemetry(Counters(), provider)
    with pytest.raises(redis.exceptions.ConnectionError), telemetry.call(call) as record:
        record.redirect(redis.exceptions.MovedError("866 127.0.0.1:7001"), 1)
        record.redirect(None, 2)
        raise redis.exceptions.ConnectionError("Connection reset by peer")
    [span] = exporter.get_finished_spans()
    assert span.name == "EVALSHA_RO counter_get"
    assert [(e.attributes or {})["db.response.status_code"] for e in span.events] == ["MOVED", "unreachable"]
    assert (span.attributes or {})["error.type"] == "ConnectionError"
    assert "db.response.status_code" not in (span.attributes or {})
    assert telemetry.counters.snapshot().durations[("counter_get", Outcome.UNREACHABLE)].count == 1


def test_without_the_extra_nothing_of_opentelemetry_is_imported() -> None:
    program = (
        "import sys; sys.modules['opentelemetry'] = None\n"  # as if not installed: its import fails
        "from redis_orchestrator.client import Scripts\n"
        f"scripts = Scripts.from_config({str(CONFIG)!r})\n"
        "call = scripts.prepare('counter_get', keys=['c'])\n"
        "with scripts.telemetry.call(call) as record:\n"
        "    record.noscript('n', [call])\n"
        "assert scripts.telemetry.tracer is None\n"
        "print(scripts.counters.snapshot().durations[('counter_get', 'ok')].count)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry') and sys.modules[m]))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["1", "[]"]


def test_durations_are_exported_as_one_histogram_per_script_and_outcome() -> None:
    counters = Counters()
    counters.observe("transfer", Outcome.OK, 0.0004)
    counters.observe("transfer", Outcome.OK, 0.3)
    counters.observe("transfer", Outcome.BUSY, 6.0)
    registry = CollectorRegistry()
    counters.register(registry)

    def value(suffix: str, **labels: str) -> float | None:
        return registry.get_sample_value(f"redis_orchestrator_client_call_duration_seconds{suffix}", labels)

    assert value("_bucket", script="transfer", outcome="ok", le="0.0005") == 1
    assert value("_bucket", script="transfer", outcome="ok", le="0.5") == 2
    assert value("_bucket", script="transfer", outcome="busy", le="5.0") == 0
    assert value("_bucket", script="transfer", outcome="busy", le="+Inf") == 1
    assert value("_sum", script="transfer", outcome="ok") == pytest.approx(0.3004)
    assert json.loads(json.dumps(sorted(counters.snapshot().durations)))  # plain values
