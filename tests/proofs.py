"""The harness behind the script library's property tests: workers (threads and asyncio tasks at once)
against a real cluster, a fenced resource, and readers on replicas.

Scale: REDIS_ORCHESTRATOR_PROOF_SCALE (default 1, what CI runs) multiplies the work of every property
test and of the failover tests' load; e.g. `REDIS_ORCHESTRATOR_PROOF_SCALE=20 pytest tests/test_library_properties.py`
runs each proof twenty times longer. REDIS_ORCHESTRATOR_FAILOVERS (default 1) repeats the failover
measurements.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio

from redis_orchestrator.devcluster.cluster import LocalNode

SCALE = max(1, int(os.environ.get("REDIS_ORCHESTRATOR_PROOF_SCALE", "1")))
FAILOVERS = max(1, int(os.environ.get("REDIS_ORCHESTRATOR_FAILOVERS", "1")))

SyncWorker = Callable[[int], None]


def run_workers(sync_workers: Sequence[SyncWorker], async_main: Callable[[], Awaitable[None]] | None = None) -> None:
    """Every sync worker in its own thread and `async_main` (which gathers the asyncio workers) on an
    event loop in a thread of its own, all at once; re-raises the first error any of them raised."""
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def target() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        return target

    threads = [threading.Thread(target=guard(lambda w=w, i=i: w(i)), daemon=True) for i, w in enumerate(sync_workers)]
    if async_main is not None:
        threads.append(threading.Thread(target=guard(lambda: asyncio.run(async_main())), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    if errors:
        raise errors[0]


class FencedResource:
    """What a lock guards, as a fencing-aware store would implement it: a write carries the holder's
    fencing token and is refused when a larger token has already written. Also counts how many
    holders are inside at once (must never exceed one while no lock is lost)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.highest = 0
        self.accepted = 0
        self.refused = 0
        self.inside = 0
        self.most_inside = 0
        self.tokens: list[int] = []

    def enter(self) -> None:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1

    def write(self, token: int) -> bool:
        with self._lock:
            if token < self.highest:
                self.refused += 1
                return False
            self.highest = token
            self.accepted += 1
            self.tokens.append(token)
            return True


def _readonly_connect(connection: Any) -> None:
    connection.on_connect()
    connection.send_command("READONLY")
    if connection.read_response() not in (b"OK", "OK"):
        raise redis.ConnectionError("READONLY refused")


async def _async_readonly_connect(connection: Any) -> None:
    await connection.on_connect()
    await connection.send_command("READONLY")
    if await connection.read_response() not in (b"OK", "OK"):
        raise redis.ConnectionError("READONLY refused")


def replica_client(node: LocalNode, **kwargs: Any) -> redis.Redis:
    """A client of one replica whose every connection says READONLY: EVALSHA_RO runs there."""
    return redis.Redis(host=node.host, port=node.port, redis_connect_func=_readonly_connect, **kwargs)


def async_replica_client(node: LocalNode, **kwargs: Any) -> redis.asyncio.Redis:
    return redis.asyncio.Redis(host=node.host, port=node.port, redis_connect_func=_async_readonly_connect, **kwargs)


@dataclass
class Reader:
    """A thread calling `read()` until stopped; `check(value)` raises on a broken invariant."""

    read: Callable[[], Any]
    check: Callable[[Any], None]
    reads: int = 0
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Reader:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self.errors and exc[0] is None:
            raise self.errors[0]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check(self.read())
                self.reads += 1
            except BaseException as exc:
                self.errors.append(exc)
                return
            time.sleep(0.001)
