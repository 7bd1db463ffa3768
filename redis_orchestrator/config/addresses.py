"""`HOST:PORT` as the config, the command line and CLUSTER NODES write it."""

from __future__ import annotations


def parse_address(text: str, allow_any_port: bool = False) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port). ValueError with the expected form otherwise.
    `allow_any_port`: port 0 too, which a listener binds to a free port (tests)."""
    host, sep, port = text.rpartition(":")
    lowest = 0 if allow_any_port else 1
    if not sep or not host or not port.isdigit() or not lowest <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
