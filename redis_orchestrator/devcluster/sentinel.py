"""A throwaway Sentinel deployment of real processes on free loopback ports: one primary, its
replicas and three Sentinels (`redis-server --sentinel`), all from the same server binary. With
`sentinels=0`, a plain primary and replicas (what `redis.mode: replication` serves).

Used by `redis-orchestrator run --local-sentinel` and by the tests. Like LocalCluster, every process
is stopped by `stop()`, by the context manager, at interpreter exit, and by the kernel when the
starting process dies (PR_SET_PDEATHSIG).

Sentinel settings are those of a test bench, not of production: `down-after-milliseconds` 2000
(a dead primary is failed over in a few seconds), quorum 2 of 3. (With 1000, Valkey 9.1's Sentinels
on a loaded 2-core machine were seen flagging a just-promoted primary down a second after the
switch and failing over a second time.) `start()` returns once every
Sentinel knows the primary, every replica and the other Sentinels, so a failover can be voted at once.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from redis_orchestrator.devcluster.cluster import (
    LocalNode,
    LocalTLS,
    free_port_pair,
    redis_server_binary,
    release_port,
    spawn_server,
    stop_process,
    wait_answers,
    wait_until,
)
from redis_orchestrator.wire.replies import as_map, text

_live: weakref.WeakSet[LocalSentinel] = weakref.WeakSet()


class LocalSentinel:
    """Start, break and stop a primary, `replicas` replicas and `sentinels` Sentinels.

    >>> with LocalSentinel() as group:
    ...     group.seeds         # the Sentinels: ["127.0.0.1:PORT", ...]
    ...     group.service_name  # "mymaster"
    """

    def __init__(
        self,
        replicas: int = 2,
        sentinels: int = 3,
        *,
        service_name: str = "mymaster",
        quorum: int = 2,
        down_after_ms: int = 2000,
        failover_timeout_ms: int = 10000,
        base_dir: str | os.PathLike[str] | None = None,
        data_config: Sequence[str] = (),
        sentinel_config: Sequence[str] = (),
        client_kwargs: dict[str, Any] | None = None,
        sentinel_client_kwargs: dict[str, Any] | None = None,
        tls: LocalTLS | None = None,
        server: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.replicas_count = replicas
        self.sentinels_count = sentinels
        self.service_name = service_name
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.data_config = tuple(data_config)
        self.sentinel_config = tuple(sentinel_config)
        # With `tls`, every process listens on TLS only, replication and Sentinel links included.
        self.tls = tls
        tls_kwargs = tls.client_kwargs() if tls is not None else {}
        self.client_kwargs = {**tls_kwargs, **(client_kwargs or {})}
        self.sentinel_client_kwargs = {**tls_kwargs, **(sentinel_client_kwargs or {})}
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="redis-orch-sentinel-"))
        self.binary = redis_server_binary(server)
        self.nodes: list[LocalNode] = []  # data nodes; nodes[0] is the first primary
        self.sentinels: list[LocalNode] = []
        self._log = log or (lambda _msg: None)
        _live.add(self)

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> LocalSentinel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def seeds(self) -> list[str]:
        """The Sentinels' addresses: what `redis.seeds` lists in sentinel mode."""
        return [s.address for s in self.sentinels]

    def start(self, timeout: float = 30.0) -> LocalSentinel:
        try:
            primary = self._new_data_node(replica_of=None)
            wait_answers(primary, self.binary, timeout)
            for _ in range(self.replicas_count):
                self._new_data_node(replica_of=primary)
            for replica in self.nodes[1:]:
                wait_answers(replica, self.binary, timeout)
            wait_until(lambda: all(self.link_up(r) for r in self.nodes[1:]), timeout, "replicas to sync")
            for _ in range(self.sentinels_count):
                self.sentinels.append(self._new_sentinel(primary))
            for sentinel in self.sentinels:
                wait_answers(sentinel, self.binary, timeout, log_name="sentinel.log")
            self.wait_settled(primary, timeout)
        except BaseException:
            self.stop()
            raise
        self._log(
            f"local sentinel group up: primary {primary.address}, replicas "
            f"{', '.join(n.address for n in self.nodes[1:])}, Sentinels {', '.join(self.seeds)} "
            f"(service {self.service_name}, data in {self.base_dir})"
        )
        return self

    def stop(self) -> None:
        for node in [*self.sentinels, *self.nodes]:
            stop_process(node.process)
            release_port(node.port)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        _live.discard(self)

    # ----------------------------------------------------------------- queries

    def sentinel_client(self, sentinel: LocalNode, **overrides: Any) -> redis.Redis:
        return sentinel.client(**{**self.sentinel_client_kwargs, **overrides})

    def primary_address(self) -> str | None:
        """The primary most running Sentinels name (None when none answers)."""
        named: Counter[str] = Counter()
        for sentinel in self.sentinels:
            if not sentinel.running():
                continue
            with contextlib.suppress(redis.RedisError), self.sentinel_client(sentinel, socket_timeout=1) as c:
                reply = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name)
                if reply:
                    named[f"{text(reply[0])}:{int(reply[1])}"] += 1
        return named.most_common(1)[0][0] if named else None

    def primary(self) -> LocalNode:
        """The Sentinels' primary; without Sentinels, the running node that answers ROLE as one."""
        if not self.sentinels:
            return next(n for n in self.nodes if n.running() and n.role() == "primary")
        address = self.primary_address()
        for node in self.nodes:
            if node.address == address:
                return node
        raise KeyError(f"no data node at the Sentinels' primary {address}")

    def replicas(self) -> list[LocalNode]:
        return [n for n in self.nodes if n.running() and n.role() == "replica"]

    def running_nodes(self) -> list[LocalNode]:
        return [n for n in self.nodes if n.running()]

    def link_up(self, node: LocalNode) -> bool:
        try:
            with node.client(socket_timeout=1) as c:
                info = c.info("replication")
        except redis.RedisError:
            return False
        return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")

    def replicates_from(self, node: LocalNode, primary: LocalNode) -> bool:
        try:
            with node.client(socket_timeout=1) as c:
                info = c.info("replication")
        except redis.RedisError:
            return False
        return bool(
            info.get("role") == "slave"
            and int(info.get("master_port", 0)) == primary.port
            and info.get("master_link_status") == "up"
        )

    # ----------------------------------------------------------------- waiting

    def wait_primary_not(self, old: LocalNode, timeout: float = 60.0) -> LocalNode:
        """Until the Sentinels name another primary and it answers as one; returns it."""

        def moved() -> bool:
            address = self.primary_address()
            if address is None or address == old.address:
                return False
            node = next((n for n in self.nodes if n.address == address), None)
            return node is not None and node.running() and node.role() == "primary"

        wait_until(moved, timeout, f"the Sentinels to promote a replica of {old.address}")
        return self.primary()

    def wait_settled(self, primary: LocalNode | None = None, timeout: float = 60.0) -> None:
        """Every running Sentinel names `primary` (default: whichever primary they name meanwhile),
        sees it up, knows the other running Sentinels and every running replica, and those
        replicas' links to it are up."""
        what = primary.address if primary is not None else "one primary"
        wait_until(lambda: self.settled(primary), timeout, f"the Sentinels to settle on {what}")

    def settled(self, primary: LocalNode | None = None) -> bool:
        try:
            target = primary or self.primary()
        except (KeyError, StopIteration, redis.RedisError):
            return False
        running = [n for n in self.nodes if n.running() and n is not target]
        sentinels = [s for s in self.sentinels if s.running()]
        for sentinel in sentinels:
            try:
                with self.sentinel_client(sentinel, socket_timeout=1) as c:
                    master = _strings(c.execute_command("SENTINEL", "MASTER", self.service_name))
                    replicas = [_strings(r) for r in c.execute_command("SENTINEL", "REPLICAS", self.service_name)]
            except redis.RedisError:
                return False
            if f"{master['ip']}:{master['port']}" != target.address or master["flags"] != "master":
                return False
            if int(master["num-other-sentinels"]) < len(sentinels) - 1:
                return False
            healthy = {f"{r['ip']}:{r['port']}" for r in replicas if r["flags"] == "slave"}
            if not {n.address for n in running} <= healthy:
                return False
        return all(self.replicates_from(n, target) for n in running)

    # ----------------------------------------------------------------- internals

    def _new_data_node(self, replica_of: LocalNode | None) -> LocalNode:
        port = free_port_pair()
        directory = self.base_dir / f"node-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        ports = [f"port {port}"] if self.tls is None else ["port 0", f"tls-port {port}", "tls-replication yes"]
        config = [
            *ports,
            *(self._tls_lines() if self.tls is not None else []),
            "bind 127.0.0.1",
            "protected-mode no",
            "daemonize no",
            'save ""',
            "appendonly no",
            # A replica's first sync starts at once (the default waits 5 s for more replicas to share it).
            "repl-diskless-sync-delay 0",
            f'dir "{directory}"',
            f'logfile "{directory / "redis.log"}"',
            *([f"replicaof {replica_of.host} {replica_of.port}"] if replica_of is not None else []),
            *self.data_config,
        ]
        (directory / "redis.conf").write_text("\n".join(config) + "\n")
        node = LocalNode(port=port, directory=directory, client_kwargs=self.client_kwargs)
        node.process = self._spawn(node, sentinel=False)
        self.nodes.append(node)
        return node

    def _new_sentinel(self, primary: LocalNode) -> LocalNode:
        port = free_port_pair()
        directory = self.base_dir / f"sentinel-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        name = self.service_name
        ports = [f"port {port}"] if self.tls is None else ["port 0", f"tls-port {port}", "tls-replication yes"]
        config = [
            *ports,
            *(self._tls_lines() if self.tls is not None else []),
            "bind 127.0.0.1",
            "protected-mode no",
            "daemonize no",
            f'dir "{directory}"',
            f'logfile "{directory / "sentinel.log"}"',
            f"sentinel monitor {name} {primary.host} {primary.port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} {self.replicas_count}",
            *self.sentinel_config,
        ]
        (directory / "sentinel.conf").write_text("\n".join(config) + "\n")
        node = LocalNode(port=port, directory=directory, client_kwargs=self.sentinel_client_kwargs)
        node.process = self._spawn(node, sentinel=True)
        return node

    def _tls_lines(self) -> list[str]:
        assert self.tls is not None
        return [line for line in self.tls.server_config() if not line.startswith(("tls-cluster", "tls-replication"))]

    def _spawn(self, node: LocalNode, sentinel: bool) -> Any:
        if sentinel:
            return spawn_server(self.binary, node.directory / "sentinel.conf", node.directory, "--sentinel")
        return spawn_server(self.binary, node.directory / "redis.conf", node.directory)


def _strings(reply: object) -> dict[str, str]:
    """A Sentinel's map reply (dict in RESP3, flat array in RESP2) with str keys and values."""
    return {key: text(value) for key, value in as_map(reply).items()}


@atexit.register
def _stop_all() -> None:
    for group in list(_live):
        group.stop()
