"""Which nodes the deployment has, one module per deployment shape.

- `model`: `Node` and `Topology`, immutable values replaced whole on each refresh (nodes equal by
  address), `Role`, `Health`, `node_at`.
- `cluster`: Redis Cluster from any seed (`CLUSTER SHARDS`, falling back to `CLUSTER NODES`), and
  standalone mode.
- `sentinel`: a primary and its replicas as the Sentinels see them (majority, config-epoch).
- `replication`: a primary and its replicas by their own `ROLE` votes, without Sentinel.
- `role`: `ROLE` read (`RoleReply`, `parse_role`, `read_role`).
- `discovery`: `discover()`, the one entry point: `redis.mode` picks the module.
"""
