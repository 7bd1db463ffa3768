"""Passes over every node until the deployment settles: what `converge()` (the daemon's burst mode)
and the one-shot verbs (`plan`, `sync`, `status`) run, so both end on where the deployment settled.

A round runs one pass on each node that needs one, in parallel; then the topology is looked at
again (a failover may have ended meanwhile) and the next round takes only the nodes that still need
a pass: one new in the topology, one whose role changed since it was planned (a replica promoted
while its old primary was being loaded was planned without FUNCTION LOAD), one whose place moved
under its pass (READONLY, LOADING, MOVED...: MOVING), one whose own ROLE contradicts the topology (a
failover the seed has not seen yet), and one that loaded something (its next pass confirms it holds
the catalog). It stops when no node needs a pass, or after `max_rounds`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from redis_orchestrator.catalog.model import Catalog, Script
from redis_orchestrator.config.settings import RedisSettings
from redis_orchestrator.errors import SeedsUnreachableError
from redis_orchestrator.reconcile.node_pass import NodePass, NodeReport, NodeState
from redis_orchestrator.topology.discovery import discover
from redis_orchestrator.topology.model import Node, Topology
from redis_orchestrator.wire.connections import Connector
from redis_orchestrator.wire.features import NodeFeatures

# Between rounds when a node was MOVING: a promotion or a node's LOADING settles in moments.
_MOVING_PAUSE = 0.2


@dataclass(frozen=True)
class Convergence:
    """Every round's reports (each one report per node address that had a pass), and the topology
    it ended on."""

    passes: tuple[Mapping[str, NodeReport], ...]
    topology: Topology

    @property
    def reports(self) -> dict[str, NodeReport]:
        """Where each node of the final topology ended: its latest report, in topology order."""
        latest: dict[str, NodeReport] = {}
        for done in self.passes:
            latest.update(done)
        return {n.address: latest[n.address] for n in self.topology.nodes if n.address in latest}

    @property
    def converged(self) -> bool:
        """No node of the final topology is left with a load unconfirmed or a place moving."""
        return not any(r.loads or r.state == NodeState.MOVING for r in self.reports.values())

    def loaded(self, address: str) -> tuple[Script, ...]:
        """Everything loaded on one node, over all rounds."""
        return tuple(script for done in self.passes if address in done for script in done[address].loads)


def topology_behind(last: NodeReport, node: Node) -> bool:
    """The node said (ROLE) another role than the topology gives it: a failover the seed we asked
    has not seen yet. (A stray primary says primary on purpose: the topology knows.)"""
    return last.role is not None and last.role != node.role and not node.stray_primary


def needs_another_pass(last: NodeReport | None, node: Node) -> bool:
    """The node has had no pass yet, or its last one loaded something, saw its place move, was
    planned for another role (or stray-primary flag) than the topology now gives it, or heard the
    node contradict the topology."""
    if last is None:
        return True
    return (
        bool(last.loads)
        or last.state == NodeState.MOVING
        or last.node.role != node.role
        or last.node.stray_primary != node.stray_primary
        or topology_behind(last, node)
    )


async def settle(
    run: Callable[[Node], Awaitable[NodeReport]],
    topology: Topology,
    rediscover: Callable[[], Awaitable[Topology]],
    *,
    max_rounds: int = 5,
) -> Convergence:
    """Rounds of `run(node)` over `topology`'s nodes until none needs another pass (see the module
    docstring); `rediscover()` gives the topology after each round (it keeps the last one when no
    seed answers: that is its own business)."""
    passes: list[dict[str, NodeReport]] = []
    latest: dict[str, NodeReport] = {}
    nodes = list(topology.nodes)
    for _ in range(max_rounds):
        done = await asyncio.gather(*(run(node) for node in nodes))
        passes.append({report.node.address: report for report in done})
        latest.update(passes[-1])
        if any(r.state == NodeState.MOVING or topology_behind(r, r.node) for r in done):
            await asyncio.sleep(_MOVING_PAUSE)
        topology = await rediscover()
        nodes = [n for n in topology.nodes if needs_another_pass(latest.get(n.address), n)]
        if not nodes:
            break
    return Convergence(tuple(passes), topology)


def one_shot_passes(
    connector: Connector, catalog: Catalog, *, write: bool, delete_unlisted: bool = False
) -> Callable[[Node], Awaitable[NodeReport]]:
    """`run` for `settle` outside the daemon (the one-shot verbs, benches): a NodePass per node,
    kept across rounds, following the node's latest role."""
    passes: dict[str, NodePass] = {}

    async def run(node: Node) -> NodeReport:
        node_pass = passes.get(node.address)
        if node_pass is None:
            node_pass = passes[node.address] = NodePass(node, connector, NodeFeatures(node.address), one_shot=True)
        node_pass.node = node
        return await node_pass.run(catalog, write=write, delete_unlisted=delete_unlisted)

    return run


async def settle_deployment(
    settings: RedisSettings,
    catalog: Catalog,
    *,
    write: bool,
    delete_unlisted: bool = False,
    on_note: Callable[[str], None] = lambda _note: None,
) -> Convergence:
    """What `plan` (write=False), `sync` and `status` run: discover, then `settle` with one-shot
    passes and a fresh discovery after each round. Raises SeedsUnreachableError when no seed
    answers at first; later, the last topology stands. Each topology note (Sentinels that
    disagree, a stray primary) goes to `on_note` once."""
    connector = Connector(settings)
    noted: set[str] = set()

    async def look() -> Topology:
        topology = await discover(connector, settings.seeds, settings.mode, timeout=settings.timeout * 2)
        for note in topology.notes:
            if note not in noted:
                noted.add(note)
                on_note(note)
        return topology

    try:
        latest = await look()

        async def rediscover() -> Topology:
            nonlocal latest
            with contextlib.suppress(SeedsUnreachableError):
                latest = await look()
            return latest

        run = one_shot_passes(connector, catalog, write=write, delete_unlisted=delete_unlisted)
        return await settle(run, latest, rediscover)
    finally:
        await connector.aclose()
