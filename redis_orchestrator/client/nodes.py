"""What both flavours of route share: a node's name, the errors that mean nothing was sent, and the
throttle that keeps a burst of MOVED replies or dropped connections to one slot-table refresh.

The routes themselves (which node serves a call, a pinned connection to it) are in _async/routing.py,
and the sync ones generated from it in _sync/routing.py.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

import redis.exceptions

# Raised while connecting (nothing was sent) or while talking (the connection is then dropped).
CONNECT_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

REFRESH_INTERVAL = 0.1  # seconds between two refreshes of the slot table, however many callers ask


def node_name(host: str, port: int | str) -> str:
    return f"{host}:{port}"


class Throttle:
    """At most one refresh per interval. `lock` guards the check across threads: the sync client's
    is a threading.Lock, the asyncio client's a no-op (its callers share one thread and the check
    does not await)."""

    def __init__(self, interval: float, lock: AbstractContextManager[Any]) -> None:
        self.interval = interval
        self._lock = lock
        self._last = 0.0

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                return False
            self._last = now
            return True
