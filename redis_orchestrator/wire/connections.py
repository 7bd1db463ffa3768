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

from redis_orchestrator.config.settings import RedisSettings, Secret, TLSSettings


def client_kwargs(settings: RedisSettings) -> dict[str, Any]:
    """Keyword arguments for redis.Redis / redis.asyncio.Redis. Holds the password: never log it."""
    return _kwargs(settings.timeout, settings.username, settings.password, settings.tls)


def sentinel_kwargs(settings: RedisSettings) -> dict[str, Any]:
    """The same for a Sentinel: its own user, password and TLS (redis.sentinel), the same timeout."""
    sentinel = settings.sentinel
    return _kwargs(settings.timeout, sentinel.username, sentinel.password, sentinel.tls)


def _kwargs(timeout: float, username: str | None, password: Secret | None, tls: TLSSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "protocol": 3,
        "client_name": "redis-orchestrator",
        # No CLIENT SETINFO on connect (redis-py's default since 5.0): servers >= 7.2 know it and an
        # ACL user without `client|setinfo` gets an ACL LOG entry per connection, but Redis 7.0
        # refuses that ACL rule ("Unknown command"), so one ACL line cannot grant it everywhere.
        # The client name already says who we are; this also saves a command per connection.
        "driver_info": None,
    }
    if username:
        kwargs["username"] = username
    if password is not None:
        kwargs["password"] = password.reveal()
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


def single_connection(
    settings: RedisSettings, host: str, port: int, *, sentinel: bool = False, **overrides: Any
) -> redis.asyncio.Connection:
    """One raw asyncio connection (no pool) with the same auth and TLS as the clients (as the
    Sentinel clients with `sentinel`).

    `redis.asyncio.Connection` refuses the `ssl*` arguments: TLS needs `SSLConnection`, which
    `redis.asyncio.Redis` picks by itself but a hand-built connection must choose."""
    kwargs = {**(sentinel_kwargs(settings) if sentinel else client_kwargs(settings)), **overrides}
    if kwargs.pop("ssl", False):
        return redis.asyncio.SSLConnection(host=host, port=port, **kwargs)
    return redis.asyncio.Connection(host=host, port=port, **kwargs)


class Connector:
    """Owns one asyncio client (a small pool) per node address, and one per Sentinel in sentinel
    mode (with the Sentinels' own credentials); `aclose()` releases them all."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, int], redis.asyncio.Redis] = {}
        self._sentinels: dict[tuple[str, int], redis.asyncio.Redis] = {}

    def client(self, host: str, port: int) -> redis.asyncio.Redis:
        key = (host, port)
        if key not in self._clients:
            # No silent retries: a failure must surface at once so the node is marked down and
            # probed on our own cadence, not hidden behind redis-py's backoff.
            self._clients[key] = redis.asyncio.Redis(
                host=host, port=port, retry=Retry(NoBackoff(), 0), **client_kwargs(self.settings)
            )
        return self._clients[key]

    def sentinel(self, host: str, port: int) -> redis.asyncio.Redis:
        key = (host, port)
        if key not in self._sentinels:
            self._sentinels[key] = redis.asyncio.Redis(
                host=host, port=port, retry=Retry(NoBackoff(), 0), **sentinel_kwargs(self.settings)
            )
        return self._sentinels[key]

    async def drop(self, host: str, port: int) -> None:
        client = self._clients.pop((host, port), None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        clients = [*self._clients.values(), *self._sentinels.values()]
        self._clients, self._sentinels = {}, {}
        for client in clients:
            with contextlib.suppress(redis.RedisError, OSError):
                await client.aclose()


# How describe_error opens the reason of a peer that gave no answer at all (refused, packets dropped,
# timed out), and the bare TimeoutError of a caller's own deadline (asyncio.timeout).
_NO_ANSWER = ("unreachable:", "timeout:", "TimeoutError")


def gave_no_answer(reason: str) -> bool:
    """Whether a reason from describe_error says the peer never answered (it is down or cut off),
    as opposed to one that answered and refused (WRONGPASS, NOPERM, an error reply)."""
    return reason.startswith(_NO_ANSWER)


def describe_error(exc: BaseException, *, sentinel: bool = False) -> str:
    """A one-line reason for a failed command, naming auth problems the way the server does.
    `sentinel`: the command went to a Sentinel, whose settings and ACL are its own."""
    text = str(exc).strip() or type(exc).__name__
    settings, acl = ("redis.sentinel.", "sentinel.acl") if sentinel else ("redis.", "orchestrator.acl")
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text or "invalid username-password" in text:
        return f"WRONGPASS: authentication failed ({text}); check {settings}username / password_env / password_file"
    if "NOAUTH" in text:
        return f"NOAUTH: the server requires a password ({text}); set {settings}password_env or password_file"
    # redis-py strips the error code of the classes it knows (NoPermissionError keeps only
    # "this user has no permissions to run the 'script|load' command"): name it again.
    if isinstance(exc, redis.exceptions.NoPermissionError) or "NOPERM" in text:
        return f"NOPERM: the ACL user lacks a permission ({text}); see deploy/acl/{acl}"
    if isinstance(exc, redis.TimeoutError):
        return f"timeout: {text}"
    if isinstance(exc, redis.ConnectionError):
        return f"unreachable: {text}"
    return text
