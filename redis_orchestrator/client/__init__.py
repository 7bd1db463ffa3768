"""The application side: call the catalog's scripts and functions by name, safely.

    from redis_orchestrator.client import Scripts            # sync: redis.Redis, RedisCluster, Sentinel
    from redis_orchestrator.client import AsyncScripts       # asyncio: the same over redis.asyncio

One module per concern: `manifest` (what a name calls), `keys` (one slot; the catalog's key patterns),
`calls` (a call prepared, the NOSCRIPT policy, what a reply means), `routing` (which node, a pinned
connection), `wire` (one round trip on it), `scripts` (`Scripts.run`), `pipeline`, `transaction`,
`aio` (the asyncio variant of the last three), `counters` (and their Prometheus export), `errors`.
"""

from __future__ import annotations

from redis_orchestrator.client.aio import AsyncScriptPipeline, AsyncScripts, AsyncTx
from redis_orchestrator.client.calls import Call, Fallback
from redis_orchestrator.client.counters import Counters, Event, Snapshot
from redis_orchestrator.client.errors import (
    ClientError,
    CrossSlotError,
    KeyPatternError,
    KeysRefused,
    ManifestError,
    NodeUnreachable,
    NotReplicated,
    ScriptBusy,
    ScriptError,
    ScriptMissing,
    TransactionAborted,
    TransactionConflict,
    UnknownScript,
)
from redis_orchestrator.client.manifest import Manifest, Target, Version, load_manifest
from redis_orchestrator.client.pipeline import ScriptPipeline
from redis_orchestrator.client.scripts import DEFAULT_MANIFEST_KEY, Scripts
from redis_orchestrator.client.transaction import Backoff, TransactionResult, Tx

__all__ = [
    "DEFAULT_MANIFEST_KEY",
    "AsyncScriptPipeline",
    "AsyncScripts",
    "AsyncTx",
    "Backoff",
    "Call",
    "ClientError",
    "Counters",
    "CrossSlotError",
    "Event",
    "Fallback",
    "KeyPatternError",
    "KeysRefused",
    "Manifest",
    "ManifestError",
    "NodeUnreachable",
    "NotReplicated",
    "ScriptBusy",
    "ScriptError",
    "ScriptMissing",
    "ScriptPipeline",
    "Scripts",
    "Snapshot",
    "Target",
    "TransactionAborted",
    "TransactionConflict",
    "TransactionResult",
    "Tx",
    "UnknownScript",
    "Version",
    "load_manifest",
]
