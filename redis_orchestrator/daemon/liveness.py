"""A node's liveness watch: an idle connection that tells at once when the node drops or comes back.

The watch holds a connection open and reads from it; the server never writes to it, so the read
returns only when the connection drops (restart, kill -9, CLIENT KILL). Then, and again when a
connection succeeds after failures, it asks for a repair now instead of at the next probe: a
restarted node is reloaded milliseconds after it answers, before clients find its cache empty.

While the node is lost the watch tries to connect again on the down nodes' probe cadence (ten times
a second, a hundred in the first 10 s: node_worker.probe_delay), never slower. It used to back off
to 1 s between tries, so after a restart it held no connection again for up to a second: a node
killed again in that window dropped nothing, nothing woke its worker, and the node stayed empty
until the next timed pass (issue #21's restart tail: 200-650 ms, one restart in three). Tries
overlap, each bounded by `redis.timeout`: where packets vanish (a partition) a connect waits out
its timeout, and a fresh one must already be on its way when the link heals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio

from redis_orchestrator.config.settings import DesiredState
from redis_orchestrator.daemon.node_worker import next_refused_backoff, probe_delay
from redis_orchestrator.daemon.waiting import unless_set
from redis_orchestrator.topology.model import Node
from redis_orchestrator.wire.connections import Connector, single_connection

# Connection tries in flight at once while the node is lost: with packets dropped each one waits out
# the timeout, so a fresh one leaves at least every timeout / this many seconds.
_MAX_TRIES = 8


class LivenessWatch:
    name = "liveness"

    def __init__(
        self,
        node: Node,
        connector: Connector,
        desired: Callable[[], DesiredState],
        on_change: Callable[[], Awaitable[None]],
        recheck: asyncio.Event,
    ) -> None:
        """`on_change`: the node dropped or came back (repair now). `recheck`: set when the node's
        worker sees it down while this watch still holds a connection: where packets vanish (a
        partition) a held connection stays silent and proves nothing, so it is dropped and the
        watch probes until the node takes a new one."""
        self.node = node
        self.connector = connector
        self._desired = desired
        self._on_change = on_change
        self._recheck = recheck

    async def run(self) -> None:
        """Until cancelled."""
        lost_since: float | None = None
        rechecked = False
        while True:
            connection, failed_first = await self._connection(lost_since)
            self._recheck.clear()
            if failed_first or rechecked:
                await self._on_change()  # back after a failure: repair now, not at the next probe
            try:
                rechecked = await self._until_dropped(connection)
            finally:
                await connection.disconnect()
            lost_since = time.monotonic()
            if not rechecked:
                await self._on_change()  # dropped: its worker looks at once (rechecked: it knows)

    async def _until_dropped(self, connection: redis.asyncio.Connection) -> bool:
        """Read until the server closes the connection (False) or `recheck` is set (True)."""
        # Only a drop (or an error: the task holds it, read by nobody on purpose) ends the read.
        return await unless_set(connection.read_response(), self._recheck) is None

    async def _connection(self, lost_since: float | None) -> tuple[redis.asyncio.Connection, bool]:
        """A connection as soon as the node takes one, and whether some try failed first. A try
        leaves at once, then one per probe tick, while fewer than _MAX_TRIES are in flight; tries
        that hang (packets dropped) are spread over the timeout, so that one always leaves soon."""
        since = lost_since if lost_since is not None else time.monotonic()
        tries: set[asyncio.Task[redis.asyncio.Connection]] = set()
        failed = False
        refused_delay = 0.0
        next_try = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now >= next_try and len(tries) < _MAX_TRIES:
                    tries.add(asyncio.create_task(self._try()))
                    tick = probe_delay(self._desired().daemon.down_poll_interval, now - since)
                    if len(tries) > 1:
                        tick = max(tick, self.connector.settings.timeout / _MAX_TRIES)
                    next_try = now + tick
                wait = None if len(tries) >= _MAX_TRIES else max(0.0, next_try - now)
                if not tries:
                    await asyncio.sleep(wait or 0.0)
                    continue
                done, tries = await asyncio.wait(tries, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                connected = [t.result() for t in done if t.exception() is None]
                if connected:
                    for extra in connected[1:]:
                        await extra.disconnect()
                    return connected[0], failed
                failed = failed or bool(done)
                if any(isinstance(t.exception(), redis.AuthenticationError) for t in done):
                    # The node answers, and refuses our password: backed off as its reconcile passes
                    # are (issue #23: 579 refused AUTHs in 6 s without it; tests/test_hostile_live.py).
                    refused_delay = next_refused_backoff(refused_delay, self._desired().daemon.down_poll_interval)
                    next_try = time.monotonic() + refused_delay
        finally:
            for task in tries:
                task.cancel()
            for outcome in await asyncio.gather(*tries, return_exceptions=True):
                if isinstance(outcome, redis.asyncio.Connection):
                    await outcome.disconnect()

    async def _try(self) -> redis.asyncio.Connection:
        # Same auth and TLS as the clients; no read timeout: wait for the drop as long as it takes
        # (TCP keepalive, on by default in redis-py, finds a peer gone silent). The handshake is bounded.
        connection = single_connection(
            self.connector.settings,
            self.node.host,
            self.node.port,
            socket_timeout=None,
            client_name="redis-orchestrator-watch",
        )
        try:
            async with asyncio.timeout(self.connector.settings.timeout):
                await connection.connect()
        except BaseException:
            await connection.disconnect()
            raise
        return connection
