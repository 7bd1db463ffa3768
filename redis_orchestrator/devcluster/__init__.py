"""Throwaway local deployments of real server processes on free loopback ports: what `run
--local-cluster` / `run --local-sentinel` start, and what tests and benchmarks build on.

- `cluster`: `LocalCluster` (3 primaries + 3 replicas by default), `LocalNode`, and the process
  helpers (free ports, spawning, waiting for an answer, stopping even when the parent dies).
- `sentinel`: `LocalSentinel` (a primary, replicas and Sentinels).

Breaking them on purpose (kill, freeze, failover, restart, add and remove nodes) is the test
harness's business: see `harness/` at the repository's root.
"""
