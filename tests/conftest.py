"""Shared fixtures: real Redis Cluster processes on free loopback ports, never mocks.

`cluster` is one 3+3 cluster for the whole session (tests must leave it as they found it: same
roles, no foreign scripts left behind unless they flush them); `fresh_cluster` is a new 3+3 cluster
for a test that breaks things (kills, freezes, failovers). Both stop every process they started,
even when the test fails. With REDIS_TEST_BACKEND=docker both come from testcontainers instead, each
node a container (docker's engine, or podman's API started for the session: tests/docker_backend.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from redis.cluster import RedisCluster

from harness.chaos import ChaosCluster
from redis_orchestrator.devcluster.cluster import redis_server_binary, server_version

if TYPE_CHECKING:
    from tests.docker_backend import DockerBackend

# Fixtures that bring real server processes: a test that uses one is `live` without saying so.
# Tests that start servers some other way say it themselves (pytestmark = pytest.mark.live).
LIVE_FIXTURES = frozenset(
    {
        "cluster", "fresh_cluster", "clean_cluster", "rc", "group", "clean_group", "acl_cluster", "acl_group",
        "auth_cluster", "tls_cluster", "solo", "solo_node", "stack", "prometheus", "wheel_venv", "scratch",
    }
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """A test not marked live cannot start a server, in its fixtures of any scope or in subprocesses
    (devcluster refuses while REDIS_ORCHESTRATOR_NO_SERVERS is set): `pytest -m "not live"` is the
    pure suite and stays one."""
    pure = item.get_closest_marker("live") is None
    if pure:
        os.environ["REDIS_ORCHESTRATOR_NO_SERVERS"] = "1"
    try:
        return (yield)
    finally:
        if pure:
            os.environ.pop("REDIS_ORCHESTRATOR_NO_SERVERS", None)


def pytest_report_header() -> str:
    binary = redis_server_binary()
    return f"server: {server_version(binary)} ({binary}); set REDIS_SERVER to run on another binary"


def _make_cluster(request: pytest.FixtureRequest) -> ChaosCluster:
    if os.environ.get("REDIS_TEST_BACKEND", "local") == "docker":
        backend: DockerBackend = request.getfixturevalue("docker_backend")
        return backend.cluster()
    return ChaosCluster(primaries=3, replicas_per_primary=1).start()


@pytest.fixture(scope="session")
def docker_backend() -> Iterator[DockerBackend]:
    """REDIS_TEST_BACKEND=docker: the container engine's API (podman's started here when docker does
    not answer) and the Redis image, for every cluster of the session (tests/docker_backend.py)."""
    from tests.docker_backend import session_backend

    with session_backend() as backend:
        yield backend


@pytest.fixture(autouse=True)
def _package_logger_as_it_was() -> Iterator[None]:
    """Tests that run the CLI in-process call logs.setup, which gives the package logger its own
    handler and stops propagation: undo that after each test, so caplog sees the next test's logs."""
    logger = logging.getLogger("redis_orchestrator")
    handlers, propagate, level = logger.handlers[:], logger.propagate, logger.level
    yield
    logger.handlers[:] = handlers
    logger.propagate = propagate
    logger.setLevel(level)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[ChaosCluster]:
    c = _make_cluster(request)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def fresh_cluster(request: pytest.FixtureRequest) -> Iterator[ChaosCluster]:
    c = _make_cluster(request)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def clean_cluster(cluster: ChaosCluster) -> Iterator[ChaosCluster]:
    """The session cluster with every script cache and function library emptied before and after."""

    def flush() -> None:
        for node in cluster.nodes:
            if node.running():
                with node.client() as c:
                    c.execute_command("SCRIPT", "FLUSH")
                    if node.role() == "primary":
                        c.execute_command("FUNCTION", "FLUSH")

    flush()
    yield cluster
    flush()


@pytest.fixture(scope="module")
def rc(cluster: ChaosCluster) -> Iterator[RedisCluster]:
    """redis-py's cluster client on the session cluster, replies decoded to str."""
    host, port = cluster.seeds[0].split(":")
    client = RedisCluster(host=host, port=int(port), socket_timeout=5, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
