"""Connections to single nodes, built from the redis settings (auth, TLS, timeouts).

We always talk to one node at a time with redis-py's asyncio client: cluster-wide helpers route
scripts to primaries only, which is the very gap this project closes. RESP3 is asked for explicitly
so that replies (CLUSTER SHARDS, FUNCTION LIST) parse the same whatever redis-py's default is.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from redis_orchestrator.config import RedisSettings


def client_kwargs(settings: RedisSettings) -> dict[str, Any]:
    """Keyword arguments for redis.Redis / redis.asyncio.Redis. Holds the password: never log it."""
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.timeout,
        "protocol": 3,
        "client_name": "redis-orchestrator",
        # No CLIENT SETINFO on connect (redis-py's default since 5.0): servers >= 7.2 know it and an
        # ACL user without `client|setinfo` gets an ACL LOG entry per connection, but Redis 7.0
        # refuses that ACL rule ("Unknown command"), so one ACL line cannot grant it everywhere.
        # The client name already says who we are; this also saves a command per connection.
        "driver_info": None,
    }
    if settings.username:
        kwargs["username"] = settings.username
    if settings.password is not None:
        kwargs["password"] = settings.password.reveal()
    tls = settings.tls
    if tls.enabled:
        kwargs["ssl"] = True
        # The chain is verified against ca_file (or the system store) unless verify: false. The
        # host name is not: nodes are reached at the addresses CLUSTER SHARDS announces (usually
        # IPs), which node certificates rarely list. docs/operations.md explains the trade-off.
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED if tls.verify else ssl.CERT_NONE
        kwargs["ssl_check_hostname"] = False
        # None (unset) is redis-py's own default for each: no CA file (the system store), no client cert.
        kwargs["ssl_ca_certs"] = tls.ca_file
        kwargs["ssl_certfile"] = tls.cert_file
        kwargs["ssl_keyfile"] = tls.key_file
    return kwargs


def single_connection(settings: RedisSettings, host: str, port: int, **overrides: Any) -> redis.asyncio.Connection:
    """One raw asyncio connection (no pool) with the same auth and TLS as the clients.

    `redis.asyncio.Connection` refuses the `ssl*` arguments: TLS needs `SSLConnection`, which
    `redis.asyncio.Redis` picks by itself but a hand-built connection must choose."""
    kwargs = {**client_kwargs(settings), **overrides}
    if kwargs.pop("ssl", False):
        return redis.asyncio.SSLConnection(host=host, port=port, **kwargs)
    return redis.asyncio.Connection(host=host, port=port, **kwargs)


class Connector:
    """Owns one asyncio client (a small pool) per node address; `aclose()` releases them all."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, int], redis.asyncio.Redis] = {}

    def client(self, host: str, port: int) -> redis.asyncio.Redis:
        key = (host, port)
        if key not in self._clients:
            # No silent retries: a failure must surface at once so the node is marked down and
            # probed on our own cadence, not hidden behind redis-py's backoff.
            self._clients[key] = redis.asyncio.Redis(
                host=host, port=port, retry=Retry(NoBackoff(), 0), **client_kwargs(self.settings)
            )
        return self._clients[key]

    async def drop(self, host: str, port: int) -> None:
        client = self._clients.pop((host, port), None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(redis.RedisError, OSError):
                await client.aclose()


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a failed command, naming auth problems the way the server does."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text or "invalid username-password" in text:
        return f"WRONGPASS: authentication failed ({text}); check redis.username / password_env / password_file"
    if "NOAUTH" in text:
        return f"NOAUTH: the server requires a password ({text}); set redis.password_env or password_file"
    # redis-py strips the error code of the classes it knows (NoPermissionError keeps only
    # "this user has no permissions to run the 'script|load' command"): name it again.
    if isinstance(exc, redis.exceptions.NoPermissionError) or "NOPERM" in text:
        return f"NOPERM: the ACL user lacks a permission ({text}); see deploy/acl/orchestrator.acl"
    if isinstance(exc, redis.TimeoutError):
        return f"timeout: {text}"
    if isinstance(exc, redis.ConnectionError):
        return f"unreachable: {text}"
    return text
