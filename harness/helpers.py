"""Small helpers shared by tests: temp catalogs, waiting on conditions, reading script caches."""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.chaos import ChaosCluster
from redis_orchestrator.catalog.model import sha1_hex
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.devcluster.cluster import LocalNode
from redis_orchestrator.devcluster.cluster import free_port as devcluster_free_port

REPO = Path(__file__).resolve().parent.parent


def spin_lua(milliseconds: str = "tonumber(ARGV[1])") -> bytes:
    """A script that burns `milliseconds` of server time, on every server of the matrix.

    `TIME` inside a script returns the script's start time on Redis >= 7.4 and Valkey 9 (a loop on it
    would spin until BUSY), while `os.clock()` (CPU time: the server's one thread is spinning) exists
    there but not on 7.0.15 ("Script attempted to access nonexistent global variable 'os'"). So: find
    os.clock with pcall, else read TIME."""
    return (
        "local ok, clock = pcall(function() return os.clock end)\n"
        "local now\n"
        "if ok and clock then now = function() return clock() * 1000 end\n"
        "else now = function() local t = redis.call('TIME') return t[1] * 1000 + t[2] / 1000 end end\n"
        f"local until_ms = now() + {milliseconds}\n"
        "while now() < until_ms do end\n"
        "return 1\n"
    ).encode()


def write_config(
    directory: Path,
    seeds: Iterable[str],
    scripts: list[dict[str, object]] | None = None,
    copy_lua: bool = True,
    **sections: object,
) -> Path:
    """A config file in `directory` with the repo's lua/ copied beside it (so tests may edit it)."""
    if copy_lua and not (directory / "lua").exists():
        shutil.copytree(REPO / "examples" / "lua", directory / "lua")
    sample = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())
    data: dict[str, object] = {
        "redis": {"mode": "cluster", "seeds": list(seeds), "timeout": "1s"},
        "daemon": {"reconcile_interval": "1s", "topology_interval": "2s", "config_poll_interval": "200ms"},
        "metrics": {"enabled": False},
        "catalog": {"version": "test-1", "scripts": scripts if scripts is not None else sample["catalog"]["scripts"]},
    }
    data.update(sections)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def catalog_shas(config_path: Path) -> set[str]:
    data = yaml.safe_load(config_path.read_text())
    return {
        sha1_hex((config_path.parent / s["file"]).read_bytes())
        for s in data["catalog"]["scripts"]
        if s.get("kind", "script") == "script"
    }


def present(node: LocalNode, shas: Iterable[str]) -> set[str]:
    shas = list(shas)
    with node.client() as c:
        flags = c.execute_command("SCRIPT", "EXISTS", *shas)
    return {sha for sha, flag in zip(shas, flags, strict=True) if int(flag)}


def libraries(node: LocalNode) -> dict[str, bytes]:
    """Function library name -> code on one node (FUNCTION LIST WITHCODE)."""
    with node.client(protocol=3) as c:
        reply = c.execute_command("FUNCTION", "LIST", "WITHCODE")
    return {lib[b"library_name"].decode(): lib[b"library_code"] for lib in reply}


def all_hold(cluster: ChaosCluster, shas: Iterable[str]) -> bool:
    shas = set(shas)
    return all(present(n, shas) == shas for n in cluster.nodes if n.running())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> float:
    """Seconds it took; AssertionError naming `what` after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def command_calls(node: LocalNode, command: str) -> int:
    """Calls of `command` (e.g. "script|exists") the node has served, from INFO commandstats."""
    with node.client() as c:
        stats = c.info("commandstats")
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


class DaemonProcess:
    """`redis-orchestrator run` as a real subprocess, its log in a file; always stopped."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None, prefix: Sequence[str] = ()) -> None:
        """`prefix`: what runs the command, e.g. nsenter into a network namespace (harness/faults.py)."""
        self.log_path = config.parent / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "redis_orchestrator", "--config", str(config), *args, "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
            env={**os.environ, **(env or {})},
        )

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 15) -> float:
        return wait_for(lambda: text in self.log(), timeout, f"{text!r} in the daemon log", interval=0.05)

    def events(self, event: str, node: str | None = None) -> list[str]:
        """The log's `event` lines, of the node at address `node` only when given."""
        return [
            line
            for line in self.log().splitlines()
            if f" {event} " in f"{line} " and (node is None or f"node={node}" in line)
        ]

    def stamp(self, event: str) -> float:
        """Wall-clock seconds (time.time()) of the last `event` line."""
        return datetime.datetime.fromisoformat(self.events(event)[-1].split(" ", 1)[0]).timestamp()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int | None = None, timeout: float = 10) -> int:
        stop_gracefully(self.process, sig or signal.SIGTERM, timeout)
        self._log.close()
        return int(self.process.returncode)

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------- shared by the auth, ACL and TLS tests


def stop_gracefully(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 10) -> None:
    """`sig` (SIGTERM), then SIGKILL if it is still there after `grace` seconds; reaped either way."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cli(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One `redis-orchestrator --config <config> <args>` run, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "redis_orchestrator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    """A free loopback port for a daemon's endpoint, outside the ephemeral range (devcluster's)."""
    return devcluster_free_port()


def password_cluster(password: str) -> ChaosCluster:
    """A 3+3 cluster (not started) whose default user needs `password`; replicas authenticate with it."""
    return ChaosCluster(
        primaries=3,
        replicas_per_primary=1,
        extra_config=[f"requirepass {password}", f"masterauth {password}"],
        client_kwargs={"password": password},
    )


def acl_log_fields(entry: object) -> dict[str, object]:
    """One ACL LOG entry as {field: value} with str keys (redis-py parses it into a dict; raw: flat)."""
    if isinstance(entry, dict):
        items = list(entry.items())
    else:
        flat = list(entry)  # type: ignore[call-overload]
        items = list(zip(flat[::2], flat[1::2], strict=True))
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in items}


# ---------------------------------------------------------------------- an application calling EVALSHA


def serves(client: redis.Redis, key: str) -> bool:
    """Whether the node behind `client` serves `key`'s slot (any other node answers MOVED)."""
    try:
        client.execute_command("EXISTS", key)
    except redis.exceptions.MovedError:
        return False
    return True


def primary_serving(cluster: ChaosCluster, key: str) -> LocalNode:
    """The primary whose slots hold `key` now."""
    for node in cluster.primaries():
        with node.client() as c:
            if serves(c, key):
                return node
    raise AssertionError(f"no primary serves {key}")


def local_key(node: LocalNode, prefix: str = "selfheal") -> str:
    """A key whose slot `node`'s shard serves (asked with READONLY, so a replica answers too)."""
    with node.client() as c:
        c.execute_command("READONLY")
        key = next((k for k in (f"{prefix}:{{{i}}}" for i in range(2000)) if serves(c, k)), None)
    if key is None:
        raise AssertionError(f"no key found for {node}")
    return key


@dataclass(kw_only=True)
class EvalshaLoop:
    """A thread calling `<command> sha 1 key` of every catalog SHA, with no fallback, and counting
    what came back; subclasses say where the calls go (`_run`). The server looks the script up before
    anything else, so any reply but NOSCRIPT (a result, a script error, READONLY, "write flag on
    readonly command") proves the script was in that node's cache. Connection errors (the node being
    killed, a failover under way) are counted apart."""

    command: ClassVar[str] = "EVALSHA_RO"
    pause: float = 0.0  # between rounds of every SHA: a busy application rather than a benchmark
    calls: int = 0
    ok: int = 0
    noscript: int = 0
    refused: int = 0
    connection_errors: int = 0
    noscript_times: list[float] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)  # first word of other errors -> count
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=f"{self.command} loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def answered(self) -> int:
        """Calls the node answered with the script there (ran it, or refused it after finding it)."""
        return self.ok + self.refused

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        raise NotImplementedError

    def _round(self, client: redis.Redis, key: str, shas: Sequence[str]) -> None:
        for sha in shas:
            self.calls += 1
            try:
                client.execute_command(self.command, sha, 1, key)
                self.ok += 1
            except redis.exceptions.NoScriptError:
                self.noscript += 1
                self.noscript_times.append(time.monotonic())
            except redis.ResponseError as exc:  # NOSCRIPT comes as NoScriptError (redis-py's error map)
                word = str(exc).split(" ", 1)[0]
                self.refused += 1
                self.refusals[word] = self.refusals.get(word, 0) + 1
        if self.pause:
            time.sleep(self.pause)


@dataclass
class EvalshaOnlyClient(EvalshaLoop):
    """EVALSHA_RO on one node. After READONLY it runs on a replica and on a primary alike, so the same
    client runs across a promotion. Only the `no-writes` scripts actually run; the others are refused
    *after* the server found them."""

    node: LocalNode
    shas: Sequence[str]
    key: str
    readonly: bool = True  # send READONLY first: a cluster replica then answers EVALSHA_RO (not outside a cluster)

    def _run(self) -> None:
        client: redis.Redis | None = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self.node.client(socket_timeout=1, socket_connect_timeout=0.5)
                    if self.readonly:
                        client.execute_command("READONLY")
                self._round(client, self.key, self.shas)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.connection_errors += 1
                if client is not None:
                    client.close()
                client = None
                time.sleep(0.01)
        if client is not None:
            client.close()


# ---------------------------------------------------------------------- HTTP and metrics


def http_get(url: str, accept: str | None = None, timeout: float = 5) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, error statuses included; OSError when nothing listens."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def scrape(port: int, name: str, *, timeout: float = 3, **labels: str) -> float | None:
    """One sample of the daemon's /metrics on `port` (a `_count`/`_sum`/`_total` name as exposed),
    the first whose labels include `labels`; None when absent or when nothing answers in time (a
    frozen process). Read with prometheus_client's own parser."""
    try:
        text = http_get(f"http://127.0.0.1:{port}/metrics", timeout=timeout)[2]
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


NODE = "127.0.0.1:7000"


def populated_metrics() -> Metrics:
    """A registry with a value in every family the dashboards and alerts use, for one node (NODE)."""
    metrics = Metrics()
    metrics.node_known(NODE, "primary")
    metrics.node_reconciled(NODE, "primary", up=True, missing=0, loaded=3, failed=False, seconds=0.004)
    metrics.catalog_loaded("2026.11.22", {"script": 4, "function": 1})
    metrics.catalog_reload("accepted")
    metrics.findings(["warning", "error"])  # type: ignore[list-item]
    metrics.slow_script_run("transfer", NODE, 0.25)
    metrics.slow_script_ratio("transfer", NODE, 0.05)
    metrics.slow_script_run("unknown", NODE, 0.02)
    metrics.script_time_limit_read(NODE, 5.0)
    metrics.slowlog_entries_missed(NODE, 2)
    metrics.script_kill(NODE, "unkillable")
    metrics.node_busy_changed(NODE, True)
    metrics.script_cache_read(NODE, cached=9, eval_memory_bytes=4096, evicted=0)
    metrics.feature_changed(NODE, "slowlog", False)
    metrics.sentinel_subscribed.labels("127.0.0.1:26379").set(1)
    metrics.leader.set(1)
    metrics.ready.set(1)
    return metrics


# ---------------------------------------------------------------------- a Valkey 9.1 quirk


# How servers word a script's access to a key of another slot or node (both with the generic ERR
# code, so the text is all there is): "non local key" (Redis 7.0, Valkey 9.1), or, on Redis 8.0 and
# Valkey 8.1 when one call mixes keys of two slots, "don't hash to the same slot", checked before the
# node. For pytest.raises(match=...).
REFUSED_KEY = "non local key|hash to the same slot"


def scripts_poisoned(node: LocalNode, key: str) -> bool:
    """Whether `node` refuses a script on `key` (a key it serves) with "non local key".

    Seen on Valkey 9.1.2, never on Redis 7.0.15, Redis 8.0.2 or Valkey 8.1.1: once a script's
    multi-key call (DEL, MGET, MSET...) mixing a local and a non-local key has failed with "non local
    key", every later script with keys on that node fails the same way, even on its own slots; SCRIPT
    FLUSH does not clear it, a restart does (tests/test_server_differences.py)."""
    with node.client() as c:
        try:
            c.eval("return redis.call('EXISTS', KEYS[1])", 1, key)
        except redis.ResponseError as exc:
            return "non local key" in str(exc)
    return False


def heal_poisoned_scripts(cluster: ChaosCluster) -> list[LocalNode]:
    """Restart the primaries that `scripts_poisoned` finds refusing scripts (tests that provoke
    "non local key" on purpose call this, so the shared cluster stays usable on every server)."""
    healed = []
    for node in cluster.primaries():
        key = local_key_of(node)
        if scripts_poisoned(node, key):
            cluster.restart(node)
            healed.append(node)
    return healed


def local_key_of(node: LocalNode, prefix: str = "probe") -> str:
    """A key whose slot `node` serves (its `myself` line in CLUSTER NODES)."""
    with node.client() as c:
        raw = c.execute_command("CLUSTER", "NODES")
    mine = next(
        line for line in (raw.decode() if isinstance(raw, bytes) else str(raw)).splitlines() if "myself" in line
    )
    ranges = []
    for token in mine.split()[8:]:
        if not token.startswith("["):
            start, _, end = token.partition("-")
            ranges.append((int(start), int(end or start)))
    for i in range(100_000):
        slot = redis.crc.key_slot(f"{prefix}:{i}".encode())
        if any(start <= slot <= end for start, end in ranges):
            return f"{prefix}:{i}"
    raise AssertionError(f"no key found for {node}")
