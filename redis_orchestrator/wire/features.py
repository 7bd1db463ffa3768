"""What a node refuses to do for us, and what that costs: hosted Redis renames or forbids commands
(CONFIG, SLOWLOG, FUNCTION, ROLE, some INFO sections), and an ACL may lack one. A refused command
costs exactly the feature that needs it, never the pass: one log line per node and feature naming
the command and what is lost, `redis_orchestrator_feature_unavailable{node,feature}` at 1, and the
rest goes on. A node that restarts (it may come back with another config) is asked again.

Refused means: `ERR unknown command/subcommand` (renamed away, or not offered) or `NOPERM` (the ACL).
"""

from __future__ import annotations

import enum
from typing import Protocol

from redis_orchestrator import logs
from redis_orchestrator.wire.replies import error_code, is_unknown_command


class FeatureSink(Protocol):
    """Where a change of what a node refuses is exported (the daemon's Metrics; the one-shot verbs
    have none)."""

    def feature_changed(self, node: str, feature: str, unavailable: bool) -> None: ...


class Feature(enum.StrEnum):
    FUNCTIONS = "functions"
    ROLE = "role"
    EVICTION_WATCH = "eviction_watch"
    CACHE_STATS = "cache_stats"
    SLOWLOG = "slowlog"
    TIME_LIMIT = "time_limit"
    KILL = "kill"


LOST = {
    Feature.FUNCTIONS: "function libraries are neither checked nor loaded on this node",
    Feature.ROLE: "the node's role is taken from the topology, not from the node itself",
    Feature.EVICTION_WATCH: "evicted scripts are found by a full check every pass (every SHA asked)",
    Feature.CACHE_STATS: "no script-cache metrics (cached scripts, eval memory, evictions) for this node",
    Feature.SLOWLOG: "slow scripts on this node are not seen",
    Feature.TIME_LIMIT: "no slow-script ratio to busy-reply-threshold on this node",
    Feature.KILL: "the kill policy cannot stop a runaway script on this node",
}


def refused(exc: BaseException) -> bool:
    """The node will not run this command for us (as opposed to failing at it)."""
    return is_unknown_command(exc) or error_code(exc) == "NOPERM"


class NodeFeatures:
    """The features one node has refused, learnt from its answers."""

    def __init__(self, node: str, sink: FeatureSink | None = None) -> None:
        self.node = node
        self.sink = sink
        self._lost: dict[Feature, str] = {}

    def available(self, feature: Feature) -> bool:
        return feature not in self._lost

    @property
    def lost(self) -> dict[Feature, str]:
        return dict(self._lost)

    def refuse(self, feature: Feature, command: str, exc: BaseException) -> None:
        """`command` was refused: `feature` is off for this node (logged and exported once)."""
        if feature in self._lost:
            return
        self._lost[feature] = command
        logs.warning(
            "feature_unavailable",
            LOST[feature],
            node=self.node,
            feature=feature,
            command=command,
            error=f"{error_code(exc)} {exc}".strip(),
        )
        if self.sink is not None:
            self.sink.feature_changed(self.node, feature, True)

    def reset(self) -> None:
        """The node restarted: ask again."""
        if self.sink is not None:
            for feature in self._lost:
                self.sink.feature_changed(self.node, feature, False)
        self._lost.clear()
