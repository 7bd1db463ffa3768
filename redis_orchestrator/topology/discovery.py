"""Which nodes the deployment has, by `redis.mode`: the one entry point the verbs and the daemon call.

Each mode's module builds Node and Topology values from topology.py; this module sits above all
three, so none of them needs to import another at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis_orchestrator.topology.cluster import discover_cluster
from redis_orchestrator.topology.model import Topology
from redis_orchestrator.topology.replication import discover_replication
from redis_orchestrator.topology.sentinel import discover_sentinel
from redis_orchestrator.wire.connections import Connector


async def discover(
    connector: Connector, seeds: Sequence[str], mode: str = "cluster", timeout: float | None = None
) -> Topology:
    """Cluster and standalone ask each seed in turn until one answers; sentinel and replication ask
    all their seeds at once. SeedsUnreachableError names each seed and why."""
    if mode == "sentinel":
        return await discover_sentinel(connector, seeds, connector.settings.service_name or "", timeout)
    if mode == "replication":
        return await discover_replication(connector, seeds, timeout)
    return await discover_cluster(connector, seeds, mode, timeout)
