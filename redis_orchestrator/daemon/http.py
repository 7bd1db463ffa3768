"""The metrics endpoint: /metrics, /healthz, /readyz, served by an asyncio server on a thread of its
own, locked (or not) by the web config file (web_config.py: TLS, basic auth, headers).

It never runs on the daemon's event loop, so a slow scrape cannot delay a reconcile, and a stuck
daemon loop still gets an answer: /healthz says whether the daemon's loops make progress (the
watchdog's signal, daemon/health.py), /readyz whether the daemon is doing its job.

    GET /healthz  -> 200 ok | 503 daemon loops silent for 7.1s
    GET /readyz   -> 200 ready | 503 catalog not loaded yet (or the /healthz reason)
    GET /metrics  -> Prometheus text format (OpenMetrics when the scraper asks for it)
    HEAD          -> the same status and headers, no body; other methods 405

What a request looks like on the wire (one per connection at a time, kept alive between scrapes):

    GET /metrics HTTP/1.1\\r\\n
    Host: 10.0.0.5:9840\\r\\n
    Authorization: Basic cHJvbWV0aGV1czpzZWNyZXQ=\\r\\n
    Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\\r\\n
    \\r\\n

What hostile or broken clients get, so that none can take the endpoint (or the daemon) down:
- every connection costs a socket and a few kilobytes, never a thread; at most `max_connections`
  are open (a quarter of the descriptor limit, at most 4,096); when full, the client address that
  holds the most connections makes room for the newcomer: its connection idle the longest (between
  requests, or still sending its first) is closed. A scraper, one or two connections from its own
  address, is never the one to go while someone else holds hundreds;
- a request head must arrive whole within `head_timeout` (a one-byte-a-second client is closed),
  a TLS handshake within `handshake_timeout`, a reply must be taken within `write_timeout`;
- plain HTTP on the TLS port gets 400 ("Client sent an HTTP request to an HTTPS server"), like Go;
- resets, broken handshakes and timeouts are counted (redis_orchestrator_http_connections_dropped_total)
  and never logged as tracebacks; repeated refusals are logged at most once a minute;
- /metrics is rendered on a worker thread; scrapes that arrive while one renders share its result,
  so a fleet of scrapers costs one render at a time; bcrypt checks are bounded (http_auth.py).

`ready` and `health` are called on this server's thread: they must only read values the daemon's
loop publishes (the Readiness snapshot, LoopHealth's heartbeat and pass count).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import choose_encoder

from redis_orchestrator import logs
from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.daemon.http_auth import BasicAuth, Verdict
from redis_orchestrator.daemon.reload import ReloadResult, off_the_loop
from redis_orchestrator.daemon.waiting import wait_event
from redis_orchestrator.daemon.web_config import PLAIN, WebConfig, WebConfigFile
from redis_orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from redis_orchestrator.daemon.metrics import Metrics

Ready = Callable[[], tuple[bool, str]]  # readiness.Readiness: whether the daemon does its job, and why not
Health = Callable[[], tuple[bool, str]]  # health.LoopHealth.check: whether its loops make progress

PATHS = ("/metrics", "/healthz", "/readyz", "/")  # request counts are labelled by these, or "other"
WATCH_INTERVAL = 1.0  # how often the web config file and its certificates are looked at
_LOG_EVERY = 60.0  # a repeated refusal (wrong password, full, out of descriptors): one line a minute
_TEXT = "text/plain; charset=utf-8"
_PLAIN_ON_TLS = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)


class DropReason(enum.StrEnum):
    """Why the server closed a connection without answering a request on it: the values of
    redis_orchestrator_http_connections_dropped_total{reason}."""

    TIMEOUT = "timeout"  # no whole request head within head_timeout, or a reply not taken in time
    EVICTED = "evicted"  # idle, and closed to make room for a new connection
    REFUSED = "refused"  # full of busy connections: the new one is closed at once
    TLS_FAILED = "tls_failed"  # the handshake failed (no or an untrusted client certificate, old TLS)
    PLAIN_HTTP = "plain_http"  # plain HTTP on the TLS port: answered 400
    RESET = "reset"  # the client went away mid-request
    TOO_LARGE = "too_large"  # a request head over max_head_bytes: answered 431
    MALFORMED = "malformed"  # not an HTTP/1.x request: answered 400


def _descriptor_share() -> int:
    """A quarter of the soft descriptor limit, between 32 and 4,096: the rest stays for the daemon's
    own connections to the nodes (a few per node), files and the bcrypt and render threads."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(32, min(4096, soft // 4))


@dataclass(frozen=True)
class HttpLimits:
    max_connections: int = field(default_factory=_descriptor_share)
    head_timeout: float = 10.0  # from the connection's start (or the end of its last reply) to a whole request head
    handshake_timeout: float = 10.0
    write_timeout: float = 30.0
    max_head_bytes: int = 16 * 1024
    backlog: int = 4096  # the kernel caps it at net.core.somaxconn (4096 on current kernels)


class BadRequest(ValueError):
    pass


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: Mapping[str, str]  # names lower-cased

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"

    @property
    def has_body(self) -> bool:
        """A body we will not read: the connection is closed after the reply."""
        return "transfer-encoding" in self.headers or self.headers.get("content-length", "0") not in ("", "0")


def parse_head(head: bytes) -> Request:
    """The request line and headers (up to and with the blank line); BadRequest if it is not HTTP/1.x."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not parts[0].isalpha():
        raise BadRequest(f"not an HTTP/1.x request line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(f"malformed header line: {line[:80]!r}")
        headers[name.lower()] = value.strip()
    return Request(parts[0], parts[1], parts[2], headers)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False

    def encode(self, head_only: bool, extra: tuple[tuple[str, str], ...]) -> bytes:
        lines = [
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            *(f"{name}: {value}" for name, value in (*extra, *self.headers)),
        ]
        if self.close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + self.body


def text(status: int, message: str, **kwargs: Any) -> Response:
    return Response(status, f"{message}\n".encode(), **kwargs)


_UNAUTHORIZED = text(
    401, "unauthorized", headers=(("WWW-Authenticate", 'Basic realm="redis-orchestrator", charset="UTF-8"'),)
)
_RETRY = (("Retry-After", "1"),)
_BUSY_ANSWERS = {
    Verdict.BUSY_CLIENT: text(429, "too many password checks from this address; retry later", headers=_RETRY),
    Verdict.BUSY: text(503, "too many password checks waiting; retry later", headers=_RETRY),
}


class _Every:
    """A repeated event, logged at most once per `period` with how many happened since."""

    def __init__(self, period: float = _LOG_EVERY) -> None:
        self.period = period
        self._last = -period
        self._count = 0

    def hit(self) -> int | None:
        self._count += 1
        now = time.monotonic()
        if now - self._last < self.period:
            return None
        count, self._count, self._last = self._count, 0, now
        return count


class _Client:
    """One client address: its open connections, and those idle, oldest first."""

    __slots__ = ("address", "idle", "open")

    def __init__(self, address: str) -> None:
        self.address = address
        self.open = 0
        self.idle: dict[_Connection, None] = {}


class _Connection:
    __slots__ = ("client", "evicted", "sock", "task", "writer")

    def __init__(self, sock: socket.socket, client: _Client) -> None:
        self.sock = sock
        self.client = client
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.evicted = False


class _Endpoint:
    """Runs on the server's thread and its own event loop: accepts, reads, answers, watches the file."""

    def __init__(
        self,
        listener: socket.socket,
        metrics: Metrics,
        ready: Ready,
        health: Health,
        config: WebConfig,
        file: WebConfigFile | None,
        limits: HttpLimits,
    ) -> None:
        self.listener = listener
        self.metrics = metrics
        self.ready = ready
        self.health = health
        self.config = config
        self.file = file
        self.limits = limits
        self.auth = BasicAuth(metrics.http_password_checks.inc)
        self.stopping = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self._conns: dict[_Connection, None] = {}
        self._clients: dict[str, _Client] = {}
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-render")
        self._renders: dict[str, asyncio.Future[bytes]] = {}
        self._auth_failures = _Every()
        self._full = _Every()
        self._accept_errors = _Every()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_log_loop_error)
        background = [loop.create_task(self._accept(), name="metrics accept")]
        if self.file is not None:
            background.append(loop.create_task(self._watch(), name="web config watch"))
        try:
            await self.stopping.wait()
        finally:
            for task in background:
                task.cancel()
            self.listener.close()
            conns = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in conns:
                task.cancel()
            await asyncio.gather(*background, *conns, return_exceptions=True)
            self._render_pool.shutdown(wait=False, cancel_futures=True)
            self.auth.close()

    # ------------------------------------------------------------------ connections

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, address = await loop.sock_accept(self.listener)
            except OSError as exc:  # EMFILE / ENFILE: out of descriptors; the kernel keeps the backlog
                if (count := self._accept_errors.hit()) is not None:
                    logs.error("metrics_accept_failed", f"cannot accept connections: {exc.strerror}", times=count)
                await asyncio.sleep(0.1)
                continue
            sock.setblocking(False)
            if len(self._conns) >= self.limits.max_connections and not self._evict_idle():
                self._dropped(DropReason.REFUSED)
                sock.close()
                continue
            host = str(address[0])
            client = self._clients.get(host) or self._clients.setdefault(host, _Client(host))
            conn = _Connection(sock, client)
            client.open += 1
            self._conns[conn] = None
            self._set_idle(conn, True)
            self.metrics.http_open_connections.set(len(self._conns))
            conn.task = loop.create_task(self._serve(conn))
            # Cleanup in a done callback: a task cancelled before it first ran never enters _serve.
            conn.task.add_done_callback(lambda _task, conn=conn: self._closed(conn))  # type: ignore[misc]
            # Let the connections read before the next accept: a burst of new connections must not
            # evict the ones whose request is already waiting in their socket.
            await asyncio.sleep(0)

    def _evict_idle(self) -> bool:
        """Make room: close the connection idle the longest of the address that holds the most
        connections. False when every connection is busy answering."""
        holders = [client for client in self._clients.values() if client.idle]
        if not holders:
            return False
        victim = next(iter(max(holders, key=lambda c: c.open).idle))
        victim.evicted = True
        self._forget(victim)  # at once: its room is the newcomer's, whenever its task gets to close it
        if victim.task is not None:
            victim.task.cancel()
        self._dropped(DropReason.EVICTED)
        if (count := self._full.hit()) is not None:
            logs.warning(
                "metrics_connections_full",
                "closing idle connections to make room for new ones",
                max_connections=self.limits.max_connections,
                times=count,
            )
        return True

    def _set_idle(self, conn: _Connection, idle: bool) -> None:
        conn.client.idle.pop(conn, None)
        if idle:
            conn.client.idle[conn] = None

    async def _serve(self, conn: _Connection) -> None:
        reason: DropReason | None = None
        try:
            reason = await self._converse(conn)
        except TimeoutError:
            reason = DropReason.TIMEOUT
        except ssl.SSLError:
            reason = DropReason.TLS_FAILED
        except (OSError, asyncio.IncompleteReadError):  # ConnectionError included
            reason = DropReason.RESET
        if reason is not None and not conn.evicted:
            self._dropped(reason)

    def _closed(self, conn: _Connection) -> None:
        if conn.writer is not None:
            conn.writer.transport.abort()  # replies are flushed before we get here; no TLS goodbye to wait on
        else:
            conn.sock.close()
        if not conn.evicted:
            self._forget(conn)

    def _forget(self, conn: _Connection) -> None:
        del self._conns[conn]
        client = conn.client
        client.idle.pop(conn, None)
        client.open -= 1
        if not client.open:
            del self._clients[client.address]
        self.metrics.http_open_connections.set(len(self._conns))

    async def _converse(self, conn: _Connection) -> DropReason | None:
        """Requests on one connection until it closes; the reason when the server dropped it."""
        config = self.config  # a reload applies to the next connections
        limits = self.limits
        if config.ssl_context is not None:
            async with asyncio.timeout(limits.head_timeout):
                first = await _peek(conn.sock)
            if not first:
                return None  # closed before a word: a port probe
            if first[:1] != b"\x16":  # not a TLS handshake record: plain HTTP
                reader, conn.writer = await self._streams(conn.sock, None)
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await reader.readuntil(b"\r\n\r\n")  # read it, so closing sends FIN, not RST
                await self._send(conn.writer, _PLAIN_ON_TLS)
                return DropReason.PLAIN_HTTP
        try:
            reader, conn.writer = await self._streams(conn.sock, config.ssl_context)
        except OSError:  # SSLError, ConnectionError and TimeoutError included
            return DropReason.TLS_FAILED if config.ssl_context is not None else DropReason.RESET
        writer = conn.writer
        while True:
            self._set_idle(conn, True)
            try:
                async with asyncio.timeout(limits.head_timeout):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                return DropReason.RESET if exc.partial else None  # a clean close between requests
            except asyncio.LimitOverrunError:
                await self._send(writer, text(431, "request head too large", close=True).encode(False, config.headers))
                return DropReason.TOO_LARGE
            self._set_idle(conn, False)
            try:
                request = parse_head(head)
            except BadRequest as exc:
                await self._send(writer, text(400, str(exc), close=True).encode(False, config.headers))
                return DropReason.MALFORMED
            response = await self._answer(request, config, conn.client.address)
            if not request.keep_alive or request.has_body:
                response = dataclasses.replace(response, close=True)
            await self._send(writer, response.encode(request.method == "HEAD", config.headers))
            if response.close:
                return None

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self.limits.write_timeout):
            await writer.drain()

    async def _streams(
        self, sock: socket.socket, context: ssl.SSLContext | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.limits.max_head_bytes, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.connect_accepted_socket(
            lambda: protocol,
            sock,
            ssl=context,
            ssl_handshake_timeout=self.limits.handshake_timeout if context is not None else None,
        )
        transport.set_write_buffer_limits(high=0)  # drain() returns once the reply is all sent
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def _dropped(self, reason: DropReason) -> None:
        self.metrics.http_connections_dropped.labels(reason).inc()

    # ------------------------------------------------------------------ answers

    async def _answer(self, request: Request, config: WebConfig, client: str) -> Response:
        path = request.path
        if request.method not in ("GET", "HEAD"):
            response = text(405, "method not allowed: GET or HEAD", headers=(("Allow", "GET, HEAD"),))
        else:
            refused = await self._authenticate(request, config, client) if config.users else None
            response = refused if refused is not None else await self._route(path, request)
        self.metrics.http_requests.labels(path if path in PATHS else "other", str(response.status)).inc()
        return response

    async def _authenticate(self, request: Request, config: WebConfig, client: str) -> Response | None:
        verdict = await self.auth.check(config.users, request.headers.get("authorization"), client)
        if verdict is Verdict.OK:
            return None
        if verdict is not Verdict.MISSING and (count := self._auth_failures.hit()) is not None:
            logs.warning(
                "metrics_auth_failed",
                "requests refused for wrong credentials or too many password checks",
                client=client,
                times=count,
            )
        return _BUSY_ANSWERS.get(verdict, _UNAUTHORIZED)

    async def _route(self, path: str, request: Request) -> Response:
        if path == "/metrics":
            return await self._metrics(request.headers.get("accept", ""))
        if path == "/healthz":
            healthy, reason = self._health()
            return text(200, "ok") if healthy else text(503, reason)
        if path == "/readyz":
            healthy, reason = self._health()
            if not healthy:
                return text(503, f"not ready: {reason}")
            try:
                ready, why = self.ready()
            except Exception as exc:  # a broken probe must answer 503, not drop the connection
                ready, why = False, f"readiness check failed: {exc}"
            return text(200 if ready else 503, why or ("ready" if ready else "not ready"))
        if path == "/":
            return text(200, "redis-orchestrator: /metrics /healthz /readyz")
        return text(404, "not found: try /metrics, /healthz or /readyz")

    def _health(self) -> tuple[bool, str]:
        try:
            return self.health()
        except Exception as exc:
            return False, f"health check failed: {exc}"

    async def _metrics(self, accept: str) -> Response:
        """Render on the worker thread; a scrape arriving while a render of the same format runs
        shares it (a fleet of scrapers costs one render at a time, never a queue of them)."""
        encoder, content_type = choose_encoder(accept)
        flight = self._renders.get(content_type)
        if flight is None:
            flight = asyncio.get_running_loop().run_in_executor(self._render_pool, encoder, self.metrics.registry)
            self._renders[content_type] = flight
            flight.add_done_callback(lambda _done: self._renders.pop(content_type, None))
        try:
            body = await asyncio.shield(flight)
        except Exception as exc:
            logs.error("metrics_render_failed", f"collecting the metrics failed: {exc!r}")
            return text(500, "collecting the metrics failed (see the daemon's log)")
        return Response(200, body, content_type)

    # ------------------------------------------------------------------ the web config, live

    async def _watch(self) -> None:
        assert self.file is not None
        while True:
            await wait_event(self.reload_requested, WATCH_INTERVAL)
            requested = self.reload_requested.is_set()
            self.reload_requested.clear()
            if requested or self.file.changed():
                await self.reload("SIGHUP" if requested else "file changed")

    async def reload(self, reason: str) -> ReloadResult:
        """Read the file again (off this loop: nothing stalls answers); keep the running config when
        the new one is broken, saying why."""
        assert self.file is not None
        try:
            config = await off_the_loop(self.file.load, f"reading {self.file.path}")
        except (ConfigError, TimeoutError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            logs.error(
                "web_config_rejected",
                f"keeping the running web config ({self.config.summary}); " + " | ".join(problems),
                file=str(self.file.path),
            )
            self.metrics.web_config_reloads.labels(ReloadResult.REJECTED).inc()
            return ReloadResult.REJECTED
        # Swapped even when equal: the certificate behind an unchanged path may be new.
        result = ReloadResult.UNCHANGED if config == self.config else ReloadResult.ACCEPTED
        self.config = config
        self.metrics.web_config_reloads.labels(result).inc()
        logs.event("web_config_reloaded", reason=reason, result=result, web=config.summary, file=str(self.file.path))
        return result


async def _peek(sock: socket.socket) -> bytes:
    """The first byte the client sent, left in the socket (b"" when it closed first)."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await readable
    finally:
        loop.remove_reader(sock.fileno())
    return sock.recv(1, socket.MSG_PEEK)


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """What asyncio would print with a traceback: one line in the daemon's log format instead."""
    error = context.get("exception")
    logs.warning("metrics_http_error", str(context.get("message", "")), error=repr(error) if error else None)


def _always_healthy() -> tuple[bool, str]:
    return True, "ok"


class MetricsServer:
    """`MetricsServer("127.0.0.1:0", metrics, ready).start()`; `.port` is the port bound.

    `health`: whether the daemon's loops progress (LoopHealth.check); `web_config`: what the endpoint
    enforces, as read at start from `web_file` (watched from then on; None: plain, nothing watched)."""

    def __init__(
        self,
        listen: str,
        metrics: Metrics,
        ready: Ready,
        *,
        health: Health = _always_healthy,
        web_config: WebConfig = PLAIN,
        web_file: WebConfigFile | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self.listen = listen
        self.metrics = metrics
        self.ready = ready
        self.health = health
        self.web_config = web_config
        self.web_file = web_file
        self.limits = limits if limits is not None else HttpLimits()
        self._listener: socket.socket | None = None
        self._endpoint: _Endpoint | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("MetricsServer is not started")
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        """Where /metrics is, as the starting line shows it (the scheme follows the web config)."""
        scheme = "https" if self.web_config.tls is not None else "http"
        return f"{scheme}://{self.listen}/metrics"

    def start(self) -> None:
        """Bind now (so a taken port fails at start, with an OSError naming it) and serve in a thread."""
        try:
            host, port = parse_address(self.listen, allow_any_port=True)
        except ValueError as exc:
            raise ValueError(f"metrics.listen: {exc}") from exc
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(self.limits.backlog)
        except OSError as exc:
            listener.close()
            raise OSError(exc.errno, f"cannot listen on {self.listen} (metrics.listen): {exc.strerror}") from exc
        listener.setblocking(False)
        self._listener = listener
        self._loop = asyncio.new_event_loop()
        self._endpoint = _Endpoint(
            listener, self.metrics, self.ready, self.health, self.web_config, self.web_file, self.limits
        )
        self._thread = threading.Thread(target=self._run, name="metrics-http", daemon=True)
        self._thread.start()
        logs.event(
            "metrics_listening",
            listen=f"{host}:{self.port}",
            web=self.web_config.summary,
            web_config=str(self.web_file.path) if self.web_file is not None else None,
            max_connections=self.limits.max_connections,
        )

    def _run(self) -> None:
        assert self._loop is not None and self._endpoint is not None
        try:
            self._loop.run_until_complete(self._endpoint.run())
        finally:
            self._loop.close()

    def request_reload(self) -> None:
        """SIGHUP: read the web config file again (thread-safe; a no-op without one)."""
        if self._loop is not None and self._endpoint is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._endpoint.reload_requested.set)

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
            await asyncio.to_thread(self.close)

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        assert self._loop is not None and self._endpoint is not None
        with contextlib.suppress(RuntimeError):  # the loop already ended
            self._loop.call_soon_threadsafe(self._endpoint.stopping.set)
        thread.join(timeout=5)
