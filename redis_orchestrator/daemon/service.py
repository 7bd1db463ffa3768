"""`redis-orchestrator run`: the daemon as a process. The event loop, signals, the embedded local
cluster or Sentinel group and systemd's notify socket; the Daemon does the rest (lifecycle.py shows
every task it runs).

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
from typing import TYPE_CHECKING

from redis_orchestrator import logs
from redis_orchestrator.config.loader import load_config
from redis_orchestrator.config.settings import Config, Mode, RedisOverrides
from redis_orchestrator.daemon.assembly import build_daemon
from redis_orchestrator.daemon.lifecycle import Daemon
from redis_orchestrator.daemon.systemd import Notifier, watchdog_interval
from redis_orchestrator.errors import EXIT_CLEAN

if TYPE_CHECKING:
    from redis_orchestrator.devcluster.cluster import LocalCluster
    from redis_orchestrator.devcluster.sentinel import LocalSentinel


def run_daemon(args: argparse.Namespace) -> int:
    overrides = RedisOverrides().with_seeds(args.seed)
    embedded: LocalCluster | LocalSentinel | None = None
    if args.local_cluster:
        from redis_orchestrator.devcluster.cluster import LocalCluster

        logs.event("local_cluster_starting", "starting 3 primaries + 3 replicas from redis-server")
        embedded = LocalCluster(primaries=3, replicas_per_primary=1, log=lambda m: logs.event("local_cluster", m))
        embedded.start()
        overrides = RedisOverrides(seeds=tuple(embedded.seeds), mode=Mode.CLUSTER)
    elif args.local_sentinel:
        from redis_orchestrator.devcluster.sentinel import LocalSentinel

        logs.event("local_sentinel_starting", "starting 1 primary + 2 replicas + 3 Sentinels from redis-server")
        embedded = LocalSentinel(replicas=2, sentinels=3, log=lambda m: logs.event("local_sentinel", m))
        embedded.start()
        overrides = RedisOverrides(seeds=tuple(embedded.seeds), mode=Mode.SENTINEL, service_name=embedded.service_name)
    try:
        config = load_config(args.config, overrides=overrides)
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(
                serve(
                    config,
                    overrides=overrides,
                    serve_metrics=not args.no_metrics,
                    web_config_file=args.web_config_file,
                )
            )
    finally:
        if embedded is not None:
            embedded.stop()
            logs.event("local_cluster_stopped" if args.local_cluster else "local_sentinel_stopped")


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
    overrides: RedisOverrides | None = None,
    serve_metrics: bool = True,
    web_config_file: str | None = None,
) -> int:
    notifier = Notifier()
    daemon = build_daemon(
        config,
        overrides=overrides,
        notifier=notifier,
        watchdog_interval=watchdog_interval(),
        serve_metrics=serve_metrics,
        web_config_file=web_config_file,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(daemon, sig, notifier))
    loop.add_signal_handler(signal.SIGHUP, _reloader(daemon, notifier))
    start = config.start
    logs.event(
        "starting",
        config=str(config.path),
        catalog=config.catalog.version,
        mode=start.redis.mode,
        service=start.redis.service_name,
        seeds=",".join(start.redis.seeds),
        metrics=daemon.http.url if daemon.http is not None else None,
        leader_key=start.leader.key if daemon.leader is not None else None,
        systemd="notify" if notifier.enabled else None,
        watchdog_s=round(daemon.watchdog.interval, 3) if daemon.watchdog is not None else None,
    )
    if daemon.leader is None:
        logs.warning(
            "leader_disabled",
            "leader.enabled: false promises this is the only instance: it kills runaway scripts and writes "
            "the manifest key without a lease; a second instance would do the same",
        )
    try:
        await daemon.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        notifier.close()
    logs.event("stopped")
    return EXIT_CLEAN


_SLOW_STOP_SECONDS = 5.0
_RECANCEL_SECONDS = 1.0


def _stopper(daemon: Daemon, sig: int, notifier: Notifier) -> Callable[[], None]:
    def stop() -> None:
        logs.event("stopping", signal=signal.Signals(sig).name)
        notifier.notify("STOPPING=1")
        daemon.stop()
        loop = asyncio.get_running_loop()
        loop.call_later(_RECANCEL_SECONDS, _recancel_swallowed)
        loop.call_later(_SLOW_STOP_SECONDS, _report_slow_stop)

    return stop


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
        # systemd's ExecReload sends SIGHUP; the reload itself is logged by the daemon's catalog watch.
        notifier.notify("STATUS=reloading the catalog (SIGHUP)")
        daemon.request_reload()
        if daemon.http is not None:
            daemon.http.request_reload()  # the metrics endpoint's web config, like the catalog

    return reload
