"""Containers for tests: the engine as the deploy scripts pick it (deploy/container/engine.sh: docker
when its daemon answers, else podman, with the project's containers.conf on hosts that need it),
images made from Debian's packages (deploy/container/debian-image.sh) or by build.sh, containers
that are always removed, and podman's Docker-compatible API for testcontainers.

Images are cached by the scripts (tags are hashes of their inputs): the first session on a machine
pays for mmdebstrap, the next ones reuse what is there."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.helpers import REPO, stop_gracefully, wait_for

CONTAINER_DIR = REPO / "deploy" / "container"
# Every container and volume a test makes carries it, so a run killed half-way is cleaned up by the next.
LABEL = "redis-orchestrator.test=1"


class EngineError(RuntimeError):
    """A container command failed; the message ends with what it printed."""


def missing_tools() -> str | None:
    """Why the container tests cannot run here, or None: an engine (engine.sh says which is missing)
    and mmdebstrap, which makes the Redis, Prometheus and systemd images from Debian's packages.
    scripts/_bootstrap.sh installs podman, runc and mmdebstrap on Debian/Ubuntu."""
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed (apt-get install mmdebstrap)"
    try:
        Engine.detect()
    except EngineError as exc:
        return str(exc)
    return None


def engine_or_skip() -> Engine:
    """For a test module's fixture: the engine, with the containers an earlier killed run left
    removed; the test is skipped, naming what is missing, where none can run."""
    import pytest

    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    engine = Engine.detect()
    engine.remove_leftovers()
    return engine


@dataclass(frozen=True, eq=False)  # one per session (detect is cached): hashed by identity
class Engine:
    """`docker` or `podman`, with the environment deploy/container/engine.sh chose for it."""

    command: str
    env: Mapping[str, str]

    @classmethod
    @functools.cache
    def detect(cls) -> Engine:
        done = subprocess.run(
            [str(CONTAINER_DIR / "engine.sh")], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise EngineError(done.stderr.strip())
        chosen = dict(line.split("=", 1) for line in done.stdout.splitlines())
        env = {**os.environ, "ENGINE": chosen["ENGINE"]}
        if chosen["CONTAINERS_CONF"]:
            env["CONTAINERS_CONF"] = chosen["CONTAINERS_CONF"]
        return cls(chosen["ENGINE"], env)

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.command, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=dict(self.env))
        if check and done.returncode != 0:
            raise EngineError(f"{self.command} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done

    def script(self, name: str, *args: str, timeout: float = 600, **env: str) -> str:
        """Run deploy/container/<name> with this engine; the last line it printed (an image name)."""
        done = subprocess.run(
            [str(CONTAINER_DIR / name), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **env},
        )
        if done.returncode != 0:
            raise EngineError(f"{name} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done.stdout.strip().splitlines()[-1]

    def inspect(self, what: str) -> dict[str, Any]:
        """`inspect` of a container or image, as a dict."""
        reply: list[dict[str, Any]] = json.loads(self.run("inspect", what).stdout)
        return reply[0]

    @contextlib.contextmanager
    def container(self, *run_args: str) -> Iterator[str]:
        """`run -d` with the test label; yields the container id; always removed, with its volumes."""
        cid = self.run("run", "-d", "--label", LABEL, *run_args).stdout.strip().splitlines()[-1]
        try:
            yield cid
        finally:
            self.run("rm", "-f", "-v", cid, check=False)

    def remove_leftovers(self) -> None:
        """Containers and volumes of an earlier run that was killed before its own cleanup."""
        listed = self.run("ps", "-a", "-q", "--filter", f"label={LABEL}").stdout.split()
        if listed:
            self.run("rm", "-f", "-v", *listed, check=False)


# ---------------------------------------------------------------------- images


@functools.cache
def orchestrator_image(engine: Engine) -> str:
    """deploy/container/build.sh's image (reused while the sources are unchanged)."""
    return engine.script("build.sh")


def debian_image(engine: Engine, name: str, packages: Sequence[str], *options: str) -> str:
    return engine.script("debian-image.sh", *options, f"redis-orchestrator-test/{name}", *packages)


@functools.cache
def redis_image(engine: Engine) -> str:
    """Debian's redis-server (7.0.15 on bookworm), a stand-in for the public redis image: `sh`,
    `redis-server` and `redis-cli` on PATH, /data as the working directory."""
    return debian_image(
        engine,
        "redis",
        ["redis-server"],
        "--hook",
        'mkdir -p "$1/data"',
        "--change",
        "WORKDIR /data",
        "--change",
        'CMD ["redis-server"]',
    )


@functools.cache
def prometheus_image(engine: Engine) -> str:
    """Debian's prometheus laid out like prom/prometheus: /bin/prometheus as the entry point, run as
    nobody, /prometheus for its data, the config at /etc/prometheus/prometheus.yml."""
    return debian_image(
        engine,
        "prometheus",
        ["prometheus"],
        "--hook",
        'mkdir -p "$1/prometheus" && chown 65534:65534 "$1/prometheus"',
        "--change",
        "USER 65534:65534",
        "--change",
        "WORKDIR /prometheus",
        "--change",
        'ENTRYPOINT ["/bin/prometheus"]',
        "--change",
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
    )


# systemd as PID 1 with the unit installed as deploy/systemd/README.md says, and the daemon's venv
# taken from the image build.sh made (the same bits as the container; the same Debian Python).
SYSTEMD_CONTAINERFILE = """\
FROM {app} AS app
FROM {base}
COPY --from=app /opt/redis-orchestrator /opt/redis-orchestrator
RUN ln -s /opt/redis-orchestrator/bin/redis-orchestrator /usr/local/bin/redis-orchestrator \\
    && mkdir -p /etc/redis-orchestrator
COPY redis-orchestrator.service /etc/systemd/system/redis-orchestrator.service
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
"""


@functools.cache
def systemd_image(engine: Engine) -> str:
    # procps: /bin/kill, which the unit's ExecReload= runs (every Debian host has it; minbase does not)
    base = debian_image(engine, "systemd", ["systemd", "systemd-sysv", "dbus", "procps", "python3"])
    app = orchestrator_image(engine)
    unit = REPO / "deploy" / "systemd" / "redis-orchestrator.service"
    containerfile = SYSTEMD_CONTAINERFILE.format(app=app, base=base)
    key = _hash(containerfile, unit.read_text(), engine.inspect(app)["Id"])
    image = f"localhost/redis-orchestrator-test/systemd-unit:{key}"
    if engine.run("image", "exists", image, check=False).returncode != 0:
        with tempfile.TemporaryDirectory() as context:
            shutil.copy(unit, context)
            (Path(context) / "Containerfile").write_text(containerfile)
            engine.run("build", "--network=host", "-t", image, context, timeout=600)
        # one of these at a time: the ones made from older sources go
        older = engine.run("images", "--format", "{{.Repository}}:{{.Tag}}", image.split(":")[0]).stdout.split()
        for name in older:
            if name != image:
                engine.run("rmi", name, check=False)
    return image


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------- podman's Docker API


@contextlib.contextmanager
def docker_api(engine: Engine) -> Iterator[str]:
    """A DOCKER_HOST for testcontainers: docker's own when it answers, else `podman system service`
    on a socket of its own, started here and stopped on exit."""
    if engine.command == "docker":
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    directory = Path(tempfile.mkdtemp(prefix="ro-podman-api-"))
    socket_path = directory / "podman.sock"
    log = (directory / "service.log").open("wb")
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
        env=dict(engine.env),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _pings(socket_path) or service.poll() is not None, 30, "podman's API to answer", 0.1)
        if service.poll() is not None:
            raise EngineError(f"podman system service exited: {(directory / 'service.log').read_text()[-2000:]}")
        yield f"unix://{socket_path}"
    finally:
        stop_gracefully(service)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def _pings(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.settimeout(2)
            sock.connect(str(socket_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in sock.recv(1024)
        except OSError:
            return False


# ---------------------------------------------------------------------- waiting on HTTP


def http_status(url: str, timeout: float = 2) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def wait_status(url: str, status: int, timeout: float, what: str) -> float:
    return wait_for(lambda: http_status(url) == status, timeout, what, interval=0.05)
