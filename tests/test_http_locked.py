"""The metrics endpoint locked by a web config file: basic auth, TLS (mutual too), plain HTTP on the
TLS port, extra headers, the file re-read live; and what every request gets (HEAD, 405, /healthz)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest

from harness.helpers import wait_for
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.devcluster.cluster import LocalTLS
from tests.certs import make_test_certificates
from tests.http_endpoint import PASSWORD, USER, hashed, raw, request, sample, served, write_web_config


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LocalTLS:
    return make_test_certificates(tmp_path_factory.mktemp("certs"))


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log's events, `web_config_reloaded SIGHUP` for one with a reason."""
    found = []
    for record in caplog.records:
        reason = getattr(record, "fields", {}).get("reason")
        found.append(f"{getattr(record, 'event', '')} {reason}" if reason else getattr(record, "event", ""))
    return found


def test_every_path_asks_for_credentials_and_good_ones_are_checked_once(tmp_path: Path) -> None:
    metrics = Metrics()
    web = write_web_config(tmp_path / "web.yml", users={USER: hashed(PASSWORD)})
    with served(metrics, web) as server:
        for path in ("/metrics", "/healthz", "/readyz", "/"):
            missing = request(server.port, path)
            assert missing.status == 401, path
            assert missing.headers["www-authenticate"] == 'Basic realm="redis-orchestrator", charset="UTF-8"'
        assert request(server.port, auth=(USER, "wrong")).status == 401
        assert request(server.port, auth=("nobody", PASSWORD)).status == 401
        assert request(server.port, auth=("nobody", PASSWORD)).status == 401  # a failure seen is cached too
        for _ in range(5):
            ok = request(server.port, auth=(USER, PASSWORD))
            assert ok.status == 200 and b"redis_orchestrator_http_requests_total" in ok.body
        assert request(server.port, "/healthz", auth=(USER, PASSWORD)).body == b"ok\n"
    # wrong password, unknown user (its decoy), the right password once: three bcrypt checks in all
    assert sample(metrics, "redis_orchestrator_http_password_checks_total") == 3
    assert sample(metrics, "redis_orchestrator_http_requests_total", path="/metrics", code="401") == 4
    assert sample(metrics, "redis_orchestrator_http_requests_total", path="/metrics", code="200") == 5


def test_tls_with_client_certificates_and_plain_http_refused(tmp_path: Path, certs: LocalTLS) -> None:
    metrics = Metrics()
    web = write_web_config(
        tmp_path / "web.yml",
        tls=certs,
        client_auth="RequireAndVerifyClientCert",
        users={USER: hashed(PASSWORD)},
        headers={"Strict-Transport-Security": "max-age=31536000"},
    )
    with served(metrics, web) as server:
        assert server.url.startswith("https://")
        good = request(server.port, auth=(USER, PASSWORD), tls=certs, client_cert=True)
        assert good.status == 200 and good.headers["strict-transport-security"] == "max-age=31536000"
        assert request(server.port, tls=certs, client_cert=True).status == 401  # a certificate is not a password
        with pytest.raises((ssl.SSLError, ConnectionError)):
            request(server.port, auth=(USER, PASSWORD), tls=certs)  # no client certificate: no handshake
        plain = raw(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert plain.startswith(b"HTTP/1.0 400 Bad Request\r\n")
        assert plain.endswith(b"Client sent an HTTP request to an HTTPS server.\n")
        assert request(server.port, "/healthz", auth=(USER, PASSWORD), tls=certs, client_cert=True).status == 200
    assert sample(metrics, "redis_orchestrator_http_connections_dropped_total", reason="tls_failed") == 1
    assert sample(metrics, "redis_orchestrator_http_connections_dropped_total", reason="plain_http") == 1


def test_head_is_answered_and_other_methods_are_refused(tmp_path: Path) -> None:
    with served() as server:
        head = request(server.port, method="HEAD")
        assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) > 1000
        assert head.headers["content-type"].startswith("text/plain")
        post = request(server.port, method="POST")
        assert post.status == 405 and post.headers["allow"] == "GET, HEAD"
        assert request(server.port, "/nope").status == 404


def test_healthz_and_readyz_fail_while_the_daemon_loops_stand_still() -> None:
    state = {"health": (True, "ok")}
    with served(health=lambda: state["health"]) as server:
        assert request(server.port, "/healthz").status == 200
        state["health"] = (False, "daemon loops silent for 7.1s")
        stuck = request(server.port, "/healthz")
        assert (stuck.status, stuck.body) == (503, b"daemon loops silent for 7.1s\n")
        assert request(server.port, "/readyz").body == b"not ready: daemon loops silent for 7.1s\n"
        assert request(server.port, "/metrics").status == 200  # the numbers still tell what happened


def test_the_web_config_is_reread_when_it_changes_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, certs: LocalTLS, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    web = write_web_config(tmp_path / "web.yml")
    caplog.set_level(logging.INFO, logger="redis_orchestrator")
    with served(metrics, web) as server:
        assert request(server.port).status == 200
        write_web_config(web, users={USER: hashed(PASSWORD)})
        wait_for(lambda: request(server.port).status == 401, 10, "the new users to apply")
        web.write_text("basic_auth_users: {prometheus: plaintext}\n")
        wait_for(lambda: "web_config_rejected" in events(caplog), 10, "the broken file to be rejected")
        assert "keeping the running web config (basic auth (1 user))" in caplog.text
        assert "plaintext" not in caplog.text
        assert request(server.port).status == 401
        assert request(server.port, auth=(USER, PASSWORD)).status == 200
        write_web_config(web, tls=certs, users={USER: hashed(PASSWORD)})
        server.request_reload()  # SIGHUP does this; TLS applies to new connections
        wait_for(lambda: "web_config_reloaded SIGHUP" in events(caplog), 10, "the SIGHUP reload")
        assert request(server.port, auth=(USER, PASSWORD), tls=certs).status == 200
    assert sample(metrics, "redis_orchestrator_web_config_reloads_total", result="rejected") >= 1
    assert sample(metrics, "redis_orchestrator_web_config_reloads_total", result="accepted") >= 2
