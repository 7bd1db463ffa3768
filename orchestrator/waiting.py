"""Waiting on an event with a timeout, without losing a cancellation.

On Python 3.11, `asyncio.wait_for` can swallow a cancellation that arrives as its inner task
completes, which left the daemon hanging on SIGTERM; `asyncio.timeout` (3.11+) does not.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """True if `event` was set within `timeout` seconds, False on timeout."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
