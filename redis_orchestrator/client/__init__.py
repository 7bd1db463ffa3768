"""The application side: call the catalog's scripts and functions by name, safely.

    from redis_orchestrator.client import Scripts            # sync: redis.Redis, RedisCluster, Sentinel
    from redis_orchestrator.client import AsyncScripts       # asyncio: the same over redis.asyncio

Examples of use are in the modules' docstrings: _sync/scripts.py (or _async/scripts.py), pipeline.py,
transaction.py.

One module per concern. The pure ones, shared by both flavours (no I/O, every decision):
`manifest` (what a name calls), `keys` (one slot; the catalog's key patterns), `calls` (a call
prepared, the NOSCRIPT policy, what a reply means), `base` (ScriptsBase: options, counters, redirect
and WAIT decisions), `batches` (pipelines and MULTI/EXEC: what is checked, repaired, read back),
`optimistic` (transactions: backoff, result, the queue), `nodes` (node names, the refresh throttle),
`counters` (and their Prometheus export), `errors`.

The ones that send, written once: `_async/` is the source -- `exchange` (one round trip on a pinned
connection), `routing` (which node, a pinned connection to it), `scripts` (AsyncScripts.run),
`pipeline`, `transaction` -- and `_sync/` holds the same modules generated from it by
tools/unasync.py (`async def` -> `def`, AsyncScripts -> Scripts, ...; do not edit them:
`tools/unasync.py --check` fails when one is stale). What the two flavours really do differently (a
pooled connection taken and given back, the cluster client's lazy slot table, a lock in the refresh
throttle) is hand-written in `_async/primitives.py` and `_sync/primitives.py`, under the same names.
"""

from __future__ import annotations

from redis_orchestrator.client._async.pipeline import AsyncScriptPipeline
from redis_orchestrator.client._async.scripts import AsyncScripts
from redis_orchestrator.client._async.transaction import AsyncTx
from redis_orchestrator.client._sync.pipeline import ScriptPipeline
from redis_orchestrator.client._sync.scripts import Scripts
from redis_orchestrator.client._sync.transaction import Tx
from redis_orchestrator.client.base import DEFAULT_MANIFEST_KEY
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
from redis_orchestrator.client.optimistic import Backoff, TransactionResult

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
