#!/usr/bin/env bash
# An image made from Debian's packages with mmdebstrap, for a machine that reaches Debian's archive
# but no image registry. Prints the image's name on its last line. Cached: the image is tagged with
# a hash of its inputs (this script, the options, the packages and their candidate versions in the
# host's apt lists) and reused while that tag exists; the root file system tarball is kept beside it
# in $REDIS_ORCHESTRATOR_CACHE (default ~/.cache/redis-orchestrator) so a pruned image comes back
# in seconds.
#
#   deploy/container/debian-image.sh [--variant V] [--hook CMD]... [--change INSTR]... NAME PACKAGE...
#
#   --variant V     mmdebstrap's variant: minbase (default: a shell, apt and dpkg), or extract (the
#                   files of PACKAGE and what it depends on, nothing else: no shell, no package
#                   manager, no maintainer script run; a base for a runtime stage)
#   --hook CMD      an mmdebstrap --customize-hook, run on the finished tree ("$1" is its root)
#   --change INSTR  a Dockerfile instruction applied on import (CMD, ENTRYPOINT, USER, ENV, WORKDIR)
#   SUITE           Debian suite (default bookworm)
#
# Example: deploy/container/debian-image.sh --change 'CMD ["redis-server"]' redis redis-server
set -euo pipefail
source "$(dirname "$0")/engine.sh"

variant=minbase
hooks=()
changes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant="$2"; shift 2 ;;
    --hook) hooks+=("$2"); shift 2 ;;
    --change) changes+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || die "usage: $0 [options] NAME PACKAGE... (see --help)"
name="$1"; shift
packages=("$@")
suite="${SUITE:-bookworm}"

pick_engine
command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is not installed (Debian/Ubuntu: apt-get install mmdebstrap)"

# Candidate versions in the host's apt lists: a package update there makes a new image.
versions="$(apt-cache policy "${packages[@]}" 2>/dev/null | grep -E '^[^ ]|Candidate' || true)"
key="$( { cat "$0"; printf '%s\n' "$suite" "$variant" "${packages[@]}" "${hooks[@]}" "${changes[@]}" "$versions"; } \
  | sha256sum | cut -c1-12)"
image="localhost/$name:$key"
if "$ENGINE" image inspect "$image" >/dev/null 2>&1; then
  say "$image exists (same inputs): reused"
  echo "$image"
  exit 0
fi

cache="${REDIS_ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-orchestrator}"
mkdir -p "$cache"
tarball="$cache/${name//\//_}-$key.tar"
if [ ! -f "$tarball" ]; then
  say "building $name from Debian $suite's packages: ${packages[*]} ($variant)"
  include="$(IFS=,; echo "${packages[*]}")"
  args=(--variant="$variant" --include="$include")
  # Documentation, manual pages and translations have no use in an image.
  for path in /usr/share/doc/ /usr/share/man/ /usr/share/info/ /usr/share/locale/ /usr/share/lintian/; do
    args+=(--dpkgopt="path-exclude=$path*")
  done
  args+=(--dpkgopt='path-include=/usr/share/doc/*/copyright')
  for hook in "${hooks[@]}"; do args+=(--customize-hook="$hook"); done
  # The package lists and caches apt used to build the tree.
  args+=(--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*')
  mmdebstrap --quiet --format=tar "${args[@]}" "$suite" "$tarball.partial" >&2
  mv "$tarball.partial" "$tarball"
fi
import_args=()
for change in "${changes[@]}"; do import_args+=(--change "$change"); done
"$ENGINE" import "${import_args[@]}" "$tarball" "$image" >/dev/null
say "imported $image"
# One image and tarball per name: those of older inputs go.
"$ENGINE" images --format '{{.Repository}}:{{.Tag}}' "localhost/$name" | grep -v -x "$image" \
  | xargs -r "$ENGINE" rmi >/dev/null 2>&1 || true
find "$cache" -maxdepth 1 -name "${name//\//_}-*.tar" ! -name "$(basename "$tarball")" -delete
echo "$image"
