"""Unit tests of the static analysis: a corpus of tricky scripts, slot math, suggestions, output."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from redis_orchestrator.analysis import (
    Analyzer,
    Finding,
    format_json,
    format_text,
    hash_tag,
    key_slot,
    keyslot_report,
    load_keyspecs,
    suggest_hash_tags,
)
from redis_orchestrator.analysis.declared import read_declared, same_slot
from redis_orchestrator.analysis.keyspecs import key_positions
from redis_orchestrator.analysis.slots import patterns_share_slot
from redis_orchestrator.analysis.suggest import documented_names, suggest_keys
from redis_orchestrator.analysis.values import NIL, Hole, Lit, Pat, Tab, Val, join_tabs, slot_fact, union
from redis_orchestrator.catalog.shebang import parse_shebang

CORPUS = Path(__file__).parent / "analysis_corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.lua"))


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


def analyze(analyzer: Analyzer, source: str, kind: str = "script", **kw: object) -> list[Finding]:
    return analyzer.analyze(source.encode(), script="s", file="s.lua", kind=kind, **kw)  # type: ignore[arg-type]


def codes(findings: list[Finding]) -> list[tuple[int, str]]:
    return sorted((f.line, f.code) for f in findings)


# ---------------------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Case:
    """A corpus case: its declared patterns and expected findings (see analysis_corpus/README.md)."""

    keys: tuple[str, ...]
    argv: tuple[str, ...]
    expected: list[tuple[int, str, str | None]]  # line, code, severity (None: any)


def read_case(path: Path) -> Case:
    keys: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    expected: list[tuple[int, str, str | None]] = []
    for line in path.with_suffix(".expect").read_text().splitlines():
        if line.startswith(("keys:", "argv:")):
            name, _, value = line.partition(":")
            patterns = tuple(yaml.safe_load(value))
            keys, argv = (patterns, argv) if name == "keys" else (keys, patterns)
        elif line.strip():
            parts = line.split()
            expected.append((int(parts[0]), parts[1], parts[2] if len(parts) > 2 else None))
    return Case(keys, argv, sorted(expected, key=lambda e: (e[0], e[1])))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.stem for p in CORPUS_FILES])
def test_corpus(analyzer: Analyzer, path: Path) -> None:
    kind = "function" if path.name.startswith("fn_") else "script"
    case = read_case(path)
    findings = analyzer.analyze(
        path.read_bytes(),
        script=path.stem,
        file=str(path),
        kind=kind,
        key_patterns=case.keys,
        argv_patterns=case.argv,
        version="1",
    )
    assert codes(findings) == [(line, code) for line, code, _ in case.expected], format_text(findings)
    for (_, _, severity), f in zip(case.expected, sorted(findings, key=lambda f: (f.line, f.code)), strict=True):
        assert severity is None or f.severity == severity, format_text([f])
    for f in findings:
        assert f.severity in ("error", "warning", "info")
        assert f.message and f.suggestion
        assert f.file == str(path) and f.script == path.stem and f.version == "1"
        assert "not from KEYS, not from KEYS" not in f.message and "reply of KEYS" not in f.message


def test_corpus_is_not_trivial() -> None:
    assert len(CORPUS_FILES) >= 40


def test_line_and_column_point_at_the_key(analyzer: Analyzer) -> None:
    [f] = analyze(analyzer, "local x = 1\nredis.call('SET', 'user:' .. ARGV[1], x)\n")
    assert (f.line, f.column, f.code, f.severity) == (2, 19, "undeclared-key", "error")
    assert "'user:' .. ARGV[1]" in f.message and "non local key" in f.message
    assert "whenever the key is served by another node" in f.message
    assert "KEYS" in f.suggestion


def test_a_multi_key_call_says_mixed_slots_fail_even_on_one_node(analyzer: Analyzer) -> None:
    [f] = analyze(analyzer, "redis.call('DEL', KEYS[1], 'user:' .. ARGV[1])\n")
    assert f.severity == "error" and "even on the same node" in f.message and "non local key" in f.message
    [g] = analyze(analyzer, "redis.call('DEL', unpack({'user:' .. ARGV[1]}))\n")
    assert "even on the same node" not in g.message  # a one-element table: one key
    loop = "local t = {}\nfor i = 1, #ARGV do t[#t + 1] = 'user:' .. ARGV[i] end\nredis.call('DEL', unpack(t))\n"
    [h] = analyze(analyzer, loop)
    assert "even on the same node" in h.message  # as many keys as the loop appends


def test_shebang_line_keeps_line_numbers(analyzer: Analyzer) -> None:
    [f] = analyze(analyzer, "#!lua flags=no-writes\n\nredis.call('DEL', KEYS[1])\n")
    assert (f.line, f.column, f.code) == (3, 1, "write-in-readonly")


def test_reply_origin_is_named(analyzer: Analyzer) -> None:
    [f] = analyze(analyzer, "local m = redis.call('SMEMBERS', KEYS[1])\nredis.call('DEL', m[1])\n")
    assert "the reply of redis.call('SMEMBERS')" in f.message


def test_syntax_error_has_line_and_column(analyzer: Analyzer) -> None:
    [f] = analyze(analyzer, "local a = 1\nlocal b = = 2\n")
    assert (f.code, f.line, f.column) == ("syntax", 2, 11)
    assert "unexpected symbol" in f.message


def test_function_library_without_name_is_refused(analyzer: Analyzer) -> None:
    findings = analyze(analyzer, "redis.register_function('f', function(k, a) return 1 end)\n", kind="function")
    assert codes(findings) == [(1, "shebang")]


def test_helper_never_called_is_not_reported(analyzer: Analyzer) -> None:
    assert analyze(analyzer, "local M = {}\nfunction M.get(k)\n  return redis.call('GET', k)\nend\nreturn 1\n") == []


def test_helper_handed_to_unknown_code_is_a_warning(analyzer: Analyzer) -> None:
    src = "local M = {}\nfunction M.get(k)\n  return redis.call('GET', k)\nend\ntable.sort(KEYS, M.get)\n"
    [f] = analyze(analyzer, src)
    assert (f.code, f.severity, f.line) == ("undeclared-key", "warning", 3)


def test_no_cluster_flag_is_reported(analyzer: Analyzer) -> None:
    findings = analyze(analyzer, "#!lua flags=no-cluster\nreturn 1\n")
    assert codes(findings) == [(1, "no-cluster")]


def test_cross_slot_patterns(analyzer: Analyzer) -> None:
    src = "redis.call('INCRBY', KEYS[1], -1)\nredis.call('INCRBY', KEYS[2], 1)\n"
    findings = analyze(analyzer, src, key_patterns=["acct:<from>", "acct:<to>"])
    [f] = findings
    assert f.code == "cross-slot" and f.severity == "error"
    assert "{acct}:<from>" in f.suggestion and "split" in f.suggestion
    assert analyze(analyzer, src, key_patterns=["{ledger}:acct:<from>", "{ledger}:acct:<to>"]) == []
    assert analyze(analyzer, src, key_patterns=["only:<one>"]) == []


def test_cache_by_sha1(analyzer: Analyzer) -> None:
    fresh = Analyzer(analyzer.keyspecs)
    src = b"redis.call('GET', ARGV[1])\n"
    first = fresh.analyze(src, script="a", file="a.lua")
    assert len(fresh._cache) == 1
    second = fresh.analyze(src, script="b", file="b.lua")
    assert len(fresh._cache) == 1
    assert [(f.line, f.code) for f in first] == [(f.line, f.code) for f in second]
    assert second[0].file == "b.lua" and second[0].script == "b"
    fresh.analyze(src, script="b", file="b.lua", key_patterns=["x:<a>", "y:<b>"])
    assert len(fresh._cache) == 2


# ---------------------------------------------------------------------------------------- shebang


def test_parse_shebang() -> None:
    s = parse_shebang(b"#!lua flags=no-writes,allow-stale\nreturn 1")
    assert s.present and s.flags == frozenset({"no-writes", "allow-stale"}) and s.library is None
    lib = parse_shebang(b"#!lua name=mylib\r\n")
    assert lib.library == "mylib" and lib.flags == frozenset()
    assert not parse_shebang(b"return 1").present
    assert parse_shebang(b"#!lua\n").present


# ---------------------------------------------------------------------------------------- key specs


def _positions(argv: list[str], open_tail: bool = False) -> tuple[list[int], bool]:
    specs = load_keyspecs()
    spec = specs.lookup(argv[0], argv[1] if len(argv) > 1 else None)
    assert spec is not None
    return key_positions(spec, len(argv), lambda i: argv[i] if i < len(argv) else None, open_tail)


def test_keyspecs_come_from_a_real_server() -> None:
    specs = load_keyspecs()
    assert specs.source.startswith("redis ")
    assert len(specs.commands) > 200
    assert specs.lookup("SET") is not None and specs.lookup("set").writes  # type: ignore[union-attr]
    assert not specs.lookup("get").writes  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["get", "k"], [1]),
        (["mset", "a", "1", "b", "2"], [1, 3]),
        (["zunionstore", "dst", "2", "a", "b", "WEIGHTS", "1", "2"], [1, 3, 4]),
        (["xread", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"], [4, 5]),
        (["xinfo", "STREAM", "s"], [2]),
        (["eval", "return 1", "1", "k", "arg"], [3]),
        (["lmove", "a", "b", "LEFT", "RIGHT"], [1, 2]),
        (["publish", "channel", "msg"], []),
    ],
)
def test_key_positions(argv: list[str], expected: list[int]) -> None:
    assert _positions(argv) == (expected, False)


def test_key_positions_with_open_tail() -> None:
    assert _positions(["del", "a"], open_tail=True) == ([1], True)


# ---------------------------------------------------------------------------------------- slots


@pytest.mark.parametrize(
    ("key", "slot", "tag"),
    [
        ("123456789", 12739, None),
        ("{user1000}.following", 3443, "user1000"),
        ("foo{bar}{zap}", 5061, "bar"),
        ("bar", 5061, None),
        ("foo{}{bar}", key_slot("foo{}{bar}"), None),
    ],
)
def test_key_slot_and_tag(key: str, slot: int, tag: str | None) -> None:
    assert key_slot(key) == slot
    assert hash_tag(key) == tag


def test_empty_tag_hashes_the_whole_key() -> None:
    assert hash_tag("foo{}{bar}") is None
    assert key_slot("foo{}{bar}") != key_slot("bar")


def test_keyslot_report_same_slot() -> None:
    report = keyslot_report(["{user1000}.following", "{user1000}.followers"])
    assert report.same_slot
    assert report.to_dict()["slots"] == [3443]
    assert "share slot 3443" in report.to_text()
    assert report.suggestions == ()


def test_keyslot_report_different_slots_suggests_a_tag() -> None:
    report = keyslot_report(["user:1000:name", "user:1000:email"])
    assert not report.same_slot
    body = report.to_dict()
    assert body["keys"][0]["hash_tag"] is None  # type: ignore[index]
    assert "{user:1000}:name, {user:1000}:email" in report.suggestions[0]
    assert "CROSSSLOT" in report.to_text()
    json.dumps(body)


def test_suggest_tag_for_a_shared_prefix() -> None:
    [option] = suggest_hash_tags(["account:<id>:profile", "account:<id>:events"])
    assert "{account:<id>}:profile, {account:<id>}:events" in option


def test_suggest_for_independent_keys_gives_both_options() -> None:
    options = suggest_hash_tags(["acct:<from>", "acct:<to>"])
    assert len(options) == 2
    assert "{acct}:<from>, {acct}:<to>" in options[0] and "one slot" in options[0]
    assert "split" in options[1]


def test_suggest_tag_for_a_shared_placeholder() -> None:
    [option] = suggest_hash_tags(["user:<id>:name", "orders:<id>"])
    assert "user:{<id>}:name, orders:{<id>}" in option


def test_no_suggestion_when_already_co_located() -> None:
    assert suggest_hash_tags(["{ledger}:acct:<from>", "{ledger}:acct:<to>"]) == []
    assert suggest_hash_tags(["foo{bar}", "bar"]) == []  # constants that share a slot
    assert suggest_hash_tags(["one:<x>"]) == []
    assert patterns_share_slot(["{<id>}:a", "{<id>}:b"])
    assert not patterns_share_slot(["{<a>}:x", "{<b>}:x"])


# ---------------------------------------------------------------------------------------- output


def test_format_text_and_json() -> None:
    f = Finding("lua/ledger/transfer.lua", "transfer", 12, 5, "error", "undeclared-key", "msg", "do this")
    assert format_text([f]) == ("lua/ledger/transfer.lua:12:5: error[undeclared-key] (transfer) msg\n  help: do this\n")
    assert format_text([]) == ""
    [obj] = json.loads(format_json([f]))
    assert obj == {
        "file": "lua/ledger/transfer.lua",
        "script": "transfer",
        "version": "",
        "line": 12,
        "column": 5,
        "severity": "error",
        "code": "undeclared-key",
        "message": "msg",
        "suggestion": "do this",
        "subject": "",
        "declare": "",
    }


def test_sample_library_in_repo_is_clean(analyzer: Analyzer) -> None:
    root = Path(__file__).parent.parent / "examples" / "lua"
    for path in sorted(root.rglob("*.lua")):
        kind = "function" if path.read_bytes().startswith(b"#!lua name=") else "script"
        findings = analyzer.analyze(path.read_bytes(), script=path.stem, file=str(path), kind=kind)
        assert [f for f in findings if f.severity == "error"] == [], format_text(findings)


# ---------------------------------------------------------------------------------------- parser vs Lua 5.1

VALID_SNIPPETS = [
    "local a, b = ...; return select('#', ...)",
    "local t = {1, 2; x = 3, ['y'] = 4,}\nreturn t.x",
    "local s = [==[ a ]] b ]==] .. [[\nline]]\nreturn s",
    "local o = {f = function(self, x) return x end}\nreturn o:f(1), o.f(o, 2), o:f'str', o:f{1}",
    "return -2 ^ 2, not nil == true, 1 .. 2 .. 3, #'abc' + 1, 0x1F, 1e3, .5, 3.",
    "local function f(...) local n = select('#', ...) return n end\nreturn f(1, 2)",
    "repeat local x = 1 until x == 1\nwhile false do break end\ndo end\nreturn",
    "for i = 10, 1, -1 do end\nfor k, v in next, {} do end\nif a then elseif b then else end",
    "local x = ('%s'):format(1); local y = (f or g)(1)\nreturn x",
    "function a.b.c:d(x) return self end",
]
INVALID_SNIPPETS = ["local x = = 1", "if x then", "return return", "x ==", "local 1 = 2", "f() = 1", "goto done"]


@pytest.mark.parametrize("source", VALID_SNIPPETS + INVALID_SNIPPETS)
def test_parser_agrees_with_lua51(source: str) -> None:
    from lupa import lua51

    from redis_orchestrator.analysis.lexer import LuaSyntaxError
    from redis_orchestrator.analysis.syntax import parse

    lua_ok = lua51.LuaRuntime().eval("function(s) return loadstring(s) ~= nil end")(source)
    try:
        parse(source)
        ours = True
    except LuaSyntaxError:
        ours = False
    assert ours == lua_ok == (source in VALID_SNIPPETS)


# ---------------------------------------------------------------------------------------- slot facts


@pytest.mark.parametrize(
    ("shape", "hashed", "keys_index", "blocker"),
    [
        ((Pat("{<q>}:wait", "KEYS[1]"), Lit(":"), Hole("ARGV[2]")), "<q>", -1, ""),
        ((Hole("KEYS[1]", key_index=1), Lit(":job")), None, 1, ""),
        ((Lit("copy:"), Hole("KEYS[2]", key_index=2)), None, 2, ""),  # a brace-free prefix keeps KEYS[2]'s tag
        ((Lit("{x"), Hole("KEYS[2]", key_index=2)), None, -1, "KEYS[2]"),  # it may close the tag: unknown
        ((Lit("user:"), Hole("ARGV[1]")), None, -1, "ARGV[1]"),
        ((Lit("foo{}{bar}"),), "foo{}{bar}", -1, ""),  # empty tag: the whole key
        ((Lit("n:"), Hole("a number", brace_free=True)), "n:\x00", -1, ""),
        ((Lit("{"), Hole("a number", brace_free=True), Lit("}:x")), "\x00", -1, ""),
    ],
)
def test_slot_fact(shape: tuple[object, ...], hashed: str | None, keys_index: int, blocker: str) -> None:
    fact = slot_fact(shape)  # type: ignore[arg-type]
    assert (fact.hashed, fact.keys_index, fact.blocker) == (hashed, keys_index, blocker)


def test_declared_patterns() -> None:
    declared = read_declared(["{<q>}:wait", "{<q>}:active"], ["{<q>}:job:", "ARGV[3][2]['parent'] = {<q>}:p"])
    assert declared.argv_pattern("ARGV[1]") == "{<q>}:job:"
    assert declared.argv_pattern("ARGV[3][2].parent") == "{<q>}:p"
    assert declared.slot_owner("<q>") == 1 and declared.slot_owner("<other>") is None
    assert declared.shared_tag() == "<q>"
    assert read_declared(["a:{x}", "b:{y}"], []).shared_tag() is None
    assert same_slot("foo", "{foo}") and not same_slot("<a>", "<b>") and same_slot("bar", "bar")
    bad = read_declared([], ["ARGV[x] = y", "ARGV[0] = z"])
    assert len(bad.problems) == 2 and bad.argv == ()


def test_union_drops_nil_and_empty_sentinels() -> None:
    key = Val("key", "KEYS[1]")
    assert union([NIL, key]) == key
    assert union([Val("literal", literal=""), key]) == key
    either = union([key, Val("argv", "ARGV[1]")])
    assert either.kind == "either" and len(either.alts) == 2


def test_loop_appends_make_a_cycle() -> None:
    before = Tab()
    after = Tab(items=(Val("key", "KEYS[i]"), Val("argv", "ARGV[i]")))
    joined = join_tabs(before, after)
    assert joined.items == () and joined.cycle == after.items and joined.more is None


# ---------------------------------------------------------------------------------------- suggestions


def test_documented_names_from_header_comments() -> None:
    text = (
        "--[[\n  KEYS[1] 'wait',\n  KEYS[2] -> lock key\n  KEYS[3]: the journal stream (xadd)\n]]\n"
        "-- ARGV[1] key prefix\nlocal x = 1 -- KEYS[4] is not a header\n"
    )
    names = documented_names(text)
    assert names["KEYS[1]"] == "wait" and names["KEYS[2]"] == "lock" and names["KEYS[3]"] == "journal-stream"
    assert names["ARGV[1]"] == "prefix"


def test_suggest_keys_from_comments_locals_and_fallbacks(analyzer: Analyzer) -> None:
    source = b"-- KEYS[1] 'jobs'\nlocal activeKey = KEYS[2]\nredis.call('DEL', KEYS[3] .. ':x', KEYS[1], activeKey)\n"
    usage = analyzer.examine(source).usage
    suggestion = suggest_keys(source, usage)
    assert suggestion is not None
    assert suggestion.keys == ("{<tag>}:jobs", "{<tag>}:active", "{<tag>}:k3")
    assert suggestion.yaml_lines("  ") == ['  keys: ["{<tag>}:jobs", "{<tag>}:active", "{<tag>}:k3"]']
    one_key = b"return redis.call('GET', KEYS[1])\n"
    assert suggest_keys(one_key, analyzer.examine(one_key).usage) is None  # nothing to verify
    prefixed = b"return redis.call('GET', ARGV[1] .. ':x', KEYS[1])\n"
    [argv] = suggest_keys(prefixed, analyzer.examine(prefixed).usage).argv  # type: ignore[union-attr]
    assert argv == "ARGV[1] = {<tag>}:<prefix>"


def test_same_slot_severity_is_configurable(analyzer: Analyzer) -> None:
    src = b"redis.call('SET', KEYS[1] .. ':copy', 1)\n"
    [note] = analyzer.analyze(src, script="s", file="s.lua", key_patterns=["{<a>}:x"])
    assert (note.code, note.severity) == ("same-slot-undeclared", "info")
    loud = Analyzer(analyzer.keyspecs, same_slot_severity="warning")
    [warning] = loud.analyze(src, script="s", file="s.lua", key_patterns=["{<a>}:x"])
    assert warning.severity == "warning"
    with pytest.raises(ValueError, match="same_slot_severity"):
        Analyzer(analyzer.keyspecs, same_slot_severity="loud")


def test_helper_finding_is_reported_once_with_its_call_chains(analyzer: Analyzer) -> None:
    src = (
        "local function del(k) return redis.call('DEL', k) end\n"
        "local function twice(a, b) del(a) del(b) end\n"
        "twice(KEYS[1], 'x:' .. ARGV[1])\n"
        "twice('y:' .. ARGV[2], KEYS[2])\n"
        "del(KEYS[3])\n"
    )
    [f] = analyze(analyzer, src)
    assert f.line == 1 and f.severity == "error"
    assert "twice() called at line 3 → del() called at line 2" in f.message
    assert "twice() called at line 4 → del() called at line 2" in f.message


# ---------------------------------------------------------------------------------------- severity = proof


def test_a_fixed_key_is_an_error_naming_its_slot(analyzer: Analyzer) -> None:
    [f] = analyze(analyzer, "redis.call('GET', KEYS[1])\nreturn redis.call('INCR', 'stats:hits')\n")
    assert (f.severity, f.line) == ("error", 2)
    assert f"always in slot {key_slot('stats:hits')}" in f.message and "non local key" in f.message


def test_a_key_mixing_fixed_text_and_a_value_shows_two_keys_in_two_slots(analyzer: Analyzer) -> None:
    [f] = analyze(analyzer, "redis.call('GET', KEYS[1])\nreturn redis.call('SET', 'lock:' .. ARGV[1], 1)\n")
    assert f.severity == "error"
    witnesses = re.findall(r"'(lock:[^']*)' is in slot (\d+)", f.message)
    assert len(witnesses) == 2 and witnesses[0][1] != witnesses[1][1]
    assert all(key_slot(key) == int(slot) for key, slot in witnesses)  # the slots shown are the real ones


@pytest.mark.parametrize(
    ("key", "declaration"),
    [
        ("ARGV[1] .. ':job'", 'argv: ["ARGV[1] = {<tag>}:<prefix>"]'),  # a prefix the caller passes
        ("ARGV[2]", 'argv: ["ARGV[2] = {<tag>}:<name>"]'),  # a whole key the caller passes
        ("cjson.decode(ARGV[1]).queue .. ':wait'", 'argv: ["ARGV[1].queue = {<tag>}:<prefix>"]'),  # packed
        ("'{' .. ARGV[1] .. '}:stats'", 'argv: ["ARGV[1] = <tag>"]'),  # the tag the script writes around it
        ("redis.call('HGET', KEYS[1], 'parent') .. ':deps'", 'stored: ["{<tag>}:<name>"]'),  # read back
        ("KEYS[1] .. ':seen'", 'keys: ["{<tag>}:k1"]'),
        ("KEYS[1]:gsub(':wait$', ':lock')", 'keys: ["{<tag>}:k1"]'),  # a cut that may keep the tag
    ],
)
def test_a_value_that_may_carry_the_shared_tag_is_a_warning_naming_its_declaration(
    analyzer: Analyzer, key: str, declaration: str
) -> None:
    source = f"redis.call('GET', KEYS[1])\nreturn redis.call('SET', {key}, 1)\n"
    [f] = [f for f in analyze(analyzer, source) if f.line == 2]
    assert (f.code, f.severity) == ("undeclared-key", "warning"), f.message
    assert declaration in f.declare.splitlines(), f.declare


def test_the_declaration_turns_a_warning_into_nothing_or_an_error(analyzer: Analyzer) -> None:
    source = "redis.call('GET', KEYS[1])\nreturn redis.call('SET', ARGV[1] .. 'job', 1)\n"
    [same] = analyze(analyzer, source, key_patterns=["{<q>}:wait"], argv_patterns=["{<q>}:"])
    assert (same.code, same.severity) == ("same-slot-undeclared", "info")
    [other] = analyze(analyzer, source, key_patterns=["{<q>}:wait"], argv_patterns=["{<other>}:"])
    assert (other.code, other.severity) == ("undeclared-key", "error")
    stored = "local parent = redis.call('HGET', KEYS[1], 'p')\nreturn redis.call('DEL', parent .. ':deps')\n"
    inline = '-- redis-orchestrator: stored: ["{<q>}:job:<id>"]\n' + stored
    [note] = analyze(analyzer, inline, key_patterns=["{<q>}:wait"])
    assert (note.line, note.severity) == (3, "info")
    untagged = '-- redis-orchestrator: stored: ["job:<id>"]\n' + stored
    [error] = analyze(analyzer, untagged, key_patterns=["{<q>}:wait"])
    assert (error.line, error.severity) == (3, "error")


def test_keys_the_script_fixes_in_two_slots_are_errors(analyzer: Analyzer) -> None:
    source = "redis.call('GET', KEYS[1])\nredis.call('SET', '{timers}:a', 1)\nreturn redis.call('SET', '{jobs}:b', 1)\n"
    assert {(f.line, f.severity) for f in analyze(analyzer, source)} == {(2, "error"), (3, "error")}
    one_tag = source.replace("{jobs}", "{timers}")
    assert {(f.line, f.severity) for f in analyze(analyzer, one_tag)} == {(2, "warning"), (3, "warning")}


def test_a_script_that_reads_no_keys_runs_anywhere(analyzer: Analyzer) -> None:
    [f] = analyze(analyzer, "return redis.call('SET', ARGV[1] .. ':x', 1)\n")
    assert f.severity == "error" and "reads no KEYS" in f.message and "random slot" in f.message
    documented = "-- KEYS[1] routes the call to the queue's node\nreturn redis.call('SET', ARGV[1] .. ':x', 1)\n"
    assert [g.severity for g in analyze(analyzer, documented)] == ["warning"]


# ---------------------------------------------------------------------------------------- the misses


def test_a_helper_reached_recursively_with_a_value_is_analysed_with_it(analyzer: Analyzer) -> None:
    source = (
        "local function expire(key, child)\n"
        "  if child then key = 'node:' .. child end\n"
        "  redis.call('EXPIRE', key, 60)\n"
        "  for _, c in ipairs(redis.call('SMEMBERS', KEYS[1])) do expire(key, c) end\n"
        "end\n"
        "expire(KEYS[1])\n"
    )
    [f] = analyze(analyzer, source)
    assert (f.line, f.severity) == (3, "error")
    assert "expire() called at line 6 → expire() called at line 4" in f.message


def test_mutual_recursion_is_followed_too(analyzer: Analyzer) -> None:
    source = (
        "local visit\n"
        "local function each(key)\n"
        "  for _, c in ipairs(redis.call('SMEMBERS', key)) do visit(c) end\n"
        "end\n"
        "visit = function(key) redis.call('DEL', key) each(key) end\n"
        "visit(KEYS[1])\n"
    )
    lines = {f.line for f in analyze(analyzer, source)}
    assert 5 in lines  # DEL of a member read back, reached through each() -> visit()


def test_names_scan_listed_spread_over_one_command_fail_at_their_use(analyzer: Analyzer) -> None:
    source = "local r = redis.call('SCAN', 0, 'MATCH', 'rl:*')\nif #r[2] > 0 then redis.call('DEL', unpack(r[2])) end\n"
    findings = analyze(analyzer, source)
    assert [(f.line, f.code, f.severity) for f in findings] == [
        (1, "enumeration", "warning"),
        (2, "undeclared-key", "error"),
    ]
    assert "never fails" not in findings[1].message and "don't hash to the same slot" in findings[1].message
    one_by_one = (
        "local r = redis.call('SCAN', 0, 'MATCH', 'rl:*')\nfor _, k in ipairs(r[2]) do redis.call('DEL', k) end\n"
    )
    assert [f.code for f in analyze(analyzer, one_by_one)] == ["enumeration"]  # one key of this node: works
    own_prefix = source.replace("'rl:*'", "KEYS[1] .. ':*'")
    assert [f.severity for f in analyze(analyzer, own_prefix) if f.code == "undeclared-key"] == ["warning"]


def test_a_command_chosen_between_literals_is_checked_as_each(analyzer: Analyzer) -> None:
    source = "local c = ARGV[1] == 'up' and 'INCRBY' or 'DECRBY'\nreturn redis.call(c, 'n:' .. ARGV[2], 1)\n"
    assert [(f.line, f.code) for f in analyze(analyzer, source)] == [(2, "undeclared-key")]


# ---------------------------------------------------------------------------------------- directives, portability


def test_inline_declarations_apply_where_the_entry_declares_nothing(analyzer: Analyzer) -> None:
    source = (
        '-- redis-orchestrator: keys: ["{<q>}:wait"]\n'
        '-- redis-orchestrator: argv: ["ARGV[1] = {<q>}:"]\n'
        "redis.call('GET', KEYS[1])\nreturn redis.call('SET', ARGV[1] .. 'x', 1)\n"
    )
    assert [f.severity for f in analyze(analyzer, source)] == ["info"]
    # The catalog entry's own patterns win over the script's.
    [f] = analyze(analyzer, source, argv_patterns=["{<other>}:"])
    assert f.severity == "error"


def test_a_suppression_in_a_string_is_data(analyzer: Analyzer) -> None:
    source = (
        "redis.call('GET', KEYS[1])\nreturn redis.call('SET', 'x', '-- redis-orchestrator: ignore undeclared-key')\n"
    )
    assert [f.code for f in analyze(analyzer, source)] == ["undeclared-key"]


def test_server_call_is_flagged_when_scripts_may_run_on_redis(analyzer: Analyzer) -> None:
    source = "return server.call('GET', KEYS[1])\n"
    [f] = analyze(analyzer, source)
    assert (f.code, f.severity) == ("portability", "error") and "Valkey >= 8" in f.message
    assert (
        Analyzer(analyzer.keyspecs, servers=frozenset({"valkey"})).analyze(source.encode(), script="s", file="s") == []
    )
    [clock] = analyze(analyzer, "local t = os.clock()\nreturn redis.call('GET', KEYS[1])\n")
    assert (clock.code, clock.severity) == ("portability", "warning")
    # The calls behind the alias are checked all the same.
    assert "undeclared-key" in {f.code for f in analyze(analyzer, "return server.call('GET', 'x')\n")}


def test_keyslot_suggestions_say_what_a_tag_groups() -> None:
    [family, split] = suggest_hash_tags(["user:{42}:a", "user:{43}:b"])
    assert "different entities (42, 43)" in family and "whole 'user' family" in family and "hot spot" in family
    assert "one call per slot" in split
    [entity] = suggest_hash_tags(["user:42:a", "user:42:b"])
    assert "{user:42}:a" in entity and "one entity (42)" in entity and "narrowest" in entity


def test_a_script_that_does_not_parse_reports_no_unused_suppression(analyzer: Analyzer) -> None:
    source = "local x = = 1 -- redis-orchestrator: ignore undeclared-key  the prefix has the tag\n"
    assert [f.code for f in analyze(analyzer, source)] == ["syntax"]
