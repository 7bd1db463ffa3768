"""Talking RESP to one node at a time.

- `connections`: `Connector` (one small asyncio client per node, auth, TLS, timeouts; the Sentinels'
  own credentials), `describe_error` (a failed command in one line, auth problems named).
- `batch`: one write for many commands, raw replies for big batches, windows of loads.
- `replies`: reading replies whatever the protocol (RESP2 arrays or RESP3 maps); error codes.
- `servers`: what a node is (`ServerInfo` from INFO: Redis or Valkey, version, evictions) and its
  script cache (`CacheStats`).
- `features`: what a node refuses (renamed or forbidden commands) and what that costs.
- `command_table`: a node's COMMAND reply read into the analyzer's key specs.
"""
