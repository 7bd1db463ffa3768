#!/usr/bin/env bash
# The container engine the deploy scripts use, and how: sourced by build.sh and debian-image.sh;
# run on its own, it prints the environment to use it with (`ENGINE=...`, `CONTAINERS_CONF=...`),
# which is how the test harness asks.
#   ENGINE=docker|podman   force one (default: docker when its daemon answers, else podman)
#   CONTAINERS_CONF        podman's configuration; when unset and the host refuses to raise
#                          RLIMIT_NOFILE (as podman does for every container), podman-containers.conf
set -euo pipefail

CONTAINER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 2; }

pick_engine() {
  if [ -z "${ENGINE:-}" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
      ENGINE=docker
    elif command -v podman >/dev/null 2>&1; then
      ENGINE=podman
    else
      die "no container engine: docker's daemon does not answer and podman is not installed (Debian/Ubuntu: apt-get install podman runc)"
    fi
  fi
  command -v "$ENGINE" >/dev/null 2>&1 || die "ENGINE=$ENGINE is not installed"
  # A subshell: the limit is tried, not kept.
  if [ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ] && ! (ulimit -n 1048576) 2>/dev/null; then
    CONTAINERS_CONF="$CONTAINER_DIR/podman-containers.conf"
    export CONTAINERS_CONF
  fi
  export ENGINE
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  pick_engine
  echo "ENGINE=$ENGINE"
  echo "CONTAINERS_CONF=${CONTAINERS_CONF:-}"
fi
