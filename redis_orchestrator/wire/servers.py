"""What a node is (Redis or Valkey, which version) and what it does that matters to us, read from
`INFO server` and `INFO stats` rather than assumed:

    # Server                          # Server (Valkey 9.1)
    redis_version:7.0.15              redis_version:7.2.4          <- Valkey keeps answering 7.2.4
                                      server_name:valkey
                                      valkey_version:9.1.2
    # Stats
    evicted_scripts:0                 (Redis >= 7.4 and Valkey >= 8; absent on 7.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EVICTED = re.compile(rb"^evicted_scripts:(\d+)", re.MULTILINE)


def info_fields(text: str) -> dict[str, str]:
    """`field:value` lines of an INFO reply (section headers and blank lines skipped)."""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def evicted_scripts(info_stats: bytes | str) -> int | None:
    """INFO stats' evicted_scripts, found without parsing the rest (it is read every pass on servers
    that evict); None when the server does not report it."""
    raw = info_stats if isinstance(info_stats, bytes) else info_stats.encode()
    found = _EVICTED.search(raw)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class ServerInfo:
    name: str  # "redis" | "valkey"
    version: tuple[int, ...]
    reports_evictions: bool  # INFO stats has evicted_scripts

    @classmethod
    def parse(cls, info_server: str, info_stats: str = "") -> ServerInfo:
        fields = info_fields(info_server)
        if "valkey_version" in fields:
            name, version = "valkey", fields["valkey_version"]
        else:
            name, version = "redis", fields.get("redis_version", "0")
        numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
        return cls(name, numbers, evicted_scripts(info_stats) is not None)

    @property
    def label(self) -> str:
        return f"{self.name} {'.'.join(map(str, self.version))}"

    @property
    def scripts_can_vanish(self) -> bool:
        """Whether a catalog script can leave the cache on its own, one at a time.

        Since Redis 7.4, scripts first created by EVAL are evicted (LRU beyond 500), and a later
        SCRIPT LOAD of the same body does not make them permanent: a client that EVALs a catalog
        script before we load it (after a restart, say) leaves it evictable. Valkey 8+ evicts too,
        but SCRIPT LOAD promotes the script to permanent, so what we loaded stays. Redis 7.0 never
        evicts. Where this is true the cache marker alone cannot be trusted (sync.py watches
        evicted_scripts instead)."""
        return self.reports_evictions and self.name != "valkey"


@dataclass(frozen=True)
class CacheStats:
    """A node's script cache as INFO reports it (None where the server does not say)."""

    cached_scripts: int | None = None
    eval_memory_bytes: int | None = None
    evicted_scripts: int | None = None
