"""A node's liveness watch: an idle connection that tells at once when the node drops or comes back.

The watch holds a connection open and reads from it; the server never writes to it, so the read
returns only when the connection drops (restart, kill -9, CLIENT KILL). Then, and again when a
connection succeeds after failures, it asks for a repair now instead of at the next probe: a
restarted node is reloaded milliseconds after it answers, before clients find its cache empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis

from redis_orchestrator.config.settings import DesiredState
from redis_orchestrator.topology.model import Node
from redis_orchestrator.wire.connections import Connector, single_connection


class LivenessWatch:
    name = "liveness"

    def __init__(
        self,
        node: Node,
        connector: Connector,
        desired: Callable[[], DesiredState],
        on_change: Callable[[], Awaitable[None]],
    ) -> None:
        self.node = node
        self.connector = connector
        self._desired = desired
        self._on_change = on_change

    async def run(self) -> None:
        """Until cancelled."""
        delay = self._desired().daemon.down_poll_interval
        connected_before = True
        while True:
            # Same auth and TLS as the clients; no read timeout: wait for the drop as long as it takes.
            connection = single_connection(
                self.connector.settings,
                self.node.host,
                self.node.port,
                socket_timeout=None,
                client_name="redis-orchestrator-watch",
            )
            connected = False
            try:
                await connection.connect()
                connected = True
                if not connected_before:
                    await self._on_change()  # back after a failure: repair now, not at the next probe
                connected_before = True
                delay = self._desired().daemon.down_poll_interval
                await connection.read_response()  # returns only when the server closes or errs
            except (redis.RedisError, OSError):
                pass
            finally:
                await connection.disconnect()
            if connected:
                await self._on_change()
            else:
                connected_before = False
                delay = min(delay * 2, 1.0)  # the reconcile loop probes a down node on its own
            await asyncio.sleep(delay)
