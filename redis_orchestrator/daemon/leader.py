"""Who leads when several instances run: a lease in Redis, taken and kept with the library's own lock
scripts (lua/lock/acquire.lua, extend.lua, release.lua: SET NX PX with an owner token; extend and
release check the owner first).

Every instance reconciles every node and serves metrics; only the leader kills runaway scripts and
writes the manifest key. The lease key carries a hash tag (`{redis-orchestrator}:leader`), so it
lives in one slot on one shard: we send EVALSHA to that slot's primary ourselves, found in the
daemon's topology, instead of a cluster client that would need CLUSTER SLOTS and COMMAND rights.

Timing, with lease L: the leader renews every L/3; a follower tries every L/10 (so a dead leader is
replaced at most about L + L/10 after its last renewal); an instance counts itself leader only until
`sent + L - drift`, measured from *before* the command left, so it steps down before the key can
expire on the server even if no renewal gets through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

import redis
import redis.asyncio
from redis.crc import key_slot

from redis_orchestrator import logs
from redis_orchestrator.catalog.model import Catalog, sha1_hex
from redis_orchestrator.config.settings import LeaderSettings, RedisSettings
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.waiting import wait_event
from redis_orchestrator.topology.model import Health, Node, Role, Topology
from redis_orchestrator.wire.connections import Connector, describe_error


class LeaderError(Exception):
    """The lock scripts cannot be read (a broken install)."""


@dataclass(frozen=True)
class LockScript:
    name: str
    source: bytes

    @cached_property
    def sha(self) -> str:
        return sha1_hex(self.source)


@dataclass(frozen=True)
class LockScripts:
    acquire: LockScript
    extend: LockScript
    release: LockScript


def load_lock_scripts() -> LockScripts:
    """The library's own lock scripts, shipped inside the package (lua/lock/*.lua): an install from a
    wheel has them wherever it lives, with no copy beside it."""
    base = resources.files("redis_orchestrator.daemon") / "lua" / "lock"
    try:
        return LockScripts(*(LockScript(n, (base / f"{n}.lua").read_bytes()) for n in ("acquire", "extend", "release")))
    except OSError as exc:
        raise LeaderError(f"the lock scripts are missing from the installed package ({base}): {exc}") from exc


def primary_for(topology: Topology | None, key: str) -> Node | None:
    """The primary serving `key`'s slot; in standalone mode (no slots known) the only primary."""
    if topology is None:
        return None
    slot = key_slot(key.encode())
    primaries = [n for n in topology.primaries if n.health != Health.FAILED]
    for node in primaries:
        if any(start <= slot <= end for start, end in node.slots):
            return node
    if len(primaries) == 1 and not primaries[0].slots:
        return primaries[0]
    return None


def _moved_to(exc: redis.ResponseError) -> Node | None:
    """The node a MOVED error sends us to. redis-py raises MovedError with host and port already
    parsed; a plain ResponseError still holding the raw `MOVED 3999 127.0.0.1:6381` is read the same way."""
    if not isinstance(exc, redis.exceptions.MovedError):
        word, _, redirect = str(exc).partition(" ")
        if word != "MOVED":
            return None
        try:
            exc = redis.exceptions.MovedError(redirect)
        except ValueError:
            return None
    return Node(host=exc.host, port=exc.port, role=Role.PRIMARY)


async def _call(client: redis.asyncio.Redis, *args: str | int | bytes) -> Any:
    """One raw command (redis-py's execute_command is untyped in some versions, typed in others)."""
    untyped: Any = client
    return await untyped.execute_command(*args)


class KeyRouter:
    """Runs a script or a command on the primary of one key's slot; follows one MOVED."""

    def __init__(self, connector: Connector, topology: Callable[[], Topology | None]) -> None:
        self.connector = connector
        self.topology = topology

    def _client(self, node: Node) -> redis.asyncio.Redis:
        return self.connector.client(node.host, node.port)

    async def evalsha(self, script: LockScript, key: str, *args: str | int) -> Any:
        async def run(client: redis.asyncio.Redis) -> Any:
            try:
                return await _call(client, "EVALSHA", script.sha, 1, key, *args)
            except redis.exceptions.NoScriptError:
                # A new primary after a failover, a restart or a SCRIPT FLUSH: its cache is empty.
                await _call(client, "SCRIPT", "LOAD", script.source)
                return await _call(client, "EVALSHA", script.sha, 1, key, *args)

        return await self._on_owner(key, run)

    async def command(self, key: str, *args: str | int | bytes) -> Any:
        async def run(client: redis.asyncio.Redis) -> Any:
            return await _call(client, *args)

        return await self._on_owner(key, run)

    async def _on_owner(self, key: str, run: Callable[[redis.asyncio.Redis], Any]) -> Any:
        node = primary_for(self.topology(), key)
        if node is None:
            raise redis.ConnectionError(f"no primary known for the slot of {key} (topology not discovered yet?)")
        try:
            return await run(self._client(node))
        except redis.ResponseError as exc:
            target = _moved_to(exc)
            if target is None:
                raise
            # Our topology is behind (a failover or slot move since the last refresh): follow once.
            return await run(self._client(target))


class LeaderLease:
    """Take, keep and give back the lease. `is_leader()` is cheap and safe to call from any loop."""

    def __init__(
        self,
        settings: LeaderSettings,
        redis_settings: RedisSettings,
        topology: Callable[[], Topology | None],
        metrics: Metrics,
        *,
        scripts: LockScripts | None = None,
        token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.token = token or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.scripts = scripts if scripts is not None else load_lock_scripts()
        self.connector = Connector(redis_settings)
        self.router = KeyRouter(self.connector, topology)
        self._valid_until = 0.0
        self._held = False  # what we last logged and exported
        self.changed = asyncio.Event()  # set on each change of leadership (the manifest writer waits on it)
        self._error: str | None = None
        metrics.leader.set(0)

    @property
    def lease_ms(self) -> int:
        return max(1, int(self.settings.lease * 1000))

    @property
    def drift(self) -> float:
        # Clock rate differences between us and the server, plus a little for the round trip.
        return self.settings.lease * 0.01 + 0.002

    def is_leader(self) -> bool:
        return self.clock() < self._valid_until

    async def tick(self) -> bool:
        """One acquire (follower) or extend (leader) round. Returns whether we lead afterwards."""
        sent = self.clock()
        script = self.scripts.extend if self.is_leader() else self.scripts.acquire
        try:
            reply = await self.router.evalsha(script, self.settings.key, self.token, self.lease_ms)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
        else:
            self._recovered()
            if int(reply) == 1:
                self._valid_until = sent + self.settings.lease - self.drift
            else:
                self._valid_until = 0.0  # someone else holds it (or our lease lapsed and was taken)
        self._publish()
        return self.is_leader()

    def next_delay(self) -> float:
        lease = self.settings.lease
        if not self.is_leader():
            return max(lease / 10, 0.05)
        # Every L/3, and never past the point where we would have to step down.
        return max(min(lease / 3, self._valid_until - self.clock() - self.drift), 0.01)

    async def run(self) -> None:
        """Tick until cancelled: every L/3 while leading, every L/10 while following."""
        while True:
            await self.tick()
            await asyncio.sleep(self.next_delay())

    async def release(self) -> None:
        """Give the lease back (owner-checked) so a standby takes over at once, not after L."""
        was_leader = self.is_leader()
        self._valid_until = 0.0
        if was_leader:
            with contextlib.suppress(redis.RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await self.router.evalsha(self.scripts.release, self.settings.key, self.token)
        self._publish(reason="released")

    async def aclose(self) -> None:
        await self.release()
        await self.connector.aclose()

    def _publish(self, reason: str | None = None) -> None:
        held = self.is_leader()
        self.metrics.leader.set(1 if held else 0)
        if held == self._held:
            return
        self._held = held
        self.changed.set()
        if held:
            logs.event("leader_acquired", key=self.settings.key, owner=self.token, lease_s=self.settings.lease)
        elif reason is None:
            logs.warning("leader_lost", key=self.settings.key, owner=self.token, error=self._error)
        else:  # given back on purpose (shutdown): nothing to warn about
            logs.event("leader_released", key=self.settings.key, owner=self.token)

    def _failed(self, exc: BaseException) -> None:
        text = describe_error(exc)
        if text != self._error:
            logs.warning("leader_lease_failed", key=self.settings.key, error=text)
            self._error = text

    def _recovered(self) -> None:
        if self._error is not None:
            logs.event("leader_lease_recovered", key=self.settings.key)
            self._error = None


class ManifestPublisher:
    """The leader keeps `manifest.key` equal to the catalog's JSON manifest (written when the catalog
    changes or when this instance becomes leader)."""

    def __init__(
        self, key: str, router: KeyRouter, catalog: Callable[[], Catalog], include_sources: bool = True
    ) -> None:
        self.key = key
        self.router = router
        self.catalog = catalog
        self.include_sources = include_sources
        self._written_for: Catalog | None = None  # the catalog whose manifest the key holds
        self._error: str | None = None

    async def run(self, is_leader: Callable[[], bool], leadership: asyncio.Event | None, interval: float = 1.0) -> None:
        """Publish at once when `leadership` changes, else every `interval`, until cancelled."""
        while True:
            if leadership is not None:
                leadership.clear()
            await self.publish(is_leader())
            if leadership is None:
                await asyncio.sleep(interval)
            else:
                await wait_event(leadership, interval)

    async def publish(self, leading: bool) -> bool:
        """SET the key if leading and the catalog changed since our last write. True when written."""
        if not leading:
            self._written_for = None  # on becoming leader again, write once: another leader may have
            return False
        catalog = self.catalog()
        if catalog is self._written_for:  # the catalog is replaced whole on reload: identity says it all
            return False
        text = json.dumps(catalog.manifest(self.include_sources), sort_keys=True)
        try:
            await self.router.command(self.key, "SET", self.key, text)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            error = describe_error(exc)
            if error != self._error:
                logs.warning("manifest_write_failed", key=self.key, error=error)
                self._error = error
            return False
        self._error = None
        self._written_for = catalog
        logs.event("manifest_written", key=self.key, bytes=len(text))
        return True
