"""Waiting on an event with a timeout, without losing a cancellation.

On Python 3.11, `asyncio.wait_for` can swallow a cancellation that arrives as its inner task
completes, which left the daemon hanging on SIGTERM; `asyncio.timeout` (3.11+) does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """True if `event` was set within `timeout` seconds, False on timeout."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task and wait until each has finished, whatever it raised (each task's exception
    is retrieved: no "never retrieved" warning). A cancellation of the caller meanwhile still
    reaches it."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def unless_set(work: Awaitable[T], event: asyncio.Event) -> asyncio.Task[T] | None:
    """Run `work` until it finishes or `event` is set, whichever comes first: its finished task (read
    its result or exception), or None when the event came first and `work` was cancelled."""
    task = asyncio.ensure_future(work)
    woken = asyncio.create_task(event.wait())
    try:
        await asyncio.wait((task, woken), return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait((woken, task))  # cancelling a finished task changes nothing
    return None if task.cancelled() else task
