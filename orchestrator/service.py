"""`redis-orchestrator run`: the daemon as a process. Signals, the metrics endpoint, the embedded
local cluster, the slow-script watchers, systemd notification; the Daemon does the rest."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable

from orchestrator import logs
from orchestrator.config import load_config
from orchestrator.daemon import Daemon
from orchestrator.errors import EXIT_CLEAN
from orchestrator.metrics import Metrics


def run_daemon(args: argparse.Namespace) -> int:
    seeds = args.seed
    cluster = None
    if getattr(args, "local_cluster", False):
        from orchestrator.local_cluster import LocalCluster

        logs.event("local_cluster_starting", "starting 3 primaries + 3 replicas from redis-server")
        cluster = LocalCluster(primaries=3, replicas_per_primary=1, log=lambda m: logs.event("local_cluster", m))
        cluster.start()
        seeds = cluster.seeds
    try:
        config = load_config(args.config, seeds)
        return asyncio.run(serve(config, seeds=seeds, metrics_enabled=not getattr(args, "no_metrics", False)))
    finally:
        if cluster is not None:
            cluster.stop()
            logs.event("local_cluster_stopped")


async def serve(
    config: object,
    *,
    seeds: list[str] | None = None,
    metrics_enabled: bool = True,
    on_daemon: Callable[[Daemon], None] | None = None,
) -> int:
    from orchestrator.config import Config

    assert isinstance(config, Config)
    metrics = Metrics()
    daemon = Daemon(config, seeds_override=seeds, metrics=metrics)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(daemon, sig))
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    _attach_slowlog(daemon)
    server = None
    if metrics_enabled and config.metrics.enabled:
        server = _start_metrics(daemon)
    if on_daemon is not None:
        on_daemon(daemon)
    logs.event(
        "starting",
        config=str(config.path),
        catalog=config.catalog.version,
        seeds=",".join(seeds or config.redis.seeds),
        metrics=f"http://{config.metrics.listen}/metrics" if server is not None else None,
    )
    try:
        await daemon.run()
    finally:
        if server is not None:
            server.close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    logs.event("stopped")
    return EXIT_CLEAN


def _stopper(daemon: Daemon, sig: int) -> Callable[[], None]:
    def stop() -> None:
        logs.event("stopping", signal=signal.Signals(sig).name)
        daemon.stop()

    return stop


def _start_metrics(daemon: Daemon) -> object | None:
    try:
        from orchestrator.http import MetricsServer
    except ImportError:
        return None
    server = MetricsServer(daemon.config.metrics.listen, daemon.metrics.registry, daemon.ready)
    try:
        server.start()
    except OSError as exc:
        logs.error("metrics_unavailable", f"cannot listen on {daemon.config.metrics.listen}: {exc}")
        return None
    return server


def _attach_slowlog(daemon: Daemon) -> None:
    settings = daemon.config.slow_scripts
    if not settings.enabled:
        return
    try:
        from orchestrator.slowlog import SlowlogWatcher
    except ImportError:
        return

    def factory(address: str) -> object:
        host, _, port = address.rpartition(":")
        watcher = SlowlogWatcher(
            address,
            daemon.connector.client(host, int(port)),
            lambda: daemon.catalog,
            daemon.metrics,
            daemon.config.slow_scripts,
        )
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(watcher.run(stop))
        return _Running(task, stop)

    daemon.node_watcher_factory = factory  # type: ignore[attr-defined]


class _Running:
    def __init__(self, task: asyncio.Task[None], stop: asyncio.Event) -> None:
        self.task = task
        self._stop = stop

    async def stop(self) -> None:
        self._stop.set()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
