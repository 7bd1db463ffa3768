"""Faults beyond a clean kill -9: restarts measured to the millisecond, network partitions, slow
links, frozen processes, slow-loris clients. What the fault tests and the restart-tail and soak
benches share.

Two tools, because this kernel has no `tc netem`:

- **Partitions** are DROP rules (packets vanish: a connect waits out its timeout, an open connection
  stalls; nothing is refused) inside a network namespace the test made itself (`Netns`). The
  machine's own namespace, its firewall and its bridges are never touched.
- **Latency, jitter, bandwidth, blackholes and resets** come from a small asyncio TCP proxy
  (`Proxy`, toxiproxy's model: a link per upstream, "toxics" on it, changed while traffic flows).

`Mirror` joins them: a namespace whose loopback answers on every node's own port through a proxy
link to the real node outside. A daemon started inside it (`namespaced`) discovers the cluster at
the addresses the nodes announce (127.0.0.1:PORT) and talks to each node through its link, so a
fault between the daemon and one node is a rule or a toxic on that link, and the cluster itself,
the test's own clients and any other daemon outside see nothing of it.

A socket belongs to the namespace of the thread that created it: the proxy creates its sockets in a
short-lived thread moved into the namespace with setns(2) (ctypes: os.setns is Python 3.12+), then
uses them from its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import itertools
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess
from redis_orchestrator.devcluster.cluster import LocalNode

T = TypeVar("T")

# ---------------------------------------------------------------------------------------- restarts


def polling_client(node: LocalNode) -> redis.Redis:
    """A client for polling a node that may be down: short timeouts and none of redis-py's own
    retries. By default it retries a refused connect 10 times with backoff, inside one ping(): a
    restarted node's first PONG was then seen 160-700 ms late, and a restart tail measured from it
    came out that much too short."""
    return node.client(socket_timeout=0.5, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))


def when_whole(node: LocalNode, shas: set[str], deadline: float) -> tuple[float | None, float | None]:
    """Monotonic times of `node`'s first PONG and of every SHA present (SCRIPT EXISTS every ~2 ms);
    None for what did not happen before `deadline`. LOADING is not an answer yet."""
    first_pong = None
    ordered = sorted(shas)
    while time.monotonic() < deadline:
        try:
            with polling_client(node) as c:
                while time.monotonic() < deadline:
                    if first_pong is None:
                        c.ping()
                        first_pong = time.monotonic()
                    if all(int(f) for f in c.execute_command("SCRIPT", "EXISTS", *ordered)):
                        return first_pong, time.monotonic()
                    time.sleep(0.002)
        except (redis.ConnectionError, redis.TimeoutError):  # LOADING too: BusyLoadingError is one
            time.sleep(0.002)
    return first_pong, None


def first_pong(node: LocalNode, timeout: float = 30) -> float:
    """Monotonic time of `node`'s first PONG (polled every ~2 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with polling_client(node) as c:
                c.ping()
                return time.monotonic()
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.002)
    raise AssertionError(f"{node} gave no PONG within {timeout}s")


def pong_to_whole(node: LocalNode, shas: set[str], timeout: float = 30) -> float:
    """Seconds from `node`'s first PONG to every SHA present, polled on one connection."""
    pong, whole = when_whole(node, shas, time.monotonic() + timeout)
    if pong is None or whole is None:
        raise AssertionError(f"{node} not whole within {timeout}s")
    return whole - pong


class Background:
    """Run `fn` in a thread and keep its result or error. Pollers run there, never the cluster's
    restarts: ChaosCluster's children die with the *thread* that started them (PR_SET_PDEATHSIG)."""

    def __init__(self, fn: Callable[[], T], name: str | None = None) -> None:
        self._outcome: Future[T] = Future()
        self._thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], T]) -> None:
        try:
            self._outcome.set_result(fn())
        except BaseException as exc:
            self._outcome.set_exception(exc)

    def get(self, timeout: float | None = 40) -> T:
        return self._outcome.result(timeout)


def restart_measured(
    cluster: ChaosCluster, node: LocalNode, shas: set[str], *, down_for: float = 0.0, timeout: float = 30
) -> float:
    """kill -9 `node` (if it runs), leave it down `down_for` seconds, start it again on its port and
    directory; seconds from its first PONG to every SHA present."""
    cluster.kill(node)
    time.sleep(down_for)
    poller = Background(lambda: pong_to_whole(node, shas, timeout))
    cluster.restart(node, wait_healthy=False)
    return poller.get(timeout + 1)


# ---------------------------------------------------------------------------------------- namespaces

_CLONE_NEWNET = 0x40000000
_NETNS_DIR = Path("/var/run/netns")
_PREFIX = "ro-fault-"
_counter = itertools.count()


def in_namespace(netns: str | None, fn: Callable[[], T]) -> T:
    """`fn()` run in a thread moved into network namespace `netns` (None: this one). Sockets it
    creates stay in that namespace wherever they are used afterwards."""
    if netns is None:
        return fn()

    def run() -> T:
        fd = os.open(_NETNS_DIR / netns, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns}")
        finally:
            os.close(fd)
        return fn()

    return Background(run, name=f"in {netns}").get(timeout=None)  # a thread of its own: the namespace goes with it


@functools.cache
def namespaces_unavailable() -> str | None:
    """Why this machine cannot run the partition tests (None when it can): they need root, `ip
    netns`, `nsenter` and `iptables` working inside a namespace of their own."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "iptables", "nsenter") if shutil.which(tool) is None]
    if missing:
        return f"not installed: {', '.join(missing)}"
    try:
        with Netns() as probe:
            probe.drop(1)
            probe.heal(1)
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot make a network namespace with a DROP rule here: {exc}"
    return None


class Netns:
    """A network namespace of the test's own (loopback up), its DROP rules, deleted on close.

    Names carry the creating pid (`ro-fault-<pid>-<n>`): a run killed before its cleanup leaves one
    behind, and the next `Netns()` deletes those whose process is gone."""

    def __init__(self) -> None:
        _sweep_stale()
        self.name = f"{_PREFIX}{os.getpid()}-{next(_counter)}"
        _run("ip", "netns", "add", self.name)
        try:
            _run("ip", "-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            _run("ip", "netns", "delete", self.name, check=False)
            raise
        self._dropped: set[int] = set()

    @property
    def prefix(self) -> list[str]:
        """Put before a command line to run it inside the namespace (nsenter execs the command)."""
        return ["nsenter", f"--net={_NETNS_DIR / self.name}"]

    def drop(self, port: int) -> None:
        """Partition: every TCP packet to or from loopback port `port` in this namespace vanishes."""
        if port not in self._dropped:
            for rule in _drop_rules(port):
                self._iptables("-A", *rule)
            self._dropped.add(port)

    def heal(self, port: int) -> None:
        if port in self._dropped:
            for rule in _drop_rules(port):
                self._iptables("-D", *rule)
            self._dropped.discard(port)

    def close(self) -> None:
        _run("ip", "netns", "delete", self.name, check=False)

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _iptables(self, *args: str) -> None:
        _run(*self.prefix, "iptables", "-w", *args)


def _drop_rules(port: int) -> list[tuple[str, ...]]:
    # On loopback every packet passes OUTPUT: the daemon's packets to the port, and the replies from it.
    return [
        ("OUTPUT", "-o", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP"),
        ("OUTPUT", "-o", "lo", "-p", "tcp", "--sport", str(port), "-j", "DROP"),
    ]


def _run(*argv: str, check: bool = True) -> None:
    subprocess.run(argv, check=check, capture_output=True, timeout=30)


def _sweep_stale() -> None:
    if not _NETNS_DIR.is_dir():
        return
    for entry in _NETNS_DIR.iterdir():
        if not entry.name.startswith(_PREFIX):
            continue
        pid = entry.name[len(_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _run("ip", "netns", "delete", entry.name, check=False)


# ---------------------------------------------------------------------------------------- the proxy


@dataclass
class Toxics:
    """What a link does to the bytes crossing it, both ways (toxiproxy's toxics). Changed at any
    time from any thread; each chunk read is judged by the values of the moment."""

    latency: float = 0.0  # seconds added to every chunk
    jitter: float = 0.0  # +- uniform seconds on top of latency (order is kept, as on a TCP stream)
    bandwidth: float | None = None  # bytes per second
    blackhole: bool = False  # bytes read and thrown away; connections stay open, nothing is refused

    def delay(self, size: int) -> float:
        jitter = random.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        transfer = size / self.bandwidth if self.bandwidth else 0.0
        return max(0.0, self.latency + jitter) + transfer


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    netns: str | None = None  # None: the test's own namespace


@dataclass
class Link:
    """One listening endpoint forwarding every connection to one upstream endpoint."""

    listen: Endpoint
    upstream: Endpoint
    toxics: Toxics = field(default_factory=Toxics)
    connections: int = 0  # accepted so far
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _server: asyncio.Server | None = None

    def reset(self) -> None:
        """Abort every open connection with a TCP RST, both sides (toxiproxy's reset_peer). Call it
        through Proxy.reset (the proxy's own thread)."""
        for writer in list(self._open):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self._open.clear()


class Proxy:
    """An asyncio TCP proxy in a thread of its own; `add()` a link, change its `toxics`, `reset()`
    its connections, `close()` everything."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault proxy", daemon=True)
        self._thread.start()
        self.links: list[Link] = []

    def add(self, listen: Endpoint, upstream: Endpoint) -> Link:
        link = Link(listen, upstream)
        listener = in_namespace(listen.netns, lambda: socket.create_server((listen.host, listen.port)))
        self._call(self._serve(link, listener))
        self.links.append(link)
        return link

    def reset(self, link: Link) -> None:
        self._loop.call_soon_threadsafe(link.reset)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def _serve(self, link: Link, listener: socket.socket) -> None:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Cancelled at close(): asyncio's stream callback would print a traceback for it.
            with contextlib.suppress(asyncio.CancelledError):
                await self._forward(link, reader, writer)

        link._server = await asyncio.start_server(accepted, sock=listener)

    async def _shutdown(self) -> None:
        for link in self.links:
            if link._server is not None:
                link._server.close()
            link.reset()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _forward(self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link.connections += 1
        link._open.add(writer)
        try:
            up_reader, up_writer = await self._connect(link.upstream)
        except OSError:
            writer.close()
            link._open.discard(writer)
            return
        link._open.add(up_writer)
        try:
            await asyncio.gather(self._pump(link, reader, up_writer), self._pump(link, up_reader, writer))
        finally:
            for w in (writer, up_writer):
                link._open.discard(w)
                w.close()

    async def _connect(self, upstream: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if upstream.netns is None:
            return await asyncio.open_connection(upstream.host, upstream.port)
        sock = in_namespace(upstream.netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (upstream.host, upstream.port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def _pump(self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction, each chunk delivered at its arrival + the toxics' delay, in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        last_due = 0.0
        try:
            while data := await reader.read(65536):
                if link.toxics.blackhole:
                    continue
                last_due = max(loop.time() + link.toxics.delay(len(data)), last_due)
                queue.put_nowait((last_due, data))
            queue.put_nowait((last_due, b""))  # EOF: after everything before it
            await delivering
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass
        finally:
            delivering.cancel()


# ---------------------------------------------------------------------------------------- the mirror


class Mirror:
    """A namespace in which every node of `cluster` answers at its own address, through a proxy link
    to the real node. A daemon inside (`namespaced`) reaches the cluster only through the links:
    `partition(node)` drops its packets, `links[address].toxics` slows or blackholes them,
    `proxy.reset(link)` resets them. `expose(port)` makes a port inside (the daemon's metrics)
    reachable at the same port outside."""

    def __init__(self, cluster: ChaosCluster) -> None:
        self.netns = Netns()
        self.proxy = Proxy()
        self.links: dict[str, Link] = {}
        try:
            for node in cluster.nodes:
                self.links[node.address] = self.proxy.add(
                    Endpoint(node.host, node.port, self.netns.name), Endpoint(node.host, node.port)
                )
        except BaseException:
            self.close()
            raise

    def partition(self, node: LocalNode) -> None:
        self.netns.drop(node.port)

    def heal(self, node: LocalNode) -> None:
        self.netns.heal(node.port)

    def expose(self, port: int) -> Link:
        return self.proxy.add(Endpoint("127.0.0.1", port), Endpoint("127.0.0.1", port, self.netns.name))

    def namespaced(self, config: Path, *args: str) -> DaemonProcess:
        """`redis-orchestrator run` inside the namespace (stop it like any DaemonProcess)."""
        return DaemonProcess(config, *args, prefix=self.netns.prefix)

    def close(self) -> None:
        self.proxy.close()
        self.netns.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------- clients


class SlowLoris:
    """`count` connections to host:port that each send an HTTP request line and then one header
    byte every `every` seconds, never finishing it: a server that serves one request at a time, or
    has no read timeout per connection, is held by them."""

    def __init__(self, host: str, port: int, count: int = 8, every: float = 1.0) -> None:
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        for _ in range(count):
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            self.sockets.append(sock)
        self._thread = threading.Thread(target=self._drip, args=(every,), name="slow loris", daemon=True)
        self._thread.start()

    def _drip(self, every: float) -> None:
        while not self._stop.wait(every):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()

    def __enter__(self) -> SlowLoris:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def durations_line(label: str, seconds: Sequence[float]) -> str:
    """`label: n=20 min 3 / median 5 / p90 9 / max 40 ms` for a list of durations in seconds."""
    ordered = sorted(seconds)
    if not ordered:
        return f"{label}: no samples"

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return (
        f"{label}: n={len(ordered)} min {ordered[0] * 1000:.0f} / median {at(0.5):.0f} / p90 {at(0.9):.0f} / "
        f"max {ordered[-1] * 1000:.0f} ms"
    )
