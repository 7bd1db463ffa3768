"""`HOST:PORT` as the config, the command line and CLUSTER NODES write it."""

from __future__ import annotations


def parse_address(text: str, allow_any_port: bool = False) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port). ValueError with the expected form otherwise.
    `allow_any_port`: port 0 too, which a listener binds to a free port (tests)."""
    scheme, has_scheme, rest = text.rpartition("://")
    if "@" in rest:
        # redis://user:PASSWORD@host:port: the password would be printed in the starting line and
        # in every `unreachable` message. Refused, and never echoed.
        user = rest.rpartition("@")[0].partition(":")[0]
        shown = f"{scheme}{has_scheme}{user}:***@{rest.rpartition('@')[2]}"
        raise ValueError(
            f"credentials in an address are refused ({shown}): give HOST:PORT, the user in "
            "redis.username and the password in redis.password_env or redis.password_file"
        )
    if has_scheme:
        raise ValueError(f"{text[:100]!r} is not HOST:PORT: write it without {scheme}://")
    host, sep, port = text.rpartition(":")
    lowest = 0 if allow_any_port else 1
    if not sep or not host or not port.isdigit() or not lowest <= int(port) < 65536:
        raise ValueError(f"{text[:100]!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
