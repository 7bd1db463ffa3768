"""What the client did, counted per script, and how long its calls took: readable from the object,
exportable to Prometheus.

    scripts.counters.calls                 # totals
    scripts.counters.snapshot().by_name    # {("fallbacks", "transfer@1"): 2, ...}
    scripts.counters.snapshot().durations  # {("transfer", "ok"): Durations(count, sum, buckets)}
    scripts.counters.register(registry)    # a prometheus_client collector on *your* registry

The collector's exposition: one counter family per event, labelled by script (name@version) or by
the transaction's name, and one histogram of call durations by script name (the catalog's name, as
the daemon's slowlog metrics label it) and outcome:

    # HELP redis_orchestrator_client_fallbacks_total SCRIPT LOAD (or FUNCTION LOAD) after a NOSCRIPT ...
    # TYPE redis_orchestrator_client_fallbacks_total counter
    redis_orchestrator_client_fallbacks_total{script="transfer@1"} 2.0
    # TYPE redis_orchestrator_client_call_duration_seconds histogram
    redis_orchestrator_client_call_duration_seconds_bucket{le="0.001",outcome="ok",script="transfer"} 812.0
    redis_orchestrator_client_call_duration_seconds_count{outcome="ok",script="transfer"} 830.0

A call's duration is what the application waited: `run` from the first byte sent to the value
(redirects and a NOSCRIPT repair included); a pipeline's or a transaction's calls each get the whole
batch's time (their replies come together).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Event(StrEnum):
    CALLS = "calls"
    NOSCRIPT = "noscript"
    FALLBACKS = "fallbacks"
    SCRIPT_ERRORS = "script_errors"
    BUSY = "busy"
    NOT_REPLICATED = "not_replicated"
    REDIRECTS = "redirects"
    TRANSACTIONS = "transactions"
    RETRIES = "retries"
    CONFLICTS = "conflicts"
    ABORTED = "aborted"


HELP: Mapping[Event, str] = {
    Event.CALLS: "Script and function calls sent (pipelined and transactional ones included)",
    Event.NOSCRIPT: "NOSCRIPT (or missing function) replies received",
    Event.FALLBACKS: "SCRIPT LOAD (or FUNCTION LOAD) after a NOSCRIPT, followed by one retry",
    Event.SCRIPT_ERRORS: "Error replies from scripts (their own codes and the server's)",
    Event.BUSY: "BUSY replies: the node was running another slow script",
    Event.NOT_REPLICATED: "Calls whose WAIT saw fewer replicas than asked",
    Event.REDIRECTS: "MOVED/ASK/TRYAGAIN/CLUSTERDOWN replies followed by a new attempt (nothing had run)",
    Event.TRANSACTIONS: "Transactions started",
    Event.RETRIES: "Transaction attempts repeated after a WATCH conflict",
    Event.CONFLICTS: "Transactions given up after their last WATCH conflict (TransactionConflict)",
    Event.ABORTED: "Transactions discarded by EXECABORT (TransactionAborted)",
}
_TRANSACTION_EVENTS = frozenset({Event.TRANSACTIONS, Event.RETRIES, Event.CONFLICTS, Event.ABORTED})


class Outcome(StrEnum):
    """How a call ended: the `outcome` label of the duration histogram (bounded, like `script`)."""

    OK = "ok"
    SCRIPT_ERROR = "script_error"  # the script's own error reply, or the server's (ScriptError)
    BUSY = "busy"  # ScriptBusy
    MISSING = "missing"  # ScriptMissing: NOSCRIPT with fallback="raise", or a load that failed
    NOT_REPLICATED = "not_replicated"  # WAIT saw too few replicas (the call itself ran)
    UNREACHABLE = "unreachable"  # no connection, a dropped one, a timeout: whether it ran is unknown
    ERROR = "error"  # anything else


# From a cached read on the same host (0.1 ms) to a script at the server's time limit (5 s).
DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Durations:
    """One script's calls with one outcome: how many, their total seconds, and per bucket of
    DURATION_BUCKETS how many took at most that long (not cumulative; +Inf is `count`)."""

    count: int
    sum: float
    buckets: tuple[int, ...]


@dataclass(frozen=True)
class Snapshot:
    totals: Mapping[Event, int]
    by_name: Mapping[tuple[Event, str], int]
    durations: Mapping[tuple[str, Outcome], Durations]

    def __getitem__(self, event: Event | str) -> int:
        return self.totals.get(Event(event), 0)


class Counters:
    """Thread-safe counts of client events. Shared by every Scripts object bound from the same one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[Event, str], int] = {}
        # (script, outcome) -> [count, sum, per-bucket counts...]
        self._durations: dict[tuple[str, Outcome], list[float]] = {}

    def add(self, event: Event, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(event, name)] = self._counts.get((event, name), 0) + n

    def observe(self, script: str, outcome: Outcome, seconds: float) -> None:
        """One call of `script` (its catalog name) that ended with `outcome` after `seconds`."""
        bucket = bisect.bisect_left(DURATION_BUCKETS, seconds)
        with self._lock:
            row = self._durations.get((script, outcome))
            if row is None:
                row = self._durations[(script, outcome)] = [0.0] * (2 + len(DURATION_BUCKETS))
            row[0] += 1
            row[1] += seconds
            if bucket < len(DURATION_BUCKETS):
                row[2 + bucket] += 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            counts = dict(self._counts)
            rows = {key: list(row) for key, row in self._durations.items()}
        totals: dict[Event, int] = dict.fromkeys(Event, 0)
        for (event, _), n in counts.items():
            totals[event] += n
        durations = {key: Durations(int(row[0]), row[1], tuple(int(n) for n in row[2:])) for key, row in rows.items()}
        return Snapshot(MappingProxyType(totals), MappingProxyType(counts), MappingProxyType(durations))

    def total(self, event: Event) -> int:
        with self._lock:
            return sum(n for (e, _), n in self._counts.items() if e is event)

    @property
    def calls(self) -> int:
        return self.total(Event.CALLS)

    @property
    def noscript(self) -> int:
        return self.total(Event.NOSCRIPT)

    @property
    def fallbacks(self) -> int:
        return self.total(Event.FALLBACKS)

    @property
    def script_errors(self) -> int:
        return self.total(Event.SCRIPT_ERRORS)

    @property
    def busy(self) -> int:
        return self.total(Event.BUSY)

    @property
    def not_replicated(self) -> int:
        return self.total(Event.NOT_REPLICATED)

    @property
    def redirects(self) -> int:
        return self.total(Event.REDIRECTS)

    @property
    def transactions(self) -> int:
        return self.total(Event.TRANSACTIONS)

    @property
    def retries(self) -> int:
        return self.total(Event.RETRIES)

    @property
    def conflicts(self) -> int:
        return self.total(Event.CONFLICTS)

    @property
    def aborted(self) -> int:
        return self.total(Event.ABORTED)

    def register(self, registry: Any, prefix: str = "redis_orchestrator_client") -> CountersCollector:
        """Export to a prometheus_client CollectorRegistry you own (never the global one by default)."""
        collector = CountersCollector(self, prefix)
        registry.register(collector)
        return collector


class CountersCollector:
    """A prometheus_client collector reading Counters at scrape time."""

    def __init__(self, counters: Counters, prefix: str) -> None:
        self.counters = counters
        self.prefix = prefix

    def describe(self) -> Iterable[Any]:
        return list(self._families({}, {}))

    def collect(self) -> Iterator[Any]:
        snapshot = self.counters.snapshot()
        yield from self._families(snapshot.by_name, snapshot.durations)

    def _families(
        self, counts: Mapping[tuple[Event, str], int], durations: Mapping[tuple[str, Outcome], Durations]
    ) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        for event in Event:
            label = "transaction" if event in _TRANSACTION_EVENTS else "script"
            family = CounterMetricFamily(f"{self.prefix}_{event.value}", HELP[event], labels=[label])
            for (e, name), n in sorted(counts.items()):
                if e is event:
                    family.add_metric([name], n)
            yield family
        histogram = HistogramMetricFamily(
            f"{self.prefix}_call_duration_seconds",
            "Time the application waited for a script or function call, by catalog name and outcome",
            labels=["script", "outcome"],
        )
        for (script, outcome), d in sorted(durations.items()):
            cumulative, buckets = 0, []
            for bound, n in zip(DURATION_BUCKETS, d.buckets, strict=True):
                cumulative += n
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", d.count))
            histogram.add_metric([script, outcome], buckets, d.sum)
        yield histogram
