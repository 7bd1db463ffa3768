""".pre-commit-hooks.yaml as a project uses it: pre-commit (from PyPI) runs our hooks from a local
clone of this repository on a project's commit. Nothing reaches the network: the project's config
sets each hook's `language` to `unsupported` (pre-commit 4's name for `system`), so the entry point
installed here runs instead of pre-commit pip-installing the package; every other key is the
manifest's own (entry, file filters, pass_filenames)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.helpers import REPO, write_config

pytestmark = [pytest.mark.live, pytest.mark.once]

BAD = "return redis.call('INCR', 'stats:hits')\n"  # a fixed key outside KEYS: an error
GOOD = "return redis.call('INCR', KEYS[1])\n"


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


@pytest.fixture
def hooks_clone(tmp_path: Path) -> tuple[Path, str]:
    """A local clone of this repository, carrying the working tree's manifest (committed there)."""
    clone = tmp_path / "redis-orchestrator"
    git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{REPO}", str(clone))
    shutil.copy(REPO / ".pre-commit-hooks.yaml", clone / ".pre-commit-hooks.yaml")
    git(clone, "add", ".pre-commit-hooks.yaml")
    git(clone, "commit", "--quiet", "--allow-empty", "-m", "hooks as in the working tree")
    return clone, git(clone, "rev-parse", "HEAD")


def pre_commit(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)  # pre-commit and redis-orchestrator of this venv
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    return subprocess.run(
        [str(Path(bin_dir) / "pre-commit"), "run", "--all-files", "--color", "never"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_manifest_is_valid() -> None:
    pre_commit_bin = Path(sys.executable).parent / "pre-commit"
    done = subprocess.run(
        [str(pre_commit_bin), "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["redis-orchestrator-check"]["language"] == "python"  # what a project gets: pip-installed


def test_pre_commit_runs_the_hooks_from_a_local_clone(hooks_clone: tuple[Path, str], tmp_path: Path) -> None:
    clone, rev = hooks_clone
    project = tmp_path / "project"
    (project / "lua").mkdir(parents=True)
    git(project, "init", "--quiet")
    (project / "lua" / "counter.lua").write_text(BAD)
    (project / "lua" / "get.lua").write_text(GOOD)
    (project / "notes.txt").write_text(BAD)  # not Lua by name: the hook does not see it
    config = write_config(project, ["127.0.0.1:1"], scripts=[{"name": "get", "version": 1, "file": "lua/get.lua"}])
    hooks = [
        {"id": "redis-orchestrator-check", "language": "unsupported"},
        # verbose: pre-commit prints a passing hook's output only when asked.
        {
            "id": "redis-orchestrator-check-catalog",
            "language": "unsupported",
            "args": ["--config", config.name],
            "verbose": True,
        },
    ]
    (project / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": str(clone), "rev": rev, "hooks": hooks}]})
    )
    git(project, "add", "-A")
    home = tmp_path / "pre-commit-home"

    failed = pre_commit(project, home)
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert "redis-orchestrator check (Lua scripts)" in out and "Failed" in out
    assert "lua/counter.lua:1:27: error[undeclared-key] (counter)" in out
    assert "notes.txt" not in out
    assert "redis-orchestrator check (catalog)" in out and "catalog test-1: 1 live entries, 0 error(s)" in out

    (project / "lua" / "counter.lua").write_text(GOOD.replace("INCR", "INCRBY").replace("KEYS[1]", "KEYS[1], 2"))
    git(project, "add", "-A")
    passed = pre_commit(project, home)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count("Passed") == 2
