"""The script library's promises, proven under concurrency on the real 3+3 session cluster, through the
client library: threads and asyncio tasks at once, every property checked while the work runs and
after it. The failover proofs are in test_client_failover.py.

- transfer: the total is conserved exactly, no balance is ever negative, and the balances are exactly
  what the acknowledged transfers say -- checked after every round on the primary and, during the
  run, from a reader calling `balances` with EVALSHA_RO on the replica.
- locks: at most one holder at a time (a fenced resource counts who is inside and refuses stale
  tokens), tokens grow with every grant, only the owner releases or extends, an expired lock is
  taken over and its old holder is refused by the resource.
- rate limit: never more grants than the limit in any window, across window boundaries.
- capped counter: never above the cap (the script and the Function on one key), seen by a replica
  reader during the run, and exactly the sum of the increments that were applied.

CI runs each at scale 1 (a few seconds); REDIS_ORCHESTRATOR_PROOF_SCALE=N runs N times more work.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from harness.chaos import ChaosCluster
from redis_orchestrator.client import AsyncScripts, ScriptError, Scripts
from redis_orchestrator.devcluster.cluster import LocalNode
from tests.proofs import SCALE, FencedResource, Reader, replica_client, run_workers

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "config.yaml"
THREADS = 4
TASKS = 8

pytestmark = pytest.mark.timeout(120 + 60 * SCALE)


@pytest.fixture(scope="module")
def scripts(rc: RedisCluster) -> Scripts:
    return Scripts.from_config(CONFIG, rc)


def async_main(
    cluster: ChaosCluster, scripts: Scripts, body: Callable[[AsyncScripts, int], Awaitable[None]], tasks: int = TASKS
) -> Callable[[], Awaitable[None]]:
    """`tasks` asyncio workers sharing one AsyncScripts (and `scripts`' counters) on one asyncio RedisCluster."""

    async def main() -> None:
        host, port = cluster.seeds[0].split(":")
        client = AsyncRedisCluster(host=host, port=int(port), decode_responses=True)
        try:
            shared = AsyncScripts(scripts.manifest, client, counters=scripts.counters)
            await asyncio.gather(*(body(shared, i) for i in range(tasks)))
        finally:
            await client.aclose()

    return main


def replica_of_key(cluster: ChaosCluster, rc: RedisCluster, key: str) -> tuple[LocalNode, LocalNode]:
    node = rc.get_node_from_key(key)
    primary = cluster.node_at(f"{node.host}:{node.port}")
    return primary, cluster.replicas_of(primary)[0]


# ------------------------------------------------------------------------------------------ transfer


def test_transfers_conserve_the_total_and_never_go_negative(
    cluster: ChaosCluster, rc: RedisCluster, scripts: Scripts
) -> None:
    run_id = uuid.uuid4().hex[:8]
    accounts = [f"{{ledger}}:acct:{run_id}-{i}" for i in range(8)]
    start = 100
    for key in accounts:
        rc.set(key, start)
    total = start * len(accounts)
    _, replica = replica_of_key(cluster, rc, accounts[0])
    applied: list[tuple[str, str, int]] = []  # (from, to, amount) of every acknowledged transfer
    refused: Counter[str] = Counter()
    records: list[str] = []

    ids = itertools.count()

    def one(i: int, n: int) -> tuple[list[str], int, str | None]:
        transfer_id = next(ids)  # unique across workers and rounds
        rng = random.Random(f"{run_id}-{transfer_id}")
        src, dst = rng.sample(accounts, 2)
        keys = [src, dst]
        if n % 2:  # half with an idempotency record, half without
            keys.append(f"{{ledger}}:xfer:{run_id}-{transfer_id}")
            records.append(keys[-1])
        return keys, rng.randint(1, 60), None

    def settle(keys: list[str], amount: int, reply: Any) -> None:
        assert reply[2] == 1
        applied.append((keys[0], keys[1], amount))

    ops = 25 * SCALE

    def sync_worker(i: int) -> None:
        for n in range(ops):
            keys, amount, _ = one(i, n)
            try:
                settle(keys, amount, scripts.run("transfer", keys=keys, args=[amount]))
            except ScriptError as exc:
                assert exc.code == "INSUFFICIENT_FUNDS", exc
                refused[exc.code] += 1

    async def async_worker(a: AsyncScripts, i: int) -> None:
        for n in range(ops):
            keys, amount, _ = one(100 + i, n)
            try:
                settle(keys, amount, await a.run("transfer", keys=keys, args=[amount]))
            except ScriptError as exc:
                assert exc.code == "INSUFFICIENT_FUNDS", exc
                refused[exc.code] += 1

    reader_client = replica_client(replica, decode_responses=True)
    on_replica = scripts.bind(reader_client)
    snapshots: list[list[int]] = []

    def check(reply: list[int]) -> None:
        balances = reply[2:]
        assert reply[0] == total and reply[1] == 0, f"replica snapshot {reply}: total is not {total}"
        assert min(balances) >= 0, f"replica snapshot with a negative balance: {reply}"
        snapshots.append(reply)

    rounds = 4 * SCALE
    with Reader(lambda: on_replica.run("balances", keys=accounts), check) as reader:
        for _ in range(rounds):
            run_workers([sync_worker] * THREADS, async_main(cluster, scripts, async_worker))
            reply = scripts.run("balances", keys=accounts)
            assert reply[0] == total and reply[1] == 0 and min(reply[2:]) >= 0, reply
    expected = {key: start for key in accounts}
    for src, dst, amount in applied:
        expected[src] -= amount
        expected[dst] += amount
    assert scripts.run("balances", keys=accounts)[2:] == [expected[k] for k in accounts]
    assert reader.reads > 0 and len(applied) > 0 and refused["INSUFFICIENT_FUNDS"] > 0
    print(
        f"\ntransfers: {len(applied)} applied, {sum(refused.values())} refused (insufficient funds), "
        f"{rounds} rounds checked on the primary, {reader.reads} EVALSHA_RO snapshots on the replica {replica}"
    )
    reader_client.close()
    rc.delete(*accounts)
    for key in records:
        rc.delete(key)


# ------------------------------------------------------------------------------------------ locks


def test_lock_mutual_exclusion_with_fencing_tokens_and_owner_only_release(
    cluster: ChaosCluster, rc: RedisCluster, scripts: Scripts
) -> None:
    name = uuid.uuid4().hex[:10]
    lock, fence = f"{{lock}}:{name}", f"{{lock}}:{name}:fence"
    resource = FencedResource()
    grants: list[int] = []
    strangers = Counter[str]()
    attempts = 40 * SCALE

    def critical_section(token: int) -> None:
        resource.enter()
        try:
            assert resource.inside == 1, "two holders inside at once"
            assert resource.write(token), f"token {token} refused while holding the lock"
            grants.append(token)
        finally:
            resource.leave()

    def stranger_tries(owner: str) -> None:
        # Someone who does not hold it can neither release nor extend it.
        assert scripts.run("lock_release", keys=[lock], args=[owner]) == 0
        assert scripts.run("lock_extend", keys=[lock], args=[owner, 60_000]) == 0
        strangers["refused"] += 2

    def sync_worker(i: int) -> None:
        for n in range(attempts):
            owner = f"t{i}-{n}"
            token = scripts.run("lock_acquire", keys=[lock, fence], args=[owner, 10_000])
            if token == 0:
                stranger_tries(owner)
                continue
            critical_section(token)
            assert scripts.run("lock_extend", keys=[lock], args=[owner, 10_000]) == 1
            assert scripts.run("lock_release", keys=[lock], args=[owner]) == 1

    async def async_worker(a: AsyncScripts, i: int) -> None:
        for n in range(attempts):
            owner = f"a{i}-{n}"
            token = await a.run("lock_acquire", keys=[lock, fence], args=[owner, 10_000])
            if token == 0:
                assert await a.run("lock_release", keys=[lock], args=[owner]) == 0
                strangers["refused"] += 1
                await asyncio.sleep(0)
                continue
            critical_section(token)
            await asyncio.sleep(0)  # hold it across a switch: the other tasks and threads try meanwhile
            assert await a.run("lock_release", keys=[lock], args=[owner]) == 1

    run_workers([sync_worker] * THREADS, async_main(cluster, scripts, async_worker))
    assert resource.most_inside == 1 and resource.refused == 0
    assert grants == sorted(grants) and len(set(grants)) == len(grants)  # every grant a larger token
    assert len(grants) > 0 and strangers["refused"] > 0
    print(f"\nlock: {len(grants)} grants, never two holders, {strangers['refused']} stranger release/extend refused")
    rc.delete(lock, fence)


def test_an_expired_lock_is_taken_over_and_its_old_holder_is_fenced_off(rc: RedisCluster, scripts: Scripts) -> None:
    name = uuid.uuid4().hex[:10]
    lock, fence = f"{{lock}}:{name}", f"{{lock}}:{name}:fence"
    resource = FencedResource()
    old = scripts.run("lock_acquire", keys=[lock, fence], args=["slow-holder", 200])
    assert old > 0 and resource.write(old)
    time.sleep(0.4)  # the holder stalls past its TTL (a GC pause, a swap storm...)
    new = scripts.run("lock_acquire", keys=[lock, fence], args=["next-holder", 10_000])
    assert new > old
    assert resource.write(new)
    # The old holder wakes up: it can no longer extend or release, and its write is refused.
    assert scripts.run("lock_extend", keys=[lock], args=["slow-holder", 10_000]) == 0
    assert scripts.run("lock_release", keys=[lock], args=["slow-holder"]) == 0
    assert not resource.write(old) and resource.refused == 1
    assert rc.get(lock) == "next-holder"
    rc.delete(lock, fence)


# ------------------------------------------------------------------------------------------ rate limit


def test_fixed_window_never_grants_more_than_the_limit_in_any_window(
    cluster: ChaosCluster, rc: RedisCluster, scripts: Scripts
) -> None:
    key = f"{{rl}}:{uuid.uuid4().hex}"
    limit = 25
    seconds = 2.5 * SCALE  # at least three windows of one second
    grants: list[tuple[float, int, int]] = []  # (client time at reply, remaining, ttl_ms)
    refused = Counter[str]()
    deadline = time.monotonic() + seconds

    def record(reply: list[int]) -> None:
        allowed, remaining, ttl_ms = reply
        assert remaining >= 0 and 0 <= ttl_ms <= 1000  # PTTL says 0 in the window's last millisecond
        if allowed:
            grants.append((time.monotonic(), remaining, ttl_ms))
        else:
            refused["refused"] += 1

    def sync_worker(i: int) -> None:
        while time.monotonic() < deadline:
            record(scripts.run("fixed_window", keys=[key], args=[limit, 1]))

    async def async_worker(a: AsyncScripts, i: int) -> None:
        while time.monotonic() < deadline:
            record(await a.run("fixed_window", keys=[key], args=[limit, 1]))

    run_workers([sync_worker] * THREADS, async_main(cluster, scripts, async_worker))
    # A window ends when its key expires: each grant says when (its reply time + ttl). Grants of one
    # window share that end (a few ms of jitter); two windows' ends are a second apart.
    windows: list[list[tuple[float, int, int]]] = []
    for grant in sorted(grants, key=lambda g: g[0] + g[2] / 1000):
        end = grant[0] + grant[2] / 1000
        if windows and end - (windows[-1][0][0] + windows[-1][0][2] / 1000) < 0.5:
            windows[-1].append(grant)
        else:
            windows.append([grant])
    counts = [len(w) for w in windows]
    assert len(windows) >= 2, f"the run did not cross a window boundary: {counts}"
    assert max(counts) <= limit, f"a window granted more than {limit}: {counts}"
    for window in windows:  # and within one, each remaining count handed out once
        remaining = [g[1] for g in window]
        assert len(set(remaining)) == len(remaining), sorted(remaining)
    assert refused["refused"] > 0
    print(f"\nrate limit {limit}/s: grants per window {counts}, {refused['refused']} refused")
    rc.delete(key)


# ------------------------------------------------------------------------------------------ capped counter


def test_capped_counter_never_passes_its_cap(cluster: ChaosCluster, rc: RedisCluster, scripts: Scripts) -> None:
    key = f"{{quota}}:{uuid.uuid4().hex}"
    cap = 1000 * SCALE
    applied = Counter[str]()
    _, replica = replica_of_key(cluster, rc, key)
    reader_client = replica_client(replica, decode_responses=True)
    on_replica = scripts.bind(reader_client)

    def over_cap(value: int) -> None:
        assert 0 <= value <= cap, f"the replica saw {value} > cap {cap}"

    def step(reply: list[int], increment: int, how: str) -> bool:
        value, done = reply
        assert value <= cap
        if done:
            applied[how] += increment
        return bool(done) or value + 1 <= cap

    def sync_worker(i: int) -> None:
        rng = random.Random(i)
        misses = 0
        while misses < 20:
            increment = rng.randint(1, 7)
            # Half the threads call the script, half the Function: one counter, one rule.
            name = "capped_incr" if i % 2 else "orchestrator_lib.capped_incr_fn"
            if not step(scripts.run(name, keys=[key], args=[increment, cap]), increment, name):
                misses += 1

    async def async_worker(a: AsyncScripts, i: int) -> None:
        rng = random.Random(100 + i)
        misses = 0
        while misses < 20:
            increment = rng.randint(1, 7)
            reply = await a.run("capped_incr", keys=[key], args=[increment, cap])
            if not step(reply, increment, "capped_incr"):
                misses += 1

    with Reader(lambda: on_replica.run("counter_get", keys=[key]), over_cap) as reader:
        run_workers([sync_worker] * THREADS, async_main(cluster, scripts, async_worker))
    final = scripts.run("counter_get", keys=[key])
    assert final <= cap and final == sum(applied.values())
    assert applied["capped_incr"] > 0 and applied["orchestrator_lib.capped_incr_fn"] > 0
    print(f"\ncapped counter: final {final} of cap {cap}, {reader.reads} replica reads, none above the cap")
    reader_client.close()
    rc.delete(key)


def test_a_retry_storm_after_a_lost_reply_moves_money_exactly_once(
    cluster: ChaosCluster, rc: RedisCluster, scripts: Scripts
) -> None:
    """A transfer whose reply never arrives (sent, then the connection dropped unread: what a client
    timeout looks like from the caller's side), then a storm of retries with the same idempotency key
    from threads and asyncio tasks at once. The record makes every retry answer "already applied"."""
    run_id = uuid.uuid4().hex[:8]
    source, target = f"{{ledger}}:acct:{run_id}-a", f"{{ledger}}:acct:{run_id}-b"
    transfer_id = f"{{ledger}}:xfer:{run_id}"
    rc.set(source, 1000)
    rc.set(target, 0)
    call = scripts.prepare("transfer", [source, target, transfer_id], [250])
    primary, _ = replica_of_key(cluster, rc, source)
    with primary.client() as lost:
        lost.execute_command("SCRIPT", "LOAD", call.target.version.source)
        connection = lost.connection_pool.get_connection()
        connection.send_command(*call.command)
        connection.disconnect()  # the reply is never read: the caller cannot know it was applied
    replies: list[int] = []
    rounds = 5 * SCALE

    def storm(i: int) -> None:
        for _ in range(rounds):
            replies.append(scripts.run("transfer", keys=[source, target, transfer_id], args=[250])[2])

    async def astorm(a: AsyncScripts, i: int) -> None:
        for _ in range(rounds):
            replies.append((await a.run("transfer", keys=[source, target, transfer_id], args=[250]))[2])

    run_workers([storm] * 12, async_main(cluster, scripts, astorm))
    assert len(replies) == (12 + TASKS) * rounds
    assert sum(replies) <= 1  # one retry may find it not yet applied, if it overtook the lost call
    assert rc.mget(source, target) == ["750", "250"]  # moved exactly once
    print(f"\nretry storm: {len(replies)} retries of one transfer, {sum(replies)} applied by a retry, moved once")
    rc.delete(source, target, transfer_id)
