"""What the client did, counted per script: readable from the object, exportable to Prometheus.

    scripts.counters.calls                 # totals
    scripts.counters.snapshot().by_name    # {("fallbacks", "transfer@1"): 2, ...}
    scripts.counters.register(registry)    # a prometheus_client collector on *your* registry

The collector's exposition (one family per event, labelled by script, or by the transaction's name):

    # HELP redis_orchestrator_client_fallbacks_total SCRIPT LOAD (or FUNCTION LOAD) after a NOSCRIPT ...
    # TYPE redis_orchestrator_client_fallbacks_total counter
    redis_orchestrator_client_fallbacks_total{script="transfer@1"} 2.0
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Snapshot:
    totals: Mapping[Event, int]
    by_name: Mapping[tuple[Event, str], int]

    def __getitem__(self, event: Event | str) -> int:
        return self.totals.get(Event(event), 0)


class Counters:
    """Thread-safe counts of client events. Shared by every Scripts object bound from the same one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[Event, str], int] = {}

    def add(self, event: Event, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(event, name)] = self._counts.get((event, name), 0) + n

    def snapshot(self) -> Snapshot:
        with self._lock:
            counts = dict(self._counts)
        totals: dict[Event, int] = dict.fromkeys(Event, 0)
        for (event, _), n in counts.items():
            totals[event] += n
        return Snapshot(MappingProxyType(totals), MappingProxyType(counts))

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
        return list(self._families({}))

    def collect(self) -> Iterator[Any]:
        yield from self._families(self.counters.snapshot().by_name)

    def _families(self, counts: Mapping[tuple[Event, str], int]) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        for event in Event:
            label = "transaction" if event in _TRANSACTION_EVENTS else "script"
            family = CounterMetricFamily(f"{self.prefix}_{event.value}", HELP[event], labels=[label])
            for (e, name), n in sorted(counts.items()):
                if e is event:
                    family.add_metric([name], n)
            yield family
