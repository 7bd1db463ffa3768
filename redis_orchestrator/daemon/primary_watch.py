"""The group's primary, asked `ROLE` every reconcile interval (sentinel and replication modes): a new
replica or a demoted primary wakes the topology keeper at once instead of at its next interval."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis

from redis_orchestrator.topology.model import Node, Role, Topology
from redis_orchestrator.topology.role import RoleReply, read_role
from redis_orchestrator.wire.connections import Connector


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
