"""The metrics endpoint against hostile and broken clients, in miniature (a handful of connections,
timeouts of a fraction of a second; tests/test_http_under_siege.py does it at scale against the
daemon): what each gets, counted, and that scrapes go on meanwhile."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.helpers import wait_for
from redis_orchestrator import logs
from redis_orchestrator.daemon.http import HttpLimits, parse_head
from redis_orchestrator.daemon.metrics import Metrics
from tests.http_endpoint import PASSWORD, USER, hashed, raw, request, sample, served, write_web_config

DROPPED = "redis_orchestrator_http_connections_dropped_total"


@contextlib.contextmanager
def json_log() -> Iterator[io.StringIO]:
    """The package's log as `--log-format json` writes it, into a buffer."""
    stream = io.StringIO()
    logs.setup("json")
    handler = logging.getLogger("redis_orchestrator").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream


def test_request_heads_are_parsed_and_anything_else_is_refused() -> None:
    request = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\nAccept: */*\r\n\r\n")
    assert (request.method, request.path, request.keep_alive, request.has_body) == ("GET", "/metrics", False, False)
    assert parse_head(b"GET / HTTP/1.0\r\n\r\n").keep_alive is False
    assert parse_head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n").has_body
    with pytest.raises(ValueError, match=r"not an HTTP/1\.x request line"):
        parse_head(b"\x16\x03\x01\x02\x00\r\n\r\n")


def test_a_reset_is_counted_and_logs_no_traceback() -> None:
    metrics = Metrics()
    with json_log() as log, served(metrics) as server:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /metr")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST mid-request
        wait_for(lambda: sample(metrics, DROPPED, reason="reset") == 3, 5, "three resets counted")
        assert request(server.port, "/healthz").status == 200
        assert b"\r\n\r\n" in raw(server.port, b"NOT HTTP\r\n\r\n")  # answered 400 and closed
        oversized = raw(server.port, b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n")
        assert oversized.startswith(b"HTTP/1.1 431 ")
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert all("traceback" not in line for line in lines), lines
    assert sample(metrics, DROPPED, reason="malformed") == 1 and sample(metrics, DROPPED, reason="too_large") == 1


def test_idle_and_slow_clients_are_closed_while_scrapes_go_on() -> None:
    metrics = Metrics()
    limits = HttpLimits(max_connections=8, head_timeout=0.5)
    with served(metrics, limits=limits) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
        stop = threading.Event()
        loris_closed = threading.Event()

        def slow_loris() -> None:
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                try:
                    for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200:
                        if stop.is_set():
                            return
                        sock.sendall(bytes([byte]))
                        time.sleep(0.05)
                except OSError:
                    loris_closed.set()

        loris = threading.Thread(target=slow_loris, daemon=True)
        loris.start()
        try:
            scrapes = [request(server.port).status for _ in range(10)]
            assert scrapes == [200] * 10
            wait_for(loris_closed.is_set, 10, "the slow client to be closed")
        finally:
            stop.set()
            loris.join(timeout=5)
            for sock in idle:
                sock.close()
    assert sample(metrics, DROPPED, reason="evicted") >= 12  # 20 idle, room for 8
    assert sample(metrics, DROPPED, reason="timeout") >= 1  # the slow client, and idle ones not evicted
    assert sample(metrics, "redis_orchestrator_http_requests_total", path="/metrics", code="200") == 10


def test_a_flood_of_wrong_passwords_neither_starves_scrapes_nor_runs_unbounded_checks(tmp_path: Path) -> None:
    metrics = Metrics()
    web = write_web_config(tmp_path / "web.yml", users={USER: hashed(PASSWORD, cost=10)})
    with served(metrics, web) as server:
        assert request(server.port, auth=(USER, PASSWORD), source="127.0.0.2").status == 200  # cached from now on
        stop = threading.Event()
        answers: list[int] = []

        def attacker(n: int) -> None:  # three threads per address (two checks at most), four addresses
            i = 0
            while not stop.is_set():
                i += 1
                answers.append(request(server.port, auth=(USER, f"guess-{n}-{i}"), source=f"127.0.1.{n % 4}").status)

        with ThreadPoolExecutor(12) as pool:
            for n in range(12):
                pool.submit(attacker, n)
            try:
                scrapes = []
                for _ in range(20):  # about a second of flood
                    scrapes.append(request(server.port, auth=(USER, PASSWORD), source="127.0.0.2").status)
                    time.sleep(0.05)
            finally:
                stop.set()
    assert scrapes == [200] * 20
    assert 429 in answers and set(answers) <= {401, 429}  # two checks at most per address
    checks = sample(metrics, "redis_orchestrator_http_password_checks_total")
    assert checks == answers.count(401) + 1  # every 401 cost one check, every 429 none
