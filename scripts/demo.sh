#!/usr/bin/env bash
# Start the daemon on a throwaway local 3+3 Redis Cluster (redis-server processes on free loopback
# ports), enforcing the sample catalog in examples/config.yaml. Ctrl-C stops the daemon and the cluster.
# Extra arguments go to `redis-orchestrator`, e.g. scripts/demo.sh --log-format json
source "$(dirname "$0")/_bootstrap.sh"
need_python
need_redis
need_venv ""
cd "$ROOT"
exec "$VENV/bin/redis-orchestrator" --config "$ROOT/examples/config.yaml" "$@" run --local-cluster
