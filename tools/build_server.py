"""Build a newer Redis or Valkey than this machine's packages give, from Debian's own source packages,
to run the suite on it (`REDIS_SERVER=...`): Debian 13 ships Redis 8.0 and Valkey 8.1, past the eviction
trap of Redis >= 7.4 that Redis 7.0 cannot show.

Reads the suite's Sources index from deb.debian.org (a package registry, the only network a CI machine
here may have), downloads the upstream tarball, checks its SHA-256 against the index, and runs `make`
(with TLS when OpenSSL's headers are there). Prints the binary's path on stdout, and nothing else:

    REDIS_SERVER=$(.venv/bin/python tools/build_server.py redis) scripts/test.sh
    .venv/bin/python tools/build_server.py valkey --suite trixie --into ~/.cache/redis-orchestrator/servers

Needs gcc and make (and libssl-dev for TLS). A build takes about two minutes on two cores and is kept:
a second call prints the path at once.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MIRROR = "http://deb.debian.org/debian"
DEFAULT_INTO = Path.home() / ".cache" / "redis-orchestrator" / "servers"


@dataclass(frozen=True)
class Source:
    package: str
    version: str  # Debian's, e.g. 5:8.0.2-3+deb13u3
    directory: str  # pool/main/r/redis
    tarball: str  # redis_8.0.2.orig.tar.gz
    sha256: str


def find_source(index: str, package: str) -> Source:
    """The entry for `package` in a Debian Sources index (RFC 822 paragraphs)."""
    for paragraph in index.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in paragraph.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package") != package:
            continue
        for entry in fields.get("Checksums-Sha256", "").splitlines():
            parts = entry.split()
            if len(parts) == 3 and ".orig.tar." in parts[2]:
                return Source(package, fields["Version"], fields["Directory"], parts[2], parts[0])
        raise SystemExit(f"{package}: the Sources index lists no upstream tarball")
    raise SystemExit(f"{package}: not in the Sources index")


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            data: bytes = response.read()
            return data
    except OSError as exc:
        raise SystemExit(f"could not download {url}: {exc}") from exc


def build(source: Source, into: Path) -> Path:
    binary_name = "valkey-server" if source.package == "valkey" else "redis-server"
    upstream = source.version.split(":")[-1].split("-")[0].split("+")[0]
    tree = into / f"{source.package}-{upstream}"
    binary = tree / "src" / binary_name
    if binary.exists():
        return binary
    into.mkdir(parents=True, exist_ok=True)
    data = fetch(f"{MIRROR}/{source.directory}/{source.tarball}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise SystemExit(f"{source.tarball}: SHA-256 {digest}, the index says {source.sha256}: not building it")
    archive = into / source.tarball
    archive.write_bytes(data)
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(into, filter="data")
    if (into / top) != tree:
        shutil.rmtree(tree, ignore_errors=True)
        (into / top).rename(tree)
    options = ["BUILD_TLS=yes"] if Path("/usr/include/openssl/ssl.h").exists() else []
    jobs = str(os.cpu_count() or 1)
    print(f"building {source.package} {upstream} in {tree} (make -j{jobs} {' '.join(options)})", file=sys.stderr)
    done = subprocess.run(["make", f"-j{jobs}", *options], cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0 or not binary.exists():
        raise SystemExit(f"make failed in {tree}:\n{done.stderr.decode(errors='replace')[-3000:]}")
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", choices=("redis", "valkey"))
    parser.add_argument("--suite", default="trixie", help="Debian suite to take the source from (default trixie)")
    parser.add_argument("--into", type=Path, default=DEFAULT_INTO, help=f"build directory (default {DEFAULT_INTO})")
    args = parser.parse_args(argv)
    for tool in ("make", "cc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install build-essential")
    index = lzma.decompress(fetch(f"{MIRROR}/dists/{args.suite}/main/source/Sources.xz")).decode("utf-8", "replace")
    print(build(find_source(index, args.package), args.into.expanduser()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
