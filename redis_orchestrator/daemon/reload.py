"""Live catalog edits: notice a change, validate the new config completely, or keep the old one.

A candidate must pass, in order: the schema and files (config.load_config, in a worker thread: the
event loop keeps serving while a big catalog is read), static analysis when `analysis.block_on`
says so, and compilation on one live primary (`SCRIPT LOAD` of every script the running catalog
does not already hold, `FUNCTION LOAD REPLACE` of changed libraries; both atomic per item, and
loading is what the rollout does next anyway). Any failure rejects the whole candidate with one log
line; the running catalog keeps being enforced and nothing is unloaded.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import redis

from redis_orchestrator.analysis.checks import AnalysisResult, CatalogAnalysis
from redis_orchestrator.catalog.files import FileReads, FileRefused, FileSeen, read_file, stamp_of
from redis_orchestrator.catalog.model import Catalog
from redis_orchestrator.config.loader import CONFIG_LIMIT, load_config
from redis_orchestrator.config.settings import Config, RedisOverrides
from redis_orchestrator.errors import CatalogRejected, ConfigError
from redis_orchestrator.reconcile.apply import apply
from redis_orchestrator.reconcile.plan import NodePlan
from redis_orchestrator.topology.model import Topology
from redis_orchestrator.wire.connections import Connector

T = TypeVar("T")

# Reading regular files never blocks for long: past this, the file system itself hangs (a dead NFS
# mount). The thread cannot be interrupted; the reload (or the poll) gives up on it and says so.
FILE_TIMEOUT = 30.0


class ReloadResult(enum.StrEnum):
    """What a reload did: the values of redis_orchestrator_catalog_reloads_total{result}."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNCHANGED = "unchanged"


class FileWatch:
    """Notices edits of the files the last load read (the config and every script file), against what
    that load saw (catalog/files.py): each file's stamp taken *before* it was read, and the SHA1 of
    the bytes read.

    Why before the read: an edit landing while a reload runs (a big catalog takes a few hundred ms
    to read and check) is then newer than the stamp, so the next poll sees it and reloads again.
    Stamps taken after the reload (as until issue #23) made such an edit look seen: it was lost, 4
    times out of 4 for a config rewritten 50 ms into a reload of 4,000 scripts. A changed
    stamp is confirmed by the content, so a `touch` or a rewrite with the same bytes is no edit. A
    file changed in the last 2 s (FileStamp.racy) is compared by content even when its stamp is
    the same, as git does: an edit within one tick of a coarse file-system clock, same size, would
    leave the stamp as it was.

    The config file is checked on every poll; script files `batch` at a time, round robin, so a
    1,000-script catalog costs 100 stats per poll instead of 1,000 (an edit of a script file alone
    is seen within ceil(files / batch) polls; an edit of the config file on the next poll).
    `changed()` stats and reads: call it from a worker thread (`CatalogKeeper` does).
    """

    def __init__(self, config_path: Path, seen: Mapping[str, FileSeen], batch: int = 100) -> None:
        self.batch = batch
        self._config = str(config_path)
        # A copy: a load given up on (FILE_TIMEOUT) may still be filling its own. If it gave up before
        # reading the config at all, the config is watched from now.
        self._seen = dict(seen)
        self._seen.setdefault(self._config, FileSeen(stamp_of(config_path), None))
        self._scripts = [path for path in self._seen if path != self._config]
        self._cursor = 0

    def changed(self) -> bool:
        if self._changed(self._config):
            return True
        if not self._scripts:
            return False
        count = min(self.batch, len(self._scripts))
        for step in range(count):
            if self._changed(self._scripts[(self._cursor + step) % len(self._scripts)]):
                return True
        self._cursor = (self._cursor + count) % len(self._scripts)
        return False

    def _changed(self, path: str) -> bool:
        seen = self._seen[path]
        now = stamp_of(path)
        if now == seen.stamp and not seen.stamp.racy:
            return False
        if seen.sha is None or not now.regular:
            return now != seen.stamp  # nothing to compare the content with
        try:
            stamp, data = read_file(path, CONFIG_LIMIT, "file")
        except FileRefused:
            return True  # the reload will say why
        if hashlib.sha1(data).hexdigest() != seen.sha:
            return True
        self._seen[path] = FileSeen(stamp, seen.sha)  # the same bytes: this stamp is theirs
        return False


async def off_the_loop(work: Callable[[], T], what: str) -> T:
    """`work()` in a worker thread, so that reading files never stops the event loop; TimeoutError
    naming `what` after FILE_TIMEOUT (the thread is left to finish on its own)."""
    try:
        async with asyncio.timeout(FILE_TIMEOUT):
            return await asyncio.to_thread(work)
    except TimeoutError:
        raise TimeoutError(f"{what} took over {FILE_TIMEOUT:.0f} s: is the file system hung?") from None


async def compile_on_one_node(connector: Connector, topology: Topology, new: Catalog, old: Catalog | None) -> list[str]:
    """Problems Redis itself reports for what `new` adds. Empty when no primary answers (the
    rollout will report per node instead)."""
    known = {s.sha for s in old.scripts} if old is not None else set()
    old_functions = {f.library: f.source for f in old.functions} if old is not None else {}
    scripts = tuple(s for s in new.scripts if s.sha not in known)
    functions = tuple(f for f in new.functions if old_functions.get(f.library) != f.source)
    if not scripts and not functions:
        return []
    for node in topology.primaries or topology.nodes:
        plan = NodePlan(node=node, load_scripts=scripts, load_functions=functions)
        try:
            done = await apply(connector.client(node.host, node.port), plan)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            continue  # try the next primary
        return [
            f"{f.script.label} ({f.script.file}): Redis refused it on {node.address}: {f.message}"
            for f in done.failures
        ]
    return []


async def load_candidate(
    path: Path,
    overrides: RedisOverrides,
    connector: Connector,
    topology: Topology | None,
    running: Catalog | None,
    analysis: CatalogAnalysis,
    files: FileReads,
) -> tuple[Config, AnalysisResult]:
    """A fully validated new config and its analysis, or CatalogRejected / ConfigError saying
    every problem. `running` is the catalog enforced now: only what the candidate adds is compiled.
    `overrides`: the command line's, as at start. `files` records every file read, whatever the
    outcome (what the watch compares with next)."""
    try:
        config = await off_the_loop(
            lambda: load_config(path, overrides=overrides, files=files), f"reading {path} and its files"
        )
    except TimeoutError as exc:
        raise ConfigError(str(path), [str(exc)]) from None
    settings = config.desired.analysis
    result = analysis.when_enabled(config.catalog, settings.enabled, settings.block_on)
    result.raise_if_blocking(settings.block_on)
    if topology is not None:
        problems = await compile_on_one_node(connector, topology, config.catalog, running)
        if problems:
            raise CatalogRejected("; ".join(problems))
    return config, result


__all__ = ["CatalogRejected", "ConfigError", "FileWatch", "ReloadResult", "compile_on_one_node", "load_candidate"]
