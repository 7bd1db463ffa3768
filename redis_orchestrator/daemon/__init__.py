"""The long-running process (`redis-orchestrator run`).

- `service`: the process: event loop, signals, systemd's notify socket, the embedded local
  deployments; `assembly.build_daemon` makes the `Daemon` (`lifecycle`: a thin conductor whose
  `run()` lists every task, and `converge()`, the same pass code once, for tests).
- Keepers of the daemon's state: `topology_keeper` (discovery and refreshes), `catalog_keeper`
  (the desired state, reloads: `reload`), `fleet` (one supervisor per node), `readiness`.
- Per node (`supervisor`): `node_worker` (the reconcile cadence around reconcile's NodePass),
  `liveness` (a node's drop and return, at once), `slowlog` with `busy` (slow scripts, BUSY, the
  kill policy).
- Daemon-wide: `leader` (the lease and the manifest key; lock scripts in `lua/lock`),
  `sentinel_events`, `primary_watch`, `metrics`, `http` (/metrics, /healthz, /readyz), `health`
  and `systemd` (watchdog), `waiting`.
"""
