"""One log line per event: `event=name key=value ...` for people, or one JSON object per line.

journald and container log collectors read either as it is. Secrets never reach here: fields are
values the daemon chose to log (addresses, script labels, error texts), and connection errors are
described by `connections.describe_error`, which never includes a password.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER = logging.getLogger("redis_orchestrator")


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        fields = getattr(record, "fields", {}) or {}
        event = getattr(record, "event", "")
        parts = [stamp, record.levelname.lower(), event] if event else [stamp, record.levelname.lower()]
        parts += [f"{k}={_quote(v)}" for k, v in fields.items() if v is not None]
        message = record.getMessage()
        if message:
            parts.append(f"- {message}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
        }
        event = getattr(record, "event", "")
        if event:
            payload["event"] = event
        payload.update({k: v for k, v in (getattr(record, "fields", {}) or {}).items() if v is not None})
        message = record.getMessage()
        if message:
            payload["message"] = message
        if record.exc_info:
            payload["traceback"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() for c in text) or '"' in text or "=" in text:
        return json.dumps(text)
    return text


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter() if fmt == "json" else _TextFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level)
    LOGGER.propagate = False


def event(name: str, message: str = "", *, level: int = logging.INFO, **fields: Any) -> None:
    LOGGER.log(level, message, extra={"event": name, "fields": fields})


def warning(name: str, message: str = "", **fields: Any) -> None:
    event(name, message, level=logging.WARNING, **fields)


def error(name: str, message: str = "", **fields: Any) -> None:
    event(name, message, level=logging.ERROR, **fields)


def failure(name: str, message: str = "", **fields: Any) -> None:
    """An error with the traceback of the exception being handled (call it from an except block)."""
    LOGGER.log(logging.ERROR, message, exc_info=True, extra={"event": name, "fields": fields})
