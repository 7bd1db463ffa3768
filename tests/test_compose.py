"""deploy/compose.yaml brought up for real: podman-compose (docker compose where docker answers) with
locally built images (Redis and Prometheus from Debian's packages, the orchestrator from build.sh),
everything on the host's network. The cluster is created with the ACL user, the daemon gets ready,
a client on the host follows MOVED, Prometheus scrapes the daemon and has the rules loaded, and
`down -v` leaves no container, volume or listening port behind. Grafana has no Debian package: its
service is not started here (the dashboard is checked statically, tests/test_prometheus.py)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.cluster import RedisCluster

from harness.containers import (
    Engine,
    engine_or_skip,
    orchestrator_image,
    prometheus_image,
    redis_image,
    wait_status,
)
from harness.helpers import REPO, wait_for
from redis_orchestrator.catalog.model import sha1_hex

pytestmark = [pytest.mark.live, pytest.mark.once, pytest.mark.timeout(900)]

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
PROJECT = "ro-compose-test"  # not the file's own name: a user's demo stack is left alone
SERVICES = [f"redis-{i}" for i in range(1, 7)] + ["cluster-init", "orchestrator", "prometheus"]
REDIS_PORTS = list(range(7001, 7007))
PORTS = REDIS_PORTS + [p + 10000 for p in REDIS_PORTS] + [9840, 9090]
ADMIN_PASSWORD = (DEPLOY / "container" / "secrets" / "redis-admin-password").read_text().strip()


def compose_command(engine: Engine) -> list[str] | None:
    if engine.command == "docker":
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        return ["docker", "compose"] if probe.returncode == 0 else None
    # The test extras' podman-compose (PyPI) first: Debian 12's 1.0.3 puts every container on a
    # network of its own even with network_mode: host, which podman refuses.
    found = shutil.which("podman-compose", path=str(Path(sys.executable).parent)) or shutil.which("podman-compose")
    return [found] if found else None


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def api(path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:9090{path}", timeout=5) as response:
        return json.loads(response.read())["data"]


def left_behind(engine: Engine) -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={PROJECT}"
    return {
        "containers": engine.run("ps", "-a", "-q", "--filter", label).stdout.split(),
        "volumes": engine.run("volume", "ls", "-q", "--filter", label).stdout.split(),
        "networks": engine.run("network", "ls", "-q", "--filter", label).stdout.split(),
        "listening ports": [str(p) for p in PORTS if listening(p)],
    }


def test_the_stack_comes_up_scrapes_the_daemon_and_goes_down_leaving_nothing(tmp_path: Path) -> None:
    engine = engine_or_skip()
    compose = compose_command(engine)
    if compose is None:
        pytest.skip("neither podman-compose (pip install podman-compose) nor docker's compose plugin is here")
    env = {
        **engine.env,
        "REDIS_IMAGE": redis_image(engine),
        "PROMETHEUS_IMAGE": prometheus_image(engine),
        "ORCHESTRATOR_IMAGE": orchestrator_image(engine),
    }
    log = (tmp_path / "compose.log").open("w")

    def run(*args: str) -> None:
        done = subprocess.run(
            [*compose, "-p", PROJECT, "-f", str(COMPOSE), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, f"compose {' '.join(args)} exited {done.returncode}: {tmp_path / 'compose.log'}"

    if any(left_behind(engine).values()):  # a run killed before its `down`
        run("down", "-v", "-t", "5")
    busy = [p for p in PORTS if listening(p)]
    assert not busy, f"the stack's loopback ports are taken: {busy}"
    try:
        run("up", "-d", *SERVICES)
        init = engine.run("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                          "--filter", "label=com.docker.compose.service=cluster-init").stdout.split()  # fmt: skip
        assert engine.run("wait", *init, timeout=180).stdout.split() == ["0"], "cluster-init failed"
        wait_for(settled, 60, "every node to see 3 primaries and 3 replicas", interval=0.2)
        wait_status("http://127.0.0.1:9840/readyz", 200, 180, "the orchestrator's /readyz")
        check_cluster_and_catalog()
        check_prometheus()
    except BaseException:
        run("logs")  # every service's output, in the log named by the failure
        raise
    finally:
        run("down", "-v", "-t", "20")
        log.close()
    assert left_behind(engine) == {"containers": [], "volumes": [], "networks": [], "listening ports": []}


def settled() -> bool:
    """Every node announces the six loopback addresses (what clients on the host follow), three of
    them primaries, none failing."""
    expected = [f"127.0.0.1:{port}" for port in REDIS_PORTS]
    for port in REDIS_PORTS:
        with redis.Redis(port=port, password=ADMIN_PASSWORD, decode_responses=True) as node:
            # <id> <ip:port@cport> <flags> <primary> ...
            lines = [line.split() for line in node.execute_command("CLUSTER", "NODES").splitlines()]
        if sorted(line[1].split("@")[0] for line in lines) != expected:
            return False
        if sum("master" in line[2] for line in lines) != 3 or any("fail" in line[2] for line in lines):
            return False
    return True


def check_cluster_and_catalog() -> None:
    """Every node holds the catalog, and the daemon's ACL user was refused nothing; a client on the
    host follows MOVED between the nodes."""
    shas = catalog_shas_of(DEPLOY / "container" / "config.yaml")

    def whole() -> bool:
        for port in REDIS_PORTS:
            with redis.Redis(port=port, password=ADMIN_PASSWORD) as node:
                if not all(node.script_exists(*shas)):
                    return False
        return True

    wait_for(whole, 30, "the catalog on every node", interval=0.2)
    for port in REDIS_PORTS:
        with redis.Redis(port=port, password=ADMIN_PASSWORD, decode_responses=True) as node:
            # Failed AUTHs are logged too: the daemon started before cluster-init made its user.
            refused = [e for e in node.acl_log() if e["username"] == "redis-orchestrator" and e["reason"] != "auth"]
            assert refused == [], port
    cluster = RedisCluster(host="127.0.0.1", port=7001, password=ADMIN_PASSWORD, decode_responses=True)
    try:
        for key in ("a", "b", "c"):  # one on each primary: two of them answered by MOVED
            cluster.set(key, key)
            assert cluster.get(key) == key
        cluster.delete("a", "b", "c")
    finally:
        cluster.close()


def catalog_shas_of(config: Path) -> set[str]:
    """The SHAs of the compose config's scripts, read where compose mounts them from."""
    mounts = {"lua": REPO / "examples" / "lua", "lock": REPO / "redis_orchestrator" / "daemon" / "lua" / "lock"}
    scripts = [s for s in yaml.safe_load(config.read_text())["catalog"]["scripts"] if s.get("kind") != "function"]
    files = [mounts[top] / rest for top, rest in (s["file"].split("/", 1) for s in scripts)]
    return {sha1_hex(path.read_bytes()) for path in files}


def check_prometheus() -> None:
    """Prometheus (deploy/prometheus/ unchanged) scrapes the daemon and has every alert rule."""

    def daemon_up() -> bool:
        try:
            targets = api("/api/v1/targets")["activeTargets"]
        except OSError:
            return False
        return any(t["labels"]["job"] == "redis-orchestrator" and t["health"] == "up" for t in targets)

    def rules() -> list[dict[str, Any]]:
        return [rule for group in api("/api/v1/rules")["groups"] for rule in group["rules"]]

    wait_for(daemon_up, 120, "Prometheus to scrape the daemon", interval=0.5)
    shipped = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    assert {rule["name"] for rule in rules()} == {rule["alert"] for group in shipped for rule in group["rules"]}
    # A rule's health is "unknown" until its group is first evaluated (evaluation_interval: 15s).
    wait_for(lambda: all(r["health"] != "unknown" for r in rules()), 60, "every rule evaluated once", interval=0.5)
    broken = {r["name"]: r.get("lastError") for r in rules() if r["health"] != "ok"}
    assert broken == {}, broken
