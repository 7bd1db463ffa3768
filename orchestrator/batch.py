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


def encode(commands: Sequence[Command]) -> bytes:
    """RESP arrays of bulk strings, the wire form of `commands`.

        *3\r\n$6\r\nSCRIPT\r\n$6\r\nEXISTS\r\n$40\r\n<sha>\r\n
    """
    out = bytearray()
    for command in commands:
        out += b"*%d\r\n" % len(command)
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
    return bytes(out)


async def send_encoded(client: redis.asyncio.Redis, packet: bytes, count: int) -> list[object]:
    """Like send_batch for a packet already encoded (the steady-state check is the same bytes
    every interval, so it is encoded once per catalog, not once per node per second)."""
    pool = client.connection_pool
    connection: Connection = await pool.get_connection()
    healthy = False
    try:
        await connection.send_packed_command(packet, check_health=True)
        replies: list[object] = []
        for _ in range(count):
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
