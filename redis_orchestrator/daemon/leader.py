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
expire on the server even if no renewal gets through. `redis_orchestrator_leader` is computed from
that clock when scraped: a leader whose event loop stalls (or a process frozen by SIGSTOP) shows 0
the moment its lease lapses, not at its next renewal.

Fencing (Kleppmann's paused leader): a process frozen past its lease, or a VM whose clock stopped
with it, may wake up believing it still leads. Its own clock is not trusted alone: the server checks
the owner token before each act. The manifest is written by a script that first reads the lease key
in the same slot (`FENCED` unless it holds our token), and a script kill is preceded by an
owner-checked renewal (extend.lua) on the lease's shard (`confirm()`). Either refusal steps the
instance down at once (`leader_fenced`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
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
from redis_orchestrator.daemon.waiting import cancel_and_wait, wait_event
from redis_orchestrator.reconcile.node_pass import FULL_CHECK_EVERY
from redis_orchestrator.topology.model import Health, Node, Role, Topology
from redis_orchestrator.wire.connections import Connector, describe_error
from redis_orchestrator.wire.replies import error_code


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


def packaged_script(name: str, folder: str = "") -> LockScript:
    """One of the daemon's own scripts, shipped inside the package (lua/, lua/lock/): an install from
    a wheel has them wherever it lives, with no copy beside it."""
    path = resources.files("redis_orchestrator.daemon").joinpath("lua", *filter(None, [folder]), f"{name}.lua")
    try:
        return LockScript(name, path.read_bytes())
    except OSError as exc:
        raise LeaderError(f"the daemon's scripts are missing from the installed package ({path}): {exc}") from exc


def load_lock_scripts() -> LockScripts:
    return LockScripts(*(packaged_script(n, "lock") for n in ("acquire", "extend", "release")))


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
    """Runs a script on the primary of its keys' slot; follows one MOVED."""

    def __init__(self, connector: Connector, topology: Callable[[], Topology | None]) -> None:
        self.connector = connector
        self.topology = topology

    def _client(self, node: Node) -> redis.asyncio.Redis:
        return self.connector.client(node.host, node.port)

    async def evalsha(self, script: LockScript, keys: Sequence[str], *args: str | int | bytes) -> Any:
        """On the primary of the first key's slot (the others must share it)."""

        async def run(client: redis.asyncio.Redis) -> Any:
            try:
                return await _call(client, "EVALSHA", script.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                # A new primary after a failover, a restart or a SCRIPT FLUSH: its cache is empty.
                await _call(client, "SCRIPT", "LOAD", script.source)
                return await _call(client, "EVALSHA", script.sha, len(keys), *keys, *args)

        return await self._on_owner(keys[0], run)

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
        self._held = False  # what we last logged
        self.changed = asyncio.Event()  # set on each change of leadership (the manifest writer waits on it)
        self._error: str | None = None
        # Read at scrape time, on the HTTP thread: the lease's own clock, not the last tick's verdict.
        metrics.leader.set_function(lambda: 1.0 if self.is_leader() else 0.0)

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
        leading = self.is_leader()
        held = await self._renew(self.scripts.extend if leading else self.scripts.acquire)
        self._publish(reason="fenced" if leading and held is False else None)
        return self.is_leader()

    async def confirm(self) -> bool:
        """Whether the server, asked now, says we hold the lease (an owner-checked renewal): what a
        leader asks before an act that must not come from a stale one (a script kill). A refusal
        steps down at once; an unreachable lease shard confirms nothing."""
        if not self.is_leader():
            return False
        held = await self._renew(self.scripts.extend)
        self._publish(reason="fenced" if held is False else None)
        return held is True and self.is_leader()

    def fenced(self) -> None:
        """The server refused an act of ours because the lease key does not hold our token (the
        manifest's fenced write): another instance leads, or our lease lapsed. Step down now."""
        self._valid_until = 0.0
        self._publish(reason="fenced")

    async def _renew(self, script: LockScript) -> bool | None:
        """Acquire or extend: True when the server says the key is ours, False when it says it is
        not (someone else holds it, or ours lapsed and was taken), None when it did not answer."""
        sent = self.clock()
        try:
            reply = await self.router.evalsha(script, (self.settings.key,), self.token, self.lease_ms)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return None
        self._recovered()
        held = int(reply) == 1
        self._valid_until = sent + self.settings.lease - self.drift if held else 0.0
        return held

    def next_delay(self) -> float:
        lease = self.settings.lease
        if not self.is_leader():
            return max(lease / 10, 0.05)
        # Every L/3, and never past the point where we would have to step down.
        return max(min(lease / 3, self._valid_until - self.clock() - self.drift), 0.01)

    async def run(self) -> None:
        """Tick until cancelled: every L/3 while leading, every L/10 while following."""
        while True:
            ticking = asyncio.create_task(self.tick())
            try:
                # A renewal stuck on a cut link waits out its timeout: the lease may lapse first,
                # and that is said (leader_lost, `changed`) when it lapses, not when the reply comes.
                while not ticking.done():
                    lapse = self._valid_until - self.clock() if self._held else None
                    await asyncio.wait((ticking,), timeout=None if lapse is None else max(lapse, 0.0))
                    if not ticking.done():
                        self._publish()
            except BaseException:
                await cancel_and_wait((ticking,))
                raise
            ticking.result()
            await asyncio.sleep(self.next_delay())

    async def release(self) -> None:
        """Give the lease back (owner-checked) so a standby takes over at once, not after L."""
        was_leader = self.is_leader()
        self._valid_until = 0.0
        if was_leader:
            with contextlib.suppress(redis.RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await self.router.evalsha(self.scripts.release, (self.settings.key,), self.token)
        self._publish(reason="released")

    async def aclose(self) -> None:
        await self.release()
        await self.connector.aclose()

    def _publish(self, reason: str | None = None) -> None:
        """Log and signal a change of leadership. `reason`: "released" (given back at shutdown),
        "fenced" (the server said the key is not ours), None (the lease ran out on our clock)."""
        held = self.is_leader()
        if held == self._held:
            return
        self._held = held
        self.changed.set()
        if held:
            logs.event("leader_acquired", key=self.settings.key, owner=self.token, lease_s=self.settings.lease)
        elif reason == "fenced":
            logs.warning(
                "leader_fenced",
                "the lease's server says another instance holds the lease (or ours lapsed): stepping down",
                key=self.settings.key,
                owner=self.token,
            )
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
    """The leader keeps `manifest.key` equal to the catalog's JSON manifest, reconciled like a
    script: one EVALSHA every `interval` (lua/keep_manifest.lua), a write when the key is missing or
    different (deleted, overwritten, lost in a failover, a new catalog, a new leader). With a lease,
    every look and write is fenced by the server: refused (`FENCED`) unless the lease key holds our
    token, which steps us down at once. (In a cluster the two keys must share a slot:
    `{redis-orchestrator}:...`, which the ACL's key pattern asks for anyway.)"""

    def __init__(
        self,
        key: str,
        router: KeyRouter,
        catalog: Callable[[], Catalog],
        include_sources: bool = True,
        *,
        lease: LeaderLease | None,
        interval: Callable[[], float],
        script: LockScript | None = None,
    ) -> None:
        self.key = key
        self.router = router
        self.catalog = catalog
        self.include_sources = include_sources
        self.lease = lease
        self.interval = interval
        self.script = script if script is not None else packaged_script("keep_manifest")
        self._text: tuple[Catalog, bytes, str] | None = None  # catalog, its manifest, the manifest's SHA1
        self._written_for: Catalog | None = None  # the catalog whose manifest we last saw or wrote at the key
        self._looks_since_full = 0
        self._error: str | None = None

    async def run(self, is_leader: Callable[[], bool], leadership: asyncio.Event | None) -> None:
        """Look at once when `leadership` changes, else every interval, until cancelled."""
        while True:
            if leadership is not None:
                leadership.clear()
            await self.keep(is_leader())
            if leadership is None:
                await asyncio.sleep(self.interval())
            else:
                await wait_event(leadership, self.interval())

    async def keep(self, leading: bool) -> bool:
        """One look: with the text when the catalog changed since the key last held it, else a
        quick one (a full one every FULL_CHECK_EVERY looks), then the text only if the key turns
        out wrong. True when written."""
        if not leading:
            self._written_for = None  # on leading again, check before trusting anything
            return False
        catalog, text, sha = self._manifest()
        self._looks_since_full += 1
        full = self._looks_since_full >= FULL_CHECK_EVERY
        try:
            if catalog is not self._written_for:
                reply = await self._eval(text, sha, write=True)
            else:
                reply = await self._eval(text, sha if full else "", write=False)
                if int(reply) == 0:
                    reply = await self._eval(text, sha, write=True)
        except redis.ResponseError as exc:
            if error_code(exc) == "FENCED" and self.lease is not None:
                self._written_for = None
                self.lease.fenced()
                return False
            self._failed(exc)
            return False
        except (redis.RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return False
        self._error = None
        self._written_for = catalog
        if full:
            self._looks_since_full = 0
        if int(reply) == 2:
            logs.event("manifest_written", key=self.key, bytes=len(text))
            return True
        return False

    def _manifest(self) -> tuple[Catalog, bytes, str]:
        catalog = self.catalog()
        if self._text is None or self._text[0] is not catalog:  # replaced whole on reload: identity says it all
            text = json.dumps(catalog.manifest(self.include_sources), sort_keys=True).encode()
            self._text = (catalog, text, sha1_hex(text))
        return self._text

    async def _eval(self, text: bytes, sha: str, *, write: bool) -> Any:
        fence: tuple[str, ...] = (self.lease.settings.key,) if self.lease is not None else ()
        token = self.lease.token if self.lease is not None else ""
        args: tuple[str | int | bytes, ...] = (token, len(text), sha, *((text,) if write else ()))
        return await self.router.evalsha(self.script, (self.key, *fence), *args)

    def _failed(self, exc: BaseException) -> None:
        error = describe_error(exc)
        if error_code(exc) == "CROSSSLOT":
            error += " (manifest.key and leader.key must share a hash tag, e.g. {redis-orchestrator}:...)"
        if error != self._error:
            logs.warning("manifest_write_failed", key=self.key, error=error)
            self._error = error
