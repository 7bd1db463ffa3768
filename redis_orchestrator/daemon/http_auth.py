"""Basic authentication for the metrics endpoint: `Authorization: Basic` checked against the web
config's bcrypt hashes, cheaply for the scraper and at a bounded cost for everyone else.

    Authorization: Basic cHJvbWV0aGV1czpzZWNyZXQ=        (base64 of "prometheus:secret")

A bcrypt check costs 50-250 ms of CPU by design. So, as exporter-toolkit does:
- a successful check is cached (by a SHA-256 of user, hash and password: never the password itself),
  so a scraper pays once, not every 15 s; a wrong password tried again is cached too, apart, so a
  flood of wrong passwords can never push the scraper's entry out;
- an unknown user is checked against a throwaway hash of the same cost, so timing does not tell
  which users exist;
- checks run one at a time on one thread of their own (bcrypt releases the GIL: at most one core,
  and the daemon's loops and the endpoint's own thread keep theirs), at most `max_pending` queued in
  all (16: a check that waits behind all of them waits about a second) and `per_client` per client
  address (2: two jobs of one Prometheus starting together both get checked): a flood from one
  address is answered 429 at once, a flood from many 503, and neither delays a scraper whose
  credentials are cached.

`check` runs on the endpoint's event loop (one thread): the caches need no lock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import bcrypt


class Verdict(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # no Basic credentials, or unreadable ones: 401
    WRONG = "wrong"  # unknown user or wrong password: 401
    BUSY_CLIENT = "busy_client"  # this address already has a check waiting: 429
    BUSY = "busy"  # too many checks waiting: 503


def parse_basic(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) from `Basic <base64 of user:password>`; None when absent or malformed."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user.decode("utf-8", "replace"), password


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, key: bytes) -> bool:
        if key in self._items:
            self._items.move_to_end(key)
            return True
        return False

    def add(self, key: bytes) -> None:
        self._items[key] = None
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class BasicAuth:
    """Checks credentials against `users` (user -> bcrypt hash); see the module docstring."""

    def __init__(self, on_hash: Callable[[], None], max_pending: int = 16, per_client: int = 2) -> None:
        """`on_hash()`: one bcrypt check ran (the metric that shows what the cache saves)."""
        self.on_hash = on_hash
        self.max_pending = max_pending
        self.per_client = per_client
        self._good = _LRU(64)
        self._bad = _LRU(1024)
        self._pending: dict[str, int] = {}  # client address -> checks queued or running
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-bcrypt")
        # cost prefix ($2b$10$) -> a hash of a random password; made and read on the bcrypt thread only
        self._decoys: dict[bytes, bytes] = {}

    async def check(self, users: Mapping[str, bytes], header: str | None, client: str) -> Verdict:
        credentials = parse_basic(header)
        if credentials is None:
            return Verdict.MISSING
        user, password = credentials
        known = users.get(user)
        # An unknown user is checked against a decoy of the first user's cost: the same time spent.
        hashed = known if known is not None else next(iter(users.values()), b"$2b$10$")[:7]
        key = hashlib.sha256(b"\0".join((user.encode(), hashed, password))).digest()
        if key in self._good:
            return Verdict.OK
        if key in self._bad:
            return Verdict.WRONG
        if self._pending.get(client, 0) >= self.per_client:
            return Verdict.BUSY_CLIENT
        if sum(self._pending.values()) >= self.max_pending:
            return Verdict.BUSY
        self._pending[client] = self._pending.get(client, 0) + 1
        try:
            loop = asyncio.get_running_loop()
            matched = await loop.run_in_executor(self._executor, self._bcrypt, password, hashed)
        finally:
            left = self._pending[client] - 1
            if left:
                self._pending[client] = left
            else:
                del self._pending[client]
        self.on_hash()
        if matched and known is not None:
            self._good.add(key)
            return Verdict.OK
        self._bad.add(key)
        return Verdict.WRONG

    def _bcrypt(self, password: bytes, hashed: bytes) -> bool:
        """On the bcrypt thread. `hashed` is a user's hash, or a cost prefix for an unknown user: then
        a decoy hash of that cost (made once per cost) is checked, and never matches."""
        if len(hashed) > 7:
            return bcrypt.checkpw(password, hashed)
        decoy = self._decoys.get(hashed)
        if decoy is None:
            decoy = self._decoys[hashed] = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(int(hashed[4:6])))
        bcrypt.checkpw(password, decoy)
        return False

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
