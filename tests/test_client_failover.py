"""The script library across a kill -9 of its shard's primary, with the daemon running and applications
using the client library (sync threads and asyncio tasks): what survives, what is lost, and what the
client had to do (no NOSCRIPT, so no SCRIPT LOAD and no EVAL: the daemon had the scripts on the replica).

The ledger and lock tests each break their own fresh 3+3 cluster twice (the last test only makes a
coordinated CLUSTER FAILOVER, to follow MOVED):

1. a *natural* failover: kill -9 of the primary under load. Replication is asynchronous, but on one
   host the replica is fed before the client even reads its reply, so this rarely loses anything --
   counted, not assumed.
2. a *forced-lag* failover: the replica is frozen (SIGSTOP) and its replication link cut (CLIENT KILL
   TYPE replica) before a few more calls are acknowledged, then the primary is killed and the replica
   thawed. What the replica never got is gone after its promotion -- the situation a slow or
   partitioned replica creates in production. It shows the loss deterministically, and what WAIT 1
   and fencing tokens do about it.

Measured and printed (-s); asserted: conservation, no negative balance, whole transfers only, retries
applied once, 0 lost among WAIT-acknowledged transfers, 0 NOSCRIPT, stale lock holders refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from harness.chaos import ChaosCluster
from harness.helpers import (
    DaemonProcess,
    all_hold,
    catalog_shas,
    command_calls,
    present,
    primary_serving,
    wait_for,
    write_config,
)
from redis_orchestrator.client import AsyncScripts, NotReplicated, ScriptError, Scripts, Tx
from redis_orchestrator.devcluster.cluster import LocalNode
from tests.proofs import FAILOVERS, SCALE, FencedResource

pytestmark = [pytest.mark.slow, pytest.mark.destructive, pytest.mark.timeout(240 * FAILOVERS)]

MANIFEST_KEY = "{redis-orchestrator}:manifest"
# Not executed, or executed with the reply lost: the caller cannot tell, so it retries the same call
# (safe for transfer with its idempotency record, and for a lock owner's own acquire).
RETRYABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.ReadOnlyError,
)


# ---------------------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    cluster: ChaosCluster
    daemon: DaemonProcess
    rc: RedisCluster
    scripts: Scripts
    shas: set[str]

    def node_of(self, key: str) -> LocalNode:
        return primary_serving(self.cluster, key)


@pytest.fixture
def stack(fresh_cluster: ChaosCluster, tmp_path: Path) -> Iterator[Stack]:
    config = write_config(tmp_path, fresh_cluster.seeds[:2], manifest={"key": MANIFEST_KEY})
    daemon = DaemonProcess(config)
    rc: RedisCluster | None = None
    try:
        daemon.wait_log(" ready ", timeout=30)
        daemon.wait_log("manifest_written", timeout=15)
        shas = catalog_shas(config)
        wait_for(lambda: all_hold(fresh_cluster, shas), 15, "every script on every node")
        host, port = fresh_cluster.seeds[0].split(":")
        rc = RedisCluster(host=host, port=int(port), decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
        yield Stack(fresh_cluster, daemon, rc, Scripts.from_redis(rc, key=MANIFEST_KEY), shas)
    finally:
        if rc is not None:
            rc.close()
        daemon.stop()


def kill_and_wait_promotion(stack: Stack, primary: LocalNode, replica: LocalNode) -> float:
    """kill -9 `primary`; seconds until `replica` says it is a primary."""
    started = time.monotonic()
    stack.cluster.kill(primary)
    wait_for(lambda: replica.role() == "primary", 30, f"{replica} promoted")
    took = time.monotonic() - started
    stack.cluster.wait_healthy()  # every node knows the new owner: a read from here goes to it
    return took


def rejoin(stack: Stack, node: LocalNode) -> None:
    """Start a killed node again: it rejoins as a replica; wait until the daemon loaded it."""
    stack.cluster.restart(node)
    wait_for(lambda: present(node, stack.shas) == stack.shas, 30, f"{node} reloaded by the daemon")
    wait_for(lambda: node.role() == "replica", 30, f"{node} a replica again")


@contextlib.contextmanager
def replication_cut(stack: Stack, primary: LocalNode, replica: LocalNode) -> Iterator[None]:
    """Inside: the replica frozen and its link cut, so what the primary acknowledges stays there.
    On leaving: kill -9 the primary, thaw the replica, wait for its promotion."""
    stack.cluster.freeze(replica)
    try:
        with primary.client() as c:
            c.execute_command("CLIENT", "KILL", "TYPE", "replica")
        yield
        stack.cluster.kill(primary)
    finally:
        stack.cluster.thaw(replica)
    wait_for(lambda: replica.role() == "primary", 30, f"{replica} promoted")
    stack.cluster.wait_healthy()


def no_script_fallbacks(stack: Stack, *others: Any) -> None:
    """What the issue asks of a failover with the daemon running: 0 NOSCRIPT, 0 SCRIPT LOAD, 0 EVAL."""
    for scripts in (stack.scripts, *others):
        assert scripts.counters.noscript == 0 and scripts.counters.fallbacks == 0
    assert sum(command_calls(n, "eval") for n in stack.cluster.nodes if n.running()) == 0


# ---------------------------------------------------------------------------------------------- ledger


@dataclass
class Transfer:
    id: str
    source: str
    target: str
    amount: int
    group: str  # "wait" (acknowledged after WAIT 1) or "no-wait"
    attempts: int = 0
    applied_reply: int | None = None  # 1 or 0 from the acknowledged reply


@dataclass
class LedgerRun:
    accounts: dict[str, list[str]]  # group -> account keys
    start: int
    acked: list[Transfer] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=itertools.count)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def next(self, group: str, rng: random.Random) -> Transfer:
        source, target = rng.sample(self.accounts[group], 2)
        n = next(self.ids)
        return Transfer(f"{self.run_id}-{n}", source, target, rng.randint(1, 20), group)

    def keys(self, t: Transfer) -> list[str]:
        return [t.source, t.target, f"{{ledger}}:xfer:{t.id}"]

    def done(self, t: Transfer, reply: list[int]) -> None:
        t.applied_reply = int(reply[2])
        with self.lock:
            self.acked.append(t)


def transfer_until_acknowledged(run: LedgerRun, scripts: Scripts, t: Transfer) -> None:
    """The application's loop: the same transfer id again until it gets an answer (and, in the wait
    group, WAIT 1 confirmed it): its idempotency record makes every retry safe."""
    while True:
        t.attempts += 1
        try:
            reply = scripts.run(
                "transfer", keys=run.keys(t), args=[t.amount], wait_replicas=1 if t.group == "wait" else 0
            )
        except ScriptError as exc:
            assert exc.code == "INSUFFICIENT_FUNDS", exc
            run.refused += 1
            return
        except (*RETRYABLE, NotReplicated):
            time.sleep(0.05)
            continue
        run.done(t, reply)
        return


async def atransfer_until_acknowledged(run: LedgerRun, scripts: AsyncScripts, t: Transfer) -> None:
    while True:
        t.attempts += 1
        try:
            reply = await scripts.run("transfer", keys=run.keys(t), args=[t.amount])
        except ScriptError as exc:
            assert exc.code == "INSUFFICIENT_FUNDS", exc
            run.refused += 1
            return
        except RETRYABLE:
            await asyncio.sleep(0.05)
            continue
        run.done(t, reply)
        return


@dataclass
class Load:
    """Sync threads and asyncio tasks moving money until stopped; `paused()` lets every transfer in
    flight finish (retries included) and starts no new one, so an audit reads a still ledger."""

    stack: Stack
    run: LedgerRun
    threads_per_group: int = 3
    async_tasks: int = 4
    pace: float = 0.002  # between transfers: enough load, without starving the test's own thread
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    async_scripts: list[AsyncScripts] = field(default_factory=list)
    _go: threading.Event = field(default_factory=threading.Event)
    _busy: int = 0
    _busy_lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self._go.set()
        for group in ("wait", "no-wait"):
            for i in range(self.threads_per_group):
                self._spawn(lambda g=group, i=i: self._sync(g, i))
        self._spawn(lambda: asyncio.run(self._async()))
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._go.set()
        for thread in self._threads:
            thread.join(60)
        if self.errors and exc[0] is None:
            raise self.errors[0]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self._go.clear()
        wait_for(lambda: self._busy == 0, 60, "transfers in flight to finish")
        try:
            yield
        finally:
            self._go.set()

    def _begin(self) -> bool:
        while not self._go.wait(0.05):
            if self.stop.is_set():
                return False
        with self._busy_lock:
            self._busy += 1
        if not self._go.is_set():  # paused between the check and the count: step back
            self._end()
            return self._begin()
        return not self.stop.is_set() or self._end()

    def _end(self) -> bool:
        with self._busy_lock:
            self._busy -= 1
        return False

    def _spawn(self, fn: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                fn()
            except BaseException as error:  # re-raised in __exit__
                self.errors.append(error)

        thread = threading.Thread(target=guarded, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _sync(self, group: str, i: int) -> None:
        rng = random.Random(f"{group}-{i}")
        while self._begin():
            try:
                transfer_until_acknowledged(self.run, self.stack.scripts, self.run.next(group, rng))
            finally:
                self._end()
            time.sleep(self.pace)

    async def _async(self) -> None:
        host, port = self.stack.cluster.seeds[1].split(":")
        client = AsyncRedisCluster(host=host, port=int(port), decode_responses=True, socket_timeout=1)
        try:
            scripts = await AsyncScripts.from_redis(client, key=MANIFEST_KEY)
            self.async_scripts.append(scripts)

            async def task(i: int) -> None:
                rng = random.Random(f"async-{i}")
                while await asyncio.to_thread(self._begin):
                    try:
                        await atransfer_until_acknowledged(self.run, scripts, self.run.next("no-wait", rng))
                    finally:
                        self._end()
                    await asyncio.sleep(self.pace)

            await asyncio.gather(*(task(i) for i in range(self.async_tasks)))
        finally:
            await client.aclose()

    def count(self) -> int:
        with self.run.lock:
            return len(self.run.acked)


def audit(stack: Stack, run: LedgerRun, since: int) -> dict[str, int]:
    """On the cluster as it is now (after the promotion): conservation, no negative balance, balances
    made of whole transfers only, and how many acknowledged transfers (from `since` on) were lost."""
    client = stack.rc
    surviving: dict[str, tuple[str, str, int]] = {}
    with run.lock:
        acked = list(run.acked)
    pipe = client.pipeline()
    for t in acked:
        pipe.hgetall(f"{{ledger}}:xfer:{t.id}")
    for t, record in zip(acked, pipe.execute(), strict=True):
        if record:
            surviving[t.id] = (record["from"], record["to"], int(record["amount"]))
    lost: Counter[str] = Counter()
    for t in acked[since:]:
        if t.id not in surviving:
            lost[t.group] += 1
    for group, accounts in run.accounts.items():
        reply = stack.scripts.run("balances", keys=accounts)
        assert reply[0] == run.start * len(accounts) and reply[1] == 0, f"{group}: total not conserved: {reply}"
        assert min(reply[2:]) >= 0, f"{group}: a negative balance: {reply}"
        expected = dict.fromkeys(accounts, run.start)
        for source, target, amount in surviving.values():
            if source in expected:
                expected[source] -= amount
                expected[target] += amount
        # Balances are exactly the surviving records' transfers: no half transfer, none applied twice.
        assert reply[2:] == [expected[a] for a in accounts], f"{group}: balances are not whole transfers"
    return {
        "wait": lost["wait"],
        "no-wait": lost["no-wait"],
        "surviving": len(surviving),
        "acked": len(acked),
        "window": len(acked) - since,
    }


def test_ledger_across_kill_9_of_its_primary(stack: Stack) -> None:
    accounts = {g: [f"{{ledger}}:acct:{g}-{i}" for i in range(6)] for g in ("wait", "no-wait")}
    start = 10_000
    for group in accounts.values():
        for key in group:
            stack.rc.set(key, start)
    run = LedgerRun(accounts, start)
    primary = stack.node_of(accounts["wait"][0])
    report: list[str] = []
    with Load(stack, run) as load:
        for failover in range(FAILOVERS):
            replica = stack.cluster.replicas_of(primary)[0]
            wait_for(lambda: load.count() > 200 * SCALE, 60, "transfers before the kill")
            since = load.count()
            took = kill_and_wait_promotion(stack, primary, replica)
            after = load.count()
            wait_for(lambda a=after: load.count() > a + 200 * SCALE, 60, "transfers on the promoted primary")
            # The wait group cannot finish a transfer until the shard has a replica again.
            rejoin(stack, primary)
            primary, replica = replica, primary
            with load.paused():
                natural = audit(stack, run, since)
            report.append(
                f"natural failover {failover + 1}: promoted in {took:.1f} s; acknowledged transfers lost: "
                f"{natural['no-wait']} without WAIT, {natural['wait']} with WAIT 1 "
                f"(of {natural['window']} acknowledged from just before the kill to the audit)"
            )
            assert natural["wait"] == 0

            # Forced lag: acknowledged while the replica cannot get them.
            forced_before = load.count()
            with replication_cut(stack, primary, replica):
                time.sleep(0.3)  # no-wait transfers are acknowledged; the wait group gets NotReplicated
            cut_acked = load.count() - forced_before
            rejoin(stack, primary)
            primary, replica = replica, primary
            with load.paused():
                forced = audit(stack, run, forced_before)
            report.append(
                f"forced-lag failover {failover + 1}: lost {forced['no-wait']} without WAIT, {forced['wait']} with "
                f"WAIT 1 ({cut_acked} acknowledged during the 0.3 s cut, all without WAIT)"
            )
            assert forced["wait"] == 0 and forced["no-wait"] > 0
    final = audit(stack, run, len(run.acked))
    retried = [t for t in run.acked if t.attempts > 1]
    once = [t for t in retried if t.applied_reply == 0]
    retries = sum(t.attempts - 1 for t in retried)
    report.append(
        f"{final['acked']} transfers acknowledged, {len(retried)} needed retries ({retries} retries; "
        f"{len(once)} answered 'already applied': the earlier attempt had landed), "
        f"{run.refused} refused for funds; NOSCRIPT {stack.scripts.counters.noscript}, "
        f"fallbacks {stack.scripts.counters.fallbacks}"
    )
    print("\n" + "\n".join(report))
    assert retried, "no call was retried across the failovers"
    no_script_fallbacks(stack, *load.async_scripts)
    assert stack.daemon.alive()


# ---------------------------------------------------------------------------------------------- locks


@dataclass
class Holding:
    lock: str
    owner: str
    token: int


def test_locks_across_kill_9_of_their_primary_lost_and_fenced(stack: Stack) -> None:
    run_id = uuid.uuid4().hex[:6]
    locks = [f"{{lock}}:{run_id}-{i}" for i in range(8)]
    resources = {lock: FencedResource() for lock in locks}
    held: dict[str, Holding] = {}
    held_lock = threading.Lock()
    stop = threading.Event()
    grants = Counter[str]()
    errors: list[BaseException] = []
    scripts = stack.scripts

    def contend(i: int) -> None:
        rng = random.Random(i)
        try:
            while not stop.is_set():
                lock = rng.choice(locks)
                owner = f"w{i}-{uuid.uuid4().hex[:6]}"
                try:
                    token = scripts.run("lock_acquire", keys=[lock, f"{lock}:fence"], args=[owner, 5_000])
                except RETRYABLE:
                    time.sleep(0.05)
                    continue
                if not token:
                    continue
                grants["granted"] += 1
                with held_lock:
                    held[lock] = Holding(lock, owner, token)
                if not resources[lock].write(token):
                    grants["stale-write-refused"] += 1
                time.sleep(0.005)
                with held_lock:
                    held.pop(lock, None)
                with contextlib.suppress(*RETRYABLE):
                    if scripts.run("lock_release", keys=[lock], args=[owner]) == 0:
                        grants["release-refused"] += 1  # it was no longer ours
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=contend, args=(i,), daemon=True) for i in range(6)]
    for worker in workers:
        worker.start()
    primary = stack.node_of(locks[0])
    replica = stack.cluster.replicas_of(primary)[0]
    report: list[str] = []
    try:
        for failover in range(FAILOVERS):
            before = grants["granted"]
            wait_for(lambda b=before: grants["granted"] > b + 100 * SCALE, 60, "grants before the kill")
            with held_lock:
                at_kill = list(held.values())
            kill_and_wait_promotion(stack, primary, replica)
            lost = [h for h in at_kill if stack.rc.get(h.lock) != h.owner]
            report.append(
                f"natural failover {failover + 1}: {len(lost)} of {len(at_kill)} locks held at the kill were lost"
            )
            granted = grants["granted"]
            wait_for(lambda g=granted: grants["granted"] > g + 50 * SCALE, 60, "grants on the promoted primary")
            rejoin(stack, primary)
            primary, replica = replica, primary
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert not errors, errors[0]

    # Forced lag: witness locks granted (and acknowledged) while the replica cannot get them.
    witnesses = [f"{{lock}}:{run_id}-witness-{i}" for i in range(10)]
    fenced = {w: FencedResource() for w in witnesses}
    old: dict[str, int] = {}
    with replication_cut(stack, primary, replica):
        for lock in witnesses:
            with pytest.raises(NotReplicated) as unconfirmed:  # WAIT 1 tells the holder
                scripts.run(
                    "lock_acquire",
                    keys=[lock, f"{lock}:fence"],
                    args=["old", 30_000],
                    wait_replicas=1,
                    wait_timeout_ms=20,
                )
            old[lock] = unconfirmed.value.reply
            assert fenced[lock].write(old[lock])
    taken_over = 0
    for lock in witnesses:
        token = scripts.run("lock_acquire", keys=[lock, f"{lock}:fence"], args=["new", 30_000])
        if token:  # the old holder's TTL (30 s) is far from over: the lock was lost in the failover
            taken_over += 1
            assert token > old[lock]  # the clock in the token: larger than any token granted before
            assert fenced[lock].write(token)
        assert not fenced[lock].write(old[lock]) or not token  # the old holder wakes up: refused
    refused = sum(r.refused for r in fenced.values())
    report.append(
        f"forced-lag failover: {taken_over} of {len(witnesses)} acknowledged locks lost and taken over; "
        f"the stale holders' writes refused by the fenced resource: {refused}; natural-run grants "
        f"{grants['granted']}, releases refused {grants['release-refused']}, stale writes refused "
        f"{grants['stale-write-refused']}"
    )
    print("\n" + "\n".join(report))
    assert taken_over == len(witnesses) and refused == len(witnesses)
    no_script_fallbacks(stack)
    assert stack.daemon.alive()


# ---------------------------------------------------------------------------------------------- MOVED


def test_a_coordinated_failover_is_followed_through_moved(fresh_cluster: ChaosCluster) -> None:
    """CLUSTER FAILOVER (no kill): the old primary answers MOVED; every kind of call follows it with
    nothing raised to the application. One client per kind, each with the slot table from before."""
    cluster = fresh_cluster
    host, port = cluster.seeds[0].split(":")
    clients = [RedisCluster(host=host, port=int(port), decode_responses=True) for _ in range(3)]
    config = Path(__file__).resolve().parent.parent / "examples" / "config.yaml"
    runner, piper, transactor = (Scripts.from_config(config, c) for c in clients)
    source, target = "{ledger}:acct:moved-a", "{ledger}:acct:moved-b"
    clients[0].set(source, 100)
    clients[0].set(target, 0)
    for scripts in (runner, piper, transactor):  # every client learns the slot table, and the scripts land
        scripts.run("balances", keys=[source, target])
        scripts.run("transfer", keys=[source, target], args=[1])
    primary = primary_serving(cluster, source)
    replica = cluster.replicas_of(primary)[0]
    with replica.client() as c:
        c.execute_command("SCRIPT", "LOAD", runner.manifest.resolve("transfer").version.source)
        c.execute_command("SCRIPT", "LOAD", runner.manifest.resolve("balances").version.source)
    cluster.failover(replica)

    assert runner.run("transfer", keys=[source, target], args=[1])[2] == 1
    with piper.pipeline() as pipe:
        assert pipe.run("transfer", keys=[source, target], args=[1]).execute()[0][2] == 1

    def move(tx: Tx) -> None:
        tx.multi()
        tx.run("transfer", keys=[source, target], args=[1])

    assert transactor.transaction([source, target], move).replies[0][2] == 1

    async def from_asyncio() -> list[int]:
        client = AsyncRedisCluster(host=host, port=int(port), decode_responses=True)
        try:
            scripts = AsyncScripts.from_config(config, client)
            return list(await scripts.run("balances", keys=[source, target]))
        finally:
            await client.aclose()

    assert asyncio.run(from_asyncio()) == [100, 0, 94, 6]
    for scripts in (runner, piper, transactor):
        assert scripts.counters.redirects >= 1, "the stale slot table was not followed through MOVED"
    # Loaded once each on the old primary before the failover (the first client), never after it.
    assert [s.counters.fallbacks for s in (runner, piper, transactor)] == [2, 0, 0]
    for client in clients:
        client.close()
