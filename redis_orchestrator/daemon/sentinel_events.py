"""Following the Sentinels' events (sentinel mode): a failover is seen the moment it happens.

One connection per Sentinel, subscribed to the channels below. Each event about our service wakes
the topology loop, which asks the Sentinels again (the events only say *that* something changed;
the topology is always rebuilt whole from SENTINEL MASTER / REPLICAS). Every Sentinel publishes
its own copy of an event: the first wakes the loop, the others find it already awake.

Payloads (`<instance-type> <name> <ip> <port> @ <master-name> <master-ip> <master-port>`; a
master's event stops before the `@`, +switch-master has a shape of its own):

    +switch-master     mymaster 127.0.0.1 6379 127.0.0.1 6380
    +sdown             master mymaster 127.0.0.1 6379
    +sdown / -sdown    slave 127.0.0.1:6381 127.0.0.1 6381 @ mymaster 127.0.0.1 6379
    +slave             slave 127.0.0.1:6382 127.0.0.1 6382 @ mymaster 127.0.0.1 6379
    +convert-to-slave  slave 127.0.0.1:6379 127.0.0.1 6379 @ mymaster 127.0.0.1 6380

A subscription that drops is logged once, retried with backoff, and while no Sentinel's
subscription is up the daemon polls the topology every second instead (`live` says which).
A subscription that comes back asks for one refresh: events may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from redis_orchestrator import logs
from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.config.settings import RedisSettings
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.wire.connections import describe_error, single_connection
from redis_orchestrator.wire.replies import as_list, text

CHANNELS = ("+switch-master", "+convert-to-slave", "+sdown", "-sdown", "+slave")
# A quiet subscription is checked with PING this often; no answer to the next read means the
# Sentinel is gone (frozen, or a network that drops silently).
_KEEPALIVE = 10.0
_MAX_BACKOFF = 5.0
# The same event from several Sentinels is logged once in this window.
_LOG_WINDOW = 10.0


@dataclass(frozen=True)
class SentinelEvent:
    channel: str
    service: str
    instance: str  # master | slave | sentinel
    address: str  # the node concerned (+switch-master: the new primary)
    sentinel: str  # the Sentinel that published it


def parse_event(channel: str, payload: str, sentinel: str) -> SentinelEvent | None:
    """The event, or None when its shape is unknown."""
    words = payload.split()
    if channel == "+switch-master":
        if len(words) < 5:
            return None
        return SentinelEvent(channel, words[0], "master", f"{words[3]}:{words[4]}", sentinel)
    if len(words) < 4:
        return None
    instance = words[0]
    if "@" in words:
        after = words[words.index("@") + 1 :]
        service = after[0] if after else ""
    elif instance == "master":
        service = words[1]
    else:
        return None
    return SentinelEvent(channel, service, instance, f"{words[2]}:{words[3]}", sentinel)


class SentinelEvents:
    """Subscriptions to every Sentinel; `on_event` for each event about `service`, `on_resync`
    when a subscription (re)starts and the topology should be looked at once."""

    name = "sentinel events"

    def __init__(
        self,
        settings: RedisSettings,
        sentinels: Sequence[str],
        service: str,
        on_event: Callable[[SentinelEvent], None],
        on_resync: Callable[[str], None],
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sentinels = list(dict.fromkeys(sentinels))
        self.service = service
        self.on_event = on_event
        self.on_resync = on_resync
        self.clock = clock
        self._live: set[str] = set()
        self._logged: dict[tuple[str, str], float] = {}
        for sentinel in self.sentinels:
            metrics.sentinel_subscribed.labels(sentinel).set(0)

    @property
    def live(self) -> bool:
        """At least one subscription is up: events will come. False: the daemon polls instead."""
        return bool(self._live)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for sentinel in self.sentinels:
                group.create_task(self._follow(sentinel), name=f"sentinel events {sentinel}")

    async def _follow(self, sentinel: str) -> None:
        host, port = parse_address(sentinel)
        backoff = 0.1
        failed: str | None = None
        ever = False
        while True:
            connection = single_connection(
                self.settings, host, port, sentinel=True, socket_timeout=None, client_name="redis-orchestrator-events"
            )
            try:
                await connection.connect()
                await connection.send_command("SUBSCRIBE", *CHANNELS)
                for _ in CHANNELS:  # one confirmation per channel, or the error (NOPERM)
                    # push_request: in RESP3 pub/sub replies are pushes, which redis-py would
                    # otherwise hand to a push handler instead of returning them.
                    reply = await connection.read_response(timeout=self.settings.timeout, push_request=True)
                    if reply is None:
                        raise TimeoutError("no SUBSCRIBE confirmation")
                self._live.add(sentinel)
                self.metrics.sentinel_subscribed.labels(sentinel).set(1)
                logs.event("sentinel_subscription_restored" if failed else "sentinel_subscribed", sentinel=sentinel)
                if failed is not None:  # events may have been missed while it was down
                    self.on_resync(f"subscription to {sentinel} restored")
                ever, failed, backoff = True, None, 0.1
                await self._listen(connection, sentinel)
            except (redis.RedisError, OSError, TimeoutError) as exc:
                self._live.discard(sentinel)
                # One line per loss: the error text of the retries wanders (reset, refused,
                # timeout) while nothing changed for the operator.
                if failed is None:
                    failed = describe_error(exc, sentinel=True)
                    logs.warning(
                        "sentinel_subscription_lost" if ever else "sentinel_subscription_failed",
                        sentinel=sentinel,
                        error=failed,
                        polling=None if self.live else "every second until a subscription is back",
                    )
            finally:
                self._live.discard(sentinel)
                self.metrics.sentinel_subscribed.labels(sentinel).set(0)
                await connection.disconnect()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _listen(self, connection: redis.asyncio.Connection, sentinel: str) -> None:
        """Until the connection drops (raises)."""
        pinged = False
        while True:
            reply = await connection.read_response(timeout=_KEEPALIVE, push_request=True)
            if reply is None:
                if pinged:
                    raise TimeoutError(f"no answer to PING within {_KEEPALIVE:.0f}s")
                await connection.send_command("PING")
                pinged = True
                continue
            pinged = False
            if isinstance(reply, redis.ResponseError):
                raise reply
            message = as_list(reply)
            if len(message) == 3 and text(message[0]) == "message":
                event = parse_event(text(message[1]), text(message[2]), sentinel)
                if event is not None and event.service == self.service:
                    self._log(event)
                    self.on_event(event)

    def _log(self, event: SentinelEvent) -> None:
        key = (event.channel, event.address)
        now = self.clock()
        if now - self._logged.get(key, -_LOG_WINDOW) < _LOG_WINDOW:
            return
        self._logged[key] = now
        logs.event("sentinel_event", channel=event.channel, node=event.address, sentinel=event.sentinel)
