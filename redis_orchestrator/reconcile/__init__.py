"""Bringing nodes to the catalog: where a node's cache is observed, planned and repaired.

- `plan`: desired against observed (`Observation` -> `NodePlan`); pure.
- `observe`: one round trip that reads what a node holds; the cache marker.
- `apply`: the batch of SCRIPT LOAD / FUNCTION LOAD that completes a node.
- `node_pass`: one pass on one node (`NodePass`, `NodeReport`, `NodeState`): the only pass code,
  driven by the daemon's node workers and by `settle`.
- `settle`: passes over every node until the deployment settles (`settle`, `Convergence`,
  `settle_deployment` for the `plan` / `sync` / `status` verbs).
- `prune`: retiring old script versions (SCRIPT FLUSH + reload, one node at a time).
"""
