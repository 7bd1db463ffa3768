"""Commands on one pinned connection, in one round trip: the only place the client talks to a socket.

Every call, pipeline and transaction borrows one connection from the pool of the node that serves
its slot and sends its commands packed together, so a NOSCRIPT repair, a WATCH with its SCRIPT EXISTS,
or a MULTI...EXEC all land on the same node in order. Error replies come back in place, as redis-py's
exception objects (NoScriptError, MovedError, ResponseError, ...), never raised from here; only a
broken connection raises, after the connection is dropped (its state -- a WATCH, a half-read reply --
is unknown, and a new connection starts clean).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.exceptions

from redis_orchestrator.client.calls import Command


async def exchange(connection: Any, commands: Sequence[Command]) -> list[Any]:
    """Send `commands` in one write, read one reply per command."""
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except redis.exceptions.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        await connection.disconnect()
        raise
