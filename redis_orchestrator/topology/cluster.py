"""Redis Cluster's nodes, from any reachable seed: `CLUSTER SHARDS`, falling back to `CLUSTER NODES`
(and standalone mode: one node and its INFO role)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

import redis

from redis_orchestrator.config.addresses import parse_address
from redis_orchestrator.errors import SeedsUnreachableError
from redis_orchestrator.topology.model import Health, Node, Role, Topology
from redis_orchestrator.wire.connections import Connector, describe_error
from redis_orchestrator.wire.replies import as_list, as_map, text


def parse_cluster_shards(reply: object) -> list[Node]:
    """Nodes from CLUSTER SHARDS (7.0+). One shard, RESP2 shape:

    1) "slots"  2) 1) (integer) 0  2) (integer) 5460      (bulk strings in 7.0.0, 7.2.0-7.2.1)
    3) "nodes"  4) 1) 1) "id" 2) "9917..." 3) "port" 4) (integer) 7000 5) "ip" 6) "127.0.0.1"
                   7) "endpoint" 8) "127.0.0.1" 9) "role" 10) "master"
                   11) "replication-offset" 12) (integer) 0 13) "health" 14) "online"
    """
    if not isinstance(reply, list | tuple):
        raise ValueError("CLUSTER SHARDS reply is not an array")
    nodes: list[Node] = []
    for shard_raw in reply:
        shard = as_map(shard_raw)
        bounds = [int(text(s)) for s in as_list(shard.get("slots"))]
        slots = tuple((bounds[i], bounds[i + 1]) for i in range(0, len(bounds) - 1, 2))
        members = [as_map(n) for n in as_list(shard.get("nodes"))]
        live = [m for m in members if _health(text(m.get("health", "online"))) != Health.FAILED]
        primary_id = next((text(m.get("id", "")) for m in live if text(m.get("role")) == "master"), None)
        for member in members:
            host = text(member.get("ip") or member.get("endpoint") or "")
            port_value = member.get("port") or member.get("tls-port")
            if not host or port_value is None:
                continue
            role = Role.PRIMARY if text(member.get("role")) == "master" else Role.REPLICA
            health = _health(text(member.get("health", "online")))
            nodes.append(
                Node(
                    host=host,
                    port=int(text(port_value)),
                    role=role,
                    node_id=text(member.get("id", "")),
                    primary_id=None if role == Role.PRIMARY else primary_id,
                    health=health,
                    # After a failover Valkey 9 keeps the dead old primary in its shard, still a
                    # master but failed: the shard's slots are the live primary's, never its.
                    slots=slots if role == Role.PRIMARY and health != Health.FAILED else (),
                )
            )
    return nodes


def parse_cluster_nodes(reply: object) -> list[Node]:
    """Nodes from CLUSTER NODES text, one line per node:

        <id> <ip:port@cport[,hostname]> <flags> <primary-id|-> <ping> <pong> <epoch> <link> <slot>...
        07c3... 127.0.0.1:30004@31004 slave e7d1... 0 1426238317239 4 connected
        e7d1... 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
    Nodes in handshake or with no address yet (`:0`) are skipped.
    """
    nodes: list[Node] = []
    if isinstance(reply, Mapping):  # redis-py's parsed dict form, keyed by "ip:port"
        for address, info_raw in reply.items():
            info = as_map(info_raw)
            line = f"{info.get('node_id', '')} {text(address)} {info.get('flags', '')} {info.get('master_id', '-')}"
            nodes.extend(parse_cluster_nodes(line))
        return nodes
    for line in text(reply).splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        address = parts[1].split("@")[0].split(",")[0]
        flags = set(parts[2].split(","))
        if "handshake" in flags or "noaddr" in flags:
            continue
        try:
            host, port = parse_address(address)
        except ValueError:
            continue
        if port == 0:
            continue
        role = Role.PRIMARY if "master" in flags else Role.REPLICA
        slots: list[tuple[int, int]] = []
        for token in parts[8:]:
            if token.startswith("["):
                continue  # a slot being migrated or imported
            start, _, end = token.partition("-")
            slots.append((int(start), int(end or start)))
        nodes.append(
            Node(
                host=host,
                port=port,
                role=role,
                node_id=parts[0],
                primary_id=parts[3] if len(parts) > 3 and parts[3] != "-" else None,
                health=Health.FAILED if "fail" in flags else Health.ONLINE,
                slots=tuple(slots) if role == Role.PRIMARY else (),
            )
        )
    return nodes


async def _ask(connector: Connector, seed: str, mode: str) -> list[Node]:
    host, port = parse_address(seed)
    client = connector.client(host, port)
    if mode == "standalone":
        info = await client.info("replication")
        role = Role.PRIMARY if info.get("role") == "master" else Role.REPLICA
        return [Node(host=host, port=port, role=role)]
    try:
        reply = await client.execute_command("CLUSTER", "SHARDS")
        nodes = parse_cluster_shards(reply)
    except redis.ResponseError as exc:
        if "unknown" not in str(exc).lower() and "unknown subcommand" not in str(exc).lower():
            raise
        nodes = parse_cluster_nodes(await client.execute_command("CLUSTER", "NODES"))
    if not nodes:
        raise redis.ResponseError("CLUSTER SHARDS listed no nodes")
    return nodes


async def discover_cluster(
    connector: Connector, seeds: Sequence[str], mode: str = "cluster", timeout: float | None = None
) -> Topology:
    """Ask each seed in turn until one answers (cluster and standalone modes; discovery.py picks the
    mode). SeedsUnreachableError names each seed and why."""
    attempts: list[tuple[str, str]] = []
    for seed in dict.fromkeys(seeds):
        try:
            async with asyncio.timeout(timeout):
                nodes = await _ask(connector, seed, mode)
        except (redis.RedisError, OSError, TimeoutError, ValueError) as exc:
            attempts.append((seed, describe_error(exc)))
            continue
        return Topology(nodes=tuple(_dedupe(nodes)), answered_by=seed)
    raise SeedsUnreachableError(attempts)


def _health(value: str) -> Health:
    """Redis says `failed`, Valkey 9 says `fail` (measured: tests/test_plan_topology.py)."""
    if value in ("fail", "failed"):
        return Health.FAILED
    try:
        return Health(value)
    except ValueError:  # a state a newer server adds: treat as online, as before
        return Health.ONLINE


def _dedupe(nodes: Iterable[Node]) -> list[Node]:
    seen: dict[str, Node] = {}
    for node in nodes:
        seen.setdefault(node.address, node)
    return list(seen.values())
