#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, types, then every test against real redis-server
# processes (they start and stop their own clusters on free loopback ports).
# Extra arguments go to pytest, e.g. scripts/test.sh -k slowlog -x
source "$(dirname "$0")/_bootstrap.sh"
need_python
need_redis
need_prometheus
need_venv "test"
cd "$ROOT"
echo "== ruff" >&2
"$VENV/bin/ruff" check redis_orchestrator tests bench tools
echo "== mypy (strict, the package)" >&2
"$VENV/bin/mypy" redis_orchestrator
echo "== pytest" >&2
exec "$VENV/bin/pytest" -p no:cacheprovider "$@"
