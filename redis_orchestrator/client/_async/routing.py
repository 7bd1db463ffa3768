"""Which node serves a call, and a pinned connection to it: one Route per kind of redis-py client.

- `redis.asyncio.Redis` (a single node, or a Sentinel-managed `master_for` / `slave_for` client):
  every call goes to that client's pool; there is one node as far as we can tell.
- `redis.asyncio.cluster.RedisCluster`: the slot's primary, or for a `no-writes` call one of its
  replicas when the client was made with read_from_replicas / load_balancing_strategy (its
  connections then say READONLY). We route ourselves, from redis-py's own slot table, rather than
  through `RedisCluster.execute_command`: for EVALSHA_RO, FCALL and FCALL_RO that one asks the server
  `COMMAND GETKEYS` (two extra round trips per call with redis-py 8.1), and it would not tell us
  which node answered a NOSCRIPT.

After MOVED (a failover or a slot move) or a dropped connection, the slot table is fetched again,
at most once per `refresh_interval` however many callers saw the change.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import redis.asyncio
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from redis_orchestrator.client._async.primitives import OTHER_FLAVOUR, checkout, refresh_lock, slot_table
from redis_orchestrator.client.errors import ClientError, NodeUnreachable
from redis_orchestrator.client.nodes import CONNECT_ERRORS, REFRESH_INTERVAL, Throttle, node_name


class AsyncSingleRoute:
    """A `redis.asyncio.Redis`: the node its pool connects to (for Sentinel, the pool finds the node)."""

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
            except TypeError:  # redis-py < 5.3 wants a command name
                conn = await pool.get_connection("_")
        except CONNECT_ERRORS as exc:
            raise NodeUnreachable(self.name(node), exc) from exc
        try:
            yield conn
        finally:
            await pool.release(conn)


class AsyncClusterRoute:
    """A `redis.asyncio.cluster.RedisCluster`: the slot's node, from the client's own slot table."""

    def __init__(self, client: RedisCluster, refresh_interval: float = REFRESH_INTERVAL) -> None:
        self.client = client
        self._throttle = Throttle(refresh_interval, refresh_lock())
        strategy = getattr(client, "load_balancing_strategy", None)
        self._replica_reads = bool(getattr(client, "read_from_replicas", False) or strategy)
        self._strategy = strategy

    async def node(self, slot: int | None, readonly: bool) -> Any:
        manager = await slot_table(self.client)
        if slot is None:
            return self.client.get_default_node()
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
        """MOVED names the slot's owner: take it into the slot table as redis-py's own client does
        (NodesManager.move_slot; a node the table did not list is added), with no round trip and no
        refresh throttle in the way: a refresh during a failover can still miss the new primary."""
        await self.client.nodes_manager.move_slot(error)

    def name(self, node: Any) -> str:
        return str(node.name)

    async def refresh(self) -> None:
        if self._throttle.due():
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await self.client.nodes_manager.initialize()

    @contextlib.asynccontextmanager
    async def connection(self, node: Any) -> AsyncIterator[Any]:
        try:
            conn, owner = await checkout(self.client, node)  # connected here: a failure means nothing was sent
        except CONNECT_ERRORS as exc:
            await self.refresh()
            raise NodeUnreachable(self.name(node), exc) from exc
        try:
            yield conn
        except CONNECT_ERRORS:
            await self.refresh()  # the node may be gone: learn the new topology before the next call
            raise
        finally:
            owner.release(conn)


AsyncRoute: TypeAlias = AsyncSingleRoute | AsyncClusterRoute


def route_for(client: Any) -> AsyncRoute:
    """The route for a redis.asyncio client; TypeError for anything else."""
    if isinstance(client, RedisCluster):
        return AsyncClusterRoute(client)
    if isinstance(client, redis.asyncio.Redis):
        return AsyncSingleRoute(client)
    raise TypeError(
        "AsyncScripts needs a redis.asyncio.Redis (Sentinel's master_for/slave_for give one) or a "
        f"redis.asyncio.cluster.RedisCluster, got {type(client).__name__}; {OTHER_FLAVOUR}"
    )
