"""The batched send/read path against a real node: errors stay in place, the connection stays usable."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio

from harness.chaos import ChaosCluster
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.wire.batch import encode, raw_stream, send_batch, send_encoded


def test_errors_in_place_and_connection_reusable(cluster: ChaosCluster) -> None:
    node = cluster.nodes[0]
    good = [f"return {i} -- batch test".encode() for i in range(300)]
    bad = b"return (("

    async def run() -> tuple[list[object], list[object], object]:
        client = redis.asyncio.Redis(host=node.host, port=node.port, protocol=3)
        try:
            commands = [("SCRIPT", "LOAD", s) for s in good[:150]] + [("SCRIPT", "LOAD", bad)]
            commands += [("SCRIPT", "LOAD", s) for s in good[150:]]
            replies = await send_batch(client, commands)
            exists = await send_encoded(client, encode([("SCRIPT", "EXISTS", *(sha1_hex(s) for s in good))]), 1)
            after = await client.ping()  # the pooled connection is still in step
        finally:
            await client.aclose()
        return replies, exists, after

    replies, exists, after = asyncio.run(run())
    assert len(replies) == 301
    assert isinstance(replies[150], redis.ResponseError) and "Error compiling script" in str(replies[150])
    shas = [r.decode() for i, r in enumerate(replies) if i != 150]  # type: ignore[union-attr]
    assert shas == [sha1_hex(s) for s in good]
    assert exists == [[1] * 300]
    assert after is True


def test_the_fast_path_still_finds_redis_pys_stream(cluster: ChaosCluster) -> None:
    """batch.raw_stream reads two private attributes of redis-py's asyncio Connection. A redis-py
    release that moves them must fail here, loudly, not silently fall back to the slow path."""
    node = cluster.nodes[0]

    async def run() -> bool:
        client = redis.asyncio.Redis(host=node.host, port=node.port, protocol=3)
        try:
            connection = await client.connection_pool.get_connection()
            try:
                await connection.send_command("PING")
                await connection.read_response()
                return raw_stream(connection) is not None
            finally:
                await client.connection_pool.release(connection)
        finally:
            await client.aclose()

    assert asyncio.run(run()), f"redis-py {redis.__version__} moved Connection._reader or _parser._reader"
