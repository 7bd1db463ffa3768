"""A primary and its replicas without Sentinel (`redis.mode: replication`), as the data nodes
themselves tell it: every seed's `ROLE` (role.py), the primary elected by their votes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
import redis.asyncio

from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.errors import SeedsUnreachableError
from redis_orchestrator.topology.model import Health, Node, Role, Topology, node_at
from redis_orchestrator.topology.role import RoleReply, read_role
from redis_orchestrator.wire.connections import Connector, describe_error


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
    nodes = {view.primary: node_at(view.primary, Role.PRIMARY, None, Health.ONLINE if primary_up else Health.FAILED)}
    notes: list[str] = []
    for address in primary_reply.replicas if primary_reply is not None and primary_up else ():
        nodes.setdefault(address, node_at(address, Role.REPLICA, view.primary, Health.ONLINE))
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
        nodes[address] = node_at(address, Role.REPLICA, view.primary, Health.ONLINE, stray=stray)
    for address in asked:
        if address not in view.answers and address not in nodes:
            nodes[address] = node_at(address, Role.REPLICA, view.primary, Health.FAILED)
    return list(nodes.values()), notes


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
