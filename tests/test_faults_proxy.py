"""The fault proxy itself (harness/faults.py), against an echo server on loopback: what each toxic
does to the bytes. Pure: no Redis, no namespace; the scenarios that use it are tests/test_faults.py."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.faults import Endpoint, Link, Proxy
from harness.helpers import free_port


@pytest.fixture
def echo() -> Iterator[int]:
    """A loopback echo server (one thread per connection); its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.02)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy resets its connections when it closes
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def link(echo: int) -> Iterator[tuple[Proxy, Link]]:
    with Proxy() as proxy:
        yield proxy, proxy.add(Endpoint("127.0.0.1", free_port()), Endpoint("127.0.0.1", echo))


def round_trip(link: Link, payload: bytes, timeout: float = 5) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", link.listen.port), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got, time.monotonic() - started


def test_a_clean_link_forwards_every_byte(link: tuple[Proxy, Link]) -> None:
    _, forward = link
    payload = bytes(range(256)) * 400
    assert round_trip(forward, payload)[0] == payload
    assert forward.connections == 1


def test_latency_is_paid_each_way_and_order_is_kept(link: tuple[Proxy, Link]) -> None:
    _, forward = link
    forward.toxics.latency, forward.toxics.jitter = 0.05, 0.01
    got, took = round_trip(forward, b"ping" * 1000)
    assert got == b"ping" * 1000
    assert took >= 0.08  # two ways of at least 40 ms: a lower bound, which no noisy neighbour can break


def test_bandwidth_limits_the_bytes_per_second(link: tuple[Proxy, Link]) -> None:
    _, forward = link
    forward.toxics.bandwidth = 200_000
    got, took = round_trip(forward, b"x" * 20_000)
    assert len(got) == 20_000
    assert took >= 0.16  # 20 KB each way at 200 KB/s: 0.1 s each way at least


def test_a_blackhole_keeps_the_connection_and_drops_the_bytes(link: tuple[Proxy, Link]) -> None:
    _, forward = link
    forward.toxics.blackhole = True
    with socket.create_connection(("127.0.0.1", forward.listen.port), timeout=0.2) as sock:
        sock.sendall(b"anyone there?")
        with pytest.raises(TimeoutError):
            sock.recv(1)
    forward.toxics.blackhole = False
    assert round_trip(forward, b"back")[0] == b"back"


def test_reset_aborts_open_connections_with_an_rst(link: tuple[Proxy, Link]) -> None:
    proxy, forward = link
    with socket.create_connection(("127.0.0.1", forward.listen.port), timeout=5) as sock:
        sock.sendall(b"hi")
        assert sock.recv(2) == b"hi"
        proxy.reset(forward)
        with pytest.raises(ConnectionResetError):
            for _ in range(50):  # the RST may land after one more send
                sock.sendall(b"x")
                if not sock.recv(1):
                    break
                time.sleep(0.01)
    assert round_trip(forward, b"new connections work")[0] == b"new connections work"
