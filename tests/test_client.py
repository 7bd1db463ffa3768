"""The client library against the real 3+3 session cluster (no mocks): the public API as the issue
describes it, then each promise on its own -- NOSCRIPT repair, pipelines, transactions, typed errors,
replica reads, functions, WAIT, and that nothing is ever sent as EVAL.

Keys live under the catalog's own tags ({ledger}, {quota}, ...) with a fresh uuid in each name;
tests that flush script caches use `clean_cluster`, which empties every cache before and after.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.exceptions
from prometheus_client import CollectorRegistry
from redis.cluster import LoadBalancingStrategy, RedisCluster

from harness.chaos import ChaosCluster
from harness.helpers import command_calls, wait_for
from redis_orchestrator.client import (
    CrossSlotError,
    KeyPatternError,
    KeysRefused,
    NotReplicated,
    ScriptBusy,
    ScriptError,
    ScriptMissing,
    Scripts,
    TransactionAborted,
    TransactionConflict,
    Tx,
    UnknownScript,
)
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.devcluster.cluster import LocalNode

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "examples" / "config.yaml"
MANIFEST_JSON = json.dumps(load_config(CONFIG).catalog.manifest(), sort_keys=True)  # as the daemon writes it


@pytest.fixture
def manifest_key(rc: RedisCluster) -> Iterator[str]:
    key = f"{{redis-orchestrator}}:manifest-{uuid.uuid4().hex[:8]}"
    rc.set(key, MANIFEST_JSON)
    try:
        yield key
    finally:
        rc.delete(key)


class Ledger:
    """Accounts under {ledger}, each name unique to one test; deleted afterwards."""

    def __init__(self, rc: RedisCluster) -> None:
        self.rc = rc
        self.run_id = uuid.uuid4().hex[:10]
        self.made: list[str] = []

    def account(self, name: str, balance: int | None = None) -> str:
        key = f"{{ledger}}:acct:{self.run_id}-{name}"
        self.made.append(key)
        if balance is not None:
            self.rc.set(key, balance)
        return key

    def record(self, name: str) -> str:
        key = f"{{ledger}}:xfer:{self.run_id}-{name}"
        self.made.append(key)
        return key

    def balances(self, *keys: str) -> list[int]:
        return [int(self.rc.get(k) or 0) for k in keys]

    def cleanup(self) -> None:
        if self.made:
            for key in self.made:
                self.rc.delete(key)


@pytest.fixture
def ledger(rc: RedisCluster) -> Iterator[Ledger]:
    made = Ledger(rc)
    try:
        yield made
    finally:
        made.cleanup()


def node_of(cluster: ChaosCluster, rc: RedisCluster, key: str) -> LocalNode:
    node = rc.get_node_from_key(key)
    return cluster.node_at(f"{node.host}:{node.port}")


def flush_scripts(cluster: ChaosCluster) -> None:
    for node in cluster.nodes:
        with node.client() as c:
            c.execute_command("SCRIPT", "FLUSH")


def total_calls(cluster: ChaosCluster, command: str) -> int:
    return sum(command_calls(node, command) for node in cluster.nodes)


# ------------------------------------------------------------------------------------------ the contract


def test_public_api_from_redis_run_crossslot_pipeline_across_a_flush_and_a_retried_transaction(
    clean_cluster: ChaosCluster, rc: RedisCluster, manifest_key: str, ledger: Ledger
) -> None:
    evals_before = total_calls(clean_cluster, "eval")
    scripts = Scripts.from_redis(rc, key=manifest_key)
    alice, bob = ledger.account("alice", 1000), ledger.account("bob", 0)

    # run: EVALSHA of the current version on the slot's node (an empty cache: loaded once, retried).
    assert scripts.run("transfer", keys=[alice, bob], args=[100]) == [900, 100, 1]
    assert scripts.run("transfer", keys=[alice, bob], args=[50]) == [850, 150, 1]
    assert scripts.counters.fallbacks == 1  # the first call only, on the one node that lacked it
    with pytest.raises(ScriptError) as refused:
        scripts.run("transfer", keys=[alice, bob], args=[10_000])
    assert refused.value.code == "INSUFFICIENT_FUNDS"

    # Keys in two slots: refused before anything is sent (patterns off, so the slot check is what refuses).
    sent = total_calls(clean_cluster, "evalsha")
    with pytest.raises(CrossSlotError) as crossed:
        Scripts.from_redis(rc, key=manifest_key, check_keys=False).run(
            "transfer", keys=["{ledger}:acct:x", "{elsewhere}:acct:y"], args=[1]
        )
    assert "nothing was sent" in str(crossed.value)
    with pytest.raises(KeyPatternError):  # with patterns on, the catalog's `keys:` refuse them first
        scripts.run("transfer", keys=["{ledger}:acct:x", "{elsewhere}:acct:y"], args=[1])
    with pytest.raises(UnknownScript, match="transfer"):
        scripts.run("transfr", keys=[alice])
    assert total_calls(clean_cluster, "evalsha") == sent

    # A pipeline that survives a SCRIPT FLUSH between two of its executions.
    with scripts.pipeline() as pipe:
        pipe.run("transfer", keys=[alice, bob], args=[1])
        assert pipe.execute() == [[849, 151, 1]]
        flush_scripts(clean_cluster)
        pipe.run("transfer", keys=[alice, bob], args=[2]).run("balances", keys=[alice, bob])
        pipe.run("transfer", keys=[bob, alice], args=[3])
        assert pipe.execute() == [[847, 153, 1], [1000, 0, 847, 153], [150, 850, 1]]
    assert ledger.balances(alice, bob) == [850, 150]  # each call applied once: nothing sent twice

    # A transaction that retries: another client changes a watched key during the first attempt.
    attempts: list[int] = []

    def pay_fee(tx: Tx) -> int:
        balance = int(tx.get(alice))
        if not attempts:
            rc.incrby(alice, 5)  # a concurrent writer: this attempt's EXEC will be refused
        attempts.append(balance)
        tx.multi()
        tx.execute_command("DECRBY", alice, 10)
        tx.run("transfer", keys=[alice, bob], args=[1])
        return balance

    result = scripts.transaction([alice, bob], pay_fee, retries=3)
    assert result.attempts == 2 and attempts == [850, 855]
    assert result.replies == [845, [844, 151, 1]] and result.value == 855
    assert scripts.counters.retries == 1 and scripts.counters.conflicts == 0
    assert total_calls(clean_cluster, "eval") == evals_before  # never EVAL, only EVALSHA + SCRIPT LOAD


# ------------------------------------------------------------------------------------------ NOSCRIPT


def test_pipeline_resends_only_the_failed_calls_in_order(
    clean_cluster: ChaosCluster, rc: RedisCluster, ledger: Ledger
) -> None:
    scripts = Scripts.from_config(CONFIG, rc)
    alice, bob = ledger.account("alice", 100), ledger.account("bob", 100)
    primary = node_of(clean_cluster, rc, alice)
    with primary.client() as c:  # balances present, transfer missing
        c.execute_command("SCRIPT", "LOAD", scripts.manifest.resolve("balances").version.source)
    evalsha = command_calls(primary, "evalsha") + command_calls(primary, "evalsha_ro")
    pipe = scripts.pipeline()
    pipe.run("balances", keys=[alice, bob]).run("transfer", keys=[alice, bob], args=[10])
    pipe.run("balances", keys=[alice, bob]).run("transfer", keys=[bob, alice], args=[30])
    # The resent transfers ran after the second balances: its reply shows the balances before them.
    assert pipe.execute() == [[200, 0, 100, 100], [90, 110, 1], [200, 0, 100, 100], [80, 120, 1]]
    # 4 sent, then the 2 failed transfers again: 6 on the wire, and one SCRIPT LOAD.
    assert command_calls(primary, "evalsha") + command_calls(primary, "evalsha_ro") == evalsha + 6
    assert scripts.counters.noscript == 2 and scripts.counters.fallbacks == 1


def test_fallback_raise_leaves_the_node_alone(clean_cluster: ChaosCluster, rc: RedisCluster, ledger: Ledger) -> None:
    scripts = Scripts.from_config(CONFIG, rc, fallback="raise")
    alice, bob = ledger.account("alice", 100), ledger.account("bob", 0)
    with pytest.raises(ScriptMissing) as missing:
        scripts.run("transfer", keys=[alice, bob], args=[1])
    assert "redis-orchestrator" in str(missing.value) and isinstance(missing.value, redis.exceptions.NoScriptError)
    primary = node_of(clean_cluster, rc, alice)
    with primary.client() as c:
        assert c.execute_command("SCRIPT", "EXISTS", scripts.manifest.resolve("transfer").handle) == [0]
    assert scripts.counters.noscript == 1 and scripts.counters.fallbacks == 0
    assert ledger.balances(alice, bob) == [100, 0]


def test_server_runs_the_rest_of_a_multi_after_a_noscript(
    clean_cluster: ChaosCluster, rc: RedisCluster, ledger: Ledger
) -> None:
    """The server fact the transaction check exists for (REDIS_FACTS: Transactions), on this server."""
    alice = ledger.account("alice", 100)
    with node_of(clean_cluster, rc, alice).client() as c:
        pipe = c.pipeline(transaction=True)
        pipe.execute_command("EVALSHA", "0" * 40, 0)
        pipe.execute_command("INCRBY", alice, 1)
        replies = pipe.execute(raise_on_error=False)
    assert isinstance(replies[0], redis.exceptions.NoScriptError) and replies[1] == 101


def test_a_transaction_pipeline_never_meets_noscript_inside_exec(
    clean_cluster: ChaosCluster, rc: RedisCluster, ledger: Ledger
) -> None:
    scripts = Scripts.from_config(CONFIG, rc)
    alice, bob = ledger.account("alice", 100), ledger.account("bob", 0)
    with scripts.pipeline(transaction=True) as pipe:
        pipe.run("transfer", keys=[alice, bob], args=[10]).run("transfer", keys=[alice, bob], args=[20])
        pipe.run("balances", keys=[alice, bob])
        assert pipe.execute() == [[90, 10, 1], [70, 30, 1], [100, 0, 70, 30]]
    assert scripts.counters.fallbacks == 2  # transfer and balances, loaded before MULTI
    with pytest.raises(CrossSlotError):
        scripts.pipeline(transaction=True).run("counter_get", keys=["{quota}:a"]).run("counter_get", keys=["{rl}:b"])


# ------------------------------------------------------------------------------------------ transactions


def single_connection_client(cluster: ChaosCluster, rc: RedisCluster, key: str) -> redis.Redis:
    """A client of the key's node whose pool holds one connection: what a transaction left on it shows."""
    node = node_of(cluster, rc, key)
    return redis.Redis(host=node.host, port=node.port, decode_responses=True, max_connections=1)


def still_watching(client: redis.Redis, key: str, rc: RedisCluster) -> bool:
    rc.incrby(key, 0)  # "touches" nothing: INCRBY 0 still counts as a write to a watched key
    pipe = client.pipeline(transaction=True)
    pipe.get(key)
    try:
        pipe.execute()
    except redis.exceptions.WatchError:
        return True
    return False


def test_every_exit_path_leaves_the_connection_unwatched(
    cluster: ChaosCluster, rc: RedisCluster, manifest_key: str, ledger: Ledger
) -> None:
    alice, bob = ledger.account("alice", 100), ledger.account("bob", 0)
    client = single_connection_client(cluster, rc, alice)
    scripts = Scripts.from_redis(rc, key=manifest_key).bind(client)

    def raises(tx: Tx) -> None:
        tx.get(alice)
        raise RuntimeError("the application's own bug")

    with pytest.raises(RuntimeError):
        scripts.transaction([alice, bob], raises)
    assert not still_watching(client, alice, rc)
    assert scripts.transaction([alice, bob], lambda tx: tx.get(alice)).replies == []  # read only: no EXEC
    assert not still_watching(client, alice, rc)

    def always_conflicts(tx: Tx) -> None:
        tx.get(alice)
        rc.incrby(alice, 1)
        tx.multi()
        tx.execute_command("INCRBY", bob, 1)

    with pytest.raises(TransactionConflict) as conflict:
        scripts.transaction([alice, bob], always_conflicts, retries=2, name="always")
    assert conflict.value.attempts == 3 and conflict.value.keys == (alice, bob)
    assert alice in str(conflict.value) and "3 attempt(s)" in str(conflict.value)
    assert scripts.counters.snapshot().by_name[("retries", "always")] == 2
    assert scripts.counters.conflicts == 1 and ledger.balances(bob) == [0]
    assert not still_watching(client, alice, rc)

    def queues_an_unknown_command(tx: Tx) -> None:
        tx.multi()
        tx.execute_command("INCRBY", bob, 1)
        tx.execute_command("NO-SUCH-COMMAND", bob)

    with pytest.raises(TransactionAborted, match=r"(?i)no-such-command"):
        scripts.transaction([alice, bob], queues_an_unknown_command)
    assert ledger.balances(bob) == [0] and scripts.counters.aborted == 1  # nothing of it ran
    assert not still_watching(client, alice, rc)
    client.close()


def test_transaction_refuses_two_slots_before_any_round_trip(
    cluster: ChaosCluster, rc: RedisCluster, manifest_key: str
) -> None:
    scripts = Scripts.from_redis(rc, key=manifest_key)
    watches = total_calls(cluster, "watch")
    with pytest.raises(CrossSlotError):
        scripts.transaction(["{ledger}:a", "{quota}:b"], lambda tx: None)
    assert total_calls(cluster, "watch") == watches


def test_transaction_checks_scripts_with_the_watch_and_loads_only_what_it_queues(
    clean_cluster: ChaosCluster, rc: RedisCluster, ledger: Ledger
) -> None:
    scripts = Scripts.from_config(CONFIG, rc)
    alice, bob = ledger.account("alice", 100), ledger.account("bob", 0)
    primary = node_of(clean_cluster, rc, alice)
    exists = command_calls(primary, "script|exists")

    def move(tx: Tx) -> None:
        tx.multi()
        tx.run("transfer", keys=[alice, bob], args=[7])

    assert scripts.transaction([alice, bob], move).replies == [[93, 7, 1]]
    assert command_calls(primary, "script|exists") == exists + 1  # with the WATCH, once
    assert scripts.counters.fallbacks == 1  # the catalog has 8 scripts missing there; only transfer was queued


# ------------------------------------------------------------------------------------------ other errors, replicas


def test_busy_is_script_busy_with_what_to_do(cluster: ChaosCluster, rc: RedisCluster, manifest_key: str) -> None:
    scripts = Scripts.from_redis(rc, key=manifest_key)
    key = f"{{quota}}:{uuid.uuid4().hex}"
    primary = node_of(cluster, rc, key)
    spin = (
        "#!lua flags=no-writes\n"
        "local ok, clock = pcall(function() return os.clock end)\n"
        "local t = redis.call('TIME') local start = t[1] * 1000 + t[2] / 1000\n"
        "while true do\n"
        "  local now = redis.call('TIME')\n"
        "  if now[1] * 1000 + now[2] / 1000 - start >= tonumber(ARGV[1]) then break end\n"
        "end\n"
        "return 1\n"
    )
    with primary.client() as admin:
        threshold = admin.config_get("busy-reply-threshold")["busy-reply-threshold"]
        admin.config_set("busy-reply-threshold", 100)
        outcome: list[object] = []

        def run_spin() -> None:
            with primary.client(socket_timeout=30) as c:
                try:
                    outcome.append(c.eval(spin, 0, 20_000))
                except redis.exceptions.ResponseError as exc:
                    outcome.append(exc)  # "Script killed by user with SCRIPT KILL..."

        spinner = threading.Thread(target=run_spin, daemon=True)
        try:
            spinner.start()
            deadline = time.monotonic() + 10
            while True:
                try:
                    scripts.run("counter_get", keys=[key])
                except ScriptBusy as busy:
                    assert "SCRIPT KILL" in str(busy) and busy.code == "BUSY"
                    break
                assert time.monotonic() < deadline, "the node never answered BUSY"
                time.sleep(0.02)
        finally:
            for _ in range(200):
                try:
                    admin.execute_command("SCRIPT", "KILL")
                except redis.exceptions.ResponseError as exc:
                    if "NOTBUSY" in str(exc):
                        break
                time.sleep(0.05)
            spinner.join(10)
            admin.config_set("busy-reply-threshold", threshold)
    assert scripts.counters.busy == 1
    assert "SCRIPT KILL" in str(outcome[0])


def test_no_writes_scripts_go_to_replicas_and_are_repaired_there(
    clean_cluster: ChaosCluster, manifest_key: str, rc: RedisCluster
) -> None:
    key = f"{{quota}}:{uuid.uuid4().hex}"
    rc.set(key, 41)
    primary = node_of(clean_cluster, rc, key)
    replica = clean_cluster.replicas_of(primary)[0]
    with primary.client() as c:
        assert c.execute_command("WAIT", 1, 5000) == 1
    # redis-py reads CLUSTER SLOTS, which hides a replica whose offset is 0 *as gossiped* to the node
    # asked: seen here even after WAIT said the replica had the write. Wait until it is listed.
    host, port = clean_cluster.seeds[0].split(":")
    slot = rc.keyslot(key)

    def replica_listed() -> bool:
        with clean_cluster.node_at(f"{host}:{port}").client() as c:
            ranges = c.execute_command("CLUSTER", "SLOTS")
        return any(r[0] <= slot <= r[1] and len(r) > 3 for r in ranges)

    wait_for(replica_listed, 10, "CLUSTER SLOTS to list the replica")
    reader = RedisCluster(
        host=host, port=int(port), load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN, decode_responses=True
    )
    try:
        scripts = Scripts.from_redis(reader, key=manifest_key)
        before = command_calls(replica, "evalsha_ro")
        values = {scripts.run("counter_get", keys=[key]) for _ in range(6)}
        assert values == {41}
        assert command_calls(replica, "evalsha_ro") > before  # round robin: some went to the replica
        with replica.client() as c:
            sha = scripts.manifest.resolve("counter_get").handle
            assert c.execute_command("SCRIPT", "EXISTS", sha) == [1]  # loaded there by the repair
        assert scripts.counters.fallbacks == 2  # once on the primary, once on the replica
        with pytest.raises(KeysRefused):
            scripts.run("counter_get", keys=[key, "{other}:x"])
    finally:
        reader.close()
        rc.delete(key)


def test_functions_by_library_and_name(clean_cluster: ChaosCluster, rc: RedisCluster, manifest_key: str) -> None:
    scripts = Scripts.from_redis(rc, key=manifest_key)
    key = f"{{quota}}:{uuid.uuid4().hex}"
    assert scripts.run("orchestrator_lib.capped_incr_fn", keys=[key], args=[3, 5]) == [3, 1]  # FUNCTION LOAD once
    assert scripts.run("capped_incr_fn", keys=[key], args=[3, 5]) == [3, 0]
    assert scripts.run("orchestrator_lib.counter_get", keys=[key]) == 3
    assert scripts.counters.fallbacks == 1
    with pytest.raises(ScriptError) as bad:
        scripts.run("capped_incr_fn", keys=[key], args=["x", 5])
    assert bad.value.code == "INVALID_INCREMENT"
    rc.delete(key)


def test_wait_replicas_in_the_same_round_trip(cluster: ChaosCluster, rc: RedisCluster, ledger: Ledger) -> None:
    scripts = Scripts.from_config(CONFIG, rc)
    alice, bob = ledger.account("alice", 10), ledger.account("bob", 0)
    assert scripts.run("transfer", keys=[alice, bob], args=[1], wait_replicas=1) == [9, 1, 1]
    with pytest.raises(NotReplicated) as short:
        scripts.run("transfer", keys=[alice, bob], args=[1], wait_replicas=2, wait_timeout_ms=50)
    assert short.value.reply == [8, 2, 1] and short.value.acked == 1 and short.value.wanted == 2
    assert scripts.counters.not_replicated == 1


def test_counters_on_a_registry_you_pass(cluster: ChaosCluster, rc: RedisCluster, ledger: Ledger) -> None:
    registry = CollectorRegistry()
    scripts = Scripts.from_config(CONFIG, rc, registry=registry)
    alice, bob = ledger.account("alice", 10), ledger.account("bob", 0)
    scripts.run("transfer", keys=[alice, bob], args=[1])
    assert registry.get_sample_value("redis_orchestrator_client_calls_total", {"script": "transfer@1"}) == 1


def test_versions_and_a_second_client_share_counters(cluster: ChaosCluster, rc: RedisCluster, ledger: Ledger) -> None:
    scripts = Scripts.from_config(CONFIG, rc)
    alice, bob = ledger.account("alice", 10), ledger.account("bob", 0)
    assert scripts.run("transfer", keys=[alice, bob], args=[1], version=1) == [9, 1, 1]
    node = node_of(cluster, rc, alice)
    with redis.Redis(host=node.host, port=node.port) as direct:
        assert scripts.bind(direct).run("balances", keys=[alice, bob]) == [10, 0, 9, 1]
    assert scripts.counters.calls == 2


def _unused(*_: Any) -> None:  # keeps imports honest for type checkers reading this file alone
    pass
