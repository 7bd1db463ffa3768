"""The sample script library in lua/, run for real on the session Redis Cluster (no mocks).

Every test uses its own hash tag (a fresh uuid), so keys never collide between tests or runs, and
deletes what it wrote. Function tests load `orchestrator_lib` on every primary and delete it again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from harness.chaos import ChaosCluster
from redis_orchestrator.devcluster.cluster import LocalNode

LUA_DIR = Path(__file__).resolve().parent.parent / "examples" / "lua"
MAX_SAFE = 2**53 - 1
LIB_NAME = "orchestrator_lib"

ALL_SCRIPTS = [
    "ledger/transfer.lua",
    "ledger/balances.lua",
    "counters/capped_incr.lua",
    "counters/get.lua",
    "counters/rate_limited_counter.lua",
    "ratelimit/fixed_window.lua",
    "lock/acquire.lua",
    "lock/release.lua",
    "lock/extend.lua",
]


def source(name: str) -> str:
    return (LUA_DIR / name).read_text()


def error_code(exc: BaseException) -> str:
    return str(exc).split()[0]


class Keys:
    """Unique key names sharing one hash tag, deleted at teardown."""

    def __init__(self, rc: RedisCluster, prefix: str) -> None:
        self.rc = rc
        self.tag = f"{{{prefix}:{uuid.uuid4().hex[:12]}}}"
        self.made: list[str] = []

    def __call__(self, suffix: str) -> str:
        key = f"{self.tag}:{suffix}"
        self.made.append(key)
        return key

    def cleanup(self) -> None:
        for key in self.made:
            self.rc.delete(key)


@pytest.fixture
def keys(rc: RedisCluster, request: pytest.FixtureRequest) -> Iterator[Callable[..., Keys]]:
    made: list[Keys] = []

    def factory(prefix: str | None = None) -> Keys:
        k = Keys(rc, prefix or request.node.name.removeprefix("test_")[:20])
        made.append(k)
        return k

    try:
        yield factory
    finally:
        for k in made:
            k.cleanup()


def run(rc: RedisCluster, name: str, keys: list[str], *args: Any) -> Any:
    return rc.eval(source(name), len(keys), *keys, *args)


def primary_and_replica(rc: RedisCluster, cluster: ChaosCluster, key: str) -> tuple[LocalNode, LocalNode]:
    node = rc.get_node_from_key(key)
    primary = cluster.node_at(f"{node.host}:{node.port}")
    replicas = cluster.replicas_of(primary)
    assert replicas, f"{primary} has no replica"
    return primary, replicas[0]


def wait_replicated(primary: LocalNode) -> None:
    with primary.client() as c:
        assert c.execute_command("WAIT", 1, 5000) >= 1


# ------------------------------------------------------------------------------------------ hygiene


@pytest.mark.parametrize("name", ALL_SCRIPTS)
def test_every_script_documents_its_interface_and_loads(name: str, rc: RedisCluster) -> None:
    text = source(name)
    header = text.split("]]", 1)[0]
    for word in ("KEYS", "ARGV", "Returns", "rror"):
        assert word in header, f"{name}: header does not document {word}"
    sha = rc.script_load(text)  # compiles on every primary; a syntax error would raise here
    assert len(sha) == 40


def _lua_tree(name: str) -> Any:
    from luaparser import ast

    text = source(name)
    first, _, rest = text.partition("\n")
    assert first.startswith("#!lua"), f"{name}: no #!lua shebang"
    return ast.parse(rest)


KEYLESS_COMMANDS = {"TIME"}  # lock/acquire.lua's fencing token reads the server clock


@pytest.mark.parametrize("name", [*ALL_SCRIPTS, "functions/orchestrator_lib.lua"])
def test_every_key_comes_from_keys_and_nothing_is_global(name: str) -> None:
    from luaparser import ast

    key_table = "keys" if name.startswith("functions/") else "KEYS"
    tree = _lua_tree(name)
    local_names: set[str] = set()
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Function), f"{name}: global function"
        if isinstance(node, ast.LocalAssign):
            local_names.update(t.id for t in node.targets)
        elif isinstance(node, ast.LocalFunction):
            local_names.add(node.name.id)
            local_names.update(a.id for a in node.args if isinstance(a, ast.Name))
    calls = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assert target.id in local_names, f"{name}: assignment to global {target.id}"
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Index)
            and getattr(node.func.value, "id", None) == "redis"
            and getattr(node.func.idx, "id", None) in ("call", "pcall")
        ):
            calls += 1
            command = node.args[0]
            if isinstance(command, ast.String) and command.raw.upper() in KEYLESS_COMMANDS:
                assert len(node.args) == 1, f"{name}: {command.raw} takes no arguments here"
                continue
            key = node.args[1]  # every other command used here takes its key(s) first
            if isinstance(key, ast.Call):  # MGET's unpack(KEYS): every declared key, nothing built
                assert getattr(key.func, "id", None) == "unpack", f"{name}: key argument is a call"
                assert [getattr(a, "id", None) for a in key.args] == [key_table]
                continue
            assert isinstance(key, ast.Index), f"{name}: key argument is not {key_table}[n]"
            assert getattr(key.value, "id", None) == key_table
            assert isinstance(key.idx, ast.Number)
    assert calls > 0


# ------------------------------------------------------------------------------------------ ledger


def test_transfer_moves_funds_and_returns_new_balances(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("ledger")
    alice, bob = k("acct:alice"), k("acct:bob")
    rc.set(alice, 1000)
    rc.set(bob, 5)
    assert run(rc, "ledger/transfer.lua", [alice, bob], 300) == [700, 305, 1]
    assert run(rc, "ledger/transfer.lua", [alice, bob], 700) == [0, 1005, 1]  # down to exactly 0
    assert (rc.get(alice), rc.get(bob)) == ("0", "1005")


def test_balances_snapshot_on_primary_and_replica(
    rc: RedisCluster, cluster: ChaosCluster, keys: Callable[..., Keys]
) -> None:
    k = keys("ledger")
    alice, bob, carol = k("acct:alice"), k("acct:bob"), k("acct:carol")
    rc.set(alice, 700)
    rc.set(bob, -5)
    assert run(rc, "ledger/balances.lua", [alice, bob, carol]) == [695, 1, 700, -5, 0]
    primary, replica = primary_and_replica(rc, cluster, alice)
    wait_replicated(primary)
    with replica.client(decode_responses=True) as r:
        r.execute_command("READONLY")
        sha = r.script_load(source("ledger/balances.lua"))
        assert r.execute_command("EVALSHA_RO", sha, 2, alice, bob) == [695, 0, 700, -5]
    rc.set(carol, "12abc")
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ledger/balances.lua", [alice, carol])
    assert error_code(exc.value) == "CORRUPT_BALANCE"
    rc.set(carol, MAX_SAFE)
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ledger/balances.lua", [alice, carol])
    assert error_code(exc.value) == "TOTAL_OVERFLOW"
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ledger/balances.lua", [alice], "extra")
    assert error_code(exc.value) == "WRONG_ARITY"


def test_transfer_insufficient_funds_leaves_both_untouched(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("ledger")
    alice, bob = k("acct:alice"), k("acct:bob")
    rc.set(alice, 100)
    rc.set(bob, 50)
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ledger/transfer.lua", [alice, bob], 101)
    assert error_code(exc.value) == "INSUFFICIENT_FUNDS"
    assert (rc.get(alice), rc.get(bob)) == ("100", "50")


@pytest.mark.parametrize("amount", ["0", "-5", "1.5", "1e3", "abc", "", " 5", "0x10", str(MAX_SAFE + 1)])
def test_transfer_rejects_invalid_amounts(amount: str, rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("ledger")
    alice, bob = k("acct:alice"), k("acct:bob")
    rc.set(alice, 100)
    rc.set(bob, 0)
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ledger/transfer.lua", [alice, bob], amount)
    assert error_code(exc.value) == "INVALID_AMOUNT"
    assert (rc.get(alice), rc.get(bob)) == ("100", "0")


def test_transfer_same_account_missing_account_corrupt_and_arity(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("ledger")
    alice, bob, ghost = k("acct:alice"), k("acct:bob"), k("acct:ghost")
    rc.set(alice, 100)
    rc.set(bob, "12.5")
    cases = [
        ([alice, alice], (10,), "SAME_ACCOUNT"),
        ([alice, ghost], (10,), "ACCOUNT_NOT_FOUND"),
        ([ghost, alice], (10,), "ACCOUNT_NOT_FOUND"),
        ([alice, bob], (10,), "CORRUPT_BALANCE"),
        ([alice], (10,), "WRONG_ARITY"),
        ([alice, bob], (10, 60), "WRONG_ARITY"),  # record ttl without a record key
    ]
    for script_keys, args, code in cases:
        with pytest.raises(redis.ResponseError) as exc:
            run(rc, "ledger/transfer.lua", script_keys, *args)
        assert error_code(exc.value) == code, (script_keys, args)
    assert (rc.get(alice), rc.get(bob), rc.exists(ghost)) == ("100", "12.5", 0)


def test_transfer_idempotent_with_record_key(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("ledger")
    alice, bob, carol = k("acct:alice"), k("acct:bob"), k("acct:carol")
    record = k("xfer:t-1")
    for acct, bal in ((alice, 1000), (bob, 0), (carol, 0)):
        rc.set(acct, bal)
    assert run(rc, "ledger/transfer.lua", [alice, bob, record], 250, 60) == [750, 250, 1]
    # The retry of the same transfer id moves nothing and reports the balances recorded then.
    rc.incrby(alice, 1)
    assert run(rc, "ledger/transfer.lua", [alice, bob, record], 250, 60) == [750, 250, 0]
    assert (rc.get(alice), rc.get(bob)) == ("751", "250")
    assert 0 < rc.ttl(record) <= 60
    # Same id, different transfer: refused, nothing moved.
    for other_keys, amount in (([alice, carol, record], 250), ([alice, bob, record], 251)):
        with pytest.raises(redis.ResponseError) as exc:
            run(rc, "ledger/transfer.lua", other_keys, amount)
        assert error_code(exc.value) == "IDEMPOTENCY_CONFLICT"
    assert (rc.get(alice), rc.get(bob), rc.get(carol)) == ("751", "250", "0")
    # A failed transfer records nothing: the id can be retried once funds arrive.
    record2 = k("xfer:t-2")
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ledger/transfer.lua", [carol, bob, record2], 5)
    assert error_code(exc.value) == "INSUFFICIENT_FUNDS"
    assert rc.exists(record2) == 0
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ledger/transfer.lua", [alice, bob, record2], 5, 0)
    assert error_code(exc.value) == "INVALID_TTL"


def test_transfer_large_balances_stay_exact(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("ledger")
    alice, bob = k("acct:alice"), k("acct:bob")
    rc.set(alice, MAX_SAFE)
    rc.set(bob, 0)
    assert run(rc, "ledger/transfer.lua", [alice, bob], MAX_SAFE - 1) == [1, MAX_SAFE - 1, 1]
    assert rc.get(bob) == str(MAX_SAFE - 1)
    rc.set(alice, 10)
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ledger/transfer.lua", [alice, bob], 2)
    assert error_code(exc.value) == "BALANCE_OVERFLOW"
    assert (rc.get(alice), rc.get(bob)) == ("10", str(MAX_SAFE - 1))


def test_transfer_keys_in_different_slots_are_refused_before_running(
    rc: RedisCluster, keys: Callable[..., Keys]
) -> None:
    a, b = keys("ledger-a")("acct:alice"), keys("ledger-b")("acct:bob")
    assert rc.keyslot(a) != rc.keyslot(b)
    rc.set(a, 100)
    with pytest.raises(redis.RedisClusterException):
        run(rc, "ledger/transfer.lua", [a, b], 1)  # redis-py refuses CROSSSLOT client-side
    assert rc.get(a) == "100"


# ------------------------------------------------------------------------------------------ counters


def test_capped_incr_up_to_cap_then_refused(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    c = keys("quota")("count")
    assert run(rc, "counters/capped_incr.lua", [c], 4, 10) == [4, 1]
    assert run(rc, "counters/capped_incr.lua", [c], 6, 10) == [10, 1]  # exactly at the cap
    assert run(rc, "counters/capped_incr.lua", [c], 1, 10) == [10, 0]  # over: refused whole
    assert rc.get(c) == "10"
    assert run(rc, "counters/capped_incr.lua", [c], 5, 20) == [15, 1]
    assert run(rc, "counters/capped_incr.lua", [c], 6, 20) == [15, 0]  # not clipped to 20
    assert rc.get(c) == "15"
    assert rc.ttl(c) == -1  # no TTL asked, none set


def test_capped_incr_refusal_on_missing_key_creates_nothing(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    c = keys("quota")("count")
    assert run(rc, "counters/capped_incr.lua", [c], 11, 10, 60) == [0, 0]
    assert rc.exists(c) == 0
    assert run(rc, "counters/capped_incr.lua", [c], 1, 0) == [0, 0]  # cap 0 allows nothing


def test_capped_incr_ttl_only_when_created(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("quota")
    c = k("count")
    assert run(rc, "counters/capped_incr.lua", [c], 1, 10, 100) == [1, 1]
    assert 90 <= rc.ttl(c) <= 100
    rc.expire(c, 1000)
    assert run(rc, "counters/capped_incr.lua", [c], 1, 10, 100) == [2, 1]
    assert rc.ttl(c) > 100  # existing TTL kept, not reset
    plain = k("plain")
    rc.set(plain, 3)
    assert run(rc, "counters/capped_incr.lua", [plain], 1, 10, 100) == [4, 1]
    assert rc.ttl(plain) == -1  # an existing key without TTL is not given one
    short = k("short")
    assert run(rc, "counters/capped_incr.lua", [short], 1, 10, 1) == [1, 1]
    time.sleep(1.3)
    assert rc.exists(short) == 0  # the TTL really expires the counter


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((0, 10), "INVALID_INCREMENT"),
        ((-1, 10), "INVALID_INCREMENT"),
        (("1.5", 10), "INVALID_INCREMENT"),
        ((1, -1), "INVALID_CAP"),
        ((1, "x"), "INVALID_CAP"),
        ((1, 10, 0), "INVALID_TTL"),
        ((1, 10, "1s"), "INVALID_TTL"),
        ((1,), "WRONG_ARITY"),
        ((1, 10, 5, 5), "WRONG_ARITY"),
    ],
)
def test_capped_incr_errors(args: tuple[Any, ...], code: str, rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    c = keys("quota")("count")
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "counters/capped_incr.lua", [c], *args)
    assert error_code(exc.value) == code
    assert rc.exists(c) == 0


def test_capped_incr_corrupt_value(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    c = keys("quota")("count")
    rc.set(c, "ten")
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "counters/capped_incr.lua", [c], 1, 10)
    assert error_code(exc.value) == "CORRUPT_VALUE"
    assert rc.get(c) == "ten"


def test_counter_get_reads_and_is_read_only(rc: RedisCluster, cluster: ChaosCluster, keys: Callable[..., Keys]) -> None:
    k = keys("quota")
    c, missing, bad = k("count"), k("missing"), k("bad")
    rc.set(c, 42)
    rc.set(bad, "4x")
    assert run(rc, "counters/get.lua", [c]) == 42
    assert run(rc, "counters/get.lua", [missing]) == 0
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "counters/get.lua", [bad])
    assert error_code(exc.value) == "CORRUPT_VALUE"

    # flags=no-writes: EVAL_RO runs it on a replica of the key's slot (with READONLY); the write
    # scripts' bare `#!lua` shebang makes EVAL_RO refuse them.
    primary, replica = primary_and_replica(rc, cluster, c)
    wait_replicated(primary)
    with replica.client(single_connection_client=True, decode_responses=True) as r:
        with pytest.raises(redis.ResponseError):  # MOVED without READONLY
            r.execute_command("EVAL_RO", source("counters/get.lua"), 1, c)
        r.execute_command("READONLY")
        assert r.execute_command("EVAL_RO", source("counters/get.lua"), 1, c) == 42
        sha = r.script_load(source("counters/get.lua"))  # replicas have their own script cache
        assert r.execute_command("EVALSHA_RO", sha, 1, c) == 42
        with pytest.raises(redis.ResponseError):
            r.execute_command("EVAL_RO", source("counters/capped_incr.lua"), 1, c, 1, 100)
    with primary.client(decode_responses=True) as p, pytest.raises(redis.ResponseError):
        p.execute_command("EVAL_RO", source("counters/capped_incr.lua"), 1, c, 1, 100)
    assert rc.get(c) == "42"


# ------------------------------------------------------------------------------------------ rate limits


def test_fixed_window_allows_limit_then_refuses_then_resets(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    w = keys("rl")("window")
    results = [run(rc, "ratelimit/fixed_window.lua", [w], 3, 1) for _ in range(5)]
    assert [r[0] for r in results] == [1, 1, 1, 0, 0]
    assert [r[1] for r in results] == [2, 1, 0, 0, 0]
    assert all(0 < r[2] <= 1000 for r in results)
    assert rc.get(w) == "3"  # refused hits are not counted
    time.sleep(1.3)
    again = [run(rc, "ratelimit/fixed_window.lua", [w], 3, 1) for _ in range(4)]
    assert [r[0] for r in again] == [1, 1, 1, 0]


def test_fixed_window_repairs_a_counter_without_ttl(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    w = keys("rl")("window")
    rc.set(w, 5)  # e.g. written by hand: no TTL
    allowed, remaining, ttl_ms = run(rc, "ratelimit/fixed_window.lua", [w], 5, 2)
    assert (allowed, remaining) == (0, 0)
    assert 0 < ttl_ms <= 2000
    assert 0 < rc.pttl(w) <= 2000


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((0, 1), "INVALID_LIMIT"),
        (("x", 1), "INVALID_LIMIT"),
        ((3, 0), "INVALID_WINDOW"),
        ((3, "1.5"), "INVALID_WINDOW"),
        ((3,), "WRONG_ARITY"),
    ],
)
def test_fixed_window_errors(args: tuple[Any, ...], code: str, rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    w = keys("rl")("window")
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "ratelimit/fixed_window.lua", [w], *args)
    assert error_code(exc.value) == code
    assert rc.exists(w) == 0


def test_rate_limited_counter(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("events")
    counter, window = k("count"), k("window")
    results = [run(rc, "counters/rate_limited_counter.lua", [counter, window], 10, 2, 1) for _ in range(4)]
    assert [r[:3] for r in results] == [[1, 10, 1], [1, 20, 0], [0, 20, 0], [0, 20, 0]]
    assert all(0 < r[3] <= 1000 for r in results)
    assert (rc.get(counter), rc.get(window)) == ("20", "2")
    assert rc.ttl(counter) == -1  # the counter itself never expires
    time.sleep(1.3)
    assert run(rc, "counters/rate_limited_counter.lua", [counter, window], 5, 2, 1)[:3] == [1, 25, 1]
    assert rc.get(counter) == "25"


def test_rate_limited_counter_errors_write_nothing(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("events")
    counter, window = k("count"), k("window")
    cases = [
        ([counter, counter], (1, 2, 1), "SAME_KEY"),
        ([counter, window], (0, 2, 1), "INVALID_INCREMENT"),
        ([counter, window], (1, 0, 1), "INVALID_LIMIT"),
        ([counter, window], (1, 2, 0), "INVALID_WINDOW"),
        ([counter], (1, 2, 1), "WRONG_ARITY"),
    ]
    for script_keys, args, code in cases:
        with pytest.raises(redis.ResponseError) as exc:
            run(rc, "counters/rate_limited_counter.lua", script_keys, *args)
        assert error_code(exc.value) == code
    assert rc.exists(counter) == 0
    assert rc.exists(window) == 0
    rc.set(counter, "n/a")
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "counters/rate_limited_counter.lua", [counter, window], 1, 2, 1)
    assert error_code(exc.value) == "CORRUPT_VALUE"
    assert rc.exists(window) == 0  # the window is not consumed by a failed increment


# ------------------------------------------------------------------------------------------ locks


def test_lock_acquire_contention_release_by_owner_only(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    lock = keys("lock")("job")
    assert run(rc, "lock/acquire.lua", [lock], "owner-a", 10000) == 1
    assert run(rc, "lock/acquire.lua", [lock], "owner-b", 10000) == 0
    assert rc.get(lock) == "owner-a"
    assert run(rc, "lock/release.lua", [lock], "owner-b") == 0
    assert rc.get(lock) == "owner-a"
    assert run(rc, "lock/release.lua", [lock], "owner-a") == 1
    assert rc.exists(lock) == 0
    assert run(rc, "lock/release.lua", [lock], "owner-a") == 0  # not held any more
    assert run(rc, "lock/acquire.lua", [lock], "owner-b", 10000) == 1


def test_lock_reacquire_by_owner_refreshes_ttl(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    lock = keys("lock")("job")
    assert run(rc, "lock/acquire.lua", [lock], "owner-a", 2000) == 1
    assert 0 < rc.pttl(lock) <= 2000
    assert run(rc, "lock/acquire.lua", [lock], "owner-a", 60000) == 1
    assert 2000 < rc.pttl(lock) <= 60000
    assert run(rc, "lock/acquire.lua", [lock], "owner-b", 1) == 0
    assert rc.pttl(lock) > 2000  # a failed acquire never touches the holder's TTL


def test_lock_extend_by_owner_only(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    lock = keys("lock")("job")
    assert run(rc, "lock/extend.lua", [lock], "owner-a", 5000) == 0  # nothing to extend
    assert rc.exists(lock) == 0
    assert run(rc, "lock/acquire.lua", [lock], "owner-a", 1000) == 1
    assert run(rc, "lock/extend.lua", [lock], "owner-b", 60000) == 0
    assert rc.pttl(lock) <= 1000
    assert run(rc, "lock/extend.lua", [lock], "owner-a", 60000) == 1
    assert 1000 < rc.pttl(lock) <= 60000


def test_lock_expires_and_can_be_taken_over(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    lock = keys("lock")("job")
    assert run(rc, "lock/acquire.lua", [lock], "owner-a", 300) == 1
    time.sleep(0.6)
    assert rc.exists(lock) == 0
    assert run(rc, "lock/extend.lua", [lock], "owner-a", 5000) == 0  # too late to extend
    assert run(rc, "lock/acquire.lua", [lock], "owner-b", 5000) == 1
    assert run(rc, "lock/release.lua", [lock], "owner-a") == 0  # the old owner cannot release it
    assert rc.get(lock) == "owner-b"


def test_lock_fencing_token_grows_with_each_grant_and_survives_a_lagging_clock(
    rc: RedisCluster, keys: Callable[..., Keys]
) -> None:
    k = keys("lock")
    lock, fence = k("job"), k("job:fence")
    first = run(rc, "lock/acquire.lua", [lock, fence], "owner-a", 10000)
    assert first > 10**15  # microseconds since the epoch: larger than any token a lost fence held
    assert run(rc, "lock/acquire.lua", [lock, fence], "owner-a", 10000) == first  # re-acquire: same token
    assert run(rc, "lock/acquire.lua", [lock, fence], "owner-b", 10000) == 0
    assert rc.get(fence) == str(first)
    assert run(rc, "lock/release.lua", [lock], "owner-a") == 1
    second = run(rc, "lock/acquire.lua", [lock, fence], "owner-b", 10000)
    assert second > first
    assert run(rc, "lock/release.lua", [lock], "owner-b") == 1
    # A fence ahead of the clock (a clock stepped back): the token still grows, by one.
    ahead = 5 * 10**15
    rc.set(fence, ahead)
    assert run(rc, "lock/acquire.lua", [lock, fence], "owner-c", 10000) == ahead + 1
    assert rc.get(fence) == str(ahead + 1)  # written exactly, never as 5e+15
    # Without the fence key the reply stays 1 (the leader lease reads it that way).
    assert run(rc, "lock/release.lua", [lock], "owner-c") == 1
    assert run(rc, "lock/acquire.lua", [lock], "owner-d", 10000) == 1


def test_lock_fence_held_before_the_fence_was_used_gets_a_token(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("lock")
    lock, fence = k("job"), k("job:fence")
    assert run(rc, "lock/acquire.lua", [lock], "owner-a", 10000) == 1
    token = run(rc, "lock/acquire.lua", [lock, fence], "owner-a", 10000)
    assert token > 10**15 and rc.get(fence) == str(token)


def test_lock_corrupt_fence_writes_nothing(rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    k = keys("lock")
    lock, fence = k("job"), k("job:fence")
    rc.set(fence, "not-a-number")
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "lock/acquire.lua", [lock, fence], "owner-a", 10000)
    assert error_code(exc.value) == "CORRUPT_FENCE"
    assert rc.exists(lock) == 0
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, "lock/acquire.lua", [lock, fence, k("third")], "owner-a", 10000)
    assert error_code(exc.value) == "WRONG_ARITY"


@pytest.mark.parametrize(
    ("name", "args", "code"),
    [
        ("lock/acquire.lua", ("", 1000), "INVALID_TOKEN"),
        ("lock/acquire.lua", ("a", 0), "INVALID_TTL"),
        ("lock/acquire.lua", ("a", "-5"), "INVALID_TTL"),
        ("lock/acquire.lua", ("a", "1000000000000000000"), "INVALID_TTL"),
        ("lock/acquire.lua", ("a",), "WRONG_ARITY"),
        ("lock/release.lua", ("",), "INVALID_TOKEN"),
        ("lock/release.lua", (), "WRONG_ARITY"),
        ("lock/extend.lua", ("", 1000), "INVALID_TOKEN"),
        ("lock/extend.lua", ("a", "10.5"), "INVALID_TTL"),
    ],
)
def test_lock_errors(name: str, args: tuple[Any, ...], code: str, rc: RedisCluster, keys: Callable[..., Keys]) -> None:
    lock = keys("lock")("job")
    with pytest.raises(redis.ResponseError) as exc:
        run(rc, name, [lock], *args)
    assert error_code(exc.value) == code
    assert rc.exists(lock) == 0


def test_over_maxmemory_release_extend_and_get_still_work(
    rc: RedisCluster, cluster: ChaosCluster, keys: Callable[..., Keys]
) -> None:
    """allow-oom / no-writes flags: freeing and reading work over maxmemory, growing is refused."""
    k = keys("lock")
    lock, counter = k("job"), k("count")
    assert run(rc, "lock/acquire.lua", [lock], "owner-a", 60000) == 1
    rc.set(counter, 7)
    primary, _ = primary_and_replica(rc, cluster, lock)
    with primary.client(decode_responses=True) as p:
        before = p.config_get("maxmemory")["maxmemory"]
        p.config_set("maxmemory", 1)  # every node uses far more than one byte: OOM from now on
        try:
            # redis-py maps the server's "OOM command not allowed..." to OutOfMemoryError.
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                p.eval(source("lock/acquire.lua"), 1, k("other"), "owner-a", 1000)
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                p.eval(source("counters/capped_incr.lua"), 1, counter, 1, 100)
            assert p.eval(source("counters/get.lua"), 1, counter) == 7
            assert p.eval(source("lock/extend.lua"), 1, lock, "owner-a", 90000) == 1
            assert p.eval(source("lock/release.lua"), 1, lock, "owner-a") == 1
        finally:
            p.config_set("maxmemory", before)
    assert rc.exists(lock) == 0
    assert rc.get(counter) == "7"


# ------------------------------------------------------------------------------------------ functions


@pytest.fixture
def orchestrator_lib(cluster: ChaosCluster) -> Iterator[list[LocalNode]]:
    code = source("functions/orchestrator_lib.lua")
    primaries = cluster.primaries()
    try:
        for node in primaries:
            with node.client(decode_responses=True) as c:
                assert c.function_load(code, replace=True) == LIB_NAME
        yield primaries
    finally:
        for node in primaries:
            with node.client() as c:
                try:
                    c.function_delete(LIB_NAME)
                except redis.ResponseError as exc:
                    if "not found" not in str(exc).lower():
                        raise


def test_function_library_registers_both_functions_with_flags(orchestrator_lib: list[LocalNode]) -> None:
    for node in orchestrator_lib:
        with node.client(decode_responses=True) as c:
            (lib,) = c.function_list(library=LIB_NAME)
            info = dict(zip(lib[::2], lib[1::2], strict=True))
            functions = {}
            for fn in info["functions"]:
                fields = dict(zip(fn[::2], fn[1::2], strict=True))
                functions[fields["name"]] = fields["flags"]
            assert functions == {"capped_incr_fn": [], "counter_get": ["no-writes"]}
            # Loading again without REPLACE is refused; with REPLACE it is idempotent.
            with pytest.raises(redis.ResponseError):
                c.function_load(source("functions/orchestrator_lib.lua"))


def test_function_capped_incr_and_counter_get(
    rc: RedisCluster, cluster: ChaosCluster, orchestrator_lib: list[LocalNode], keys: Callable[..., Keys]
) -> None:
    k = keys("quota")
    # Keys on three different tags: most likely spread over several shards, each needing the library.
    counters = [k("count")] + [keys(f"quota{i}")("count") for i in range(5)]
    for c in counters:
        assert rc.fcall("capped_incr_fn", 1, c, 3, 5, 100) == [3, 1]
        assert rc.fcall("capped_incr_fn", 1, c, 3, 5, 100) == [3, 0]
        assert rc.fcall("capped_incr_fn", 1, c, 2, 5) == [5, 1]
        assert 90 <= rc.ttl(c) <= 100
        assert rc.fcall_ro("counter_get", 1, c) == 5
    assert len({rc.get_node_from_key(c).name for c in counters}) > 1
    c = counters[0]
    assert rc.fcall_ro("counter_get", 1, k("missing")) == 0
    for args, code in (((0, 5), "INVALID_INCREMENT"), ((1, "x"), "INVALID_CAP"), ((1, 5, 0), "INVALID_TTL")):
        with pytest.raises(redis.ResponseError) as exc:
            rc.fcall("capped_incr_fn", 1, c, *args)
        assert error_code(exc.value) == code
    # FCALL_RO refuses the write function; counter_get runs on a replica (READONLY).
    with pytest.raises(redis.ResponseError):
        rc.fcall_ro("capped_incr_fn", 1, c, 1, 100)
    primary, replica = primary_and_replica(rc, cluster, c)
    wait_replicated(primary)
    with replica.client(single_connection_client=True, decode_responses=True) as r:
        r.execute_command("READONLY")
        assert r.fcall_ro("counter_get", 1, c) == 5
    assert rc.get(c) == "5"
