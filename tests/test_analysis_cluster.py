"""The analysis against a real 3+3 cluster: what `check` flags, the server really rejects.

Every key created here is deleted; no SCRIPT FLUSH and no role change (the cluster is shared).
Libraries are loaded on one primary only, under unique names, and deleted at once.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError

from redis_orchestrator.analysis import Analyzer, Finding, key_slot, keyslot_report, load_keyspecs, refresh_keyspecs
from redis_orchestrator.local_cluster import LocalCluster

CORPUS = Path(__file__).parent / "analysis_corpus"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.fixture
def prefix() -> str:
    return f"analysis-test:{uuid.uuid4().hex[:8]}"


def _owner(rc: RedisCluster, key: str) -> str:
    return str(rc.get_node_from_key(key).name)


def key_on_another_node(rc: RedisCluster, than: str, make: str) -> str:
    """A value v such that make.format(v) is served by another primary than key `than`."""
    home = _owner(rc, than)
    for i in itertools.count():
        if _owner(rc, make.format(i)) != home:
            return str(i)
    raise AssertionError("unreachable")


def tag_per_shard(rc: RedisCluster, prefix: str) -> list[str]:
    """One hash tag per primary, so keys `{tag}:x` land on each shard in turn."""
    tags: dict[str, str] = {}
    for i in itertools.count():
        tag = f"{prefix}:{i}"
        tags.setdefault(_owner(rc, "{" + tag + "}"), tag)
        if len(tags) == len(rc.get_primaries()):
            return list(tags.values())
    raise AssertionError("unreachable")


def flagged(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def _delete(rc: RedisCluster, *keys: str) -> None:
    for key in keys:
        rc.delete(key)


# ------------------------------------------------------------------ undeclared keys really fail


UNDECLARED = {
    "concatenation": (
        "redis.call('SET', KEYS[1], 1)\nreturn redis.call('SET', '{p}:user:' .. ARGV[1], 1)\n",
        "{p}:user:{v}",
    ),
    "string.format": (
        "redis.call('SET', KEYS[1], 1)\nreturn redis.call('SET', string.format('{p}:fmt:%s', ARGV[1]), 1)\n",
        "{p}:fmt:{v}",
    ),
    "ARGV as key": ("redis.call('SET', KEYS[1], 1)\nreturn redis.call('SET', ARGV[1], 1)\n", "{p}:argv:{v}"),
    "alias": ("local call = redis.call\ncall('SET', KEYS[1], 1)\nreturn call('INCR', ARGV[1])\n", "{p}:alias:{v}"),
}


@pytest.mark.parametrize("case", sorted(UNDECLARED))
def test_flagged_key_is_rejected_by_the_cluster(analyzer: Analyzer, rc: RedisCluster, prefix: str, case: str) -> None:
    template, key_template = UNDECLARED[case]
    source = template.replace("{p}", prefix)
    findings = analyzer.analyze(source.encode(), script=case, file="t.lua")
    assert [f.code for f in findings] == ["undeclared-key"]
    declared = f"{prefix}:declared"
    make = key_template.replace("{p}", prefix).replace("{v}", "{}")
    value = key_on_another_node(rc, declared, make)
    argv = make.format(value) if case == "ARGV as key" or case == "alias" else value
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            rc.eval(source, 1, declared, argv)
    finally:
        _delete(rc, declared, make.format(value))


def test_keys_from_a_reply_are_rejected(analyzer: Analyzer, rc: RedisCluster, prefix: str) -> None:
    source = (CORPUS / "reply_keys.lua").read_text()
    assert flagged(analyzer.analyze(source.encode(), script="r", file="reply_keys.lua"), "undeclared-key")
    index = f"{{{prefix}}}:index"
    member = f"{prefix}:member:" + key_on_another_node(rc, index, f"{prefix}:member:{{}}")
    rc.sadd(index, member)
    rc.set(member, 1)
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            rc.eval(source, 3, index, f"{{{prefix}}}:list", f"{{{prefix}}}:other")
    finally:
        _delete(rc, index, member)


def test_the_same_script_passes_when_the_built_key_happens_to_be_local(rc: RedisCluster, prefix: str) -> None:
    """Why tests on one node miss it: the unlucky key only fails once it hashes elsewhere."""
    declared = f"{prefix}:declared"
    home = _owner(rc, declared)
    value = next(str(i) for i in itertools.count() if _owner(rc, f"{prefix}:user:{i}") == home)
    source = f"redis.call('SET', KEYS[1], 1)\nreturn redis.call('SET', '{prefix}:user:' .. ARGV[1], 1)\n"
    try:
        assert rc.eval(source, 1, declared, value) == "OK"
    finally:
        _delete(rc, declared, f"{prefix}:user:{value}")


# ------------------------------------------------------------------ clean scripts run everywhere


@pytest.mark.parametrize("name", ["clean_transfer", "loops", "comments_strings"])
def test_clean_script_runs_on_every_shard(analyzer: Analyzer, rc: RedisCluster, prefix: str, name: str) -> None:
    source = (CORPUS / f"{name}.lua").read_bytes()
    assert analyzer.analyze(source, script=name, file=f"{name}.lua") == []
    for tag in tag_per_shard(rc, prefix):
        keys = [f"{{{tag}}}:a", f"{{{tag}}}:b", f"{{{tag}}}:c"]
        try:
            if name == "clean_transfer":
                rc.hset(keys[0], "balance", 100)
                result = rc.eval(source, 3, *keys, 30, "tx-1")
                assert result[0] == 70
            elif name == "loops":
                rc.set(keys[0], 1)
                rc.set(keys[1], 2)
                rc.eval(source, 2, keys[0], keys[1], 60)
            else:
                assert rc.eval(source, 1, keys[0]) is not None
        finally:
            _delete(rc, *keys)


# ------------------------------------------------------------------ CROSSSLOT, no-writes, globals


def test_declared_keys_in_different_slots_give_crossslot(
    analyzer: Analyzer, cluster: LocalCluster, rc: RedisCluster
) -> None:
    source = b"redis.call('INCRBY', KEYS[1], -1)\nreturn redis.call('INCRBY', KEYS[2], 1)\n"
    [finding] = analyzer.analyze(source, script="t", file="t.lua", key_patterns=["acct:<from>", "acct:<to>"])
    assert finding.code == "cross-slot" and "{acct}:<from>" in finding.suggestion
    keys = ["acct:1", "acct:2"]
    assert not keyslot_report(keys).same_slot
    # Sent straight to the node serving the first key: the server itself refuses, before running.
    owner = cluster.node_at(_owner(rc, keys[0]))
    # The server answers "-CROSSSLOT Keys in request don't hash to the same slot"; redis-py turns the
    # CROSSSLOT code into the exception class and keeps the rest as the message.
    with owner.client() as node, pytest.raises(ClusterCrossSlotError, match="don't hash to the same slot"):
        node.eval(source, 2, *keys)
    tagged = ["{acct}:1", "{acct}:2"]
    assert keyslot_report(tagged).same_slot
    try:
        assert rc.eval(source, 2, *tagged) == 1
    finally:
        _delete(rc, *tagged)


def test_no_writes_script_that_writes_fails(analyzer: Analyzer, rc: RedisCluster, prefix: str) -> None:
    source = (CORPUS / "no_writes.lua").read_bytes()
    assert flagged(analyzer.analyze(source, script="nw", file="no_writes.lua"), "write-in-readonly")
    keys = [f"{{{prefix}}}:a", f"{{{prefix}}}:b"]
    try:
        with pytest.raises(redis.ResponseError, match="Write commands are not allowed from read-only scripts"):
            rc.eval(source, 2, *keys)
    finally:
        _delete(rc, *keys)


def test_global_write_fails(analyzer: Analyzer, rc: RedisCluster, prefix: str) -> None:
    """REDIS_FACTS.md says "Script attempted to create global variable"; 7.0.15 answers otherwise."""
    source = b"counter = 1\nreturn redis.call('GET', KEYS[1])\n"
    assert [f.code for f in analyzer.analyze(source, script="g", file="g.lua")] == ["global-write"]
    with pytest.raises(redis.ResponseError, match="Attempt to modify a readonly table"):
        rc.eval(source, 1, f"{prefix}:g")


def test_undefined_global_read_fails(analyzer: Analyzer, rc: RedisCluster, prefix: str) -> None:
    source = b"return redis.call('GET', KEYS[1]) or undefined_thing\n"
    assert [f.code for f in analyzer.analyze(source, script="u", file="u.lua")] == ["undefined-global"]
    with pytest.raises(redis.ResponseError, match="nonexistent global variable 'undefined_thing'"):
        rc.eval(source, 1, f"{prefix}:u")


def test_function_library_findings_match_the_server(
    analyzer: Analyzer, cluster: LocalCluster, rc: RedisCluster, prefix: str
) -> None:
    name = f"analysis_{uuid.uuid4().hex[:8]}"
    source = (
        f"#!lua name={name}\n"
        "local function reader(keys, args)\n"
        "  redis.call('SET', keys[1], 1)\n"
        "  return 1\n"
        "end\n"
        f"redis.register_function{{function_name = '{name}_ro', callback = reader, flags = {{'no-writes'}}}}\n"
    )
    assert [f.code for f in analyzer.analyze(source.encode(), script=name, file="lib.lua", kind="function")] == [
        "write-in-readonly"
    ]
    key = f"{prefix}:fn"
    owner = cluster.node_at(_owner(rc, key))
    with owner.client() as node:
        node.execute_command("FUNCTION", "LOAD", source)
        try:
            with pytest.raises(redis.ResponseError, match="Write commands are not allowed from read-only scripts"):
                node.execute_command("FCALL", f"{name}_ro", 1, key)
        finally:
            node.execute_command("FUNCTION", "DELETE", name)
    bad = f"#!lua name={name}g\ncache = {{}}\nredis.register_function('{name}g', function(k, a) return 1 end)\n"
    assert "global-write" in [f.code for f in analyzer.analyze(bad.encode(), script="g", file="g.lua", kind="function")]
    with owner.client() as node, pytest.raises(redis.ResponseError, match="Attempt to modify a readonly table"):
        node.execute_command("FUNCTION", "LOAD", bad)


# ------------------------------------------------------------------ slots and key specs vs the server


def test_key_slot_agrees_with_cluster_keyslot(cluster: LocalCluster) -> None:
    keys = ["123456789", "{user1000}.following", "foo{bar}{zap}", "foo{}{bar}", "{}", "a{b", "é:ü"]
    with cluster.nodes[0].client() as node:
        for key in keys:
            assert key_slot(key) == node.execute_command("CLUSTER", "KEYSLOT", key), key


def test_refresh_keyspecs_matches_the_shipped_table(cluster: LocalCluster, rc: RedisCluster) -> None:
    shipped = load_keyspecs()
    with cluster.nodes[0].client() as node:
        live = refresh_keyspecs(node)
    from_cluster_client = refresh_keyspecs(rc)
    assert live.source == shipped.source == from_cluster_client.source
    for name in ("get", "set", "zunionstore", "xread", "mset", "eval", "xinfo"):
        assert live.lookup(name) == shipped.lookup(name), name
    assert set(live.commands) == set(from_cluster_client.commands)
