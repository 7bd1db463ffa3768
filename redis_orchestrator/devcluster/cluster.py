"""A throwaway Redis Cluster of real `redis-server` processes on free loopback ports.

Used by `redis-orchestrator run --local-cluster` (the embedded default for newcomers) and by the
test suite. Every process it starts is stopped by `stop()`, by the context manager, at interpreter
exit, and (on Linux) by the kernel when the starting process dies, so nothing outlives its owner.

The cluster is built the way `redis-cli --cluster create` builds one, but with direct commands so
that each step is observable and the wait conditions are ours: ADDSLOTSRANGE on the primaries,
MEET from the first node, REPLICATE on the replicas, then wait until every node says
`cluster_state:ok`, agrees on the node count, and every replica's link to its primary is up.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

CLUSTER_SLOTS = 16384
_BUS_PORT_OFFSET = 10000
_handed_out_ports: set[int] = set()
_live_clusters: weakref.WeakSet[LocalCluster] = weakref.WeakSet()


class LocalClusterError(RuntimeError):
    """The local cluster could not be started or did not reach the state asked for. `server_says`:
    the last warning the server logged before it exited (`Failed finding TLS support.`), if any."""

    def __init__(self, message: str, server_says: str | None = None) -> None:
        super().__init__(message)
        self.server_says = server_says


SERVER_ENV = "REDIS_SERVER"


def redis_server_binary(explicit: str | None = None) -> str:
    """The server binary to run: `explicit`, else $REDIS_SERVER (any redis-server or valkey-server:
    the test suite runs on whichever it names), else `redis-server` on PATH. LocalClusterError says
    how to get one."""
    wanted = explicit or os.environ.get(SERVER_ENV) or "redis-server"
    found = shutil.which(wanted)
    if found is None:
        raise LocalClusterError(
            f"{wanted} is not installed, not executable or not on PATH: install Redis with "
            "`apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), or point "
            f"{SERVER_ENV} at a redis-server / valkey-server binary"
        )
    return os.path.abspath(found)  # processes are started in their own directory


def server_version(binary: str) -> str:
    """`Redis server v=7.0.15 ...` / `Valkey server v=9.1.2 ...` -> "Redis 7.0.15" / "Valkey 9.1.2"."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    words = out.split()
    version = next((w[2:] for w in words if w.startswith("v=")), "?")
    return f"{words[0] if words else binary} {version}"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_ports() -> range:
    """The kernel's range for the source ports of outgoing connections (Linux; 32768-60999 by default)."""
    try:
        low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


# Ports we hand to servers lie outside the ephemeral range: a port found free there can be taken as
# the source port of any outgoing connection (a test's client, the daemon's) before the server binds
# it, or while a killed node is down before its restart on the same port. Seen: "bind: Address already
# in use" at a cluster's start in CI. Below 10000 sit the usual local services (and 6379).
_PORT_FLOOR = 10000


def free_port(*, offsets: tuple[int, ...] = (0,)) -> int:
    """A loopback port P, outside the ephemeral range, with P + each offset free now (and not
    handed out before by this process)."""
    candidates = _candidates(offsets)
    # Every port handed out counts with its bus port: whether it went to a cluster node is not kept.
    taken = _handed_out_ports | {p + _BUS_PORT_OFFSET for p in _handed_out_ports}
    for _ in range(2000):
        port = random.choice(candidates)
        if any(port + o in taken for o in offsets):
            continue
        if all(_port_free(port + o) for o in offsets):
            _handed_out_ports.add(port)
            return port
    ephemeral = _ephemeral_ports()
    raise LocalClusterError(f"no free loopback port outside the ephemeral range {ephemeral.start}-{ephemeral.stop - 1}")


@functools.cache
def _candidates(offsets: tuple[int, ...]) -> list[int]:
    """Ports P with P + each offset outside the ephemeral range: the same list every time (it took
    ~20 ms to build, for every node of every cluster)."""
    ephemeral = _ephemeral_ports()
    return [p for p in range(_PORT_FLOOR, 65536 - max(offsets)) if all(p + o not in ephemeral for o in offsets)]


def free_port_pair() -> int:
    """A loopback port P such that P and its cluster bus port P+10000 are both free now."""
    return free_port(offsets=(0, _BUS_PORT_OFFSET))


def spawn_server(binary: str, config: Path, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """`binary config args...` in `cwd`, killed by the kernel when the starting thread's process dies.

    Its own process group: a Ctrl-C in the terminal reaches the daemon, which stops the nodes after
    its own shutdown, instead of every node at once while the daemon still talks to them.

    Refused while REDIS_ORCHESTRATOR_NO_SERVERS is set: the test suite sets it for tests not marked
    `live`, so `pytest -m "not live"` really starts no server (its subprocesses inherit it)."""
    if os.environ.get("REDIS_ORCHESTRATOR_NO_SERVERS"):
        raise LocalClusterError(
            f"REDIS_ORCHESTRATOR_NO_SERVERS is set: not starting {binary} (a test that starts servers is marked live)"
        )
    return subprocess.Popen(
        [binary, str(config), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        process_group=0,
    )


def wait_answers(node: LocalNode, binary: str, timeout: float, log_name: str = "redis.log") -> None:
    """Until `node` answers PING (LOADING is not an answer yet). LocalClusterError with the end of
    its log, and its last warning as `server_says`, when the process exits first."""

    def answers() -> bool:
        if not node.running():
            log = node.directory / log_name
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            # Log lines are `pid:role dd Mon yyyy hh:mm:ss.mmm <level> text`; `#` marks a warning.
            warnings = [line.split(" # ", 1)[1] for line in tail.splitlines() if " # " in line]
            raise LocalClusterError(
                f"{binary} on port {node.port} exited early:\n{tail}", warnings[-1] if warnings else None
            )
        try:
            with node.client(socket_timeout=0.5, socket_connect_timeout=0.5) as c:
                return bool(c.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        except redis.ResponseError as exc:  # LOADING and the like: up, not ready yet
            return "LOADING" not in str(exc)

    wait_until(answers, timeout, f"{node.address} to answer PING")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 50 ms; LocalClusterError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise LocalClusterError(f"timed out after {timeout:.0f}s waiting for {what}")


def release_port(port: int) -> None:
    """Give a port from free_port_pair back once its process is stopped."""
    _handed_out_ports.discard(port)


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL (after SIGCONT: a frozen process cannot act on signals) and reap."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGCONT)
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the kernel kills the child when the process that started it exits,
    # so a test run killed with SIGKILL leaves no redis-server behind.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


@dataclass(frozen=True)
class LocalTLS:
    """Certificates for a TLS cluster: the server's certificate and key, the CA that signed them and
    that clients are checked against; client_auth is redis' `tls-auth-clients` (yes|no|optional).
    (tests/certs.py makes throwaway ones.)"""

    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    client_auth: str = "optional"

    def server_config(self) -> list[str]:
        return [
            f'tls-cert-file "{self.cert_file}"',
            f'tls-key-file "{self.key_file}"',
            f'tls-ca-cert-file "{self.ca_file}"',
            f"tls-auth-clients {self.client_auth}",
            "tls-cluster yes",
            "tls-replication yes",
        ]

    def client_kwargs(self) -> dict[str, Any]:
        """redis-py arguments for the cluster's own admin connections (CA verified)."""
        kwargs: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(self.ca_file), "ssl_check_hostname": False}
        if self.client_cert_file and self.client_key_file:
            kwargs["ssl_certfile"] = str(self.client_cert_file)
            kwargs["ssl_keyfile"] = str(self.client_key_file)
        return kwargs


@dataclass(eq=False)
class LocalNode:
    """One redis-server process of a LocalCluster. Its directory keeps nodes.conf across restarts."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""
    extra_config: tuple[str, ...] = ()
    client_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, **overrides: Any) -> redis.Redis:
        kwargs: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 2}
        kwargs.update(self.client_kwargs)
        kwargs.update(overrides)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def role(self) -> str:
        with self.client() as c:
            info = c.info("replication")
        return "primary" if info["role"] == "master" else "replica"

    def __repr__(self) -> str:
        return f"LocalNode({self.address})"


class LocalCluster:
    """Start and stop a Redis Cluster of local processes (harness/chaos.py breaks them).

    >>> with LocalCluster(primaries=3, replicas_per_primary=1) as cluster:
    ...     cluster.seeds  # ["127.0.0.1:PORT", ...]
    """

    def __init__(
        self,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        node_timeout_ms: int = 2000,
        extra_config: Sequence[str] = (),
        client_kwargs: dict[str, Any] | None = None,
        log: Callable[[str], None] | None = None,
        launcher: Callable[[LocalNode, Path], Any] | None = None,
        tls: LocalTLS | None = None,
        server: str | None = None,
    ) -> None:
        if primaries < 1:
            raise ValueError("a cluster needs at least one primary")
        self.primaries_count = primaries
        self.replicas_per_primary = replicas_per_primary
        self.node_timeout_ms = node_timeout_ms
        self.extra_config = tuple(extra_config)
        # With `tls`, nodes listen on TLS only (port 0, tls-port, tls-cluster, tls-replication) and
        # our admin connections verify them against its CA.
        self.tls = tls
        self.client_kwargs = {**(tls.client_kwargs() if tls is not None else {}), **(client_kwargs or {})}
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="redis-orch-cluster-"))
        self.nodes: list[LocalNode] = []
        self._log = log or (lambda _msg: None)
        # A launcher runs the node some other way (tests/docker_backend.py: a container on the host
        # network); it returns an object with Popen's poll/send_signal/kill/wait/pid.
        self._launcher = launcher
        # `server`: the binary (redis-server, valkey-server...); default $REDIS_SERVER or redis-server.
        self.binary = redis_server_binary(server) if launcher is None else "redis-server"
        _live_clusters.add(self)

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def seeds(self) -> list[str]:
        return [node.address for node in self.nodes]

    def start(self, timeout: float = 30.0) -> LocalCluster:
        try:
            total = self.primaries_count * (1 + self.replicas_per_primary)
            for _ in range(total):
                self.nodes.append(self._spawn_new_node())
            for node in self.nodes:
                self._wait_ping(node, timeout)
                node.node_id = self._myid(node)
            self._assign_slots()
            self._meet_all()
            self._wait(lambda: self._all_know_each_other(), timeout, "nodes to meet")
            for index, replica in enumerate(self.nodes[self.primaries_count :]):
                primary = self.nodes[index % self.primaries_count]
                self._replicate(replica, primary, timeout)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self._log(f"local cluster up: {', '.join(self.seeds)} (data in {self.base_dir})")
        return self

    def stop(self) -> None:
        for node in self.nodes:
            self._terminate(node)
        for node in self.nodes:
            _handed_out_ports.discard(node.port)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        _live_clusters.discard(self)

    # ----------------------------------------------------------------- queries

    def primaries(self) -> list[LocalNode]:
        return [n for n in self.nodes if n.running() and n.role() == "primary"]

    def replicas(self) -> list[LocalNode]:
        return [n for n in self.nodes if n.running() and n.role() == "replica"]

    def node_at(self, address: str) -> LocalNode:
        for node in self.nodes:
            if node.address == address:
                return node
        raise KeyError(address)

    def replicas_of(self, primary: LocalNode) -> list[LocalNode]:
        result = []
        for node in self.nodes:
            if node is primary or not node.running():
                continue
            with node.client() as c:
                info = c.info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == primary.port:
                result.append(node)
        return result

    # ----------------------------------------------------------------- waiting

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every running node: cluster_state ok, sees every running node, replica links up."""
        self._wait(self._healthy, timeout, "cluster to become healthy")

    def _healthy(self) -> bool:
        running = [n for n in self.nodes if n.running()]
        try:
            for node in running:
                with node.client(socket_timeout=1) as c:
                    info = c.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if "cluster_state:ok" not in text:
                        return False
                    repl = c.info("replication")
                    if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                        return False
                    lines = _nodes_lines(c)
                    connected = [ln for ln in lines if "fail" not in ln.split()[2]]
                    if len(connected) < len(running):
                        return False
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False
        return True

    def _all_know_each_other(self) -> bool:
        running = [n for n in self.nodes if n.running()]
        try:
            for node in running:
                with node.client(socket_timeout=1) as c:
                    lines = _nodes_lines(c)
                    handshaking = [ln for ln in lines if "handshake" in ln.split()[2]]
                    if handshaking or len(lines) < len(running):
                        return False
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        return True

    @staticmethod
    def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
        wait_until(predicate, timeout, what)

    # ----------------------------------------------------------------- internals

    def _spawn_new_node(self) -> LocalNode:
        port = free_port_pair()
        directory = self.base_dir / str(port)
        directory.mkdir(parents=True, exist_ok=True)
        node = LocalNode(
            port=port, directory=directory, extra_config=self.extra_config, client_kwargs=self.client_kwargs
        )
        node.process = self._launch(node)
        return node

    def _launch(self, node: LocalNode) -> subprocess.Popen[bytes]:
        ports = [f"port {node.port}"] if self.tls is None else ["port 0", f"tls-port {node.port}"]
        config = [
            *ports,
            *(self.tls.server_config() if self.tls is not None else []),
            "bind 127.0.0.1",
            "protected-mode no",
            "daemonize no",
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {self.node_timeout_ms}",
            # Replicas serve reads while their primary is being failed over, like production.
            "cluster-allow-reads-when-down yes",
            'save ""',
            "appendonly no",
            f'dir "{node.directory}"',
            f'logfile "{node.directory / "redis.log"}"',
            *node.extra_config,
        ]
        conf = node.directory / "redis.conf"
        conf.write_text("\n".join(config) + "\n")
        if self._launcher is not None:
            return self._launcher(node, conf)  # type: ignore[no-any-return]
        return spawn_server(self.binary, conf, node.directory)

    def _terminate(self, node: LocalNode) -> None:
        process = node.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)  # a frozen node cannot act on SIGTERM
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def _wait_ping(self, node: LocalNode, timeout: float) -> None:
        wait_answers(node, self.binary, timeout)

    @staticmethod
    def _myid(node: LocalNode) -> str:
        with node.client() as c:
            value = c.execute_command("CLUSTER", "MYID")
        return value.decode() if isinstance(value, bytes) else str(value)

    def _assign_slots(self) -> None:
        primaries = self.nodes[: self.primaries_count]
        per = CLUSTER_SLOTS // len(primaries)
        for index, node in enumerate(primaries):
            start = index * per
            end = CLUSTER_SLOTS - 1 if index == len(primaries) - 1 else start + per - 1
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
                # Distinct epochs avoid the slow epoch-collision dance on a fresh cluster.
                c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)

    def _meet_all(self) -> None:
        first = self.nodes[0]
        with first.client() as c:
            for node in self.nodes[1:]:
                c.execute_command("CLUSTER", "MEET", node.host, node.port)

    def _replicate(self, replica: LocalNode, primary: LocalNode, timeout: float) -> None:
        def replicated() -> bool:
            try:
                with replica.client() as c:
                    c.execute_command("CLUSTER", "REPLICATE", primary.node_id)
            except redis.ResponseError as exc:
                # "Unknown node": gossip has not told this node about the primary yet.
                if "Unknown node" in str(exc):
                    return False
                raise
            return True

        self._wait(replicated, timeout, f"{replica.address} to replicate {primary.address}")


def serves_slot(node: LocalNode, slot: int) -> bool:
    """Whether `node` itself says it serves `slot` (its `myself` line in CLUSTER NODES)."""
    with node.client() as c:
        mine = next(line for line in _nodes_lines(c) if "myself" in line.split()[2])
    return any(_in_range(token, slot) for token in mine.split()[8:])


def sees_slot_served(viewer: LocalNode, slot: int, owner: LocalNode) -> bool:
    """Whether `viewer` sees `owner` serving `slot`."""
    with viewer.client() as c:
        line = next((ln for ln in _nodes_lines(c) if ln.split()[0] == owner.node_id), "")
    return any(_in_range(token, slot) for token in line.split()[8:])


def _in_range(token: str, slot: int) -> bool:
    if token.startswith("["):
        return False
    start, _, end = token.partition("-")
    return int(start) <= slot <= int(end or start)


def _nodes_lines(client: redis.Redis) -> list[str]:
    raw = client.execute_command("CLUSTER", "NODES")
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(raw, dict):  # some redis-py versions parse CLUSTER NODES into a dict
        return [f"{v.get('node_id', '')} {k} {v.get('flags', '')}" for k, v in raw.items()]
    return [line for line in str(raw).splitlines() if line.strip()]


@atexit.register
def _stop_all_clusters() -> None:
    for cluster in list(_live_clusters):
        cluster.stop()
