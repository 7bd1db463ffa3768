"""daemon/waiting.py: racing work against an event, and cancelling without losing a cancellation.
Pure asyncio, no server."""

from __future__ import annotations

import asyncio

import pytest

from redis_orchestrator.daemon.waiting import cancel_and_wait, unless_set


async def _sleep_then(value: int, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return value


async def _fail() -> None:
    raise ConnectionError("dropped")


def test_work_that_ends_first_gives_its_task() -> None:
    async def scenario() -> None:
        task = await unless_set(_sleep_then(7, 0), asyncio.Event())
        assert task is not None and task.result() == 7

    asyncio.run(scenario())


def test_an_event_set_first_cancels_the_work() -> None:
    async def scenario() -> None:
        event = asyncio.Event()
        cancelled = asyncio.Event()

        async def work() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        asyncio.get_running_loop().call_later(0.01, event.set)
        assert await unless_set(work(), event) is None
        assert cancelled.is_set()

    asyncio.run(scenario())


def test_an_error_of_the_work_is_kept_in_its_task() -> None:
    async def scenario() -> None:
        task = await unless_set(_fail(), asyncio.Event())
        assert task is not None
        with pytest.raises(ConnectionError):
            task.result()

    asyncio.run(scenario())


def test_the_callers_cancellation_reaches_it_while_it_waits_for_the_cancelled() -> None:
    async def scenario() -> None:
        release = asyncio.Event()

        async def stubborn() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                await release.wait()  # takes its time to finish
                raise

        child = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        caller = asyncio.create_task(cancel_and_wait((child,)))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        release.set()
        await asyncio.gather(child, return_exceptions=True)

    asyncio.run(scenario())
