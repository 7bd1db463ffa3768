"""Send many commands to one node in one write and read every reply, errors in place.

redis-py's Pipeline builds a command object per entry and runs its callbacks on every reply; for
a batch of 1,000 SCRIPT LOADs that Python overhead costs more than the server's compile time. Here
the batch is packed once with the connection's own packer, written once, and the replies are read
raw (hiredis when installed). Error replies are returned as exceptions in their place, never raised,
so one script that does not compile does not hide the others' results.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.connection import Connection

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency; stay correct without it
    hiredis = None  # type: ignore[assignment]

Command = Sequence[str | bytes | int]


# A big batch goes in windows of this many commands, one round trip each: loopback round trips are
# cheap, and what the transport buffers (unsent bytes, unread replies) stays bounded per node. A
# cold start of 10,000 scripts on 200 nodes at once otherwise held one 3 MB packet per node in
# flight, most of a gigabyte.
WINDOW = 500

Window = tuple[bytes, int]  # an encoded packet and its number of commands


def windows(commands: Sequence[Command], size: int = WINDOW) -> tuple[Window, ...]:
    """`commands` encoded in windows of at most `size` commands."""
    return tuple((encode(commands[i : i + size]), len(commands[i : i + size])) for i in range(0, len(commands), size))


async def send_batch(client: redis.asyncio.Redis, commands: Sequence[Command]) -> list[object]:
    """Replies in order; an error reply is a redis.ResponseError in its slot. A connection
    problem raises (the connection is discarded: its stream position is unknown)."""
    if not commands:
        return []
    return await send_windows(client, windows(commands))


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


async def call(client: redis.asyncio.Redis, *args: str | int) -> Any:
    """One raw command on one node, its reply unparsed by redis-py's callbacks; an error reply raises.

    The slowlog watcher polls every node every second: redis-py's execute_command path (retry
    wrapper, callbacks, per-reply timeouts) was most of its CPU. The packet is encoded once per
    distinct command."""
    (reply,) = await send_encoded(client, _encoded(args), 1)
    if isinstance(reply, Exception):
        raise reply
    return reply


@functools.lru_cache(maxsize=64)
def _encoded(args: tuple[str | int, ...]) -> bytes:
    return encode([args])


async def send_encoded(client: redis.asyncio.Redis, packet: bytes, count: int) -> list[object]:
    """send_batch for a packet already encoded (the steady-state check is the same bytes every
    interval, so it is encoded once per catalog, not once per node per second)."""
    return await send_windows(client, ((packet, count),))


async def send_windows(client: redis.asyncio.Redis, packets: Sequence[Window]) -> list[object]:
    """Each window sent and its replies read before the next, on one connection: the same encoded
    windows serve every node (a full load is encoded once per catalog, not once per node)."""
    replies: list[object] = []
    async with link(client) as held:
        for packet, count in packets:
            replies += await held.exchange(packet, count)
    return replies


class Link:
    """One pooled connection held for a sequence of exchanges (a batch read window by window, each
    window's replies handled before the next is sent, so none has to be kept)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._checked = False

    async def exchange(self, packet: bytes, count: int) -> list[object]:
        await self.connection.send_packed_command(packet, check_health=not self._checked)
        self._checked = True
        return await _read_replies(self.connection, count)


@contextlib.asynccontextmanager
async def link(client: redis.asyncio.Redis) -> AsyncIterator[Link]:
    """A connection of `client`'s pool for several exchanges; on any error it is discarded (its
    stream position is unknown), else given back."""
    pool = client.connection_pool
    connection: Connection = await pool.get_connection()
    healthy = False
    try:
        yield Link(connection)
        healthy = True
    finally:
        if not healthy:
            await connection.disconnect()
        await pool.release(connection)


def raw_stream(connection: Connection) -> asyncio.StreamReader | None:
    """The connection's byte stream when the fast path can read it: hiredis is installed, redis-py's
    parser is its hiredis one and has nothing buffered (we hold the connection alone and every earlier
    reply was read). None means "use the plain path".

    This reads two private attributes of redis-py's asyncio Connection (`_reader`, the stream, and
    `_parser._reader`, the hiredis Reader): pyproject.toml pins the redis-py range we test, and
    tests/test_batch.py fails loudly when a redis-py release moves them.
    """
    stream = getattr(connection, "_reader", None)
    inner: Any = getattr(getattr(connection, "_parser", None), "_reader", None)
    if hiredis is None or not isinstance(stream, asyncio.StreamReader) or not hasattr(inner, "has_data"):
        return None
    return None if inner.has_data() else stream


async def _read_replies(connection: Connection, count: int) -> list[object]:
    """`count` replies, error replies as exceptions in place.

    redis-py's read_response costs ~16 µs of Python per reply (timeouts, callbacks); for a batch of
    thousands that is most of the time. When the connection's stream can be read directly
    (`raw_stream`), it is fed to one hiredis Reader instead: the same parser redis-py uses, ~0.5 µs
    per reply. Otherwise, the plain path.
    """
    stream = raw_stream(connection)
    if stream is None:
        replies: list[object] = []
        for _ in range(count):
            try:
                replies.append(await connection.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies
    reader = hiredis.Reader(replyError=redis.ResponseError)
    timeout = connection.socket_timeout
    out: list[object] = []
    while len(out) < count:
        try:
            async with asyncio.timeout(timeout):
                data = await stream.read(1 << 16)
        except TimeoutError as exc:
            raise redis.TimeoutError(f"timeout reading a batch of {count} replies") from exc
        if not data:
            raise redis.ConnectionError("connection closed by the server during a batch")
        reader.feed(data)
        while len(out) < count:
            reply = reader.gets()
            if reply is False:
                break
            out.append(reply)
    return out
