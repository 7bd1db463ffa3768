"""Generated input (hypothesis) for everything that reads what people write: the config loader, the
catalog's files, the client's manifest, the Lua lexer, parser and analyzer, and `keyslot`. Each must
answer every input with a value or its own typed error naming a place, never crash, never hang.

Two profiles, chosen by REDIS_ORCHESTRATOR_HYPOTHESIS:
- `ci` (the default): a few hundred inputs per reader, seconds in all, no example database written;
- `long`: thousands per reader, with hypothesis' database in .hypothesis/ so a failure found
  overnight replays first on the next run:

    REDIS_ORCHESTRATOR_HYPOTHESIS=long .venv/bin/pytest -p no:cacheprovider -q tests/test_generated_input.py

The time bound per input is hypothesis' deadline (2 s: every input here is small, so only a reader
that blows up on some shape reaches it), not a measure of speed.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from redis_orchestrator.analysis.analyzer import Analyzer
from redis_orchestrator.analysis.lexer import LineMap, LuaSyntaxError, tokenize
from redis_orchestrator.analysis.slots import key_slot, keyslot_report
from redis_orchestrator.analysis.syntax import parse
from redis_orchestrator.catalog.files import FileReads
from redis_orchestrator.catalog.model import CatalogSpec, Kind, ScriptSpec, load_catalog, sha1_hex
from redis_orchestrator.client import ManifestError, load_manifest
from redis_orchestrator.client.manifest import parse_json
from redis_orchestrator.config.loader import load_config, parse_config
from redis_orchestrator.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

_PROFILES = {
    "ci": settings(
        max_examples=150,
        deadline=timedelta(seconds=2),
        database=None,
        derandomize=True,  # the same inputs on every CI run: a failure there is never luck
        suppress_health_check=[HealthCheck.too_slow],
    ),
    "long": settings(
        max_examples=5000,
        deadline=timedelta(seconds=2),
        suppress_health_check=[HealthCheck.too_slow],
    ),
}
PROFILE = _PROFILES[os.environ.get("REDIS_ORCHESTRATOR_HYPOTHESIS", "ci")]
pytestmark = pytest.mark.timeout(600)


def mutations(text: str) -> st.SearchStrategy[str]:
    """`text` with a few characters deleted, inserted or replaced: the careless edit."""
    alphabet = st.sampled_from(
        [*"{}[]:,-'\"&*!|>#?~\n \t\\\x00\u2028é{<>}=.()%;", "  ", "\n- ", ": ", "&a ", "*a", "? ", "!!str ", "1: "]
    )

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        out = text
        for _ in range(draw(st.integers(1, 6))):
            at = draw(st.integers(0, len(out)))
            action = draw(st.sampled_from(["delete", "insert", "replace"]))
            piece = draw(alphabet)
            if action == "delete":
                out = out[:at] + out[at + draw(st.integers(1, 20)) :]
            elif action == "insert":
                out = out[:at] + piece + out[at:]
            else:
                out = out[:at] + piece + out[at + 1 :]
        return out

    return mutate()


# ---------------------------------------------------------------------- the config loader


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample catalog's files, and a few bad ones the generated configs may name."""
    directory = tmp_path_factory.mktemp("generated")
    for source in (EXAMPLES / "lua").rglob("*.lua"):
        target = directory / source.relative_to(EXAMPLES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    (directory / "empty.lua").write_text(" \n")
    (directory / "latin1.lua").write_bytes(b"return '\xe9'\n")
    (directory / "lib.lua").write_text("#!lua name=lib\nredis.register_function('f', function() return 1 end)\n")
    os.mkfifo(directory / "fifo.lua")
    (directory / "dir.lua").mkdir()
    return directory


def _placed(problem: str, path: Path) -> bool:
    """A problem names its place: the file (with line and column when it has some) or the command line."""
    return problem.startswith(str(path)) or problem.startswith("--") or f"config file {path}" in problem


def check_config(text: str, directory: Path) -> None:
    path = directory / "config.yaml"
    try:
        config = parse_config(text, path, environ={"PW": "x"})
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert _placed(problem, path), problem
            assert len(problem) < 2000, problem[:200]
        return
    assert config.catalog.version  # accepted: a whole config, every entry with its bytes
    assert all(s.source for s in config.catalog.entries)


SAMPLE_CONFIG = (EXAMPLES / "config.yaml").read_text()


@PROFILE
@given(text=mutations(SAMPLE_CONFIG))
def test_the_config_loader_answers_every_careless_edit(workdir: Path, text: str) -> None:
    check_config(text, workdir)


@PROFILE
@given(text=st.text(max_size=400))
@example(text="?")  # found by the long profile: a null key (`? `) crashed the unknown-key message
def test_the_config_loader_answers_any_text(workdir: Path, text: str) -> None:
    check_config(text, workdir)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["1s", "500ms", "-1s", "0", "cluster", "sentinel", "127.0.0.1:1", "a:b@c:1", "none", "error"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FILES = st.sampled_from(
    ["lua/ledger/transfer.lua", "empty.lua", "latin1.lua", "lib.lua", "fifo.lua", "dir.lua", "nowhere.lua", ""]
)


@st.composite
def configs(draw: st.DrawFn) -> str:
    """Configs shaped like the schema, with any value where a value goes: every check gets reached."""
    sections = {
        "redis": ["mode", "seeds", "service_name", "username", "password_env", "password_file", "tls", "timeout"],
        "daemon": ["reconcile_interval", "topology_interval", "down_poll_interval", "watch_config"],
        "metrics": ["enabled", "listen"],
        "slow_scripts": ["enabled", "poll_interval", "warn_ratio", "kill"],
        "analysis": ["enabled", "block_on"],
        "leader": ["enabled", "key", "lease"],
    }
    data: dict[str, Any] = {}
    for section, keys in sections.items():
        if draw(st.booleans()):
            data[section] = {k: draw(_VALUES) for k in draw(st.lists(st.sampled_from(keys), max_size=3))}
    entry = st.fixed_dictionaries(
        {"name": st.text(max_size=6) | st.sampled_from(["a", "b"]), "version": _SCALARS, "file": _FILES},
        optional={
            "kind": st.sampled_from(["script", "function", "other"]),
            "keys": _VALUES,
            "current": _SCALARS,
            "keep": _SCALARS,
            "versions": st.lists(st.fixed_dictionaries({"version": _SCALARS, "file": _FILES}), max_size=3),
        },
    )
    data["catalog"] = {"version": draw(_SCALARS), "scripts": draw(st.lists(entry, max_size=4))}
    return yaml.safe_dump(data)


@PROFILE
@given(text=configs())
def test_the_config_loader_answers_any_config_shaped_input(workdir: Path, text: str) -> None:
    check_config(text, workdir)


def test_an_unreadable_config_file_is_a_config_error(workdir: Path) -> None:
    for name in ("fifo.lua", "dir.lua", "latin1.lua", "nowhere.yaml"):
        with pytest.raises(ConfigError) as info:
            load_config(workdir / name)
        assert all(_placed(p, workdir / name) for p in info.value.problems), info.value.problems


# ---------------------------------------------------------------------- the catalog's files


@PROFILE
@given(body=st.binary(max_size=300), kind=st.sampled_from(list(Kind)))
def test_the_catalog_reader_answers_any_bytes(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, kind: Kind
) -> None:
    directory = tmp_path_factory.mktemp("bytes", numbered=True)
    (directory / "x.lua").write_bytes(body)
    where = ("catalog", "scripts", 0)
    spec = CatalogSpec("1", (ScriptSpec("x", "1", kind, "x.lua", directory / "x.lua", where),))
    catalog, problems = load_catalog(spec, FileReads())
    if problems:
        assert all(p.where[:3] == where for p in problems) and not catalog.entries
    else:
        (script,) = catalog.entries
        assert script.sha == sha1_hex(body) and script.source == body


# ---------------------------------------------------------------------- the manifest


def _valid_manifest() -> dict[str, Any]:
    return json.loads(json.dumps(load_config(EXAMPLES / "config.yaml").catalog.manifest()))


VALID_MANIFEST = _valid_manifest()
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*here, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*here, index))
    return found


@st.composite
def broken_manifests(draw: st.DrawFn) -> dict[str, Any]:
    """The sample catalog's manifest with a few of its values replaced by anything JSON holds."""
    data = json.loads(json.dumps(VALID_MANIFEST))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = draw(_JSON)
    return data


_MANIFEST_PLACES = ("scripts.", "`scripts`", "not JSON: ", "not a manifest", "the manifest")


def check_manifest(read: Callable[[], object]) -> None:
    try:
        manifest = read()
    except ManifestError as exc:
        assert exc.problems
        for problem in exc.problems:  # each names its place (scripts.<name>...), or the whole manifest
            assert problem.startswith(_MANIFEST_PLACES), problem
        return
    for name in manifest.names:  # type: ignore[attr-defined]
        target = manifest.resolve(name)  # type: ignore[attr-defined]
        assert re.fullmatch(r"[0-9a-f]{40}", target.version.sha)
    shas = [v.sha for e in manifest.entries.values() for v in e.versions.values()]  # type: ignore[attr-defined]
    assert len(shas) == len(set(shas))  # distinct entries, distinct scripts


@PROFILE
@given(data=broken_manifests())
def test_the_manifest_reader_answers_every_broken_shape(data: dict[str, Any]) -> None:
    check_manifest(lambda: load_manifest(data))
    check_manifest(lambda: parse_json(json.dumps(data), "manifest"))


@PROFILE
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b"{" + b))
def test_the_manifest_reader_answers_any_text(text: str | bytes) -> None:
    check_manifest(lambda: parse_json(text, "manifest"))


@PROFILE
@given(text=mutations(json.dumps(VALID_MANIFEST)[:3000]))
def test_the_manifest_reader_answers_every_careless_edit(text: str) -> None:
    check_manifest(lambda: parse_json(text, "manifest"))


# ---------------------------------------------------------------------- Lua: lexer, parser, analyzer

_LUA_WORDS = (
    "local function end if then else elseif for in do while repeat until return break and or not nil "
    "true false redis.call redis.pcall KEYS[1] ARGV[1] KEYS ARGV ( ) [ ] { } , ; = == ~= .. ... . : # "
    "+ - * / % ^ < > 'GET' 'SET' \"DEL\" 'x' [[long]] [==[s]==] --c --[[c]] 0x1F 1e9 3.5 .5 x y t f "
    "cjson.encode unpack string.format table.insert setmetatable pcall error tostring @ ! ` $ \\"
)
LUA_TOKENS = [*_LUA_WORDS.split(" "), "\n"]
LUA_SCRIPTS = [p.read_text() for p in sorted((EXAMPLES / "lua").rglob("*.lua"))]
lua_sources = (
    st.lists(st.sampled_from(LUA_TOKENS), max_size=60).map(" ".join)
    | st.text(max_size=200)
    | st.sampled_from(LUA_SCRIPTS).flatmap(lambda s: mutations(s[:2000]))
)


@PROFILE
@given(source=lua_sources)
def test_the_lua_lexer_and_parser_answer_any_text(source: str) -> None:
    for step in (tokenize, parse):
        try:
            step(source)
        except LuaSyntaxError as exc:
            assert 0 <= exc.pos <= len(source), (exc.pos, len(source))
            line, column = LineMap(source).position(exc.pos)
            assert line >= 1 and column >= 1


_ANALYZER: list[Analyzer] = []


def analyzer() -> Analyzer:
    if not _ANALYZER:
        _ANALYZER.append(Analyzer())
    return _ANALYZER[0]


@PROFILE
@given(
    source=lua_sources,
    kind=st.sampled_from(["script", "function"]),
    keys=st.lists(st.sampled_from(["{a}:<x>", "<k>", "{<q>}:wait", "b", "{}x", "<"]), max_size=3),
)
@example(source="\x80", kind="script", keys=[])  # found: Lua's message cut a UTF-8 character, lupa raised
def test_the_analyzer_answers_any_script_with_findings(source: str, kind: str, keys: list[str]) -> None:
    findings = analyzer().analyze(
        source.encode("utf-8", "surrogatepass"), script="x", file="x.lua", kind=kind, key_patterns=keys
    )
    lines = source.count("\n") + 1
    for finding in findings:
        assert 1 <= finding.line <= lines + 1 and finding.column >= 1, finding
        assert finding.code and finding.message


# ---------------------------------------------------------------------- keyslot


# Keys from the command line may hold bytes that are not UTF-8: Python keeps each as a lone surrogate
# in U+DC80..U+DCFF (surrogateescape), and only those.
_ESCAPED_BYTES = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF, categories=["Cs"])
_KEYS = st.text(max_size=30) | st.text(st.characters(codec="utf-8") | _ESCAPED_BYTES, max_size=10)


@PROFILE
@given(keys=st.lists(_KEYS, min_size=1, max_size=5))
@example(keys=["\udcff"])  # found: `keyslot $'\xff'` crashed (UnicodeEncodeError)
def test_keyslot_answers_any_keys(keys: list[str]) -> None:
    report = keyslot_report(keys)
    assert [e.slot for e in report.entries] == [key_slot(k) for k in keys]
    assert all(0 <= e.slot < 16384 for e in report.entries)
    assert report.to_text() and json.dumps(report.to_dict())
    if len(set(report.slots)) > 1:
        assert report.suggestions  # keys in several slots always come with a way out


def test_keyslot_hashes_undecodable_bytes_as_redis_does() -> None:
    # `redis-orchestrator keyslot $'\xff'`: argv keeps the byte as a lone surrogate (and crashed).
    assert key_slot(os.fsdecode(b"\xff")) == key_slot(b"\xff")
    random.seed(0)
    for _ in range(100):
        raw = bytes(random.randrange(256) for _ in range(random.randrange(1, 12)))
        assert key_slot(os.fsdecode(raw)) == key_slot(raw)
