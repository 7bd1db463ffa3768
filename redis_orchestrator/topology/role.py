"""What a data node says it is: `ROLE`. Replication mode finds the group by it, Sentinel mode asks
the primary for replicas the Sentinels have not seen yet, the reconcile pass asks a primary whether it
still is one before FUNCTION LOAD, and the daemon's primary watch asks every interval.

The three shapes of the reply (RESP2 and RESP3 alike):

    primary:  1) "master"   2) (integer) 3129659   3) 1) 1) "127.0.0.1" 2) "9001" 3) "3129242"
    replica:  1) "slave"    2) "127.0.0.1"   3) (integer) 9000   4) "connected"   5) (integer) 3167038
    Sentinel: 1) "sentinel" 2) 1) "mymaster"

A replica's link state is connect | connecting | sync | connected (or handshake on newer servers).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio

from redis_orchestrator.topology.model import Role
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
