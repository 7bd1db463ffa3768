"""What the deployment is made of, as values: Node and Topology.

Topology is an immutable value, replaced whole on every refresh. Nodes are equal by address, so a
node that changes role (failover) is the same node with a new role. The modules beside this one find
the nodes, one per deployment shape (cluster.py, sentinel.py, replication.py; discovery.py picks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from redis_orchestrator.config.addresses import parse_address


class Role(StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"


class Health(StrEnum):
    """CLUSTER SHARDS' health of a node (CLUSTER NODES' `fail` flag reads as FAILED)."""

    ONLINE = "online"
    FAILED = "failed"
    LOADING = "loading"


@dataclass(frozen=True, order=True)
class Node:
    host: str
    port: int
    role: Role = field(default=Role.PRIMARY, compare=False)
    node_id: str = field(default="", compare=False)
    primary_id: str | None = field(default=None, compare=False)
    health: Health = field(default=Health.ONLINE, compare=False)
    slots: tuple[tuple[int, int], ...] = field(default=(), compare=False)
    # Sentinel and replication modes: a replica in the group's view that still says it is a primary
    # (an old primary back, empty, before it is turned into a replica). Nothing replicates to it yet.
    stray_primary: bool = field(default=False, compare=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def takes_functions(self) -> bool:
        """Libraries are loaded on primaries, stray ones included; replicas get them by replication."""
        return self.role == Role.PRIMARY or self.stray_primary

    def __str__(self) -> str:
        return f"{self.address} ({self.role})"


@dataclass(frozen=True)
class Topology:
    nodes: tuple[Node, ...]
    answered_by: str = ""  # the seed whose view this is
    # What the daemon logs once when it appears (Sentinels that disagree, a stray primary): sentinel
    # and replication modes only.
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(sorted(self.nodes, key=_order)))

    @property
    def primaries(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == Role.PRIMARY)

    @property
    def replicas(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == Role.REPLICA)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(n.address for n in self.nodes)

    def get(self, address: str) -> Node | None:
        for node in self.nodes:
            if node.address == address:
                return node
        return None


def _order(node: Node) -> tuple[int, str, int]:
    return (0 if node.role == Role.PRIMARY else 1, node.host, node.port)


def node_at(address: str, role: Role, primary: str | None, health: Health, stray: bool = False) -> Node:
    """A node known by its address alone (Sentinel and replication modes: the address is its id)."""
    host, port = parse_address(address)
    return Node(
        host=host, port=port, role=role, node_id=address, primary_id=primary, health=health, stray_primary=stray
    )
