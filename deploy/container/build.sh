#!/usr/bin/env bash
# Build the redis-orchestrator image with docker (when its daemon answers) or podman; the last line
# printed is the image's name (also tagged localhost/redis-orchestrator:latest, what compose runs).
#
#   deploy/container/build.sh [--rebuild]
#
#   BASE=IMAGE   the base of both stages (default: the Dockerfile's public python:3.11-slim-bookworm;
#                when it is not here and no registry answers, one made from Debian's packages)
#   PYTHON=...   the Python whose pip builds and fetches the wheels (default: the repository's
#                .venv, else python3); wheels are fetched from PyPI for the base's Python version
#   ENGINE, CONTAINERS_CONF: see engine.sh
#
# An image built from the same sources, Dockerfile and base is reused (tag src-<hash>) unless
# --rebuild is given.
set -euo pipefail
source "$(dirname "$0")/engine.sh"

ROOT="$(cd "$CONTAINER_DIR/../.." && pwd)"
PUBLIC_BASE=docker.io/library/python:3.11-slim-bookworm
rebuild=0
case "${1:-}" in
  --rebuild) rebuild=1 ;;
  "") ;;
  *) die "usage: $0 [--rebuild]" ;;
esac

pick_engine

# ------------------------------------------------------------------ the base
if [ -z "${BASE:-}" ]; then
  if "$ENGINE" image inspect "$PUBLIC_BASE" >/dev/null 2>&1 || "$ENGINE" pull -q "$PUBLIC_BASE" >/dev/null 2>&1; then
    BASE="$PUBLIC_BASE"
  else
    say "$PUBLIC_BASE cannot be pulled (no registry answers): making the base from Debian's packages"
    # Python and the libraries it links, nothing else. The standard library's bytecode is compiled
    # now (nothing can write it in a read-only container); an /etc/passwd names the image's user.
    BASE="$("$CONTAINER_DIR/debian-image.sh" --variant extract \
      --hook 'chroot "$1" /usr/bin/python3 -m compileall -q /usr/lib/python3.11' \
      --hook 'mkdir -p -m 1777 "$1/tmp"' \
      --hook 'printf "%s\n" "root:x:0:0:root:/root:/usr/sbin/nologin" "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin" "orchestrator:x:10001:10001:redis-orchestrator:/nonexistent:/usr/sbin/nologin" > "$1/etc/passwd"' \
      --hook 'printf "%s\n" "root:x:0:" "nogroup:x:65534:" "orchestrator:x:10001:" > "$1/etc/group"' \
      redis-orchestrator-base python3 | tail -n 1)"
  fi
fi
base_id="$("$ENGINE" image inspect --format '{{.Id}}' "$BASE")"

# ------------------------------------------------------------------ reuse
sources_hash="$(cd "$ROOT" && {
  find redis_orchestrator -type f -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
  sha256sum pyproject.toml README.md deploy/container/Dockerfile
  echo "$base_id"
} | sha256sum | cut -c1-12)"
image="localhost/redis-orchestrator:src-$sources_hash"
if [ "$rebuild" = 0 ] && "$ENGINE" image inspect "$image" >/dev/null 2>&1; then
  say "$image exists (same sources, Dockerfile and base): reused; --rebuild to build again"
  "$ENGINE" tag "$image" localhost/redis-orchestrator:latest
  echo "$image"
  exit 0
fi

# ------------------------------------------------------------------ the wheels, on the host
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  [ -x "$ROOT/.venv/bin/python" ] && PYTHON="$ROOT/.venv/bin/python"
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip (set PYTHON= to a Python with pip)"
# The base's own Python decides the wheels: its version, ABI and machine. pip evaluates the
# dependencies' markers with the Python running it, not the base's: redis-py's async-timeout
# (`python_full_version < "3.11.3"`; Debian 12 has 3.11.2) is therefore always fetched, and the
# install in the image takes it only where its own Python needs it.
read -r py_version py_abi machine < <("$ENGINE" run --rm --network=host --entrypoint python3 "$BASE" -c \
  'import platform, sys; print(platform.python_version(), "cp%d%d" % sys.version_info[:2], platform.machine())')
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
say "wheels for Python $py_version ($py_abi, $machine)"
"$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$context/wheels" "$ROOT" >&2
"$PYTHON" -m pip download -q --dest "$context/wheels" --only-binary=:all: \
  --python-version "$py_version" --implementation cp --abi "$py_abi" --abi abi3 --abi none \
  --platform "manylinux_2_28_$machine" --platform "manylinux_2_17_$machine" --platform "manylinux2014_$machine" \
  --platform any "$context"/wheels/redis_orchestrator-*.whl pip async-timeout >&2
mv "$context"/wheels/pip-*.whl "$context/pip.whl"

# ------------------------------------------------------------------ the image
format=()
# podman writes OCI images by default, which have no HEALTHCHECK: the docker format keeps it.
[ "$ENGINE" = podman ] && format=(--format docker)
"$ENGINE" build "${format[@]}" --network=host --build-arg "BASE=$BASE" \
  -f "$CONTAINER_DIR/Dockerfile" -t "$image" -t localhost/redis-orchestrator:latest "$context" >&2
# Keep one image of ours: older builds and the build stage's leftovers go.
"$ENGINE" image prune -f --filter label=org.redis-orchestrator.stage=build >/dev/null
"$ENGINE" images --format '{{.Repository}}:{{.Tag}}' localhost/redis-orchestrator | grep ':src-' | grep -v -x "$image" \
  | xargs -r "$ENGINE" rmi >/dev/null 2>&1 || true
size="$("$ENGINE" image inspect --format '{{.Size}}' "$image")"
say "built $image: $((size / 1000000)) MB in ${SECONDS} s"
echo "$image"
