"""The analysis against a real 3+3 cluster: what `check` flags, the server really rejects.

Every key created here is deleted; no SCRIPT FLUSH and no role change (the cluster is shared).
Libraries are loaded on one primary only, under unique names, and deleted at once.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError

from harness.chaos import ChaosCluster
from harness.helpers import REFUSED_KEY, heal_poisoned_scripts
from redis_orchestrator.analysis import Analyzer, Finding, key_slot, keyslot_report, load_keyspecs
from redis_orchestrator.wire.command_table import refresh_keyspecs

CORPUS = Path(__file__).parent / "analysis_corpus"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.fixture
def prefix() -> str:
    return f"analysis-test:{uuid.uuid4().hex[:8]}"


def _owner(rc: RedisCluster, key: str) -> str:
    return str(rc.get_node_from_key(key).name)


def same_node_other_slot(rc: RedisCluster, than: str, make: str) -> str:
    """A value v such that make.format(v) is served by the node serving key `than`, in another slot."""
    home = _owner(rc, than)
    return next(
        str(i)
        for i in itertools.count()
        if _owner(rc, make.format(i)) == home and key_slot(make.format(i)) != key_slot(than)
    )


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
    analyzer: Analyzer, cluster: ChaosCluster, rc: RedisCluster
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
    analyzer: Analyzer, cluster: ChaosCluster, rc: RedisCluster, prefix: str
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


def test_key_slot_agrees_with_cluster_keyslot(cluster: ChaosCluster) -> None:
    keys = ["123456789", "{user1000}.following", "foo{bar}{zap}", "foo{}{bar}", "{}", "a{b", "é:ü"]
    with cluster.nodes[0].client() as node:
        for key in keys:
            assert key_slot(key) == node.execute_command("CLUSTER", "KEYSLOT", key), key


def test_the_shipped_table_covers_this_server_and_agrees_on_every_command(
    cluster: ChaosCluster, rc: RedisCluster
) -> None:
    """One table for the servers we build it from (tools/gen_keyspecs.py merges them): every command
    such a server has is in it, and for each the key positions and the write flag are the server's
    own. On any other server (REDIS_SERVER=...) the table must still agree on every command both
    know; the commands it lacks are named in a skip, with how to add them."""
    shipped = load_keyspecs()
    with cluster.nodes[0].client() as node:
        live = refresh_keyspecs(node)
    from_cluster_client = refresh_keyspecs(rc)
    assert live.source == from_cluster_client.source
    assert set(live.commands) == set(from_cluster_client.commands)
    live_all, shipped_all = live.every(), shipped.every()
    both = set(live_all) & set(shipped_all)
    assert [n for n in sorted(both) if live_all[n].positions() != shipped_all[n].positions()] == []
    missing = sorted(set(live_all) - set(shipped_all))  # subcommands too (SCRIPT SHOW, CLIENT SETINFO...)
    if live.source in shipped.source.split(" + "):
        assert missing == []
    elif missing:
        pytest.skip(
            f"{live.source} agrees on the {len(both)} commands both know; not in the shipped table "
            f"({shipped.source}): {', '.join(missing)}; add it with tools/gen_keyspecs.py"
        )


# ------------------------------------------------------------------ issue 11: slot reasoning on a real cluster


def corpus_case(name: str) -> tuple[bytes, list[str], list[str]]:
    """A corpus script with the keys:/argv: patterns its .expect file declares."""
    keys: list[str] = []
    argv: list[str] = []
    for line in (CORPUS / f"{name}.expect").read_text().splitlines():
        if line.startswith("keys:"):
            keys = yaml.safe_load(line[5:])
        elif line.startswith("argv:"):
            argv = yaml.safe_load(line[5:])
    return (CORPUS / f"{name}.lua").read_bytes(), keys, argv


def analysed(analyzer: Analyzer, name: str) -> tuple[bytes, list[Finding]]:
    source, keys, argv = corpus_case(name)
    return source, analyzer.analyze(source, script=name, file=f"{name}.lua", key_patterns=keys, argv_patterns=argv)


def severities(findings: list[Finding]) -> set[str]:
    return {f.severity for f in findings if f.code in ("undeclared-key", "same-slot-undeclared", "enumeration")}


def msgpack_array(*items: str) -> bytes:
    """A msgpack array of short strings (fixarray of fixstr), as a client packs ARGV for cmsgpack."""
    out = bytes([0x90 | len(items)])
    for item in items:
        raw = item.encode()
        assert len(raw) < 32
        out += bytes([0xA0 | len(raw)]) + raw
    return out


def scoped_keys(rc: RedisCluster, tag: str) -> list[str]:
    """Every key with this hash tag, read on the node that serves it."""
    node = rc.get_node_from_key("{" + tag + "}")
    return [str(k) for k in rc.scan_iter(match="{" + tag + "}*", target_nodes=node)]


# Scripts the check passes (no error): how to call each, for a hash tag t. They must run on every shard.
CLEAN_RUNS: dict[str, Any] = {
    "slot_keys_prefix_tagged": lambda t: ([f"{{{t}}}:meta", f"{{{t}}}:jobs"], ["payload"]),
    "slot_argv_prefix_declared": lambda t: ([f"{{{t}}}:paid"], [f"{{{t}}}:", "o-17"]),
    "slot_argv_packed": lambda t: ([f"{{{t}}}:items"], [msgpack_array(f"{{{t}}}:", "i-3")]),
    "slot_sub_keeps_tag": lambda t: ([f"{{{t}}}:posts:list"], []),
    "join_if_else_keys": lambda t: ([f"{{{t}}}:n", f"{{{t}}}:urgent", f"{{{t}}}:normal"], ["urgent", "x"]),
    "join_empty_sentinel": lambda t: ([f"{{{t}}}:in", f"{{{t}}}:archive"], ["keep"]),
    "helper_optional_param": lambda t: ([f"{{{t}}}:a", f"{{{t}}}:b", f"{{{t}}}:c"], []),
    "table_msetnx_pairs": lambda t: ([f"{{{t}}}:a", f"{{{t}}}:b", f"{{{t}}}:c"], ["1", "2", "3"]),
    "enum_scan_tagged": lambda t: ([f"{{{t}}}:files"], []),
    "reply_names_tagged": lambda t: ([f"{{{t}}}:members"], []),
    "slot_keys_prefix_undeclared": lambda t: ([f"{{{t}}}:meta"], ["payload"]),
}


@pytest.mark.parametrize("name", sorted(CLEAN_RUNS))
def test_not_errors_really_run_on_every_shard(analyzer: Analyzer, rc: RedisCluster, prefix: str, name: str) -> None:
    source, findings = analysed(analyzer, name)
    assert "error" not in {f.severity for f in findings}, findings
    for tag in tag_per_shard(rc, prefix):
        keys, argv = CLEAN_RUNS[name](tag)
        if name == "join_empty_sentinel":
            rc.rpush(keys[0], "item")
        if name == "enum_scan_tagged":
            for i in range(5):
                rc.set(f"{keys[0]}:{i}", i)
        if name == "reply_names_tagged":
            rc.sadd(keys[0], f"{{{tag}}}:m1", f"{{{tag}}}:m2")
        try:
            result = rc.eval(source, len(keys), *keys, *argv)
            if name == "enum_scan_tagged":
                assert result == 5  # every name the tagged pattern matches lives in this slot
        finally:
            _delete(rc, *scoped_keys(rc, tag))


def test_if_else_join_runs_both_branches(rc: RedisCluster, prefix: str) -> None:
    source, _, _ = corpus_case("join_if_else_keys")
    for tag in tag_per_shard(rc, prefix):
        keys = [f"{{{tag}}}:n", f"{{{tag}}}:urgent", f"{{{tag}}}:normal"]
        try:
            assert rc.eval(source, 3, *keys, "urgent", "a") == 1
            assert rc.eval(source, 3, *keys, "normal", "b") == 1
        finally:
            _delete(rc, *keys)


def _another_node_value(rc: RedisCluster, home: str, make: str) -> str:
    return key_on_another_node(rc, home, make)


# Scripts the check flags as errors: values that make them fail, found on the live topology.
def test_untagged_keys_prefix_fails(analyzer: Analyzer, rc: RedisCluster, prefix: str) -> None:
    source, findings = analysed(analyzer, "slot_keys_prefix_untagged")
    assert severities(findings) == {"error"}
    session = next(
        f"{prefix}:session:{i}"
        for i in itertools.count()
        if _owner(rc, f"{prefix}:session:{i}") != _owner(rc, f"{prefix}:session:{i}:touch")
    )
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            rc.eval(source, 1, session, "now")
    finally:
        _delete(rc, session, session + ":touch")


def test_undeclared_argv_prefix_fails_and_tagged_one_runs(analyzer: Analyzer, rc: RedisCluster, prefix: str) -> None:
    """A warning: the prefix may carry the tag or not, and both outcomes happen."""
    source, findings = analysed(analyzer, "slot_argv_prefix_undeclared")
    assert severities(findings) == {"warning"}
    assert 'argv: ["ARGV[1] = {<shop>}:' in findings[0].suggestion
    paid = f"{{{prefix}}}:paid"
    untagged = f"{prefix}:shop:"
    order = _another_node_value(rc, paid, untagged + "order:{}")
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            rc.eval(source, 1, paid, untagged, order)
        # The same script with a prefix that carries the key's tag: what argv: declares.
        assert rc.eval(source, 1, paid, f"{{{prefix}}}:", order) == 1
    finally:
        _delete(rc, paid, untagged + f"order:{order}", f"{{{prefix}}}:order:{order}")


@pytest.mark.parametrize(
    ("name", "make", "call", "severity"),
    [
        ("join_if_else_bad", "stats:global", lambda k, v: ([k], ["global"]), "error"),
        ("helper_shared_once", "tmp:{}", lambda k, v: ([k, k, k, k, k], [v]), "error"),
        # ARGV values where MSETNX reads keys: they could be keys with the tag, so a warning; as values, they fail.
        ("table_msetnx_swapped", "{}", lambda k, v: ([k], [v]), "warning"),
        ("table_fixed_items", "audit:{}", lambda k, v: ([k, k, k], ["1", "2", v]), "error"),
        ("dispatch_table", "mirror:{}", lambda k, v: ([k], ["put", "x", v]), "error"),
        ("metatable_methods", "account:{}", lambda k, v: ([k], [v]), "error"),
    ],
)
def test_flagged_keys_really_fail(
    analyzer: Analyzer,
    cluster: ChaosCluster,
    rc: RedisCluster,
    prefix: str,
    name: str,
    make: str,
    call: Any,
    severity: str,
) -> None:
    source, findings = analysed(analyzer, name)
    assert severities(findings) == {severity}
    declared = f"{prefix}:{name}"
    if "{}" in make:
        # The script builds make.format(ARGV value): pass a value whose built name is on another node.
        template = make.format(prefix + ":{}")
        value = prefix + ":" + _another_node_value(rc, declared, template)
        built = make.format(value)
    else:
        built = make  # a fixed name: pick a declared key on another node than it
        candidates = (f"{prefix}:{name}:{i}" for i in itertools.count())
        declared = next(k for k in candidates if _owner(rc, k) != _owner(rc, built))
        value = ""
    keys, argv = call(declared, value)
    try:
        with pytest.raises(redis.ResponseError, match=REFUSED_KEY):
            rc.eval(source, len(keys), *keys, *argv)
    finally:
        # Valkey 9.1.2 refuses every later script on a node where a multi-key call failed this way
        # (tests/test_server_differences.py): restart such a node, the cluster is shared.
        if heal_poisoned_scripts(cluster):
            cluster.wait_healthy()
            rc.nodes_manager.initialize()
        _delete(rc, declared, built)


def test_shebang_fails_on_another_slot_of_the_same_node_where_no_shebang_works(
    analyzer: Analyzer, cluster: ChaosCluster, rc: RedisCluster, prefix: str
) -> None:
    """Seen on 7.0.15: without a shebang an undeclared key only has to be on this node."""
    with_shebang, findings = analysed(analyzer, "mode_shebang")
    [finding] = findings
    assert "hashes to another slot" in finding.message
    without = with_shebang.split(b"\n", 1)[1]
    [plain] = analyzer.analyze(without, script="plain", file="plain.lua")
    assert "served by another node" in plain.message
    declared = f"{prefix}:declared"
    home = _owner(rc, declared)
    value = same_node_other_slot(rc, declared, f"hits:{prefix}{{}}")
    owner = cluster.node_at(home)
    try:
        with owner.client() as node:
            assert node.eval(without, 1, declared, "v", f"{prefix}{value}") == 1
            with pytest.raises(redis.ResponseError, match="do not hash to the same slot"):
                node.eval(with_shebang, 1, declared, "v", f"{prefix}{value}")
    finally:
        _delete(rc, declared, f"hits:{prefix}{value}")


def test_a_call_mixing_slots_fails_even_on_one_node_without_a_shebang(
    analyzer: Analyzer, cluster: ChaosCluster, rc: RedisCluster, prefix: str
) -> None:
    """Without a shebang a single-key call may reach another slot of this node, but a call that mixes
    keys of two slots fails even when this node serves both (seen on Redis 7.0.15 and 8.0.2, Valkey
    8.1.1 and 9.1.2); the finding says so instead of "served by another node"."""
    single = b"return redis.call('GET', 'hits:' .. ARGV[1])"
    mixed = b"return redis.call('DEL', KEYS[1], 'hits:' .. ARGV[1])"
    [lone] = analyzer.analyze(single, script="single", file="single.lua")
    [both] = analyzer.analyze(mixed, script="mixed", file="mixed.lua")
    assert "served by another node" in lone.message and "even on the same node" not in lone.message
    assert "even on the same node" in both.message and both.severity == "error"
    declared = f"{prefix}:declared"
    home = _owner(rc, declared)
    value = prefix + same_node_other_slot(rc, declared, f"hits:{prefix}{{}}")
    try:
        with cluster.node_at(home).client() as node:
            assert node.eval(single, 0, value) is None  # another slot, same node, one key: runs
            with pytest.raises(redis.ResponseError, match=REFUSED_KEY):
                node.eval(mixed, 1, declared, value)
    finally:
        if heal_poisoned_scripts(cluster):  # Valkey 9.1.2 (tests/test_server_differences.py)
            cluster.wait_healthy()
            rc.nodes_manager.initialize()


def test_scan_in_a_script_sees_one_node(
    analyzer: Analyzer, cluster: ChaosCluster, rc: RedisCluster, prefix: str
) -> None:
    """A reset script run on one node deletes only that node's share of the keys; nothing errors."""
    source, findings = analysed(analyzer, "enum_scan_delete")
    assert [(f.code, f.severity) for f in findings] == [("enumeration", "warning")]
    names = [f"{prefix}:reset:{i}" for i in range(30)]
    for name in names:
        rc.set(name, 1)
    try:
        first = cluster.node_at(_owner(rc, names[0]))
        with first.client() as node:
            removed = node.eval(source, 0, f"{prefix}:reset:*")
        here = sum(1 for n in names if _owner(rc, n) == first.address)
        assert removed == here < len(names)
        assert sum(rc.exists(n) for n in names) == len(names) - here
    finally:
        _delete(rc, *names)


def test_names_from_keys_fail_with_a_shebang(
    analyzer: Analyzer, cluster: ChaosCluster, rc: RedisCluster, prefix: str
) -> None:
    """A warning: the MATCH pattern is the caller's; one with a hash tag lists names of one slot."""
    source, findings = analysed(analyzer, "enum_keys_shebang")
    assert {(f.code, f.severity) for f in findings} == {("enumeration", "warning"), ("undeclared-key", "warning")}
    first = f"{prefix}:k:0"
    home = _owner(rc, first)
    second = next(
        f"{prefix}:k:{i}"
        for i in itertools.count(1)
        if _owner(rc, f"{prefix}:k:{i}") == home and key_slot(f"{prefix}:k:{i}") != key_slot(first)
    )
    rc.set(first, 1)
    rc.set(second, 1)
    try:
        with cluster.node_at(home).client() as node:
            with pytest.raises(redis.ResponseError, match="do not hash to the same slot"):
                node.eval(source, 0, f"{prefix}:k:*")
            # Without the shebang the same listing and deletes work: the names are this node's.
            node.set(first, 1)
            node.set(second, 1)
            assert node.eval(source.split(b"\n", 1)[1], 0, f"{prefix}:k:*") == 2
    finally:
        _delete(rc, first, second)
    # With the shebang and a pattern that carries a hash tag, every name listed is in that one slot.
    tag = tag_per_shard(rc, prefix)[0]
    tagged = [f"{{{tag}}}:k:{i}" for i in range(3)]
    for name in tagged:
        rc.set(name, 1)
    try:
        with cluster.node_at(_owner(rc, tagged[0])).client() as node:
            assert node.eval(source, 0, f"{{{tag}}}:k:*") == 3
    finally:
        _delete(rc, *tagged)


def test_warnings_name_real_conditions(analyzer: Analyzer, rc: RedisCluster, prefix: str) -> None:
    """A warning (not an error) says the slot hangs on what the check cannot see: both outcomes happen."""
    source, findings = analysed(analyzer, "slot_keys_prefix_undeclared")
    assert severities(findings) == {"warning"}
    meta = next(
        f"{prefix}:meta{i}"
        for i in itertools.count()
        if _owner(rc, f"{prefix}:meta{i}") != _owner(rc, f"{prefix}:meta{i}:job:1")
    )
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            rc.eval(source, 1, meta, "payload")  # untagged KEYS[1]: the built name lands elsewhere
    finally:
        _delete(rc, meta, meta + ":job:1")
    reply_source, reply_findings = analysed(analyzer, "reply_names_tagged")
    assert severities(reply_findings) == {"warning"}
    members = f"{{{prefix}}}:members"
    stray = f"{prefix}:stray:" + key_on_another_node(rc, members, f"{prefix}:stray:{{}}")
    rc.sadd(members, stray)
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            rc.eval(reply_source, 1, members)  # a stored name without the tag
    finally:
        _delete(rc, members, stray)


# ------------------------------------------------------------------ issue 19: the new errors, and portability


def test_a_helper_reached_recursively_fails_where_the_check_says(
    analyzer: Analyzer, cluster: ChaosCluster, rc: RedisCluster, prefix: str
) -> None:
    """The miss of the issue: only the first call of a recursive helper was analysed."""
    source = (
        "local function expire(key, child)\n"
        f"  if child then key = '{prefix}:task:' .. child end\n"
        "  redis.call('EXPIRE', key, 60)\n"
        "  for _, kid in ipairs(redis.call('SMEMBERS', KEYS[1] .. ':kids')) do\n"
        "    if not child then expire(key, kid) end\n"
        "  end\n"
        "end\n"
        "expire(KEYS[1])\n"
        "return 1\n"
    ).encode()
    errors = [f for f in analyzer.analyze(source, script="tree", file="tree.lua") if f.severity == "error"]
    assert [(f.line, f.code) for f in errors] == [(3, "undeclared-key")]
    root = f"{{{prefix}}}:root"
    kid = key_on_another_node(rc, root, f"{prefix}:task:{{}}")
    rc.sadd(root + ":kids", kid)
    rc.set(root, 1)
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            rc.eval(source, 1, root)
    finally:
        _delete(rc, root, root + ":kids")


def test_keys_the_script_fixes_in_two_slots_fail(analyzer: Analyzer, rc: RedisCluster, prefix: str) -> None:
    here, elsewhere = tag_per_shard(rc, prefix)[:2]
    source = (
        f"redis.call('INCR', KEYS[1])\nredis.call('SET', '{{{here}}}:wheel', 1)\n"
        f"return redis.call('SET', '{{{elsewhere}}}:pending', 1)\n"
    )
    findings = analyzer.analyze(source.encode(), script="fixed", file="fixed.lua")
    assert {(f.line, f.severity) for f in findings} == {(2, "error"), (3, "error")}
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            rc.eval(source, 1, f"{{{here}}}:route")  # runs where {here} is served; {elsewhere} is not
    finally:
        _delete(rc, f"{{{here}}}:route", f"{{{here}}}:wheel", f"{{{elsewhere}}}:pending")


def _server_kind(cluster: ChaosCluster) -> tuple[str, tuple[int, ...]]:
    with cluster.nodes[0].client() as node:
        info = node.info("server")
    if "valkey_version" in info:
        return "valkey", tuple(int(p) for p in str(info["valkey_version"]).split(".")[:2])
    return "redis", tuple(int(p) for p in str(info["redis_version"]).split(".")[:2])


def test_check_says_which_servers_a_script_runs_on(analyzer: Analyzer, cluster: ChaosCluster, prefix: str) -> None:
    """server.call is Valkey's alias (>= 8); os exists on Redis >= 7.4 and Valkey 9.1, not on Redis
    7.0 (REDIS_FACTS.md). What `check` says, the server under test does."""
    kind, version = _server_kind(cluster)
    alias = b"return server.call('PING')\n"
    clock = b"return type(os.clock())\n"
    [flagged] = analyzer.analyze(alias, script="alias", file="alias.lua")
    assert (flagged.code, flagged.severity) == ("portability", "error")
    assert Analyzer(analyzer.keyspecs, servers=frozenset({"valkey"})).analyze(alias, script="a", file="a.lua") == []
    [clock_finding] = analyzer.analyze(clock, script="clock", file="clock.lua")
    assert (clock_finding.code, clock_finding.severity) == ("portability", "warning")
    with cluster.nodes[0].client() as node:
        if kind == "valkey" and version >= (8, 0):
            assert node.eval(alias, 0) in (b"PONG", "PONG")
        elif kind == "redis":
            with pytest.raises(redis.ResponseError, match="nonexistent global variable 'server'"):
                node.eval(alias, 0)
        else:
            pytest.skip(f"{kind} {version}: not a server the finding speaks of")
        if kind == "redis" and version < (7, 4):
            with pytest.raises(redis.ResponseError, match="nonexistent global variable 'os'"):
                node.eval(clock, 0)
        elif (kind, version) in (("valkey", (9, 1)),) or (kind == "redis" and version >= (7, 4)):
            assert node.eval(clock, 0) in (b"number", "number")
