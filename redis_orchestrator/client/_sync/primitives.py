"""What the sync client does its own way, hand-written; _async/primitives.py has the same names.

tools/unasync.py leaves this file alone: the code it generates in this folder calls these.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

from redis.cluster import ClusterNode, RedisCluster

from redis_orchestrator.client.nodes import CONNECT_ERRORS

# What ends a pinned connection mid-way (the exchange dropped it, and a WATCH on it with it).
LOST = CONNECT_ERRORS

OTHER_FLAVOUR = "for asyncio clients use AsyncScripts"  # the hint when a client of the other kind is passed


def slot_table(client: RedisCluster) -> Any:
    """The cluster client's NodesManager: redis-py's sync RedisCluster reads the slot table when made."""
    return client.nodes_manager


def checkout(client: RedisCluster, node: ClusterNode) -> tuple[Any, Any]:
    """A connected connection from the pool of `node`'s redis.Redis, and that pool (`.release(conn)`
    takes it back). A failure to connect raises here, before anything is sent."""
    pool = client.get_redis_connection(node).connection_pool
    try:
        return pool.get_connection(), pool
    except TypeError:  # redis-py < 5.3 wants a command name
        return pool.get_connection("_"), pool


def refresh_lock() -> AbstractContextManager[Any]:
    """For the refresh throttle: callers on several threads share one route."""
    return threading.Lock()
