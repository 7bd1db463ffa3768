"""REDIS_TEST_BACKEND=docker: the test clusters (the session's `cluster`, every `fresh_cluster`) run
each node as a container started by testcontainers on the host's network, so node addresses are the
loopback ports the cluster announces, and kill -9, SIGSTOP and restarts go through the engine's API.

The engine is docker's where it answers, else podman's Docker-compatible API: `podman system service`
on a socket of the session's own, started before the first cluster and stopped after the last
(harness/containers.py). The image is $REDIS_TEST_IMAGE, by default one made from Debian's
redis-server (no registry needed). Ryuk, testcontainers' reaper, is off (its image would have to be
pulled): every container is removed by the cluster's stop(), and one left by a killed session is
removed when the next one starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.containers import Engine, docker_api, missing_tools, redis_image
from redis_orchestrator.devcluster.cluster import LocalClusterError, LocalNode


class ContainerProcess:
    """Enough of subprocess.Popen's interface for LocalCluster, backed by a container: like Popen,
    it reaps (removes) the container once it has seen it exit."""

    def __init__(self, node: LocalNode, conf: Path, *, image: str) -> None:
        from testcontainers.core.container import DockerContainer

        self.container = (
            DockerContainer(image)
            .with_kwargs(network_mode="host")
            .with_volume_mapping(str(node.directory), str(node.directory), "rw")
            .with_command(f"redis-server {conf}")
        )
        self.container.start()
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()  # its attributes are the create call's until then: no Pid yet
        self._pid = int(wrapped.attrs["State"]["Pid"])
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self._pid

    def poll(self) -> int | None:
        if self.returncode is None:
            wrapped = self.container.get_wrapped_container()
            wrapped.reload()
            if wrapped.status in ("exited", "dead"):
                self._reap(int(wrapped.attrs["State"]["ExitCode"]))
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # Popen's rule: a signal to a process already reaped does nothing
            self.container.get_wrapped_container().kill(signal=signal.Signals(sig).name)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            result = self.container.get_wrapped_container().wait(timeout=timeout)
            self._reap(int(result.get("StatusCode", 0)))
        assert self.returncode is not None
        return self.returncode

    def _reap(self, code: int) -> None:
        self.returncode = code
        self.container.stop()  # removes it


@dataclass(frozen=True)
class DockerBackend:
    """The session's engine API (in DOCKER_HOST while it lasts) and the image nodes run."""

    image: str

    def cluster(self) -> ChaosCluster:
        """A started 3+3 cluster. Tried twice when a node could not bind its port: devcluster checks
        a port pair is free, then the node binds it; a container takes about half a second to get
        there, long enough for a client's ephemeral port (32768-60999 here, inside the bus ports'
        30000-55000) to take it (seen once: "Failed listening on port 35798 (cluster)")."""
        try:
            return self._started()
        except LocalClusterError as exc:  # start() stopped what it had started
            if "Address already in use" not in str(exc):
                raise
        return self._started()

    def _started(self) -> ChaosCluster:
        cluster = ChaosCluster(
            primaries=3, replicas_per_primary=1, launcher=partial(ContainerProcess, image=self.image)
        )
        cluster.start()
        return cluster


@contextlib.contextmanager
def session_backend() -> Iterator[DockerBackend]:
    """The engine's API for testcontainers, from the first test that needs a cluster to the end of
    the session; skips (naming what is missing) where no engine can run here."""
    reason = missing_tools()
    if reason:
        pytest.skip(f"REDIS_TEST_BACKEND=docker: {reason}")
    from testcontainers.core.config import testcontainers_config

    engine = Engine.detect()
    image = os.environ.get("REDIS_TEST_IMAGE") or redis_image(engine)
    leftovers = engine.run(
        "ps", "-a", "-q", "--filter", "label=org.testcontainers=true", "--filter", f"ancestor={image}"
    ).stdout.split()
    if leftovers:
        engine.run("rm", "-f", "-v", *leftovers, check=False)
    testcontainers_config.ryuk_disabled = True
    saved = os.environ.get("DOCKER_HOST")
    with docker_api(engine) as host:
        os.environ["DOCKER_HOST"] = host
        try:
            yield DockerBackend(image)
        finally:
            if saved is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = saved
