"""Regenerate redis_orchestrator/analysis/keyspecs.json from a real redis-server's COMMAND reply.

Starts its own throwaway `redis-server` on a free loopback port (never touches 127.0.0.1:6379),
reads the command table, writes the JSON and stops the server:

    .venv/bin/python tools/gen_keyspecs.py [--redis-server PATH] [--out PATH]
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

from redis_orchestrator.analysis.keyspecs import refresh_keyspecs

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "redis_orchestrator" / "analysis" / "keyspecs.json"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-server", default="redis-server")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    port = free_port()
    if port == 6379:
        port = free_port()
    process = subprocess.Popen(
        [args.redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
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
    args.out.write_text(specs.to_json(), encoding="utf-8")
    print(f"wrote {len(specs.commands)} commands from {specs.source} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
