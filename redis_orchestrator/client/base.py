"""What Scripts and AsyncScripts share, with no I/O: the manifest, the options, the counters, call
preparation, and what `run` decides about redirects and WAIT.

The classes themselves are in _async/scripts.py (AsyncScripts) and _sync/scripts.py (Scripts,
generated from it); each is a ScriptsBase over its own kind of route.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Self, TypeVar

import redis.exceptions

from redis_orchestrator.client.calls import Call, Command, Fallback, Options, Policy, is_missing, prepare
from redis_orchestrator.client.counters import Counters, Event
from redis_orchestrator.client.errors import ManifestError, NotReplicated, ScriptMissing
from redis_orchestrator.client.keys import Key
from redis_orchestrator.client.manifest import Manifest, load_manifest
from redis_orchestrator.client.tracing import Telemetry

DEFAULT_MANIFEST_KEY = "{redis-orchestrator}:manifest"
MAX_REDIRECTS = 5  # MOVED/ASK/TRYAGAIN/CLUSTERDOWN replies followed before giving up

RouteT = TypeVar("RouteT")


def redirect_pause(attempt: int) -> float:
    """TRYAGAIN / CLUSTERDOWN: the cluster needs a moment (a failover in progress)."""
    return min(0.05 * (1 << attempt), 0.5)


def redirect_target(reply: object) -> str | None:
    """The `host:port` an ASK sends us to; None for the others (MOVED names the slot's new owner for
    good: Route.moved takes it into the slot table). redis-py's MovedError is an AskError."""
    if isinstance(reply, redis.exceptions.AskError) and not isinstance(reply, redis.exceptions.MovedError):
        return f"{reply.host}:{reply.port}"
    return None


def wait_command(replicas: int, timeout_ms: int) -> Command | None:
    return ("WAIT", replicas, timeout_ms) if replicas > 0 else None


def acked_count(replies: Sequence[Any], wait: Command | None) -> int:
    """WAIT's reply: how many replicas acknowledged (0 when WAIT was not sent or failed)."""
    if wait is None or isinstance(replies[1], Exception):
        return 0
    return int(replies[1])


def manifest_from_config(path: str | os.PathLike[str]) -> Manifest:
    """The catalog itself, read as the daemon reads it (for tests and local use)."""
    # Imported here: an application reading the manifest needs neither YAML nor the daemon's config.
    from redis_orchestrator.config.loader import load_config

    return load_manifest(load_config(path).catalog.manifest())


def no_manifest(key: str) -> ManifestError:
    return ManifestError(
        key,
        [
            f'no manifest at {key}: run the daemon with `manifest: {{key: "{key}"}}` in its config '
            "(it writes the key), or use from_manifest with `redis-orchestrator manifest` output"
        ],
    )


class ScriptsBase(Generic[RouteT]):
    """What Scripts and AsyncScripts share: the manifest, the options, the counters, call preparation.

    Options (all keyword-only, shared by from_redis / from_manifest / from_config):
      fallback="load"     after NOSCRIPT: SCRIPT LOAD the catalog's bytes on that node and retry once
                          (counted in .counters.fallbacks and logged); "raise": ScriptMissing instead
      check_keys=True     refuse keys that do not match the catalog's `keys:` patterns
      check_slots=True    refuse keys in two hash slots, on a single node too (as production would)
      counters=None       a Counters to share (bind() shares it); registry: export to prometheus_client
      tracer_provider=None  OpenTelemetry's provider for the spans of calls (None: the global one;
                          without the `otel` extra there are none): see tracing.py
    """

    def __init__(
        self,
        manifest: Manifest,
        client: Any = None,
        *,
        fallback: Fallback | str = Fallback.LOAD,
        check_keys: bool = True,
        check_slots: bool = True,
        counters: Counters | None = None,
        registry: Any = None,
        tracer_provider: Any = None,
    ) -> None:
        self.manifest = manifest
        self.options = Options(Fallback(fallback), check_keys, check_slots)
        self.counters = counters if counters is not None else Counters()
        self.policy = Policy(self.options, self.counters)
        self.telemetry = Telemetry(self.counters, tracer_provider)
        self.client = client
        self._route: RouteT | None = None  # the subclass makes it from the client
        if registry is not None:
            self.counters.register(registry)

    @classmethod
    def from_manifest(
        cls, source: str | os.PathLike[str] | Mapping[str, Any] | bytes, client: Any = None, **options: Any
    ) -> Self:
        """Read the JSON `redis-orchestrator manifest` prints: a path, the text, or the parsed mapping."""
        return cls(load_manifest(source), client, **options)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], client: Any = None, **options: Any) -> Self:
        """Read the catalog itself from the daemon's config file (tests, local use)."""
        return cls(manifest_from_config(path), client, **options)

    def bind(self, client: Any) -> Self:
        """The same catalog, options and counters over another client (e.g. Sentinel's slave_for)."""
        return type(self)(
            self.manifest,
            client,
            fallback=self.options.fallback,
            check_keys=self.options.check_keys,
            check_slots=self.options.check_slots,
            counters=self.counters,
            tracer_provider=self.telemetry.tracer_provider,
        )

    @property
    def names(self) -> tuple[str, ...]:
        return self.manifest.names

    @property
    def route(self) -> RouteT:
        """Where calls go: the route made from the client (TypeError when there is none)."""
        if self._route is None:
            raise TypeError(
                f"this {type(self).__name__} has no client: pass client= when making it, or use scripts.bind(client)"
            )
        return self._route

    def replicated(self, call: Call, reply: Any, acked: int, wanted: int) -> Any:
        if wanted > 0 and acked < wanted:
            self.counters.add(Event.NOT_REPLICATED, call.label)
            raise NotReplicated(call.label, reply, acked, wanted)
        return reply

    def reloaded(self, call: Call, node: str, replies: Sequence[Any], n: int) -> list[Any]:
        """The replies after [load, call...]: the load's checked, the call's returned."""
        self.policy.loaded(call, node, replies[0])
        tail = list(replies[-n:])
        if is_missing(tail[0], call):
            raise ScriptMissing(call.label, node, "still missing right after loading it")
        return tail

    def prepare(
        self, name: str, keys: Sequence[Key] = (), args: Sequence[Any] = (), version: str | int | None = None
    ) -> Call:
        """Resolve and check a call without sending it (UnknownScript, CrossSlotError, KeyPatternError)."""
        return prepare(self.manifest, self.options, name, keys, args, version)
