"""A primary and its replicas as the data nodes themselves tell it: `ROLE`.

Used twice: `redis.mode: replication` finds the whole group this way (any node is a seed), and
sentinel mode asks the primary Sentinel named for the replicas that connected since the Sentinels'
last look (they `INFO` a primary every 10 s; a new replica shows in its `ROLE` as soon as it syncs).
`PrimaryWatch` asks the primary every reconcile interval, so a new replica or a demoted primary
wakes the topology loop at once instead of at its next interval.

The three shapes of the reply (RESP2 and RESP3 alike):

    primary:  1) "master"   2) (integer) 3129659   3) 1) 1) "127.0.0.1" 2) "9001" 3) "3129242"
    replica:  1) "slave"    2) "127.0.0.1"   3) (integer) 9000   4) "connected"   5) (integer) 3167038
    Sentinel: 1) "sentinel" 2) 1) "mymaster"

A replica's link state is connect | connecting | sync | connected (or handshake on newer servers).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import redis
import redis.asyncio

from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.errors import SeedsUnreachableError
from redis_orchestrator.topology.model import Health, Node, Role, Topology
from redis_orchestrator.wire.connections import Connector, describe_error
from redis_orchestrator.wire.replies import as_list, text


@dataclass(frozen=True)
class RoleReply:
    """One node's answer to ROLE. `role` is None for a Sentinel (not a data node)."""

    role: Role | None
    offset: int = 0
    replicas: tuple[str, ...] = ()  # a primary's replicas, as "ip:port"
    primary: str | None = None  # a replica's primary, as "host:port"
    link_up: bool = False  # a replica: its link to the primary is up
    monitors: tuple[str, ...] = ()  # a Sentinel: the names it monitors


def parse_role(reply: object) -> RoleReply:
    """RoleReply from a raw ROLE reply; ValueError on anything else."""
    items = as_list(reply)
    if not items:
        raise ValueError(f"ROLE reply is not an array: {reply!r}")
    kind = text(items[0])
    if kind in ("master", "primary"):
        replicas = []
        for entry in as_list(items[2]) if len(items) > 2 else []:
            fields = as_list(entry)
            if len(fields) >= 2:
                replicas.append(f"{text(fields[0])}:{int(text(fields[1]))}")
        return RoleReply(Role.PRIMARY, offset=int(text(items[1])), replicas=tuple(replicas))
    if kind in ("slave", "replica"):
        if len(items) < 5:
            raise ValueError(f"ROLE reply of a replica is too short: {reply!r}")
        return RoleReply(
            Role.REPLICA,
            offset=int(text(items[4])),
            primary=f"{text(items[1])}:{int(text(items[2]))}",
            link_up=text(items[3]) == "connected",
        )
    if kind == "sentinel":
        names = as_list(items[1]) if len(items) > 1 else []
        return RoleReply(None, monitors=tuple(text(n) for n in names))
    raise ValueError(f"ROLE reply names an unknown role {kind!r}")


async def read_role(client: redis.asyncio.Redis) -> RoleReply:
    untyped: object = await client.execute_command("ROLE")
    return parse_role(untyped)


# ---------------------------------------------------------------------- the group, from its nodes


@dataclass(frozen=True)
class GroupView:
    """Who the group's primary is, by the nodes' own word: each node that answered votes for its
    primary (a primary for itself). Pure: built from the answers, tested without a server."""

    primary: str
    votes: Mapping[str, int]
    answers: Mapping[str, RoleReply]

    @property
    def contested(self) -> bool:
        return len(self.votes) > 1


def _vote_for(address: str, reply: RoleReply) -> str | None:
    if reply.role == Role.PRIMARY:
        return address
    return reply.primary


def elect(answers: Mapping[str, RoleReply]) -> GroupView | None:
    """The primary most answering nodes point at; on a tie, one that answered as a primary, then
    the largest replication offset, then the lowest address (so every instance picks the same).
    None when no data node answered."""
    votes = Counter(v for address, reply in answers.items() if (v := _vote_for(address, reply)) is not None)
    if not votes:
        return None

    def rank(candidate: str) -> tuple[int, int, int, str]:
        own = answers.get(candidate)
        is_primary = own is not None and own.role == Role.PRIMARY
        return (-votes[candidate], 0 if is_primary else 1, -(own.offset if own else 0), candidate)

    return GroupView(primary=min(votes, key=rank), votes=dict(votes), answers=dict(answers))


def group_nodes(view: GroupView, asked: Sequence[str]) -> tuple[list[Node], list[str]]:
    """The group's nodes and notes worth logging (a stray primary, a node replicating elsewhere).

    Members: the primary; the replicas it lists; every answering node that replicates from it (its
    link may be down); every answering primary that lost the vote (a stray: an old primary back
    after a failover, empty, that somebody still has to turn into a replica: it gets the catalog
    like any replica meanwhile); and every seed that did not answer, as FAILED, so a node that
    comes back is repaired at its first answer instead of after the next refresh finds it.
    """
    primary_reply = view.answers.get(view.primary)
    primary_up = primary_reply is not None and primary_reply.role == Role.PRIMARY
    nodes = {view.primary: _node(view.primary, Role.PRIMARY, None, Health.ONLINE if primary_up else Health.FAILED)}
    notes: list[str] = []
    for address in primary_reply.replicas if primary_reply is not None and primary_up else ():
        nodes.setdefault(address, _node(address, Role.REPLICA, view.primary, Health.ONLINE))
    for address, reply in sorted(view.answers.items()):
        if address == view.primary or reply.role is None:
            continue
        stray = reply.role == Role.PRIMARY
        if stray:
            notes.append(
                f"{address} answers ROLE as a primary, but {view.votes[view.primary]} node(s) follow "
                f"{view.primary}: kept loaded (Functions too) as a stray primary until it is made a replica"
            )
        elif reply.primary != view.primary:
            notes.append(f"{address} replicates from {reply.primary}, not from {view.primary}: left out of the group")
            continue
        nodes[address] = _node(address, Role.REPLICA, view.primary, Health.ONLINE, stray=stray)
    for address in asked:
        if address not in view.answers and address not in nodes:
            nodes[address] = _node(address, Role.REPLICA, view.primary, Health.FAILED)
    return list(nodes.values()), notes


def _node(address: str, role: Role, primary: str | None, health: Health, stray: bool = False) -> Node:
    host, port = parse_address(address)
    return Node(
        host=host, port=port, role=role, node_id=address, primary_id=primary, health=health, stray_primary=stray
    )


async def discover_replication(connector: Connector, seeds: Sequence[str], timeout: float | None) -> Topology:
    """Every seed's ROLE in parallel, the primary by vote, then the primary's own ROLE for its
    replicas when it was not among the seeds. SeedsUnreachableError names each seed and why."""
    asked = list(dict.fromkeys(seeds))
    answers, attempts = await _ask_all(connector, asked, timeout)
    view = elect(answers)
    if view is None:
        for address, reply in answers.items():  # only Sentinels answered
            names = ", ".join(reply.monitors) or "nothing"
            attempts.append((address, f"a Sentinel (monitors {names}): set redis.mode: sentinel and service_name"))
        raise SeedsUnreachableError(attempts)
    if view.primary not in answers:
        more, _ = await _ask_all(connector, [view.primary], timeout)
        if more:
            view = GroupView(view.primary, view.votes, {**answers, **more})
    nodes, notes = group_nodes(view, asked)
    if view.contested:
        votes = ", ".join(f"{address} ({count})" for address, count in sorted(view.votes.items()))
        notes.insert(0, f"the nodes disagree on their primary: {votes}; following {view.primary}")
    return Topology(nodes=tuple(nodes), answered_by=view.primary, notes=tuple(notes))


async def _ask_all(
    connector: Connector, addresses: Sequence[str], timeout: float | None
) -> tuple[dict[str, RoleReply], list[tuple[str, str]]]:
    async def ask(address: str) -> RoleReply | str:
        try:
            host, port = parse_address(address)
            async with asyncio.timeout(timeout):
                return await read_role(connector.client(host, port))
        except (redis.RedisError, OSError, TimeoutError, ValueError) as exc:
            return describe_error(exc)

    replies = await asyncio.gather(*(ask(a) for a in addresses))
    answers = {a: r for a, r in zip(addresses, replies, strict=True) if isinstance(r, RoleReply)}
    attempts = [(a, r) for a, r in zip(addresses, replies, strict=True) if isinstance(r, str)]
    return answers, attempts


# ---------------------------------------------------------------------- watching the primary


def role_change(topology: Topology, primary: Node, reply: RoleReply) -> str | None:
    """Why the topology is out of date, judging by the primary's ROLE; None when it is not."""
    if reply.role != Role.PRIMARY:
        return f"{primary.address} answers ROLE as {reply.role or 'a Sentinel'}"
    new = [address for address in reply.replicas if topology.get(address) is None]
    if new:
        return f"{primary.address} has new replica(s): {', '.join(new)}"
    return None


class PrimaryWatch:
    """Asks the group's primary ROLE every `interval()`; `on_change(reason)` when the topology is
    behind. A primary that does not answer is left to the reconcile worker (node_down) and, in
    sentinel mode, to the Sentinels' events."""

    name = "primary watch"

    def __init__(
        self,
        connector: Connector,
        topology: Callable[[], Topology | None],
        interval: Callable[[], float],
        on_change: Callable[[str], None],
    ) -> None:
        self.connector = connector
        self.topology = topology
        self.interval = interval
        self.on_change = on_change

    async def check(self) -> str | None:
        topology = self.topology()
        if topology is None or len(topology.primaries) != 1:
            return None
        primary = topology.primaries[0]
        try:
            async with asyncio.timeout(self.connector.settings.timeout):
                reply = await read_role(self.connector.client(primary.host, primary.port))
        except (redis.RedisError, OSError, TimeoutError, ValueError):
            return None
        return role_change(topology, primary, reply)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval())
            reason = await self.check()
            if reason is not None:
                self.on_change(reason)
