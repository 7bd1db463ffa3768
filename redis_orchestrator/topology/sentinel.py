"""A primary and its replicas as the Sentinels see them (`redis.mode: sentinel`).

Every Sentinel among the seeds is asked at once, in one round trip each:

    SENTINEL MASTER <service_name>     the primary: ip, port, flags (master,s_down,o_down...), config-epoch
    SENTINEL REPLICAS <service_name>   every replica it knows, those flagged down included, so a node
                                       that comes back is already known and repaired at its first answer

One entry of either, RESP3 (RESP2 sends the same pairs as a flat array):

    {"name": "127.0.0.1:6380", "ip": "127.0.0.1", "port": "6380", "flags": "slave,s_down,disconnected",
     "role-reported": "slave", "master-host": "127.0.0.1", "master-port": "6379", "config-epoch": "3", ...}

A Sentinel that does not monitor the name answers `ERR No such master with that name`; it is then
asked `SENTINEL MASTERS`, so a wrong service_name is one error naming what each Sentinel monitors.
A Sentinel that is down or refuses is skipped while one answers. When they disagree on the primary
(one has not heard of a failover yet) the majority wins, ties going to the newer configuration
(config-epoch); the disagreement is a note on the topology, which the daemon logs once.

Then the primary itself is asked `ROLE` (role.py): a replica that connected since the
Sentinels' last INFO of the primary (every 10 s) is in the topology at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import redis
import redis.asyncio

from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.errors import SeedsUnreachableError, ServiceUnknownError
from redis_orchestrator.topology.model import Health, Node, Role, Topology, node_at
from redis_orchestrator.topology.role import read_role
from redis_orchestrator.wire.connections import Connector, describe_error
from redis_orchestrator.wire.replies import as_list, as_map, text

_DOWN_FLAGS = frozenset({"s_down", "o_down", "disconnected"})


@dataclass(frozen=True)
class Instance:
    """One data node as a Sentinel describes it."""

    host: str
    port: int
    flags: frozenset[str] = frozenset()
    role_reported: str = ""
    config_epoch: int = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def down(self) -> bool:
        return bool(self.flags & _DOWN_FLAGS)


def parse_instance(reply: object) -> Instance:
    """An Instance from one SENTINEL MASTER / REPLICAS entry (map or flat array)."""
    fields = as_map(reply)
    flags = frozenset(f for f in text(fields.get("flags", "")).split(",") if f)
    return Instance(
        host=text(fields["ip"]),
        port=int(text(fields["port"])),
        flags=flags,
        role_reported=text(fields.get("role-reported", "")),
        config_epoch=int(text(fields.get("config-epoch", 0))),
    )


def parse_masters(reply: object) -> tuple[str, ...]:
    """The names a Sentinel monitors, from SENTINEL MASTERS."""
    return tuple(sorted(text(as_map(entry).get("name", "?")) for entry in as_list(reply)))


@dataclass(frozen=True)
class SentinelView:
    """What one Sentinel said: the primary and replicas, or why not (`error`; `monitors` when it
    answered but does not know the service)."""

    sentinel: str
    primary: Instance | None = None
    replicas: tuple[Instance, ...] = ()
    error: str | None = None
    monitors: tuple[str, ...] | None = None


_NO_SUCH_MASTER = "No such master with that name"


async def ask_sentinel(client: redis.asyncio.Redis, sentinel: str, service: str) -> SentinelView:
    """One Sentinel's view of `service`: one round trip (two when it does not know the name)."""
    try:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("SENTINEL", "MASTER", service)
        pipe.execute_command("SENTINEL", "REPLICAS", service)
        master, replicas = await pipe.execute(raise_on_error=False)
        if isinstance(master, redis.ResponseError) and _NO_SUCH_MASTER in str(master):
            names = parse_masters(await client.execute_command("SENTINEL", "MASTERS"))
            return SentinelView(sentinel, monitors=names)
        for reply in (master, replicas):
            if isinstance(reply, Exception):
                raise reply
        return SentinelView(
            sentinel,
            primary=parse_instance(master),
            replicas=tuple(parse_instance(r) for r in as_list(replicas)),
        )
    except (redis.RedisError, OSError, TimeoutError, ValueError, KeyError) as exc:
        return SentinelView(sentinel, error=describe_error(exc, sentinel=True))


@dataclass(frozen=True)
class Verdict:
    """The Sentinels' answer, decided once: the primary, the views that agree with it, and the
    disagreement (None when every answering Sentinel named the same primary)."""

    primary: Instance
    agreeing: tuple[SentinelView, ...]
    disagreement: str | None = None
    unaware: str | None = None  # Sentinels that answered but do not monitor the service (misconfigured)


def decide(views: Sequence[SentinelView], service: str) -> Verdict:
    """The primary most answering Sentinels name (ties: the highest config-epoch, then the lowest
    address). ServiceUnknownError when the ones that answered all said they do not know the name,
    SeedsUnreachableError when none answered. Pure."""
    answered = [v for v in views if v.primary is not None]
    if not answered:
        if any(v.monitors is not None for v in views):
            raise ServiceUnknownError(service, [(v.sentinel, _what_it_said(v)) for v in views])
        raise SeedsUnreachableError([(v.sentinel, v.error or "no answer") for v in views])
    votes = Counter(v.primary.address for v in answered if v.primary is not None)
    epochs = {a: max(v.primary.config_epoch for v in answered if v.primary and v.primary.address == a) for a in votes}
    winner = min(votes, key=lambda a: (-votes[a], -epochs[a], a))
    agreeing = tuple(v for v in answered if v.primary is not None and v.primary.address == winner)
    primary = agreeing[0].primary
    assert primary is not None
    disagreement = None
    if len(votes) > 1:
        said = "; ".join(
            f"{address} by {', '.join(v.sentinel for v in answered if v.primary and v.primary.address == address)}"
            for address in sorted(votes, key=lambda a: (-votes[a], a))
        )
        disagreement = f"Sentinels disagree on the primary of {service}: {said}; following {winner}"
    unaware = "; ".join(f"{v.sentinel} {_what_it_said(v)}" for v in views if v.monitors is not None)
    return Verdict(
        primary=primary,
        agreeing=agreeing,
        disagreement=disagreement,
        unaware=f"Sentinels that do not monitor {service}: {unaware}" if unaware else None,
    )


def _what_it_said(view: SentinelView) -> str:
    if view.monitors is not None:
        return f"monitors {', '.join(view.monitors)}" if view.monitors else "monitors nothing"
    return view.error or "no answer"


def group_nodes(verdict: Verdict, connected: Sequence[str] = ()) -> tuple[list[Node], list[str]]:
    """The primary and every replica the agreeing Sentinels list (down ones too), plus `connected`:
    replicas the primary's ROLE lists that no Sentinel knows yet. A replica counts as down only
    when every Sentinel listing it says so. Also notes on stray primaries (a replica Sentinel
    says reports the master role: typically an old primary back after a failover, which Sentinel
    converts about 10 s later; it is loaded as a replica meanwhile)."""
    primary = verdict.primary
    majority = len(verdict.agreeing) // 2 + 1
    primary_down = sum(1 for v in verdict.agreeing if v.primary is not None and v.primary.down) >= majority
    nodes: dict[str, Node] = {
        primary.address: node_at(primary.address, Role.PRIMARY, None, Health.FAILED if primary_down else Health.ONLINE)
    }
    listed: dict[str, list[Instance]] = {}
    for view in verdict.agreeing:
        for replica in view.replicas:
            if replica.address != primary.address:
                listed.setdefault(replica.address, []).append(replica)
    notes: list[str] = []
    for address, seen in sorted(listed.items()):
        down = all(r.down for r in seen)
        stray = not down and any(r.role_reported == "master" for r in seen)
        health = Health.FAILED if down else Health.ONLINE
        nodes[address] = node_at(address, Role.REPLICA, primary.address, health, stray=stray)
        if stray:
            notes.append(f"{address} reports itself a primary; Sentinel counts it a replica of {primary.address}")
    for address in connected:
        nodes.setdefault(address, node_at(address, Role.REPLICA, primary.address, Health.ONLINE))
    return list(nodes.values()), notes


async def discover_sentinel(
    connector: Connector, sentinels: Sequence[str], service: str, timeout: float | None
) -> Topology:
    """Ask every Sentinel at once, decide, then ask the primary for replicas the Sentinels have not
    seen yet. Raises SeedsUnreachableError (no Sentinel answered) or ServiceUnknownError."""
    asked = list(dict.fromkeys(sentinels))

    async def ask(address: str) -> SentinelView:
        try:
            host, port = parse_address(address)
            async with asyncio.timeout(timeout):
                return await ask_sentinel(connector.sentinel(host, port), address, service)
        except (ValueError, TimeoutError) as exc:
            return SentinelView(address, error=describe_error(exc, sentinel=True))

    views = await asyncio.gather(*(ask(a) for a in asked))
    verdict = decide(views, service)
    connected: tuple[str, ...] = ()
    primary = verdict.primary
    try:
        async with asyncio.timeout(timeout):
            role = await read_role(connector.client(primary.host, primary.port))
        if role.role == Role.PRIMARY:
            connected = role.replicas
    except (redis.RedisError, OSError, TimeoutError, ValueError):
        pass  # a primary that does not answer: the Sentinels' view stands (it may be failing over)
    nodes, notes = group_nodes(verdict, connected)
    notes = [n for n in (verdict.disagreement, verdict.unaware) if n] + notes
    return Topology(
        nodes=tuple(nodes),
        answered_by=",".join(v.sentinel for v in verdict.agreeing),
        notes=tuple(notes),
    )
