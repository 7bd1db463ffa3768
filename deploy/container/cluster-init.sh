#!/bin/sh
# One-shot: create the 3+3 cluster (once) and apply the least-privilege ACL user on every node.
# Run by the `cluster-init` service of deploy/compose.yaml.
set -eu
set -f   # the ACL rules contain `*`: no globbing
ADMIN_PW=$(cat /run/secrets/redis-admin-password)
ORCH_PW=$(cat /run/secrets/orchestrator-password)
NODES="172.28.0.11 172.28.0.12 172.28.0.13 172.28.0.14 172.28.0.15 172.28.0.16"
export REDISCLI_AUTH="$ADMIN_PW"

for ip in $NODES; do
  until redis-cli -h "$ip" ping >/dev/null 2>&1; do sleep 0.5; done
done

if redis-cli -h 172.28.0.11 cluster info | grep -q '^cluster_state:ok'; then
  echo "cluster already created"
else
  # shellcheck disable=SC2086
  redis-cli --cluster create $(for ip in $NODES; do printf '%s:6379 ' "$ip"; done) \
    --cluster-replicas 1 --cluster-yes
fi

# ACLs are per node: every node, primaries and replicas. The file has no password: add it here.
RULES=$(sed -n 's/^user redis-orchestrator //p' /acl/orchestrator.acl)
for ip in $NODES; do
  # shellcheck disable=SC2086
  redis-cli -h "$ip" ACL SETUSER redis-orchestrator reset $RULES ">$ORCH_PW" >/dev/null
done
echo "ACL user redis-orchestrator applied on: $NODES"

until redis-cli -h 172.28.0.11 cluster info | grep -q '^cluster_state:ok'; do sleep 0.5; done
echo "cluster ok"
