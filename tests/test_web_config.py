"""The web config file (exporter-toolkit's format): what is read, what is refused, and how."""

from __future__ import annotations

import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_orchestrator.daemon.web_config import PLAIN, ClientAuth, WebConfigFile, parse_web_config
from redis_orchestrator.devcluster.cluster import LocalTLS
from redis_orchestrator.errors import ConfigError
from tests.certs import make_test_certificates
from tests.http_endpoint import hashed, write_web_config

HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> LocalTLS:
    return make_test_certificates(tmp_path_factory.mktemp("certs"))


def problems(text: str, path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_web_config(text, path)
    return caught.value.problems


def test_an_empty_file_is_plain_http_without_authentication(tmp_path: Path) -> None:
    assert parse_web_config("", tmp_path / "web.yml") == PLAIN
    assert PLAIN.summary == "plain HTTP, no authentication"


def test_tls_users_and_headers_are_read_with_names_relative_to_the_file(certs: LocalTLS) -> None:
    text = (
        "tls_server_config:\n"
        "  cert_file: server.crt\n"
        "  key_file: server.key\n"
        "  client_ca_file: ca.crt\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  min_version: TLS13\n"
        f"basic_auth_users:\n  prometheus: {HASH}\n"
        "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"
    )
    config = parse_web_config(text, certs.ca_file.parent / "web.yml")
    assert config.tls is not None
    assert config.tls.cert_file == certs.cert_file and config.tls.client_ca_file == certs.ca_file
    assert config.tls.client_auth is ClientAuth.REQUIRE_AND_VERIFY
    assert config.tls.min_version is ssl.TLSVersion.TLSv1_3
    assert config.users == {"prometheus": HASH.encode()}
    assert config.headers == (("X-Frame-Options", "deny"),)
    assert config.ssl_context is not None and config.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert config.summary == "tls (RequireAndVerifyClientCert, TLS13+), basic auth (1 user), 1 header"


def test_every_problem_is_reported_at_once_with_its_place_and_no_hash_is_echoed(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    found = problems(
        "tls_server_config:\n"
        "  cert_file: server.crt\n"
        "  client_ca_file: ca.crt\n"
        "  min_version: TLS9\n"
        "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"
        "basic_auth_users:\n"
        "  prometheus: hunter2\n"
        "  'a:b': $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\n"
        "http_server_config:\n"
        "  headers:\n"
        "    Server: nginx\n"
        "    X-Content-Type-Options: sniff\n"
        "rate_limit: {burst: 10}\n"
        "extra: 1\n",
        path,
    )
    text = "\n".join(found)
    assert found[0] == f"{path}:2:3: tls_server_config: missing key_file: TLS needs a certificate and its key"
    assert f"{path}:3:19: tls_server_config.client_ca_file: a client CA without a client auth policy" in text
    assert f"{path}:4:16: tls_server_config.min_version: 'TLS9' is not one of: TLS10, TLS11, TLS12, TLS13" in text
    assert f"{path}:5:3: tls_server_config.cipher_suites: exporter-toolkit's cipher_suites is not supported" in text
    assert f"{path}:7:15: basic_auth_users.prometheus: not a bcrypt hash" in text
    assert "hunter2" not in text
    assert f"{path}:8:3: basic_auth_users.a:b: a user name is non-empty text without ':'" in text
    assert f"{path}:11:5: http_server_config.headers.Server: HTTP header 'Server' can not be configured" in text
    assert f"{path}:12:29: http_server_config.headers.X-Content-Type-Options: 'sniff' is not one of: nosniff" in text
    assert f"{path}:13:1: rate_limit: exporter-toolkit's rate_limit is not supported" in text
    assert f"{path}:14:1: extra: unknown key" in text
    assert len(found) == 10


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ("RequireAnyClientCert", "RequireAnyClientCert is not supported here: Python's ssl module verifies"),
        ("RequestClientCert", "RequestClientCert is not supported here"),
        ("VerifyClientCertIfGiven", "VerifyClientCertIfGiven needs client_ca_file"),
        ("Sometimes", "'Sometimes' is not one of: NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
    ],
)
def test_client_auth_types_this_server_cannot_honour_are_refused(certs: LocalTLS, auth: str, message: str) -> None:
    text = f"tls_server_config: {{cert_file: server.crt, key_file: server.key, client_auth_type: {auth}}}\n"
    assert any(message in p for p in problems(text, certs.ca_file.parent / "web.yml"))


def test_certificate_problems_are_found_when_the_file_is_read(certs: LocalTLS, tmp_path: Path) -> None:
    (tmp_path / "bad.crt").write_text("not a certificate\n")
    text = f"tls_server_config: {{cert_file: bad.crt, key_file: {certs.key_file}}}\n"
    assert any("cannot use" in p and "bad.crt" in p for p in problems(text, tmp_path / "web.yml"))
    text = "tls_server_config: {cert_file: missing.crt, key_file: missing.key}\n"
    found = "\n".join(problems(text, tmp_path / "web.yml"))
    assert "cannot read the cert_file: No such file or directory" in found and "key_file" in found
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(certs.key_file), "-aes256", "-passout", "pass:x", "-out", str(encrypted)],
        check=True,
        capture_output=True,
    )
    text = f"tls_server_config: {{cert_file: {certs.cert_file}, key_file: {encrypted}}}\n"
    assert any("the key is encrypted" in p for p in problems(text, tmp_path / "web.yml"))


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "web.yml"
    os.mkfifo(fifo)
    done: list[str] = []

    def load() -> None:
        try:
            WebConfigFile(fifo).load()
        except ConfigError as exc:
            done.extend(exc.problems)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # unblock the reader before failing
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert done == [f"{fifo}: the web config file is not a regular file"]


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("#" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than 1048576 bytes"):
        WebConfigFile(path).load()


@pytest.fixture
def watched(tmp_path: Path, certs: LocalTLS) -> Iterator[tuple[WebConfigFile, Path]]:
    path = write_web_config(tmp_path / "web.yml", tls=certs, users={"prometheus": hashed("x")})
    yield WebConfigFile(path), path


def test_a_change_of_the_file_or_of_a_certificate_it_names_is_noticed(
    watched: tuple[WebConfigFile, Path], certs: LocalTLS
) -> None:
    file, path = watched
    file.load()
    assert not file.changed()
    path.write_text(path.read_text() + "\n# edited\n")
    assert file.changed()
    file.load()
    assert not file.changed()
    os.utime(certs.cert_file, ns=(1, 1))  # a renewed certificate, same path
    assert file.changed()
