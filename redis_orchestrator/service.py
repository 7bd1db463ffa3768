"""`redis-orchestrator run`: the daemon as a process. Signals, the metrics endpoint, the embedded
local cluster, the slow-script watchers, the leader lease and manifest, systemd notification and
watchdog; the Daemon does the rest.

Under systemd (Type=notify, see deploy/systemd/): READY=1 once the first catalog is loaded and
reconciled on every reachable node, STATUS= lines as node states change, WATCHDOG=1 at half of
WatchdogSec= while the loops make progress, STOPPING=1 on SIGTERM. Outside systemd these are no-ops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Callable

from redis_orchestrator import logs
from redis_orchestrator.config import Config, load_config
from redis_orchestrator.daemon import Daemon
from redis_orchestrator.errors import EXIT_CLEAN, ConfigError
from redis_orchestrator.http import MetricsServer
from redis_orchestrator.leader import KeyRouter, LeaderError, LeaderLease, ManifestPublisher, load_lock_scripts
from redis_orchestrator.metrics import Metrics
from redis_orchestrator.slowlog import SlowlogWatcher
from redis_orchestrator.systemd import LoopHealth, Notifier, watchdog_interval, watchdog_loop
from redis_orchestrator.waiting import cancel_and_wait


def run_daemon(args: argparse.Namespace) -> int:
    seeds = args.seed
    cluster = None
    if getattr(args, "local_cluster", False):
        from redis_orchestrator.local_cluster import LocalCluster

        logs.event("local_cluster_starting", "starting 3 primaries + 3 replicas from redis-server")
        cluster = LocalCluster(primaries=3, replicas_per_primary=1, log=lambda m: logs.event("local_cluster", m))
        cluster.start()
        seeds = cluster.seeds
    try:
        config = load_config(args.config, seeds)
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(serve(config, seeds=seeds, metrics_enabled=not getattr(args, "no_metrics", False)))
    finally:
        if cluster is not None:
            cluster.stop()
            logs.event("local_cluster_stopped")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (Linux/macOS): the daemon is a few hundred small socket operations a
    second, and uvloop's C event loop cuts what they cost by about a quarter; the stdlib loop
    otherwise, or when REDIS_ORCHESTRATOR_EVENT_LOOP=asyncio."""
    if os.environ.get("REDIS_ORCHESTRATOR_EVENT_LOOP", "auto") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def serve(
    config: Config,
    *,
    seeds: list[str] | None = None,
    metrics_enabled: bool = True,
    on_daemon: Callable[[Daemon], None] | None = None,
    notifier: Notifier | None = None,
) -> int:
    notifier = notifier if notifier is not None else Notifier()
    metrics = Metrics()
    daemon = Daemon(config, seeds_override=seeds, metrics=metrics, notify=notifier.send)
    lease = _attach_leader(daemon)
    is_leader: Callable[[], bool] = lease.is_leader if lease is not None else (lambda: True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(daemon, sig, notifier))
    loop.add_signal_handler(signal.SIGHUP, _reloader(daemon, notifier))
    _attach_slowlog(daemon, is_leader)
    _attach_watchdog(daemon, notifier)
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
        leader_key=config.leader.key if lease is not None else None,
        systemd="notify" if notifier.enabled else None,
    )
    try:
        await daemon.run()
    finally:
        if lease is not None:
            await lease.aclose()  # hand the lease over now rather than after it expires
        if server is not None:
            server.close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        notifier.close()
    logs.event("stopped")
    return EXIT_CLEAN


_SLOW_STOP_SECONDS = 5.0


def _stopper(daemon: Daemon, sig: int, notifier: Notifier) -> Callable[[], None]:
    def stop() -> None:
        logs.event("stopping", signal=signal.Signals(sig).name)
        notifier.notify("STOPPING=1")
        daemon.stop()
        loop = asyncio.get_running_loop()
        loop.call_later(_RECANCEL_SECONDS, _recancel_swallowed)
        loop.call_later(_SLOW_STOP_SECONDS, _report_slow_stop)

    return stop


_RECANCEL_SECONDS = 1.0


def _recancel_swallowed() -> None:
    """Cancel again the tasks that were asked to stop but still run.

    On Python 3.11, `asyncio.wait_for` returns normally when its inner awaitable finishes in the same
    loop step as the cancellation (CPython gh-86296, fixed in 3.12): the loop around it goes on and
    shutdown waits forever. Our own waits use `asyncio.timeout`, but redis-py's asyncio send path
    still uses `wait_for`, so the guard stays while 3.11 is supported. `Task.cancelling()` still
    counts the lost request, which finds them."""
    loop = asyncio.get_running_loop()
    lost = [t for t in asyncio.all_tasks() if not t.done() and t.cancelling() > 0]
    for task in lost:
        logs.warning("stop_recancel", "a cancellation was swallowed; cancelling again", task=task.get_name())
        task.cancel()
    if lost:
        loop.call_later(_RECANCEL_SECONDS, _recancel_swallowed)


def _report_slow_stop() -> None:
    """Still here long after SIGTERM: name the tasks that did not finish (systemd's TimeoutStopSec
    will SIGKILL us; this line says why)."""
    current = asyncio.current_task()
    stuck = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    where = []
    for task in stuck:
        frames = task.get_stack(limit=3)
        place = " < ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames)) or "?"
        where.append(f"{task.get_name()} at {place}")
    logs.error("stop_slow", f"still stopping after {_SLOW_STOP_SECONDS:.0f}s; running: " + "; ".join(where))


def _reloader(daemon: Daemon, notifier: Notifier) -> Callable[[], None]:
    def reload() -> None:
        # systemd's ExecReload sends SIGHUP; the reload itself is logged by the daemon's config loop.
        notifier.notify("STATUS=reloading the catalog (SIGHUP)")
        daemon.request_reload()

    return reload


def _start_metrics(daemon: Daemon) -> MetricsServer | None:
    server = MetricsServer(daemon.config.metrics.listen, daemon.metrics.registry, daemon.ready)
    try:
        server.start()
    except OSError as exc:
        logs.error("metrics_unavailable", f"cannot listen on {daemon.config.metrics.listen}: {exc}")
        return None
    return server


def _attach_leader(daemon: Daemon) -> LeaderLease | None:
    """With leader.enabled: the lease loop (and the manifest after each round while leading).
    Without: this is the only instance, always leader."""
    config = daemon.config
    manifest_key = config.manifest.key
    if not config.leader.enabled:
        daemon.metrics.leader.set(1)
        if manifest_key:
            router = KeyRouter(daemon.connector, lambda: daemon.topology)
            publisher = ManifestPublisher(manifest_key, router, daemon.manifest_json)

            async def publish_forever() -> None:
                while True:
                    await publisher.publish(True)
                    await asyncio.sleep(max(config.daemon.reconcile_interval, 1.0))

            daemon.add_task(publish_forever)
        return None
    try:
        scripts = load_lock_scripts()
    except (LeaderError, OSError) as exc:
        raise ConfigError(str(config.path), [f"leader.enabled: {exc}"]) from exc
    lease = LeaderLease(config.leader, config.redis, lambda: daemon.topology, daemon.metrics, scripts=scripts)
    after_tick = None
    if manifest_key:
        after_tick = ManifestPublisher(manifest_key, lease.router, daemon.manifest_json).publish
    daemon.add_task(lambda: lease.run(after_tick))
    return lease


def _attach_watchdog(daemon: Daemon, notifier: Notifier) -> None:
    interval = watchdog_interval()
    if interval is None or not notifier.enabled:
        return
    settings = daemon.config
    # A pass may take up to the command timeout on a frozen node; allow three of either before
    # declaring the loops stuck.
    stale_after = max(3 * settings.daemon.reconcile_interval, 3 * settings.redis.timeout, 2 * interval)
    health = LoopHealth(
        heartbeat=lambda: daemon.heartbeat,
        passes=lambda: sum(w.status.reconciles for w in daemon.workers.values()),
        stale_after=stale_after,
    )
    logs.event("watchdog_enabled", interval_s=round(interval, 3), stale_after_s=stale_after)
    daemon.add_task(lambda: watchdog_loop(notifier, interval, health))


def _attach_slowlog(daemon: Daemon, is_leader: Callable[[], bool]) -> None:
    settings = daemon.config.slow_scripts
    if not settings.enabled:
        return

    def factory(address: str) -> object:
        host, _, port = address.rpartition(":")
        watcher = SlowlogWatcher(
            address,
            daemon.connector.client(host, int(port)),
            lambda: daemon.catalog,
            daemon.metrics,
            daemon.config.slow_scripts,
            is_leader,
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
        await cancel_and_wait([self.task])
