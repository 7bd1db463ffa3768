"""Which node serves a call, and a pinned connection to it: one Route per kind of redis-py client.

- `redis.Redis` (a single node, or a Sentinel-managed `master_for` / `slave_for` client): every call
  goes to that client's pool; there is one node as far as we can tell.
- `redis.cluster.RedisCluster`: the slot's primary, or for a `no-writes` call one of its replicas
  when the client was made with read_from_replicas / load_balancing_strategy (its connections then
  say READONLY). We route ourselves, from redis-py's own slot table, rather than through
  `RedisCluster.execute_command`: for EVALSHA_RO, FCALL and FCALL_RO that one asks the server
  `COMMAND GETKEYS` (two extra round trips per call with redis-py 8.1), and it would not tell us
  which node answered a NOSCRIPT.

After MOVED (a failover or a slot move) or a dropped connection, the slot table is fetched again,
at most once per `refresh_interval` however many callers saw the change.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis
import redis.asyncio
import redis.exceptions
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from redis_orchestrator.client.errors import ClientError, NodeUnreachable

CONNECT_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

REFRESH_INTERVAL = 0.1


def _pool_connection(pool: Any) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # redis-py < 5.3 wants a command name
        return pool.get_connection("_")


def node_name(host: str, port: int | str) -> str:
    return f"{host}:{port}"


class Throttle:
    """At most one refresh per interval, shared by threads."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last = 0.0

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                return False
            self._last = now
            return True


# ------------------------------------------------------------------------------------------------- sync


class SingleRoute:
    """A `redis.Redis`: the node its pool connects to (for Sentinel, the pool finds the node)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def node(self, slot: int | None, readonly: bool) -> Any:
        return self.client

    def redirected(self, node: Any, address: str) -> Any:
        raise ClientError(f"a redirect to {address} from a single-node client: use RedisCluster for a cluster")

    def name(self, node: Any) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        if "host" in kwargs:
            return node_name(kwargs["host"], kwargs.get("port", 6379))
        service = getattr(self.client.connection_pool, "service_name", None)
        return f"sentinel service {service}" if service else "the client's node"

    def refresh(self) -> None:
        pass

    def moved(self, error: redis.exceptions.MovedError) -> None:
        self.redirected(None, f"{error.host}:{error.port}")

    @contextlib.contextmanager
    def connection(self, node: Any) -> Iterator[Any]:
        pool = self.client.connection_pool
        try:
            conn = _pool_connection(pool)  # connected here: a failure means nothing was sent
        except CONNECT_ERRORS as exc:
            raise NodeUnreachable(self.name(node), exc) from exc
        try:
            yield conn
        finally:
            pool.release(conn)


class ClusterRoute:
    def __init__(self, client: RedisCluster, refresh_interval: float = REFRESH_INTERVAL) -> None:
        self.client = client
        self._throttle = Throttle(refresh_interval)
        strategy = getattr(client, "load_balancing_strategy", None)
        self._replica_reads = bool(getattr(client, "read_from_replicas", False) or strategy)
        self._strategy = strategy

    def node(self, slot: int | None, readonly: bool) -> Any:
        manager = self.client.nodes_manager
        if slot is None:
            return self.client.get_default_node()
        if readonly and self._replica_reads:
            if self._strategy is not None:
                return manager.get_node_from_slot(slot, True, load_balancing_strategy=self._strategy)
            return manager.get_node_from_slot(slot, True)
        return manager.get_node_from_slot(slot)

    def redirected(self, node: Any, address: str) -> Any:
        host, _, port = address.rpartition(":")
        found = self.client.get_node(host=host, port=int(port))
        if found is None:
            self.refresh()
            found = self.client.get_node(host=host, port=int(port))
        if found is None:
            raise redis.exceptions.ConnectionError(f"redirected to {address}, a node the cluster does not list")
        return found

    def moved(self, error: redis.exceptions.MovedError) -> None:
        """MOVED names the slot's owner: take it into the slot table as redis-py's own client does
        (NodesManager.move_slot; a node the table did not list is added), with no round trip and no
        refresh throttle in the way: a refresh during a failover can still miss the new primary."""
        self.client.nodes_manager.move_slot(error)

    def name(self, node: Any) -> str:
        return str(node.name)

    def refresh(self) -> None:
        if self._throttle.due():
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                self.client.nodes_manager.initialize()

    @contextlib.contextmanager
    def connection(self, node: Any) -> Iterator[Any]:
        pool = self.client.get_redis_connection(node).connection_pool
        try:
            conn = _pool_connection(pool)  # connected here: a failure means nothing was sent
        except CONNECT_ERRORS as exc:
            self.refresh()
            raise NodeUnreachable(self.name(node), exc) from exc
        try:
            yield conn
        except CONNECT_ERRORS:
            self.refresh()  # the node may be gone: learn the new topology before the next call
            raise
        finally:
            pool.release(conn)


def sync_route(client: Any) -> SingleRoute | ClusterRoute:
    if isinstance(client, RedisCluster):
        return ClusterRoute(client)
    if isinstance(client, redis.Redis):
        return SingleRoute(client)
    raise TypeError(
        f"Scripts needs a redis.Redis (Sentinel's master_for/slave_for give one) or a redis.cluster.RedisCluster, "
        f"got {type(client).__name__}; for asyncio clients use AsyncScripts"
    )


# ------------------------------------------------------------------------------------------------ async


class AsyncSingleRoute:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client

    async def node(self, slot: int | None, readonly: bool) -> Any:
        return self.client

    async def redirected(self, node: Any, address: str) -> Any:
        raise ClientError(f"a redirect to {address} from a single-node client: use RedisCluster for a cluster")

    def name(self, node: Any) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        if "host" in kwargs:
            return node_name(kwargs["host"], kwargs.get("port", 6379))
        service = getattr(self.client.connection_pool, "service_name", None)
        return f"sentinel service {service}" if service else "the client's node"

    async def refresh(self) -> None:
        pass

    async def moved(self, error: redis.exceptions.MovedError) -> None:
        await self.redirected(None, f"{error.host}:{error.port}")

    @contextlib.asynccontextmanager
    async def connection(self, node: Any) -> AsyncIterator[Any]:
        pool = self.client.connection_pool
        try:
            try:
                conn = await pool.get_connection()  # connected here: a failure means nothing was sent
            except TypeError:  # redis-py < 5.3
                conn = await pool.get_connection("_")
        except CONNECT_ERRORS as exc:
            raise NodeUnreachable(self.name(node), exc) from exc
        try:
            yield conn
        finally:
            await pool.release(conn)


class AsyncClusterRoute:
    def __init__(self, client: AsyncRedisCluster, refresh_interval: float = REFRESH_INTERVAL) -> None:
        self.client = client
        self._interval = refresh_interval
        self._last_refresh = 0.0
        strategy = getattr(client, "load_balancing_strategy", None)
        self._replica_reads = bool(getattr(client, "read_from_replicas", False) or strategy)
        self._strategy = strategy

    async def node(self, slot: int | None, readonly: bool) -> Any:
        client = self.client
        if getattr(client, "_initialize", False):
            await client.initialize()
        manager = client.nodes_manager
        if slot is None:
            return client.get_default_node()
        if readonly and self._replica_reads:
            if self._strategy is not None:
                return manager.get_node_from_slot(slot, True, load_balancing_strategy=self._strategy)
            return manager.get_node_from_slot(slot, True)
        return manager.get_node_from_slot(slot)

    async def redirected(self, node: Any, address: str) -> Any:
        host, _, port = address.rpartition(":")
        found = self.client.get_node(host=host, port=int(port))
        if found is None:
            await self.refresh()
            found = self.client.get_node(host=host, port=int(port))
        if found is None:
            raise redis.exceptions.ConnectionError(f"redirected to {address}, a node the cluster does not list")
        return found

    async def moved(self, error: redis.exceptions.MovedError) -> None:
        """As ClusterRoute.moved, with redis-py's asyncio NodesManager."""
        await self.client.nodes_manager.move_slot(error)

    def name(self, node: Any) -> str:
        return str(node.name)

    async def refresh(self) -> None:
        now = time.monotonic()
        if now - self._last_refresh < self._interval:
            return
        self._last_refresh = now
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await self.client.nodes_manager.initialize()

    @contextlib.asynccontextmanager
    async def connection(self, node: Any) -> AsyncIterator[Any]:
        conn = node.acquire_connection()
        try:
            await conn.connect()  # before anything is sent: a failure here is safe to retry
        except CONNECT_ERRORS as exc:
            node.release(conn)
            await self.refresh()
            raise NodeUnreachable(self.name(node), exc) from exc
        try:
            yield conn
        except CONNECT_ERRORS:
            await self.refresh()
            raise
        finally:
            node.release(conn)


def async_route(client: Any) -> AsyncSingleRoute | AsyncClusterRoute:
    if isinstance(client, AsyncRedisCluster):
        return AsyncClusterRoute(client)
    if isinstance(client, redis.asyncio.Redis):
        return AsyncSingleRoute(client)
    raise TypeError(
        "AsyncScripts needs a redis.asyncio.Redis (Sentinel's master_for/slave_for give one) or a "
        f"redis.asyncio.RedisCluster, got {type(client).__name__}; for sync clients use Scripts"
    )
