#!/bin/sh
# One-shot: create the 3+3 cluster (once) and apply the least-privilege ACL user on every node.
# Run by the `cluster-init` service of deploy/compose.yaml, on the host's network.
set -eu
set -f   # the ACL rules contain `*`: no globbing
ADMIN_PW=$(cat /run/secrets/redis-admin-password)
ORCH_PW=$(cat /run/secrets/orchestrator-password)
PORTS="7001 7002 7003 7004 7005 7006"
export REDISCLI_AUTH="$ADMIN_PW"

for port in $PORTS; do
  until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.5; done
done

if redis-cli -p 7001 cluster info | grep -q '^cluster_state:ok'; then
  echo "cluster already created"
else
  # shellcheck disable=SC2046
  redis-cli --cluster create $(for port in $PORTS; do printf '127.0.0.1:%s ' "$port"; done) \
    --cluster-replicas 1 --cluster-yes
fi

# ACLs are per node: every node, primaries and replicas. The file has no password: add it here.
RULES=$(sed -n 's/^user redis-orchestrator //p' /acl/orchestrator.acl)
for port in $PORTS; do
  # shellcheck disable=SC2086
  redis-cli -p "$port" ACL SETUSER redis-orchestrator reset $RULES ">$ORCH_PW" >/dev/null
done
echo "ACL user redis-orchestrator applied on ports: $PORTS"

until redis-cli -p 7001 cluster info | grep -q '^cluster_state:ok'; do sleep 0.5; done
echo "cluster ok"
