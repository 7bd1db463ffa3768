"""The client's pure parts, no Redis: manifest reading, name resolution, key patterns, slot checks, the
replies of MULTI/EXEC and SCRIPT EXISTS, backoff, counters and their Prometheus export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from prometheus_client import CollectorRegistry

from redis_orchestrator.catalog.model import registered_function_flags
from redis_orchestrator.client import (
    Backoff,
    Counters,
    CrossSlotError,
    Event,
    KeyPatternError,
    ManifestError,
    ScriptError,
    Scripts,
    UnknownScript,
    load_manifest,
)
from redis_orchestrator.client.base import redirect_target
from redis_orchestrator.client.batches import ExecOutcome, Presence, RepairPlan
from redis_orchestrator.client.calls import Call, Options, Policy, prepare
from redis_orchestrator.client.errors import ScriptBusy, translate
from redis_orchestrator.client.keys import KeyPatterns, slot_of
from redis_orchestrator.config.loader import load_config

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "examples" / "config.yaml"


@pytest.fixture(scope="module")
def manifest_json() -> dict[str, Any]:
    data = load_config(CONFIG).catalog.manifest()
    return json.loads(json.dumps(data))  # exactly what the daemon writes and the CLI prints


def test_manifest_from_the_catalog_calls_evalsha_ro_for_no_writes(manifest_json: dict[str, Any]) -> None:
    manifest = load_manifest(manifest_json)
    assert manifest.resolve("transfer").command == "EVALSHA"
    assert manifest.resolve("counter_get").command == "EVALSHA_RO"
    assert manifest.resolve("balances").command == "EVALSHA_RO"
    assert manifest.resolve("orchestrator_lib.counter_get").command == "FCALL_RO"
    assert manifest.resolve("orchestrator_lib.capped_incr_fn").command == "FCALL"
    assert manifest.resolve("capped_incr_fn").label == "orchestrator_lib.capped_incr_fn@1"  # bare: unique
    # The script named counter_get wins over the function of the same name.
    assert manifest.resolve("counter_get").function is None
    transfer = manifest.resolve("transfer").version
    assert transfer.source is not None and hashlib.sha1(transfer.source).hexdigest() == transfer.sha


def test_unknown_names_list_the_catalog(manifest_json: dict[str, Any]) -> None:
    manifest = load_manifest(manifest_json)
    with pytest.raises(UnknownScript) as exc:
        manifest.resolve("tranfser")
    assert "transfer" in str(exc.value) and "orchestrator_lib.counter_get" in str(exc.value)
    with pytest.raises(UnknownScript, match="function library"):
        manifest.resolve("orchestrator_lib")
    with pytest.raises(UnknownScript, match="no live version '9'"):
        manifest.resolve("transfer", version=9)


def test_manifest_problems_are_all_reported(manifest_json: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(manifest_json))
    broken["scripts"]["transfer"]["versions"]["1"]["source"] += "-- edited\n"
    broken["scripts"]["capped_incr"]["current"] = "7"
    broken["scripts"]["fixed_window"]["versions"]["1"]["sha"] = "nope"
    with pytest.raises(ManifestError) as exc:
        load_manifest(broken)
    text = str(exc.value)
    assert "3 problem(s)" in text
    assert "scripts.transfer.versions.1.source: its SHA1 is not" in text
    assert "scripts.capped_incr.current" in text
    assert "scripts.fixed_window.versions.1.sha" in text
    with pytest.raises(ManifestError, match="not JSON"):
        load_manifest(b"{nope")


def test_an_older_manifest_without_flags_keys_or_source(manifest_json: dict[str, Any]) -> None:
    old = json.loads(json.dumps(manifest_json))
    for entry in old["scripts"].values():
        for version in entry["versions"].values():
            for field in ("flags", "keys", "source", "function_flags"):
                version.pop(field, None)
    manifest = load_manifest(old)
    assert manifest.resolve("counter_get").command == "EVALSHA"  # no flags known: the safe default
    assert manifest.resolve("transfer").version.keys == tuple(manifest_json["scripts"]["transfer"]["keys"])
    assert manifest.resolve("orchestrator_lib.counter_get").command == "FCALL"
    # With the source but no flags: the shebang is read.
    for entry in old["scripts"].values():
        for label, version in entry["versions"].items():
            version["source"] = manifest_json["scripts"][entry_name(old, entry)]["versions"][label]["source"]
    assert load_manifest(old).resolve("counter_get").command == "EVALSHA_RO"


def entry_name(manifest: dict[str, Any], entry: dict[str, Any]) -> str:
    return next(name for name, e in manifest["scripts"].items() if e is entry)


def test_registered_function_flags_both_forms() -> None:
    source = b"""#!lua name=lib
redis.register_function('plain', function(keys, args) return 1 end)
redis.register_function{function_name='ro', callback=function(keys, args) return {1} end,
  flags={'no-writes', "allow-stale"}, description='reads {braces} in text'}
redis.register_function{
  function_name = 'rw', callback = function(keys, args) return 2 end }
"""
    assert registered_function_flags(source) == {"plain": (), "ro": ("allow-stale", "no-writes"), "rw": ()}


def test_manifest_from_path_and_text(tmp_path: Path, manifest_json: dict[str, Any]) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest_json))
    assert load_manifest(path).names == load_manifest(json.dumps(manifest_json)).names
    with pytest.raises(ManifestError, match="redis-orchestrator manifest"):
        load_manifest(tmp_path / "missing.json")
    scripts = Scripts.from_manifest(path)
    with pytest.raises(TypeError, match="no client"):
        scripts.run("counter_get", keys=["{quota}:x"])


# ------------------------------------------------------------------------------------------ keys


def test_slots() -> None:
    assert slot_of(["{ledger}:acct:a", "{ledger}:acct:b"], "t") == slot_of(["ledger"], "t")
    assert slot_of([], "t") is None
    with pytest.raises(CrossSlotError) as exc:
        slot_of(["{a}:x", "{b}:y"], "transfer@1")
    assert "nothing was sent" in str(exc.value) and exc.value.slots == {"{a}:x": 15495, "{b}:y": 3300}


@pytest.mark.parametrize(
    ("keys", "ok"),
    [
        (["{ledger}:acct:a", "{ledger}:acct:b"], True),
        (["{ledger}:acct:a", "{ledger}:acct:b", "{ledger}:xfer:t1"], True),
        (["{ledger}:acct:a:b", "{ledger}:acct:c"], True),  # a placeholder outside a tag may hold ':'
        (["{ledger}:acct:", "{ledger}:acct:b"], False),  # empty placeholder
        (["{ledger}:acct:a", "{ledger}:xfer:b"], False),
        (["{other}:acct:a", "{ledger}:acct:b"], False),
        (["{ledger}:acct:a", "{ledger}:acct:b", "{ledger}:xfer:t1", "{ledger}:xfer:t2"], True),  # last repeats
    ],
)
def test_transfer_patterns(keys: list[str], ok: bool) -> None:
    patterns = KeyPatterns("transfer@1", ("{ledger}:acct:<from>", "{ledger}:acct:<to>", "{ledger}:xfer:<transfer_id>"))
    if ok:
        patterns.check(keys)
    else:
        with pytest.raises(KeyPatternError):
            patterns.check(keys)


def test_same_placeholder_same_value_and_no_braces_inside_a_tag() -> None:
    patterns = KeyPatterns("rlc@1", ("{events:<id>}:count", "{events:<id>}:window"))
    patterns.check(["{events:42}:count", "{events:42}:window"])
    with pytest.raises(KeyPatternError, match="<id> is '43' in KEYS\\[2\\] but '42' in KEYS\\[1\\]"):
        patterns.check(["{events:42}:count", "{events:43}:window"])
    with pytest.raises(KeyPatternError):
        patterns.check(["{events:4}2}:count"])
    KeyPatterns("balances@1", ("{ledger}:acct:<id>",)).check(["{ledger}:acct:a", "{ledger}:acct:b"])


def test_prepare_checks_before_sending(manifest_json: dict[str, Any]) -> None:
    manifest = load_manifest(manifest_json)
    call = prepare(manifest, Options(), "transfer", ["{ledger}:acct:a", "{ledger}:acct:b"], [5], None)
    assert call.command[0] == "EVALSHA" and call.command[2:] == (2, "{ledger}:acct:a", "{ledger}:acct:b", 5)
    with pytest.raises(KeyPatternError):
        prepare(manifest, Options(), "transfer", ["a", "b"], [5], None)
    with pytest.raises(CrossSlotError):
        prepare(manifest, Options(check_keys=False), "transfer", ["a", "b"], [5], None)
    unchecked = prepare(manifest, Options(check_keys=False, check_slots=False), "transfer", ["a", "b"], [5], None)
    assert unchecked.slot == 15495  # routed by the first key; the server judges the rest


# ------------------------------------------------------------------------------------------ replies


def test_translate_script_errors() -> None:
    error = translate(redis.exceptions.ResponseError("INSUFFICIENT_FUNDS balance 5 < amount 9"), "transfer@1")
    assert isinstance(error, ScriptError) and isinstance(error, redis.exceptions.ResponseError)
    assert error.code == "INSUFFICIENT_FUNDS" and "transfer@1" in str(error)
    busy = translate(redis.exceptions.ResponseError("BUSY Redis is busy running a script."), "x@1")
    assert isinstance(busy, ScriptBusy) and "SCRIPT KILL" in str(busy)
    moved = redis.exceptions.MovedError("3999 127.0.0.1:6381")
    assert translate(moved, "x@1") is moved


def test_exec_outcomes() -> None:
    committed = ExecOutcome.read([b"OK", b"QUEUED", b"QUEUED", [1, b"x"]])
    assert committed.replies == [1, b"x"] and not committed.conflict
    assert ExecOutcome.read([b"OK", b"QUEUED", None]).conflict
    unknown = redis.exceptions.ResponseError("ERR unknown command 'NOPE'")
    aborted = ExecOutcome.read([b"OK", unknown, redis.exceptions.ExecAbortError("EXECABORT ...")])
    assert aborted.replies is None and aborted.queue_errors == (unknown,) and not aborted.redirected
    moved = redis.exceptions.MovedError("3999 127.0.0.1:6381")
    assert ExecOutcome.read([b"OK", moved, redis.exceptions.ExecAbortError("EXECABORT")]).redirected


def _calls(manifest_json: dict[str, Any], *names: str) -> list[Call]:
    manifest = load_manifest(manifest_json)
    return [prepare(manifest, Options(check_keys=False), n, ["{x}:k"], [], None) for n in names]


def test_presence_one_check_per_script_and_library(manifest_json: dict[str, Any]) -> None:
    calls = _calls(manifest_json, "transfer", "transfer", "counter_get", "orchestrator_lib.counter_get")
    presence = Presence.of(calls)
    commands = presence.commands()
    assert commands[0][:2] == ("SCRIPT", "EXISTS") and len(commands[0]) == 4
    assert commands[1] == ("FUNCTION", "LIST", "LIBRARYNAME", "orchestrator_lib")
    assert presence.missing([[1, 0], []]) == {calls[2].target.version.sha, "orchestrator_lib"}
    assert presence.missing([[1, 1], [[b"library_name", b"orchestrator_lib"]]]) == set()


def test_repair_plan_loads_once_and_resends_only_the_failed_in_order(manifest_json: dict[str, Any]) -> None:
    calls = _calls(manifest_json, "transfer", "counter_get", "transfer", "capped_incr")
    counters = Counters()
    policy = Policy(Options(), counters)
    noscript = redis.exceptions.NoScriptError("NOSCRIPT No matching script.")
    replies: list[Any] = [noscript, 7, noscript, [1, 1]]
    plan = RepairPlan.of(policy, "n:1", calls, replies)
    assert plan.resend == [0, 2]
    expected = [("SCRIPT", "LOAD"), ("EVALSHA", calls[0].target.handle), ("EVALSHA", calls[2].target.handle)]
    assert [c[:2] for c in plan.commands(calls)] == expected
    plan.apply(calls, replies, [calls[0].target.handle, [1, 2, 1], [3, 4, 1]])
    assert replies == [[1, 2, 1], 7, [3, 4, 1], [1, 1]]
    assert counters.noscript == 2 and counters.fallbacks == 1


# ------------------------------------------------------------------------------------------ backoff, counters


def test_backoff_is_jittered_and_capped() -> None:
    backoff = Backoff(base=0.01, cap=0.05)
    delays = [backoff.delay(attempt) for attempt in range(1, 8) for _ in range(50)]
    assert all(0.0 <= d <= 0.05 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jittered, not a fixed schedule


def test_counters_export_to_the_registry_you_pass() -> None:
    counters = Counters()
    counters.add(Event.CALLS, "transfer@1", 3)
    counters.add(Event.FALLBACKS, "transfer@1")
    counters.add(Event.RETRIES, "move", 2)
    registry = CollectorRegistry()
    counters.register(registry)
    value = registry.get_sample_value
    assert value("redis_orchestrator_client_calls_total", {"script": "transfer@1"}) == 3
    assert value("redis_orchestrator_client_fallbacks_total", {"script": "transfer@1"}) == 1
    assert value("redis_orchestrator_client_retries_total", {"transaction": "move"}) == 2
    assert counters.calls == 3 and counters.snapshot()["retries"] == 2


def test_only_ask_is_followed_to_its_address_moved_updates_the_slot_table() -> None:
    """redis-py's MovedError is an AskError. Handled as ASK, a MOVED to a node missing from the client's
    table (a refresh taken mid-failover) ended in "a node the cluster does not list" (seen once on
    Valkey 8.1.1); MOVED now goes to Route.moved, which adds the node as redis-py does."""
    assert redirect_target(redis.exceptions.AskError("3999 127.0.0.1:7001")) == "127.0.0.1:7001"
    assert redirect_target(redis.exceptions.MovedError("3999 127.0.0.1:7001")) is None
