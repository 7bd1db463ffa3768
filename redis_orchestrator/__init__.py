"""redis-orchestrator: keep a catalog of Redis Lua scripts and Functions on every node of a cluster."""

__version__ = "0.1.0"
