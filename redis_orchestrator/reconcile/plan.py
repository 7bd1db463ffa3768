"""Desired state against observed state: what one node needs. Pure: values in, values out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from redis_orchestrator.catalog.model import Catalog, Script
from redis_orchestrator.topology.model import Node, Role
from redis_orchestrator.wire.servers import CacheStats


@dataclass(frozen=True)
class Observation:
    """What one node holds, as far as we asked (observe.py reads it in one round trip).

    `libraries` is None when functions were not asked; `marker`: the cache marker was there (see
    observe.py); `role`: what the node said with ROLE, when asked; `commands`: how many were sent."""

    node: Node
    present_shas: frozenset[str]
    libraries: Mapping[str, bytes] | None = None
    marker: bool = True
    role: Role | None = None
    cache: CacheStats = field(default_factory=CacheStats)
    commands: int = 0


@dataclass(frozen=True)
class NodePlan:
    node: Node
    load_scripts: tuple[Script, ...] = ()
    load_functions: tuple[Script, ...] = ()
    delete_libraries: tuple[str, ...] = ()

    @property
    def in_sync(self) -> bool:
        return not (self.load_scripts or self.load_functions or self.delete_libraries)

    @property
    def changes(self) -> int:
        return len(self.load_scripts) + len(self.load_functions) + len(self.delete_libraries)


def wants_functions(node: Node, catalog: Catalog, delete_unlisted: bool = False) -> bool:
    """Libraries are loaded on primaries only: replicas receive them by replication."""
    return node.takes_functions and (bool(catalog.functions) or delete_unlisted)


def plan_node(observation: Observation, catalog: Catalog, delete_unlisted: bool = False) -> NodePlan:
    missing: dict[str, Script] = {}
    # The steady state skips the loop: the observation hands back the catalog's own set when nothing
    # is missing (identity, not a walk over every SHA).
    if observation.present_shas is not catalog.sha_set and not catalog.sha_set <= observation.present_shas:
        for script in catalog.scripts:
            if script.sha not in observation.present_shas and script.sha not in missing:
                missing[script.sha] = script
    load_functions: list[Script] = []
    delete: list[str] = []
    if observation.libraries is not None and observation.node.takes_functions:
        declared = set()
        for library in catalog.functions:
            assert library.library is not None
            declared.add(library.library)
            if observation.libraries.get(library.library) != library.source:
                load_functions.append(library)
        if delete_unlisted:
            delete = sorted(name for name in observation.libraries if name not in declared)
    return NodePlan(
        node=observation.node,
        load_scripts=tuple(missing.values()),
        load_functions=tuple(load_functions),
        delete_libraries=tuple(delete),
    )
