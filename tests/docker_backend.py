"""REDIS_TEST_BACKEND=docker: the same 3+3 cluster, each node a `redis:7` container (testcontainers)
on the host network, so node addresses are the loopback ports the cluster announces.

Only usable where a Docker engine answers; this machine's CI has none and uses the local backend.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.chaos import ChaosCluster
from redis_orchestrator.devcluster.cluster import LocalNode

IMAGE = os.environ.get("REDIS_TEST_IMAGE", "redis:7.0")


class ContainerProcess:
    """Enough of subprocess.Popen's interface for LocalCluster, backed by a container."""

    def __init__(self, node: LocalNode, conf: Path) -> None:
        from testcontainers.core.container import DockerContainer

        self.container = (
            DockerContainer(IMAGE)
            .with_kwargs(network_mode="host")
            .with_volume_mapping(str(node.directory), str(node.directory), "rw")
            .with_command(f"redis-server {conf}")
        )
        self.container.start()
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return int(self.container.get_wrapped_container().attrs["State"]["Pid"])

    def poll(self) -> int | None:
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        if wrapped.status in ("exited", "dead"):
            self.returncode = int(wrapped.attrs["State"]["ExitCode"])
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.container.get_wrapped_container().kill(signal=signal.Signals(sig).name)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        result: dict[str, Any] = self.container.get_wrapped_container().wait(timeout=timeout)
        self.returncode = int(result.get("StatusCode", 0))
        self.container.stop()
        return self.returncode


@contextmanager
def docker_cluster() -> Iterator[ChaosCluster]:
    cluster = ChaosCluster(primaries=3, replicas_per_primary=1, launcher=ContainerProcess)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
