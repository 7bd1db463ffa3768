"""What a call leaves behind besides its value: its duration in the client's histogram (counters.py)
and, with OpenTelemetry, its span. Pure: the sending code (_async/, _sync/) opens a record around
each call, pipeline or transaction and tells it what happened; this module decides what is kept.

Spans follow OpenTelemetry's database conventions, one per `run`, per pipeline `execute()` and per
transaction, as a CLIENT span:

    EVALSHA transfer                          span name: {db.operation.name} {db.stored_procedure.name}
      db.system.name            redis
      db.operation.name         EVALSHA | EVALSHA_RO | FCALL | FCALL_RO | BATCH EVALSHA | BATCH | MULTI
      db.stored_procedure.name  transfer                      (a function: orchestrator_lib.counter_get)
      db.operation.batch.size   3                             (pipelines and transactions)
      server.address / .port    10.0.0.5 / 6379               (the node that answered last)
      redis_orchestrator.script.name / .version / .sha      transfer / 2 / 9f1c...
      events: redis_orchestrator.noscript_repair (the node; the script), redis_orchestrator.redirect
              (MOVED / ASK / TRYAGAIN / CLUSTERDOWN / unreachable, the attempt), redis_orchestrator.retry
              (a transaction's WATCH conflict: the attempt, the backoff)
      on error: status ERROR with the code; error.type and db.response.status_code = the code
              (INSUFFICIENT_FUNDS, BUSY, NOSCRIPT, ...), or error.type = the class (NodeUnreachable)

Never recorded: a key, an argument, a reply, an error's message (a script's message may quote its
arguments): no db.query.text, no record_exception.

Without the `otel` extra (opentelemetry-api not installed) nothing of it is imported and no span
object is made; with the API but no SDK or no tracer provider set, spans are non-recording and no
attribute is computed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import redis.exceptions

from redis_orchestrator import __version__
from redis_orchestrator.client.calls import Call
from redis_orchestrator.client.counters import Counters, Outcome
from redis_orchestrator.client.errors import (
    NodeUnreachable,
    NotReplicated,
    ScriptBusy,
    ScriptError,
    ScriptMissing,
    TransactionAborted,
    error_text,
    reply_code,
)

try:
    from opentelemetry import context as _context
    from opentelemetry import trace as _otel
    from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
except ImportError:  # the otel extra is not installed: durations only
    _otel = None  # type: ignore[assignment]

SYSTEM = "redis"
_PREFIX = "redis_orchestrator"


def outcome_of(error: BaseException | None) -> Outcome:
    if error is None:
        return Outcome.OK
    if isinstance(error, ScriptBusy):
        return Outcome.BUSY
    if isinstance(error, ScriptError):
        return Outcome.SCRIPT_ERROR
    if isinstance(error, ScriptMissing):
        return Outcome.MISSING
    if isinstance(error, NotReplicated):
        return Outcome.NOT_REPLICATED
    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError | OSError):
        return Outcome.UNREACHABLE
    return Outcome.ERROR


def error_code(error: BaseException) -> tuple[str, bool]:
    """The code to record for `error`, and whether it is a server's (an error reply's first word)
    rather than our class name. Never the message."""
    if isinstance(error, ScriptError):
        return error.code, True
    if isinstance(error, ScriptMissing):
        return "NOSCRIPT", True
    if isinstance(error, TransactionAborted):
        return "EXECABORT", True
    if isinstance(error, NodeUnreachable):
        return type(error).__name__, False
    if isinstance(error, redis.exceptions.ResponseError):
        return reply_code(error_text(error)), True
    return type(error).__name__, False


def redirect_reason(reply: object) -> str:
    if isinstance(reply, redis.exceptions.MovedError):
        return "MOVED"
    if isinstance(reply, redis.exceptions.AskError):
        return "ASK"
    if isinstance(reply, redis.exceptions.TryAgainError):
        return "TRYAGAIN"
    if isinstance(reply, redis.exceptions.ClusterDownError):
        return "CLUSTERDOWN"
    return "unreachable"


class Telemetry:
    """Makes the records: one per Scripts object (bind() shares the counters and the provider).
    `tracer_provider`: None for the global one (opentelemetry.trace.set_tracer_provider)."""

    def __init__(self, counters: Counters, tracer_provider: Any = None) -> None:
        self.counters = counters
        self.tracer_provider = tracer_provider
        self.tracer = (
            _otel.get_tracer("redis_orchestrator.client", __version__, tracer_provider=tracer_provider)
            if _otel is not None
            else None
        )
        self._described: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}  # a run's name and attributes

    def call(self, call: Call) -> Record:
        """One `run`."""
        return Record(self, (call,), call.target.command)

    def batch(self, calls: Sequence[Call], transaction: bool) -> Record:
        """A pipeline's `execute()`; in MULTI/EXEC with `transaction`."""
        return Record(self, tuple(calls), "MULTI" if transaction else _batch_operation(calls))

    def transaction(self, name: str) -> Record:
        """`scripts.transaction(...)`: its calls are known once fn has queued them (Record.queued)."""
        return Record(self, (), "MULTI", transaction=name)

    def active(self) -> Any:
        """The tracer, when a span could record: not without the extra, nor with the global provider
        left unset (the API alone: every span would be a no-op, so none is made)."""
        if self.tracer is None:
            return None
        if self.tracer_provider is None and isinstance(_otel.get_tracer_provider(), ProxyTracerProvider):
            return None
        return self.tracer

    def describe(self, calls: tuple[Call, ...], operation: str, transaction: str | None) -> tuple[str, dict[str, Any]]:
        """The span's name and attributes at its start (a run's: computed once per script version)."""
        single = len(calls) == 1 and transaction is None
        if single and (known := self._described.get((calls[0].label, operation))) is not None:
            return known
        attributes: dict[str, Any] = {"db.system.name": SYSTEM, "db.operation.name": operation}
        if transaction is not None:
            attributes[f"{_PREFIX}.transaction.name"] = transaction
        name = operation
        if calls:
            names = sorted({call.target.name for call in calls})
            if len(calls) > 1:
                attributes["db.operation.batch.size"] = len(calls)
            if len(names) > 1:
                attributes[f"{_PREFIX}.script.names"] = names
            else:
                name = f"{operation} {names[0]}"
                attributes["db.stored_procedure.name"] = attributes[f"{_PREFIX}.script.name"] = names[0]
                if len({call.label for call in calls}) == 1:
                    target = calls[0].target
                    attributes[f"{_PREFIX}.script.version"] = str(target.version.version)
                    if target.function is None:
                        attributes[f"{_PREFIX}.script.sha"] = target.version.sha
        if single:
            self._described[(calls[0].label, operation)] = (name, attributes)
        return name, attributes


def _batch_operation(calls: Sequence[Call]) -> str:
    operations = {call.target.command for call in calls}
    return f"BATCH {operations.pop()}" if len(operations) == 1 else "BATCH"


class Record:
    """A `with` block around one call, batch or transaction; what happened is told to it as it goes.
    On exit: each call's duration and outcome into the counters, and the span ended with its status."""

    __slots__ = ("_calls", "_operation", "_outcomes", "_servers", "_span", "_started", "_telemetry", "_token", "_tx")

    def __init__(
        self, telemetry: Telemetry, calls: tuple[Call, ...], operation: str, transaction: str | None = None
    ) -> None:
        self._telemetry = telemetry
        self._calls = calls
        self._operation = operation
        self._tx = transaction
        self._outcomes: list[Outcome] | None = None
        self._servers: set[tuple[str, int]] | None = None  # with a span only
        self._span: Any = None  # only a recording span: a sampled-out one is dropped at once
        self._token: Any = None
        self._started = 0.0

    def __enter__(self) -> Record:
        tracer = self._telemetry.active()
        if tracer is not None:
            name, attributes = self._telemetry.describe(self._calls, self._operation, self._tx)
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
            if span.is_recording():
                self._span = span
                self._servers = set()
                # current while the call runs: spans of redis-py's own instrumentation nest under it
                self._token = _context.attach(_otel.set_span_in_context(span))
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        seconds = time.perf_counter() - self._started
        counters = self._telemetry.counters
        if self._outcomes is not None:  # the replies came: each call's own (a raise is one of them)
            for call, outcome in zip(self._calls, self._outcomes, strict=True):
                counters.observe(call.target.name, outcome, seconds)
        else:  # raised before any reply: that error is every call's outcome
            outcome = outcome_of(error)
            for call in self._calls:
                counters.observe(call.target.name, outcome, seconds)
        if self._span is not None:
            self._finish(error)
            _context.detach(self._token)

    # ------------------------------------------------------------------ told by the sending code

    def server(self, connection: Any) -> None:
        """The connection the next commands go on (its node is the span's server)."""
        if self._servers is not None:
            host, port = getattr(connection, "host", None), getattr(connection, "port", None)
            if host is not None and port is not None:
                self._servers.add((str(host), int(port)))

    def noscript(self, node: str, scripts: Sequence[Call]) -> None:
        """NOSCRIPT (or a missing function) on `node`, repaired by loading these scripts there."""
        if self._span is not None:
            names = sorted({call.target.name for call in scripts})
            self._span.add_event(
                f"{_PREFIX}.noscript_repair", {f"{_PREFIX}.node": node, f"{_PREFIX}.script.names": names}
            )

    def redirect(self, reply: object, attempt: int) -> None:
        """Nothing ran (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, or no connection): tried again."""
        if self._span is not None:
            attributes = {"db.response.status_code": redirect_reason(reply), f"{_PREFIX}.attempt": attempt}
            self._span.add_event(f"{_PREFIX}.redirect", attributes)

    def retry(self, attempt: int, backoff: float) -> None:
        """A transaction's EXEC refused by a WATCH conflict: tried again after `backoff` seconds."""
        if self._span is not None:
            self._span.add_event(f"{_PREFIX}.retry", {f"{_PREFIX}.attempt": attempt, f"{_PREFIX}.backoff_s": backoff})

    def queued(self, calls: Sequence[Call]) -> None:
        """A transaction's script calls, once fn queued them."""
        self._calls = tuple(calls)
        if self._span is not None:
            name, attributes = self._telemetry.describe(self._calls, self._operation, self._tx)
            self._span.update_name(name)
            self._span.set_attributes(attributes)

    def replies(self, replies: Sequence[Any]) -> None:
        """Each call's reply (errors in place): its outcome in the histogram."""
        self._outcomes = [outcome_of(r if isinstance(r, BaseException) else None) for r in replies]

    # ------------------------------------------------------------------ the span

    def _finish(self, error: BaseException | None) -> None:
        span = self._span
        if self._servers is not None and len(self._servers) == 1:
            host, port = next(iter(self._servers))
            span.set_attribute("server.address", host)
            span.set_attribute("server.port", port)
        if error is None and self._outcomes is not None:
            failed = sum(o is not Outcome.OK for o in self._outcomes)
            if failed:
                span.set_attribute(f"{_PREFIX}.failed_calls", failed)
        if error is not None:
            code, from_server = error_code(error)
            span.set_attribute("error.type", code)
            if from_server:
                span.set_attribute("db.response.status_code", code)
            span.set_status(Status(StatusCode.ERROR, code))
        span.end()
