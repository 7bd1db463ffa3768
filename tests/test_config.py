"""Config and catalog validation: pure, fast, no Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.config.durations import parse_duration
from redis_orchestrator.config.loader import load_config, parse_config
from redis_orchestrator.config.settings import Secret
from redis_orchestrator.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def _parse(tmp_path: Path, text: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return parse_config(text, tmp_path / "config.yaml", environ=environ or {})


def _problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _parse(tmp_path, text, environ)
    return info.value.problems


def test_sample_config_is_valid_and_sha_is_sha1_of_file_bytes() -> None:
    config = load_config(REPO / "examples" / "config.yaml")
    assert config.catalog.version
    transfer = config.catalog.current("transfer")
    assert transfer is not None
    assert transfer.sha == sha1_hex((REPO / "examples/lua/ledger/transfer.lua").read_bytes())
    assert config.catalog.functions and config.catalog.functions[0].library == "orchestrator_lib"
    assert set(config.catalog.functions[0].functions) == {"capped_incr_fn", "counter_get"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("1s", 1.0), ("2m", 120.0), ("1h", 3600.0), (3, 3.0), (0.25, 0.25), ("1.5s", 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["fast", "1 d", "-1s", True, None, "ms"])
def test_bad_durations_say_the_accepted_forms(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_every_problem_is_collected_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "ok.lua").write_text("return 1\n")
    (tmp_path / "empty.lua").write_text("  \n")
    (tmp_path / "latin1.lua").write_bytes(b"return '\xe9'\n")
    problems = _problems(
        tmp_path,
        """
redis: {seeds: ["nohost"], colour: blue}
daemon: {reconcile_interval: soon}
catalog:
  version: "1"
  scripts:
    - {name: a, version: 1, file: ok.lua}
    - {name: a, version: 1, file: ok.lua}
    - {name: b, version: 1, file: lua/x.lua}
    - {name: c, version: 1, file: empty.lua}
    - {name: d, version: 1, file: latin1.lua}
    - {name: e, file: ok.lua, extra: 1}
    - {name: f, version: 1, file: ok.lua, kind: function}
""",
    )
    text = "\n".join(problems)
    assert "redis.seeds[0]: 'nohost' is not HOST:PORT" in text
    assert "redis.colour: unknown key" in text
    assert "daemon.reconcile_interval: 'soon' is not a duration" in text
    assert "catalog.scripts[1]: duplicate script a version 1 (also at catalog.scripts[0])" in text
    assert "catalog.scripts[2].file: lua/x.lua does not exist" in text
    assert "catalog.scripts[3].file: empty.lua is empty" in text
    assert "catalog.scripts[4].file: latin1.lua is not UTF-8" in text
    assert "catalog.scripts[5].extra: unknown key" in text
    assert "catalog.scripts[5].version: missing" in text
    assert "catalog.scripts[6].file: ok.lua: a function library must start with `#!lua name=<library>`" in text
    assert len(problems) == 10
    # Every problem has its place in the file, not only syntax errors: the value, or the key itself
    # when the key is what is wrong.
    at = {p.split(": ", 1)[1].split(":", 1)[0]: p.split(": ", 1)[0] for p in problems}
    config = str(tmp_path / "config.yaml")
    assert at["redis.seeds[0]"] == f"{config}:2:17"
    assert at["redis.colour"] == f"{config}:2:28"
    assert at["daemon.reconcile_interval"] == f"{config}:3:30"
    assert at["catalog.scripts[2].file"] == f"{config}:9:35"
    assert at["catalog.scripts[5].extra"] == f"{config}:12:31"
    assert at["catalog.scripts[5].version"] == f"{config}:12:7"  # missing: the entry that lacks it


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "catalog:\n  version: 1\n  scripts: [\n    - a: b\n")
    assert len(problems) == 1
    assert f"{tmp_path / 'config.yaml'}:4:5: YAML syntax error" in problems[0]


def test_missing_config_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.exit_code == 2
    assert "nope.yaml does not exist" in str(info.value)


def test_plain_password_is_refused_and_env_password_never_shows(tmp_path: Path) -> None:
    (tmp_path / "ok.lua").write_text("return 1\n")
    catalog = 'catalog: {version: "1", scripts: [{name: a, version: 1, file: ok.lua}]}\n'
    problems = _problems(tmp_path, "redis: {password: hunter2}\n" + catalog)
    assert any("never read from the config file" in p for p in problems)
    assert not any("hunter2" in p for p in problems)
    problems = _problems(tmp_path, "redis: {password_env: ORCH_PW}\n" + catalog)
    assert problems == [f"{tmp_path / 'config.yaml'}:1:23: redis.password_env: environment variable ORCH_PW is not set"]
    config = _parse(tmp_path, "redis: {password_env: ORCH_PW}\n" + catalog, environ={"ORCH_PW": "s3cret!"})
    assert config.start.redis.password == Secret("s3cret!")
    assert "s3cret" not in repr(config)


def test_password_file_and_systemd_credentials(tmp_path: Path) -> None:
    (tmp_path / "ok.lua").write_text("return 1\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "redis-password").write_text("from-credential\n")
    catalog = 'catalog: {version: "1", scripts: [{name: a, version: 1, file: ok.lua}]}\n'
    config = _parse(
        tmp_path, "redis: {password_file: redis-password}\n" + catalog, environ={"CREDENTIALS_DIRECTORY": str(creds)}
    )
    assert config.start.redis.password is not None and config.start.redis.password.reveal() == "from-credential"


def test_versions_current_and_keep(tmp_path: Path) -> None:
    for v in (1, 2, 3, 4):
        (tmp_path / f"t{v}.lua").write_text(f"return {v}\n")
    config = _parse(
        tmp_path,
        """
catalog:
  version: "7"
  scripts:
    - name: t
      current: 3
      keep: 1
      versions:
        - {version: 1, file: t1.lua}
        - {version: 2, file: t2.lua}
        - {version: 3, file: t3.lua}
        - {version: 4, file: t4.lua}
""",
    )
    assert config.catalog.version == "7"  # not overwritten by a script's current version
    by_version = {e.version: e for e in config.catalog.entries}
    assert by_version["3"].current and by_version["3"].live
    assert [e.version for e in config.catalog.scripts] == ["3", "4"] or {e.version for e in config.catalog.scripts} == {
        "3",
        "4",
    }
    assert not by_version["1"].live and not by_version["2"].live
    manifest = config.catalog.manifest()
    assert manifest["scripts"]["t"]["current"] == "3"  # type: ignore[index]
    # A retired version is still known by its sha (slowlog attribution), but never loaded.
    assert config.catalog.by_sha(by_version["1"].sha) is by_version["1"]


def test_flat_versions_default_current_is_last_listed(tmp_path: Path) -> None:
    (tmp_path / "a1.lua").write_text("return 1\n")
    (tmp_path / "a2.lua").write_text("return 2\n")
    config = _parse(
        tmp_path,
        'catalog: {version: "1", scripts: [{name: a, version: 1, file: a1.lua}, {name: a, version: 2, file: a2.lua}]}',
    )
    assert config.catalog.current("a") is not None
    assert config.catalog.current("a").version == "2"  # type: ignore[union-attr]
    assert len(config.catalog.scripts) == 2  # both live: old clients keep working


def test_unknown_current_version_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a1.lua").write_text("return 1\n")
    problems = _problems(
        tmp_path, 'catalog: {version: "1", scripts: [{name: a, current: 9, versions: [{version: 1, file: a1.lua}]}]}'
    )
    assert problems == [
        f"{tmp_path / 'config.yaml'}:1:34: catalog.scripts: a: current version 9 is not among its versions"
    ]
