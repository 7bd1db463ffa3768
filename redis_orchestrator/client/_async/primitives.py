"""What the asyncio client does its own way, hand-written; _sync/primitives.py has the same names.

tools/unasync.py leaves this file alone: the generated code calls these names from the primitives of
its own flavour.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AbstractContextManager
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster

from redis_orchestrator.client.nodes import CONNECT_ERRORS

# What ends a pinned connection mid-way (the exchange dropped it, and a WATCH on it with it). A task
# cancelled while awaiting a reply leaves the connection in an unknown state too.
LOST = (*CONNECT_ERRORS, asyncio.CancelledError)

OTHER_FLAVOUR = "for sync clients use Scripts"  # the hint when a client of the other kind is passed


async def slot_table(client: RedisCluster) -> Any:
    """The cluster client's NodesManager, its slot table read: redis.asyncio's RedisCluster reads it
    on first use (`initialize()`), not when made."""
    if getattr(client, "_initialize", False):
        await client.initialize()
    return client.nodes_manager


async def checkout(client: RedisCluster, node: ClusterNode) -> tuple[Any, ClusterNode]:
    """A connected connection from `node`'s own pool, and what takes it back (`.release(conn)`).
    A failure to connect raises here, before anything is sent, the connection already given back."""
    conn = node.acquire_connection()
    try:
        await conn.connect()
    except BaseException:
        node.release(conn)
        raise
    return conn, node


def refresh_lock() -> AbstractContextManager[Any]:
    """For the refresh throttle: none needed, every caller runs on the event loop's one thread."""
    return contextlib.nullcontext()
