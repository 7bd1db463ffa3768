"""Hostile and careless input, no server (issue #23): each finding of the adversarial probe, as the
operator would meet it. Every problem is one clear error with its place; nothing crashes, hangs,
prints a secret or loses an edit. What needs a server is in test_hostile_live.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from redis_orchestrator.analysis.checks import AnalysisResult, CatalogAnalysis
from redis_orchestrator.analysis.slots import key_slot
from redis_orchestrator.catalog.files import FileSeen, stamp_of
from redis_orchestrator.catalog.model import Catalog, sha1_hex
from redis_orchestrator.cli import main
from redis_orchestrator.client import ManifestError, ScriptError, load_manifest
from redis_orchestrator.client.errors import translate
from redis_orchestrator.config.loader import load_config, parse_config
from redis_orchestrator.config.settings import RedisOverrides
from redis_orchestrator.daemon.catalog_keeper import CatalogKeeper
from redis_orchestrator.daemon.health import Heartbeat
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.reload import FileWatch, ReloadResult
from redis_orchestrator.errors import ConfigError
from redis_orchestrator.wire.connections import Connector

pytestmark = pytest.mark.timeout(60)

SCRIPT = "return redis.call('GET', KEYS[1])\n"


def write(directory: Path, scripts: dict[str, str] | None = None, **sections: object) -> Path:
    """A config in `directory` with one script file per entry (name -> file body)."""
    scripts = scripts if scripts is not None else {"a": SCRIPT}
    entries = []
    for name, body in scripts.items():
        (directory / f"{name}.lua").write_text(body)
        entries.append({"name": name, "version": 1, "file": f"{name}.lua"})
    data: dict[str, object] = {
        "redis": {"seeds": ["127.0.0.1:1"]},
        "daemon": {"config_poll_interval": "50ms"},
        "metrics": {"enabled": False},
        "analysis": {"enabled": False},
        "catalog": {"version": "v1", "scripts": entries},
    }
    data.update(sections)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems_of(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def keeper_for(config: Path, analysis: CatalogAnalysis | None = None) -> CatalogKeeper:
    """The daemon's catalog keeper with no topology (nothing is compiled on a node): pure."""
    loaded = load_config(config)
    return CatalogKeeper(
        loaded,
        RedisOverrides(),
        Connector(loaded.start.redis),
        Metrics(CollectorRegistry()),
        analysis or CatalogAnalysis(),
        topology=lambda: None,
        on_change=lambda: None,
        heartbeat=Heartbeat(),
    )


async def until(predicate: object, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


# ---------------------------------------------------------------------- edits during a reload


class EditsDuringTheReload(CatalogAnalysis):
    """Runs `edit` once, in the middle of the next reload: after the files were read, before the
    watch takes its baseline (the analysis step sits exactly there)."""

    def __init__(self) -> None:
        super().__init__()
        self.edit: list[object] = []

    def when_enabled(self, catalog: Catalog, enabled: bool, block_on: object) -> AnalysisResult:
        while self.edit:
            self.edit.pop()()  # type: ignore[operator]
        return super().when_enabled(catalog, enabled, block_on)  # type: ignore[arg-type]


@pytest.mark.parametrize("edited", ["config", "script"])
def test_an_edit_written_while_a_reload_reads_is_applied_by_another_reload(tmp_path: Path, edited: str) -> None:
    config = write(tmp_path)
    analysis = EditsDuringTheReload()
    keeper = keeper_for(config, analysis)
    script = tmp_path / "a.lua"

    def edit_config() -> None:
        config.write_text(config.read_text().replace("version: v2", "version: v3-edited-mid-reload"))

    def edit_script() -> None:
        script.write_text(SCRIPT + "-- appended while the reload ran\n")

    async def scenario() -> None:
        watch = asyncio.create_task(keeper.watch())
        try:
            analysis.edit.append(edit_config if edited == "config" else edit_script)
            config.write_text(config.read_text().replace("version: v1", "version: v2"))
            await until(lambda: keeper.catalog.version != "v1", 10, "the first reload")
            if edited == "config":
                await until(lambda: keeper.catalog.version == "v3-edited-mid-reload", 5, "the edit reloaded")
            else:
                wanted = sha1_hex(script.read_bytes())
                await until(lambda: keeper.catalog.scripts[0].sha == wanted, 5, "the edit reloaded")
        finally:
            watch.cancel()

    asyncio.run(scenario())


def test_the_watch_compares_contents_not_only_stamps(tmp_path: Path) -> None:
    config = write(tmp_path)
    script = tmp_path / "a.lua"
    loaded = load_config(config)
    assert not FileWatch(config, loaded.files).changed()
    os.utime(script)  # touched: same bytes, no edit
    assert not FileWatch(config, loaded.files).changed()
    # Rewritten with the same size and its old mtime put back (cp -p, rsync -t): the ctime moved.
    before = script.stat()
    script.write_text(SCRIPT.replace("GET", "DEL"))
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert FileWatch(config, loaded.files).changed()
    # Rewritten within the same tick of the file system's clock, same size: the stamp cannot tell,
    # the content does (the stamp is recent, so the watch reads the file).
    script.write_text(SCRIPT)
    read_then_edited = FileSeen(stamp_of(script), sha1_hex(SCRIPT.replace("GET", "DEL").encode()))
    assert FileWatch(config, {**loaded.files, str(script): read_then_edited}).changed()


# ---------------------------------------------------------------------- undecodable secrets


LATIN1_PASSWORD = "pässwörd".encode("latin-1")


def test_a_password_file_that_is_not_utf8_is_one_clear_problem(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(LATIN1_PASSWORD + b"\n")
    config = write(tmp_path, redis={"seeds": ["127.0.0.1:1"], "password_file": str(tmp_path / "secret")})
    problems = problems_of(config)
    assert len(problems) == 1 and "redis.password_file" in problems[0] and "UTF-8" in problems[0], problems
    assert "p\\xe4ss" not in problems[0] and "pässw" not in problems[0]  # no part of the secret


def test_a_password_env_that_is_not_utf8_is_one_clear_problem(tmp_path: Path) -> None:
    config = write(tmp_path, redis={"seeds": ["127.0.0.1:1"], "password_env": "ORCH_PW"})
    undecodable = os.fsdecode(LATIN1_PASSWORD)  # what os.environ holds for those bytes
    problems = problems_of(config, environ={"ORCH_PW": undecodable})
    assert len(problems) == 1 and "redis.password_env" in problems[0] and "UTF-8" in problems[0], problems


@pytest.mark.parametrize("verb", ["check", "plan", "sync", "status", "manifest", "prune", "run"])
def test_every_verb_exits_2_on_an_undecodable_password(
    tmp_path: Path, verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "secret").write_bytes(LATIN1_PASSWORD)
    config = write(tmp_path, redis={"seeds": ["127.0.0.1:1"], "password_file": str(tmp_path / "secret")})
    assert main(["--config", str(config), verb]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "redis.password_file" in err


def test_a_reload_with_an_undecodable_password_is_rejected_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write(tmp_path)
    keeper = keeper_for(config)
    before = keeper.desired
    (tmp_path / "secret").write_bytes(LATIN1_PASSWORD)
    data = yaml.safe_load(config.read_text())
    data["redis"]["password_file"] = str(tmp_path / "secret")
    config.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
        assert asyncio.run(keeper.reload()) == ReloadResult.REJECTED
    assert keeper.desired is before
    rejected = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "catalog_rejected"]
    assert len(rejected) == 1 and "\n" not in rejected[0] and "redis.password_file" in rejected[0]


# ---------------------------------------------------------------------- files that block or weigh


class FifoUnblocker:
    """Opens (then closes) the write end of each FIFO listed after 3 s, so that code that wrongly
    reads one fails a test instead of hanging it; `released` counts the FIFOs it had to open."""

    def __init__(self) -> None:
        self.fifos: list[Path] = []
        self.released = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._release, daemon=True)

    def append(self, fifo: Path) -> None:
        self.fifos.append(fifo)

    def _release(self) -> None:
        if self.done.wait(3):
            return
        for fifo in self.fifos:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # nobody is reading it: nothing was blocked
            os.close(fd)
            self.released += 1


@pytest.fixture
def fifo_unblocker() -> Iterator[FifoUnblocker]:
    unblocker = FifoUnblocker()
    unblocker.thread.start()
    yield unblocker
    unblocker.done.set()
    unblocker.thread.join()


def test_a_fifo_as_a_script_file_is_refused_without_reading_it(tmp_path: Path, fifo_unblocker: FifoUnblocker) -> None:
    config = write(tmp_path)
    (tmp_path / "a.lua").unlink()
    os.mkfifo(tmp_path / "a.lua")
    fifo_unblocker.append(tmp_path / "a.lua")
    problems = problems_of(config)
    assert len(problems) == 1 and "catalog.scripts[0].file" in problems[0], problems
    assert "not a regular file" in problems[0]


def test_a_fifo_as_the_config_file_is_refused_without_reading_it(tmp_path: Path, fifo_unblocker: FifoUnblocker) -> None:
    os.mkfifo(tmp_path / "config.yaml")
    fifo_unblocker.append(tmp_path / "config.yaml")
    problems = problems_of(tmp_path / "config.yaml")
    assert len(problems) == 1 and "not a regular file" in problems[0], problems


def test_a_reload_never_reads_a_fifo(
    tmp_path: Path, fifo_unblocker: FifoUnblocker, caplog: pytest.LogCaptureFixture
) -> None:
    config = write(tmp_path)
    keeper = keeper_for(config)
    (tmp_path / "a.lua").unlink()
    os.mkfifo(tmp_path / "a.lua")
    fifo_unblocker.append(tmp_path / "a.lua")
    with caplog.at_level(logging.INFO, logger="redis_orchestrator"):
        assert asyncio.run(keeper.reload()) == ReloadResult.REJECTED
    rejected = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "catalog_rejected"]
    assert len(rejected) == 1 and "not a regular file" in rejected[0], rejected
    assert fifo_unblocker.released == 0  # nobody sat blocked on it (the event loop least of all)


def test_a_fifo_as_a_tls_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ca.crt")  # ssl would read it on every connect, on the event loop
    config = write(
        tmp_path, redis={"seeds": ["127.0.0.1:1"], "tls": {"enabled": True, "ca_file": str(tmp_path / "ca.crt")}}
    )
    problems = problems_of(config)
    assert len(problems) == 1 and "redis.tls.ca_file" in problems[0] and "not a regular file" in problems[0]


def test_a_script_over_the_size_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    config = write(tmp_path, {"big": "return 1\n" + "-- padding padding padding\n" * 40_000})
    problems = problems_of(config)
    assert len(problems) == 1 and "catalog.scripts[0].file" in problems[0], problems
    assert "limit" in problems[0] and "KiB" in problems[0]


# ---------------------------------------------------------------------- YAML


def billion_laughs(levels: int) -> str:
    """Nine aliases of the level below at each level: 9**(levels + 1) strings from a few hundred bytes."""
    lines = ["laughs:", '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    lines.append(f"catalog: {{version: '1', scripts: [{{name: a, version: 1, file: a.lua, keys: *l{levels}}}]}}")
    return "\n".join(lines) + "\n"


def test_alias_expansion_is_bounded_with_a_short_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.lua").write_text(SCRIPT)
    text = billion_laughs(6)  # 4.8 million strings once expanded
    assert len(text) < 1000
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "config.yaml", environ={})
    message = str(info.value)
    assert len(message) < 2000, f"{len(message)} characters"
    assert "alias" in message and "1,000,000" in message


def test_a_duplicate_key_is_refused_with_both_positions(tmp_path: Path) -> None:
    (tmp_path / "a.lua").write_text(SCRIPT)
    text = (
        "daemon: {reconcile_interval: 1s}\n"
        "catalog:\n"
        "  version: '1'\n"
        "  scripts:\n"
        "    - {name: a, version: 1, file: a.lua, version: 2}\n"
        "daemon: {reconcile_interval: 5s}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "config.yaml", environ={})
    where = tmp_path / "config.yaml"
    assert sorted(info.value.problems) == sorted(
        [
            f"{where}:5:42: catalog.scripts[0].version: duplicate key (first at {where}:5:17; "
            "YAML would silently keep the last)",
            f"{where}:6:1: daemon: duplicate key (first at {where}:1:1; YAML would silently keep the last)",
        ]
    )


# ---------------------------------------------------------------------- seeds, names, entries


def test_credentials_in_a_seed_are_refused_and_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, redis={"seeds": ["redis://app:Pw-in-yaml-7@10.0.0.1:6379"]})
    problems = problems_of(config)
    assert len(problems) == 1 and "redis.seeds[0]" in problems[0] and "password_env" in problems[0]
    assert "Pw-in-yaml-7" not in problems[0]
    for seed in ("redis://app:Pw-on-cli-9@127.0.0.1:1", "app:Pw-on-cli-9@127.0.0.1:1"):
        assert main(["--config", str(write(tmp_path)), "--seed", seed, "status"]) == 2
        out = capsys.readouterr()
        assert "Pw-on-cli-9" not in out.out + out.err and "--seed[0]" in out.err
    assert main(["--config", str(write(tmp_path)), "--seed", "redis://127.0.0.1:1", "status"]) == 2
    assert "without redis://" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value"),
    [("catalog.version", "1\nall 6 nodes in sync"), ("name", "a\x1b[2K"), ("version", "1\r"), ("file", "a.lua\n")],
)
def test_control_characters_are_refused_in_names_versions_and_files(tmp_path: Path, field: str, value: str) -> None:
    config = write(tmp_path)
    data = yaml.safe_load(config.read_text())
    if field == "catalog.version":
        data["catalog"]["version"] = value
    else:
        data["catalog"]["scripts"][0][field] = value
    config.write_text(yaml.safe_dump(data))
    problems = problems_of(config)
    place = "catalog.version" if field == "catalog.version" else f"catalog.scripts[0].{field}"
    assert any(place in p and "control character" in p for p in problems), problems
    assert all("\n" not in p and "\x1b" not in p and "\r" not in p for p in problems)


def test_two_entries_on_the_same_script_are_refused_with_both_places(tmp_path: Path) -> None:
    config = write(tmp_path, {"a": SCRIPT, "b": SCRIPT})
    problems = problems_of(config)
    assert len(problems) == 1 and "catalog.scripts[1]" in problems[0] and "catalog.scripts[0]" in problems[0]
    assert "same" in problems[0]
    # A retired version may share its bytes with a live one (a rollback to an old file): one live copy.
    data = yaml.safe_load(config.read_text())
    data["catalog"]["scripts"] = [
        {"name": "a", "versions": [{"version": 1, "file": "a.lua"}, {"version": 2, "file": "b.lua"}], "keep": 0}
    ]
    config.write_text(yaml.safe_dump(data))
    assert [s.label for s in load_config(config).catalog.scripts] == ["a@2"]


def test_keyslot_takes_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "redis_orchestrator", "--config", str(tmp_path / "none.yaml"), "keyslot", b"\xff"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    slot = key_slot(b"\xff")
    assert f"slot {slot:>5}".encode() in done.stdout  # hashed as the byte Redis gets


# ---------------------------------------------------------------------- the client's manifest


@pytest.fixture
def manifest() -> dict[str, object]:
    def version(body: str) -> dict[str, object]:
        return {"sha": sha1_hex(body.encode()), "flags": [], "keys": [], "source": body}

    return {
        "catalog_version": "1",
        "scripts": {
            "a": {"kind": "script", "current": "1", "versions": {"1": version("return 'a'")}},
            "b": {"kind": "script", "current": "1", "versions": {"1": version("return 'b'")}},
        },
    }


def manifest_problems(source: object) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifest(source)  # type: ignore[arg-type]
    return info.value.problems


def test_a_deeply_nested_manifest_is_a_manifest_error() -> None:
    assert manifest_problems('{"scripts": ' + "[" * 100_000 + "]" * 100_000 + "}")


def test_a_sha_that_is_not_hex_is_refused(manifest: dict[str, object]) -> None:
    entry = manifest["scripts"]["a"]["versions"]["1"]  # type: ignore[index]
    del entry["source"]
    entry["sha"] = "z" * 40
    assert any("scripts.a.versions.1.sha" in p for p in manifest_problems(manifest))


def test_an_entry_pointing_at_another_entrys_sha_is_refused(manifest: dict[str, object]) -> None:
    a = manifest["scripts"]["a"]["versions"]["1"]  # type: ignore[index]
    b = manifest["scripts"]["b"]["versions"]["1"]  # type: ignore[index]
    del a["source"]
    a["sha"] = b["sha"]
    problems = manifest_problems(manifest)
    assert any("scripts.a.versions.1" in p and "scripts.b.versions.1" in p for p in problems), problems


@pytest.mark.parametrize(
    ("place", "value"),
    [("source", 5), ("flags", "no-writes"), ("kind", ["script"]), ("keys", {"k": 1}), ("current", {"x": 1})],
)
def test_wrong_types_in_a_manifest_are_manifest_errors(manifest: dict[str, object], place: str, value: object) -> None:
    if place in ("kind", "current"):
        manifest["scripts"]["a"][place] = value  # type: ignore[index]
    else:
        manifest["scripts"]["a"]["versions"]["1"][place] = value  # type: ignore[index]
    assert any(p.startswith("scripts.a") for p in manifest_problems(json.dumps(manifest)))


def test_an_oversized_manifest_is_refused_before_parsing(manifest: dict[str, object]) -> None:
    manifest["scripts"]["a"]["description"] = "x" * (65 << 20)  # type: ignore[index]
    problems = manifest_problems(json.dumps(manifest).encode())
    assert len(problems) == 1 and "MiB" in problems[0] and "manifest.sources" in problems[0]


def test_a_server_refusal_is_not_read_as_the_scripts_own_code() -> None:
    # redis-py strips the ERR of `ERR Can not execute a script with write flag using *_ro command.`
    # (a no-writes flag on a script that writes): that is the server's refusal, not a code `Can`.
    import redis.exceptions

    refused = translate(
        redis.exceptions.ResponseError("Can not execute a script with write flag using *_ro command."), "a@1"
    )
    assert isinstance(refused, ScriptError) and refused.code == "ERR"
    own = translate(redis.exceptions.ResponseError("INSUFFICIENT_FUNDS balance 5 < amount 9"), "a@1")
    assert isinstance(own, ScriptError) and own.code == "INSUFFICIENT_FUNDS"


def test_a_credentials_directory_that_cannot_be_searched_is_a_clear_problem_not_a_traceback(tmp_path: Path) -> None:
    """Path.exists() raises on some errors: a CREDENTIALS_DIRECTORY the daemon's user may not search
    (seen under systemd with LoadCredential=), or here a name too long. The password file is then looked
    for as written, and its absence named."""
    config = write(tmp_path, redis={"seeds": ["127.0.0.1:1"], "password_file": "redis-password"})
    problems = problems_of(config, environ={"CREDENTIALS_DIRECTORY": str(tmp_path / ("x" * 300))})
    assert len(problems) == 1 and "redis.password_file" in problems[0] and "does not exist" in problems[0], problems
