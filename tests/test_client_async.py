"""AsyncScripts over redis.asyncio's RedisCluster on the session cluster: the same contract as the sync
client (from_redis, run, CrossSlotError, a pipeline across a SCRIPT FLUSH, a transaction that retries),
plus many concurrent calls on one event loop."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from harness.chaos import ChaosCluster
from harness.helpers import command_calls
from redis_orchestrator.client import (
    AsyncScripts,
    AsyncTx,
    CrossSlotError,
    ScriptError,
    ScriptMissing,
    TransactionConflict,
    UnknownScript,
)
from redis_orchestrator.config.loader import load_config

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "config.yaml"


def run_with_cluster(cluster: ChaosCluster, scenario: Callable[[RedisCluster], Awaitable[None]]) -> None:
    async def main() -> None:
        host, port = cluster.seeds[0].split(":")
        rc = RedisCluster(host=host, port=int(port), decode_responses=True)
        try:
            await scenario(rc)
        finally:
            await rc.aclose()

    asyncio.run(main())


def flush_scripts(cluster: ChaosCluster) -> None:
    for node in cluster.nodes:
        with node.client() as c:
            c.execute_command("SCRIPT", "FLUSH")


def test_async_public_api(clean_cluster: ChaosCluster) -> None:
    evals = sum(command_calls(n, "eval") for n in clean_cluster.nodes)

    async def scenario(rc: RedisCluster) -> None:
        manifest_key = f"{{redis-orchestrator}}:manifest-{uuid.uuid4().hex[:6]}"
        await rc.set(manifest_key, json.dumps(load_config(CONFIG).catalog.manifest()))
        run_id = uuid.uuid4().hex[:8]
        alice, bob = f"{{ledger}}:acct:{run_id}-a", f"{{ledger}}:acct:{run_id}-b"
        await rc.set(alice, 500)
        await rc.set(bob, 0)
        try:
            scripts = await AsyncScripts.from_redis(rc, key=manifest_key)
            assert await scripts.run("transfer", keys=[alice, bob], args=[100]) == [400, 100, 1]
            with pytest.raises(ScriptError) as refused:
                await scripts.run("transfer", keys=[alice, bob], args=[1000])
            assert refused.value.code == "INSUFFICIENT_FUNDS"
            unchecked = await AsyncScripts.from_redis(rc, key=manifest_key, check_keys=False)
            with pytest.raises(CrossSlotError):
                await unchecked.run("transfer", keys=["{ledger}:a", "{quota}:b"], args=[1])
            with pytest.raises(UnknownScript):
                await scripts.run("nope")

            async with scripts.pipeline() as pipe:
                pipe.run("transfer", keys=[alice, bob], args=[1])
                assert await pipe.execute() == [[399, 101, 1]]
                flush_scripts(clean_cluster)
                pipe.run("transfer", keys=[alice, bob], args=[2]).run("balances", keys=[alice, bob])
                assert await pipe.execute() == [[397, 103, 1], [500, 0, 397, 103]]
            assert scripts.counters.fallbacks == 3  # transfer before and after the flush, balances after

            first = True

            async def fee(tx: AsyncTx) -> int:
                nonlocal first
                balance = int(await tx.get(alice))
                if first:
                    first = False
                    await rc.incrby(alice, 3)
                tx.multi()
                await tx.run("transfer", keys=[alice, bob], args=[7])
                return balance

            result = await scripts.transaction([alice, bob], fee)
            assert result.attempts == 2 and result.value == 400 and result.replies == [[393, 110, 1]]
            assert scripts.counters.retries == 1

            async def hot(tx: AsyncTx) -> None:
                await tx.get(alice)
                await rc.incrby(alice, 1)
                tx.multi()
                await tx.execute_command("INCRBY", bob, 1)

            with pytest.raises(TransactionConflict):
                await scripts.transaction([alice, bob], hot, retries=1)

            flush_scripts(clean_cluster)
            strict = await AsyncScripts.from_redis(rc, key=manifest_key, fallback="raise")
            with pytest.raises(ScriptMissing):
                await strict.run("transfer", keys=[alice, bob], args=[1])
        finally:
            await rc.delete(manifest_key, alice, bob)

    run_with_cluster(clean_cluster, scenario)
    assert sum(command_calls(n, "eval") for n in clean_cluster.nodes) == evals


def test_many_concurrent_calls_on_one_loop(cluster: ChaosCluster) -> None:
    async def scenario(rc: RedisCluster) -> None:
        scripts = AsyncScripts.from_config(CONFIG, rc)
        keys = [f"{{quota}}:{uuid.uuid4().hex}" for _ in range(4)]
        try:
            replies: list[Any] = await asyncio.gather(
                *(scripts.run("capped_incr", keys=[keys[i % 4]], args=[1, 50]) for i in range(400))
            )
            applied = sum(r[1] for r in replies)
            assert applied == 200  # 4 counters x cap 50: exactly, under 400 concurrent calls
            assert [await scripts.run("counter_get", keys=[k]) for k in keys] == [50, 50, 50, 50]
        finally:
            await rc.delete(*keys)

    run_with_cluster(cluster, scenario)
