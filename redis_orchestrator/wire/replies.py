"""Reading raw replies whatever the protocol: RESP3 gives maps, RESP2 flat [field, value, ...]
arrays, and either may carry bytes or str. Used by every parser of a server reply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def as_map(value: object) -> dict[str, Any]:
    """A map reply (RESP3) or a flat field/value array (RESP2) as a dict with str keys; the values
    are whatever the server sent (Any: parsers check them where they use them)."""
    if isinstance(value, Mapping):
        return {text(k): v for k, v in value.items()}
    if isinstance(value, list | tuple):
        return {text(value[i]): value[i + 1] for i in range(0, len(value) - 1, 2)}
    raise ValueError(f"expected a map, got {type(value).__name__}")


def as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def error_code(exc: BaseException) -> str:
    """The error code of an error reply (`READONLY`, `BUSY`, `NOPERM`, `ERR`...): what we match on,
    never the prose after it, which differs between servers ("Redis is busy" / "Valkey is busy").

    redis-py strips the code from the text of the errors it has a class for and keeps it in
    `status_code`; errors read by our raw batch path (batch.py) keep it as their first word."""
    code = getattr(exc, "status_code", None)
    if isinstance(code, str) and code:
        return code
    first = str(exc).split(" ", 1)[0]
    return first if first.isupper() and first.isalpha() else ""


def is_unknown_command(exc: BaseException) -> bool:
    """ERR unknown command / unknown subcommand: renamed away (rename-command) or not offered (hosted
    services). Both servers say it in these words; there is no code of its own beyond ERR."""
    text = str(exc).lower()
    return error_code(exc) == "ERR" and ("unknown command" in text or "unknown subcommand" in text)
