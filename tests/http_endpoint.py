"""What the metrics endpoint's tests share: test certificates, a web config file, a client that
speaks TLS and basic auth, and a MetricsServer served for the length of a `with` block."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from harness.helpers import free_port, http_get, stop_gracefully
from redis_orchestrator.daemon.http import HttpLimits, MetricsServer
from redis_orchestrator.daemon.metrics import Metrics
from redis_orchestrator.daemon.web_config import PLAIN, WebConfigFile
from redis_orchestrator.devcluster.cluster import LocalTLS

USER, PASSWORD = "prometheus", "s3cret-scrape"


def hashed(password: str, cost: int = 4) -> str:
    """A bcrypt hash; cost 4 (bcrypt's least) keeps tests fast, real files use 10 or more."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def write_web_config(
    path: Path,
    tls: LocalTLS | None = None,
    client_auth: str | None = None,
    users: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Path:
    data: dict[str, Any] = {}
    if tls is not None:
        data["tls_server_config"] = {"cert_file": str(tls.cert_file), "key_file": str(tls.key_file)}
        if client_auth:
            data["tls_server_config"] |= {"client_ca_file": str(tls.ca_file), "client_auth_type": client_auth}
    if users:
        data["basic_auth_users"] = dict(users)
    if headers:
        data["http_server_config"] = {"headers": dict(headers)}
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


def request(
    port: int,
    path: str = "/metrics",
    *,
    method: str = "GET",
    auth: tuple[str, str] | None = None,
    tls: LocalTLS | None = None,
    client_cert: bool = False,
    source: str = "127.0.0.1",
    timeout: float = 10.0,
) -> Reply:
    """One request on a new connection (from `source`, a loopback address); ssl.SSLError when
    the handshake is refused."""
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    conn: http.client.HTTPConnection
    if tls is not None:
        context = ssl.create_default_context(cafile=str(tls.ca_file))
        if client_cert:
            context.load_cert_chain(str(tls.client_cert_file), str(tls.client_key_file))
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, context=context, timeout=timeout, source_address=(source, 0)
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes as they are, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def served(
    metrics: Metrics | None = None,
    web: Path | None = None,
    *,
    limits: HttpLimits | None = None,
    health: Callable[[], tuple[bool, str]] | None = None,
) -> Iterator[MetricsServer]:
    """A MetricsServer on a free loopback port with `web` as its web config file; closed after."""
    web_file = WebConfigFile(web) if web is not None else None
    server = MetricsServer(
        "127.0.0.1:0",
        metrics if metrics is not None else Metrics(),
        lambda: (True, "ready"),
        web_config=web_file.load() if web_file is not None else PLAIN,
        web_file=web_file,
        limits=limits,
        **({"health": health} if health is not None else {}),
    )
    server.start()
    try:
        yield server
    finally:
        server.close()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------------- a real Prometheus


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install -y prometheus)")
    return found


@contextlib.contextmanager
def running_prometheus(directory: Path, scrape_configs: str, rule_files: tuple[Path, ...] = ()) -> Iterator[int]:
    """The OS package's `prometheus` on a free loopback port, scraping every second with
    `scrape_configs` (the YAML list under `scrape_configs:`, indented by two); its port. Stopped after."""
    config = directory / "prometheus.yml"
    rules = "".join(f"  - {path}\n" for path in rule_files)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + "scrape_configs:\n"
        + scrape_configs
    )
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port
    finally:
        stop_gracefully(process, grace=20)
        log.close()


def prometheus_api(port: int, path: str, **params: str) -> dict[str, Any]:
    # A bad query answers 400 with a JSON body that says why: http_get returns it like a 200.
    return dict(json.loads(http_get(f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}")[2]))


def wait_for_targets(
    port: int, jobs: set[str], until_up: frozenset[str] | set[str] = frozenset(), timeout: float = 90.0
) -> dict[str, dict[str, Any]]:
    """Each job's one active target (health, lastError) once every job has been scraped, and those
    of `until_up` successfully."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = prometheus_api(port, "/api/v1/targets")
        except OSError:  # not listening yet
            reply = {}
        targets = {t["labels"]["job"]: t for t in reply.get("data", {}).get("activeTargets", [])}
        scraped = jobs <= set(targets) and all(targets[j]["health"] != "unknown" for j in jobs)
        if scraped and all(targets[j]["health"] == "up" for j in until_up):
            return targets
        time.sleep(0.25)
    raise AssertionError(f"jobs {sorted(jobs)} not all scraped within {timeout}s")
