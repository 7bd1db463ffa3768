"""Throwaway certificates for the TLS tests, made with the `openssl` command: a CA, a server
certificate for 127.0.0.1/localhost and a client certificate. Test-only: the keys are not protected."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from redis_orchestrator.devcluster.cluster import LocalClusterError, LocalTLS


def make_test_certificates(directory: str | os.PathLike[str], client_auth: str = "optional") -> LocalTLS:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, made
    with the `openssl` command. For tests and `--local-cluster` only: the keys are not protected."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise LocalClusterError("openssl is not installed or not on PATH (needed to make test certificates)")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=out, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LocalClusterError(f"openssl {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=redis-orchestrator test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    server_ext = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    (out / "server.ext").write_text(server_ext)
    (out / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject in (("server", "/CN=localhost"), ("client", "/CN=redis-orchestrator")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.crt",
        )
    return LocalTLS(
        ca_file=out / "ca.crt",
        cert_file=out / "server.crt",
        key_file=out / "server.key",
        client_cert_file=out / "client.crt",
        client_key_file=out / "client.key",
        client_auth=client_auth,
    )
