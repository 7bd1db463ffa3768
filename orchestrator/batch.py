"""Send many commands to one node in one write and read every reply, errors in place.

redis-py's Pipeline builds a command object per entry and runs its callbacks on every reply; for
a batch of 1,000 SCRIPT LOADs that Python overhead costs more than the server's compile time. Here
the batch is packed once with the connection's own packer, written once, and the replies are read
raw (hiredis when installed). Error replies are returned as exceptions in their place, never raised,
so one script that does not compile does not hide the others' results.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
import redis.asyncio
from redis.asyncio.connection import Connection

Command = Sequence[str | bytes | int]


async def send_batch(client: redis.asyncio.Redis, commands: Sequence[Command]) -> list[object]:
    """Replies in order; an error reply is a redis.ResponseError in its slot. A connection
    problem raises (the connection is discarded: its stream position is unknown)."""
    if not commands:
        return []
    pool = client.connection_pool
    connection: Connection = await pool.get_connection()
    healthy = False
    try:
        await connection.send_packed_command(connection.pack_commands(commands), check_health=True)
        replies: list[object] = []
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        healthy = True
        return replies
    finally:
        if not healthy:
            await connection.disconnect()
        await pool.release(connection)
