"""The daemon's metrics endpoint under siege, as the 2026-12-06 probe tried it (issue #22): 2,000 idle
connections kept open and a slow-loris client, while a real Prometheus scrapes every second and a
flushed node is repaired. The daemon runs under `ulimit -n 1024` (a systemd unit without
LimitNOFILE), where ~990 idle connections used to exhaust its descriptors.

What must hold: every scrape succeeds, /healthz answers every time, the repair happens, the log
has no traceback; what the endpoint did is counted (connections evicted to make room, timed out).
The repair's time is printed next to one measured before the siege, in the same run."""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess, all_hold, catalog_shas, free_port, wait_for, write_config
from tests.http_endpoint import prometheus_api, request, running_prometheus

pytestmark = [pytest.mark.live, pytest.mark.once, pytest.mark.slow, pytest.mark.timeout(240)]

IDLE = 2000
SIEGE_SECONDS = 10.0


@contextlib.contextmanager
def descriptor_limit(soft: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE for the `with` block (children started in it inherit it)."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, old[1]), old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


class Siege:
    """IDLE connections kept open (one that the server closes is opened again at once) from four
    addresses of their own (127.0.2.1-4: the scraper is elsewhere, as it would be), and one
    slow-loris client sending a byte every half second, on threads, until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.reopened = 0
        self.loris_closed = 0
        self._threads = [
            threading.Thread(target=self._idle, daemon=True),
            threading.Thread(target=self._loris, daemon=True),
        ]

    def __enter__(self) -> Siege:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _connect(self, source: str) -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", self.port), timeout=5, source_address=(source, 0))
        except OSError:
            return None

    def _idle(self) -> None:
        with selectors.DefaultSelector() as selector:
            for n in range(IDLE):
                source = f"127.0.2.{n % 4 + 1}"
                if (sock := self._connect(source)) is not None:
                    selector.register(sock, selectors.EVENT_READ, source)
            while not self.stop.is_set():
                for key, _ in selector.select(timeout=0.2):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    selector.unregister(sock)
                    sock.close()  # the server closed it (evicted, or timed out): open another
                    if not self.stop.is_set() and (new := self._connect(key.data)) is not None:
                        selector.register(new, selectors.EVENT_READ, key.data)
                        self.reopened += 1
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]

    def _loris(self) -> None:
        head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000
        while not self.stop.is_set():
            if (sock := self._connect("127.0.3.1")) is None:
                time.sleep(0.5)
                continue
            with sock:
                try:
                    for byte in head:
                        if self.stop.is_set():
                            return
                        sock.sendall(bytes([byte]))
                        time.sleep(0.5)
                except OSError:
                    self.loris_closed += 1


def repair_ms(cluster: ChaosCluster, shas: set[str], runs: int = 5) -> float:
    """Median ms from a replica's SCRIPT FLUSH to its scripts back, `runs` times. The daemon's watch
    connection to it is killed with the flush, as a restart would drop it: the repair then starts at
    once, not at the next reconcile pass (up to a second later), so the figure is the daemon's own."""
    replica = cluster.replicas()[0]
    times = []
    for _ in range(runs):
        with replica.client() as c:
            watch = [line for line in c.client_list() if line.get("name") == "redis-orchestrator-watch"]
            c.execute_command("SCRIPT", "FLUSH")
            for line in watch:
                c.execute_command("CLIENT", "KILL", "ID", line["id"])
        times.append(wait_for(lambda: all_hold(cluster, shas), 30, "the flushed replica repaired", interval=0.002))
        time.sleep(0.3)
    return statistics.median(times) * 1000


def test_scrapes_health_and_repairs_go_on_under_2000_idle_connections_and_a_slow_loris(
    clean_cluster: ChaosCluster, tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(tmp_path, clean_cluster.seeds[:1], metrics={"enabled": True, "listen": f"127.0.0.1:{port}"})
    shas = catalog_shas(config)
    with descriptor_limit(1024):
        daemon = DaemonProcess(config, "--log-format", "json")
    with daemon:
        wait_for(lambda: _status(port, "/readyz") == 200, 30, "the daemon to be ready")
        baseline = repair_ms(clean_cluster, shas)
        scrape = f"  - job_name: redis-orchestrator\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        with running_prometheus(tmp_path, scrape) as prometheus:
            wait_for(lambda: _up_samples(prometheus, "5s")[0] > 0, 60, "Prometheus' first scrape")
            with Siege(port) as siege:
                time.sleep(3)  # the idle connections are open, and the endpoint is full
                health = []
                started = time.monotonic()
                while time.monotonic() - started < SIEGE_SECONDS:
                    health.append(_status(port, "/healthz"))
                    time.sleep(0.5)
                under_siege = repair_ms(clean_cluster, shas)
            window = f"{int(SIEGE_SECONDS) + 3}s"
            scrapes, up = _up_samples(prometheus, window)
        metrics = request(port).body.decode()
    log = daemon.log()
    print(
        f"\nrepair of a flushed replica (median of 5): {baseline:.0f} ms before the siege, "
        f"{under_siege:.0f} ms under it; "
        f"scrapes up {up}/{scrapes}; /healthz 200 {health.count(200)}/{len(health)}; "
        f"idle connections reopened {siege.reopened}, slow-loris closed {siege.loris_closed}"
    )
    assert health == [200] * len(health)
    assert scrapes >= SIEGE_SECONDS / 2 and up == scrapes  # every scrape in the window succeeded
    assert siege.loris_closed >= 1
    assert _counter(metrics, 'redis_orchestrator_http_connections_dropped_total{reason="evicted"}') > 0
    assert _counter(metrics, 'redis_orchestrator_http_connections_dropped_total{reason="timeout"}') > 0
    assert "Traceback" not in log and '"traceback"' not in log
    assert '"event": "metrics_connections_full"' in log  # said once a minute, not once per connection


def _status(port: int, path: str) -> int:
    try:
        return request(port, path, timeout=5).status
    except OSError:
        return 0


def _up_samples(prometheus: int, window: str) -> tuple[int, int]:
    """(scrapes, successful scrapes) of the daemon in the last `window`."""
    job = 'up{job="redis-orchestrator"}'
    counts = []
    for fn in ("count_over_time", "sum_over_time"):
        try:
            result = prometheus_api(prometheus, "/api/v1/query", query=f"{fn}({job}[{window}])")["data"]["result"]
        except (OSError, ValueError):  # not listening yet, or not answering yet
            result = []
        counts.append(int(float(result[0]["value"][1])) if result else 0)
    return counts[0], counts[1]


def _counter(exposition: str, series: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
