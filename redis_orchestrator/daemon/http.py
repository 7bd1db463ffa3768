"""The metrics endpoint: /metrics, /healthz, /readyz on a stdlib HTTP server in a daemon thread.

It never runs on the asyncio loop, so a slow scrape cannot delay a reconcile, and a stuck loop still
answers /healthz (the process is up) while /readyz tells whether the daemon is doing its job:

    GET /healthz  -> 200 ok
    GET /readyz   -> 200 ready | 503 catalog not loaded yet
    GET /metrics  -> Prometheus text format (OpenMetrics when the scraper asks for it)

`ready` is called on the server thread: it must only read a value the event loop publishes (the
daemon's `Readiness` snapshot), never walk the loop's own structures.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from redis_orchestrator import logs
from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.daemon.readiness import Readiness

Ready = Callable[[], Readiness]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, ready: Ready) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.registry = registry
        self.ready = ready
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(200, encoder(self.server.registry), content_type)
        elif path == "/healthz":
            self._reply(200, b"ok\n")
        elif path == "/readyz":
            try:
                ready, reason = self.server.ready()
            except Exception as exc:  # a broken probe must answer 503, not drop the connection
                ready, reason = False, f"readiness check failed: {exc}"
            self._reply(200 if ready else 503, f"{reason or ('ready' if ready else 'not ready')}\n".encode())
        elif path == "/":
            self._reply(200, b"redis-orchestrator: /metrics /healthz /readyz\n")
        else:
            self._reply(404, b"not found: try /metrics, /healthz or /readyz\n")

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape would drown the daemon's own events


class MetricsServer:
    """`MetricsServer("127.0.0.1:0", registry, ready).start()`; `.port` is the port bound."""

    def __init__(self, listen: str, registry: CollectorRegistry, ready: Ready) -> None:
        self.listen = listen
        self.registry = registry
        self.ready = ready
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("MetricsServer is not started")
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind now (so a taken port fails at start, with an OSError naming it) and serve in a thread."""
        try:
            host, port = parse_address(self.listen, allow_any_port=True)
        except ValueError as exc:
            raise ValueError(f"metrics.listen: {exc}") from exc
        try:
            self._server = _Server((host, port), self.registry, self.ready)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {self.listen} (metrics.listen): {exc.strerror}") from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics-http", daemon=True
        )
        self._thread.start()
        logs.event("metrics_listening", listen=f"{host}:{self.port}")

    async def serve(self) -> None:
        """Serve until cancelled (the daemon's task group); a port that cannot be bound is logged
        once and the daemon goes on without metrics."""
        try:
            self.start()
        except (OSError, ValueError) as exc:
            logs.error("metrics_unavailable", str(exc))
            return
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(self.close)  # shutdown() waits for the serving thread's poll

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
