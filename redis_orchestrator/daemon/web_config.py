"""The metrics endpoint's web config file, in exporter-toolkit's format (`--web.config.file` of
node_exporter and most Prometheus exporters), so one file and one habit serve every exporter:

    tls_server_config:
      cert_file: server.crt              # relative names: beside this file, as exporter-toolkit
      key_file: server.key               # reads them (unencrypted PEM)
      client_ca_file: ca.crt             # mutual TLS, with client_auth_type below
      client_auth_type: RequireAndVerifyClientCert   # NoClientCert | VerifyClientCertIfGiven | ...
      min_version: TLS12                 # TLS10..TLS13; default TLS12 (max_version: TLS13)
    basic_auth_users:                    # user: bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')
      prometheus: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG
    http_server_config:
      headers:                           # the five exporter-toolkit allows, with its value checks
        Strict-Transport-Security: max-age=31536000

An empty file, or none, is plain HTTP without authentication. Every problem is reported at once with
its place (`web.yml:3:17: tls_server_config.client_auth_type: ...`), as for the daemon's own config;
what exporter-toolkit offers and this server does not (inline `cert`/`key`, cipher and curve lists,
SAN allow-lists, `rate_limit`, the two client-auth types that take a certificate without verifying
it) is refused by name rather than ignored: a security setting that silently does nothing is worse
than an error.

`WebConfigFile` reads the file and watches it and the files it names (a changed certificate is
re-read too: cert-manager and certbot replace them in place). It never follows a FIFO or a device:
only regular files are read, and at most 1 MiB of each.
"""

from __future__ import annotations

import enum
import os
import re
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from redis_orchestrator.catalog.files import FileStamp, stamp_of
from redis_orchestrator.config.yaml_source import YamlSource
from redis_orchestrator.errors import ConfigError, Problem, Where

MAX_FILE_BYTES = 1 << 20

# exporter-toolkit's list, on purpose the same: the headers a web config may add, and the values
# allowed where the header has a fixed set (None: any value).
ALLOWED_HEADERS: Mapping[str, tuple[str, ...] | None] = MappingProxyType(
    {
        "Strict-Transport-Security": None,
        "X-Content-Type-Options": ("nosniff",),
        "X-Frame-Options": ("deny", "sameorigin"),
        "X-XSS-Protection": None,
        "Content-Security-Policy": None,
    }
)

TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = MappingProxyType(
    {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
)

# $2a$ / $2b$ / $2y$ (htpasswd writes 2y), a two-digit cost, 22 characters of salt and 31 of hash.
_BCRYPT = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")

_UNSUPPORTED = {
    "tls_server_config": {
        "cert": "give cert_file",
        "key": "give key_file",
        "client_ca": "give client_ca_file",
        "cipher_suites": "OpenSSL's defaults for the TLS versions allowed are used",
        "curve_preferences": "OpenSSL's defaults are used",
        "client_allowed_sans": "use a client CA that signs only the scrapers' certificates",
    },
    "": {"rate_limit": "the endpoint bounds connections and password checks itself"},
}


class ClientAuth(enum.StrEnum):
    """exporter-toolkit's client_auth_type values this server honours."""

    NONE = "NoClientCert"
    VERIFY_IF_GIVEN = "VerifyClientCertIfGiven"
    REQUIRE_AND_VERIFY = "RequireAndVerifyClientCert"

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        return {
            ClientAuth.NONE: ssl.CERT_NONE,
            ClientAuth.VERIFY_IF_GIVEN: ssl.CERT_OPTIONAL,
            ClientAuth.REQUIRE_AND_VERIFY: ssl.CERT_REQUIRED,
        }[self]


# Go's crypto/tls can ask for a certificate and not verify it; Python's ssl module verifies every
# certificate it asks for, so these two cannot be honoured as written.
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")


@dataclass(frozen=True)
class TLSServerConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth: ClientAuth = ClientAuth.NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    prefer_server_cipher_suites: bool = True


@dataclass(frozen=True)
class WebConfig:
    """What the endpoint enforces: TLS (with its context, built and checked when the file was read),
    the users and their bcrypt hashes, the extra response headers."""

    tls: TLSServerConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    headers: tuple[tuple[str, str], ...] = ()
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    @property
    def summary(self) -> str:
        """`tls (RequireAndVerifyClientCert, TLS12+), basic auth (1 user)`: for the log."""
        parts = []
        if self.tls is not None:
            version = next(name for name, v in TLS_VERSIONS.items() if v == self.tls.min_version)
            parts.append(f"tls ({self.tls.client_auth}, {version}+)")
        if self.users:
            parts.append(f"basic auth ({len(self.users)} user{'s' if len(self.users) != 1 else ''})")
        if self.headers:
            parts.append(f"{len(self.headers)} header{'s' if len(self.headers) != 1 else ''}")
        return ", ".join(parts) or "plain HTTP, no authentication"


PLAIN = WebConfig()


class WebConfigFile:
    """The web config file: `load()` reads and checks it (ConfigError naming every problem), and
    `changed()` tells when it, or a file it names, changed since the last load began."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamps: dict[Path, FileStamp] = {}

    def changed(self) -> bool:
        return any(stamp_of(path) != stamp for path, stamp in self._stamps.items())

    def load(self) -> WebConfig:
        # Each file stamped before it is read: an edit that lands while we read is seen at the next
        # look. The certificates' stamps are kept when they are refused (a key not yet replaced, mid
        # rotation): their next change is a reload, as the file's own is.
        self._stamps = {self.path: stamp_of(self.path)}
        text = read_regular_file(self.path, "web config file").decode("utf-8", "replace")
        return parse_web_config(text, self.path, self._stamps)


def read_regular_file(path: Path, what: str) -> bytes:
    """The bytes of a regular file, at most MAX_FILE_BYTES; ConfigError otherwise (a FIFO would
    block the reader for as long as nobody writes to it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(str(path), [f"{path}: cannot read the {what}: {exc.strerror}"]) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(str(path), [f"{path}: the {what} is not a regular file"])
        data = os.read(fd, MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), [f"{path}: cannot read the {what}: {exc.strerror}"]) from exc
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(str(path), [f"{path}: the {what} is larger than {MAX_FILE_BYTES} bytes"])
    return data


def parse_web_config(text: str, path: Path, stamps: dict[Path, FileStamp] | None = None) -> WebConfig:
    """The config in `text` (read from `path`: relative file names are taken from its directory),
    its TLS context built; ConfigError with every problem and its place. `stamps` gets each TLS
    file's stamp, taken before the file is read."""
    source = YamlSource.parse(text, path)
    problems: list[Problem] = []
    data = source.data if source.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [source.describe(Problem((), "the web config must be a mapping"))])
    _unknown(data, (), {"tls_server_config", "basic_auth_users", "http_server_config"}, problems)
    tls = _tls(data.get("tls_server_config"), path.parent, problems)
    users = _users(data.get("basic_auth_users"), problems)
    headers = _headers(data.get("http_server_config"), problems)
    context = None
    if tls is not None and not problems:
        context = _ssl_context(tls, problems, stamps if stamps is not None else {})
    if problems:
        problems.sort(key=lambda p: source.position(p.where, p.at_key) or (0, 0))  # in file order
        raise ConfigError(str(path), [source.describe(p) for p in problems])
    return WebConfig(tls, MappingProxyType(users), headers, context)


def _mapping(value: Any, where: Where, problems: list[Problem]) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(where, f"expected a mapping, got {type(value).__name__}"))
        return {}
    return value


def _unknown(data: dict[Any, Any], where: Where, known: set[str], problems: list[Problem]) -> None:
    unsupported = _UNSUPPORTED.get(".".join(str(w) for w in where), {})
    for key in data:
        if key in known:
            continue
        if key in unsupported:
            problems.append(
                Problem((*where, key), f"exporter-toolkit's {key} is not supported here: {unsupported[key]}", True)
            )
        else:
            problems.append(Problem((*where, key), f"unknown key (allowed: {', '.join(sorted(known))})", True))


def _tls(value: Any, base: Path, problems: list[Problem]) -> TLSServerConfig | None:
    where: Where = ("tls_server_config",)
    data = _mapping(value, where, problems)
    if not data:
        return None
    known = {
        "cert_file",
        "key_file",
        "client_ca_file",
        "client_auth_type",
        "min_version",
        "max_version",
        "prefer_server_cipher_suites",
    }
    _unknown(data, where, known, problems)

    def path_of(key: str) -> Path | None:
        raw = data.get(key)
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            problems.append(Problem((*where, key), f"expected a file name, got {type(raw).__name__}"))
            return None
        return base / raw  # an absolute name stays as it is

    cert, key, ca = path_of("cert_file"), path_of("key_file"), path_of("client_ca_file")
    for name, found in (("cert_file", cert), ("key_file", key)):
        if found is None and (*where, name) not in {p.where for p in problems}:
            problems.append(Problem(where, f"missing {name}: TLS needs a certificate and its key"))
    client_auth = ClientAuth.NONE
    raw_auth = data.get("client_auth_type")
    if raw_auth in _UNVERIFIED_CLIENT_AUTH:
        problems.append(
            Problem(
                (*where, "client_auth_type"),
                f"{raw_auth} is not supported here: Python's ssl module verifies every client certificate it "
                "asks for; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file",
            )
        )
    elif raw_auth not in (None, ""):
        try:
            client_auth = ClientAuth(raw_auth)
        except ValueError:
            allowed = ", ".join(c.value for c in ClientAuth)
            problems.append(Problem((*where, "client_auth_type"), f"{raw_auth!r} is not one of: {allowed}"))
    if ca is not None and client_auth == ClientAuth.NONE and raw_auth not in _UNVERIFIED_CLIENT_AUTH:
        problems.append(
            Problem(
                (*where, "client_ca_file"),
                "a client CA without a client auth policy: set client_auth_type to RequireAndVerifyClientCert "
                "(or VerifyClientCertIfGiven)",
            )
        )
    if ca is None and client_auth != ClientAuth.NONE:
        problems.append(Problem((*where, "client_auth_type"), f"{client_auth} needs client_ca_file to verify with"))
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        raw = data.get(name, default)
        if raw not in TLS_VERSIONS:
            problems.append(Problem((*where, name), f"{raw!r} is not one of: {', '.join(TLS_VERSIONS)}"))
            raw = default
        versions[name] = TLS_VERSIONS[raw]
    if versions["min_version"] > versions["max_version"]:
        problems.append(Problem((*where, "min_version"), "min_version is above max_version"))
    prefer = data.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        problems.append(Problem((*where, "prefer_server_cipher_suites"), "expected true or false"))
        prefer = True
    if cert is None or key is None:
        return None
    return TLSServerConfig(cert, key, ca, client_auth, versions["min_version"], versions["max_version"], prefer)


def _users(value: Any, problems: list[Problem]) -> dict[str, bytes]:
    where: Where = ("basic_auth_users",)
    users: dict[str, bytes] = {}
    for user, hashed in _mapping(value, where, problems).items():
        if not isinstance(user, str) or not user or ":" in user:
            problems.append(Problem((*where, str(user)), "a user name is non-empty text without ':'", True))
        elif not isinstance(hashed, str) or not _BCRYPT.match(hashed):
            # never echo the value: it may be a plain password pasted by mistake
            problems.append(
                Problem(
                    (*where, user),
                    "not a bcrypt hash ($2y$10$... from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`, or "
                    "python -c 'import bcrypt; print(bcrypt.hashpw(b\"...\", bcrypt.gensalt()).decode())')",
                )
            )
        else:
            users[user] = hashed.encode()
    return users


def _headers(value: Any, problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    where: Where = ("http_server_config",)
    data = _mapping(value, where, problems)
    _unknown(data, where, {"headers", "http2"}, problems)
    if not isinstance(data.get("http2", True), bool):
        problems.append(Problem((*where, "http2"), "expected true or false (HTTP/1.1 is served either way)"))
    headers: list[tuple[str, str]] = []
    for name, header_value in _mapping(data.get("headers"), (*where, "headers"), problems).items():
        place = (*where, "headers", str(name))
        if name not in ALLOWED_HEADERS:
            allowed_names = ", ".join(ALLOWED_HEADERS)
            problems.append(
                Problem(place, f"HTTP header {name!r} can not be configured (allowed: {allowed_names})", True)
            )
            continue
        allowed = ALLOWED_HEADERS[name]
        if not isinstance(header_value, str) or "\r" in header_value or "\n" in header_value:
            problems.append(Problem(place, "expected one line of text"))
        elif allowed is not None and header_value not in allowed:
            problems.append(Problem(place, f"{header_value!r} is not one of: {', '.join(allowed)}"))
        else:
            headers.append((name, header_value))
    return tuple(headers)


def _no_passphrase() -> bytes:
    raise ValueError("the key is encrypted: give an unencrypted key_file (readable by this user only)")


def _ssl_context(tls: TLSServerConfig, problems: list[Problem], stamps: dict[Path, FileStamp]) -> ssl.SSLContext | None:
    """The server's context, with the certificate, key and client CA loaded: a bad file is a problem
    now, when the web config is read, not a failed handshake later."""
    where: Where = ("tls_server_config",)
    named = (("cert_file", tls.cert_file), ("key_file", tls.key_file), ("client_ca_file", tls.client_ca_file))
    for name, path in named:
        if path is None:
            continue
        stamps[path] = stamp_of(path)
        try:
            read_regular_file(path, name)
        except ConfigError as exc:
            problems.append(Problem((*where, name), "; ".join(exc.problems)))
    if problems:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = tls.min_version
    context.maximum_version = tls.max_version
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_passphrase)
    except (ssl.SSLError, ValueError, OSError) as exc:
        problems.append(Problem((*where, "cert_file"), f"cannot use {tls.cert_file} with {tls.key_file}: {exc}"))
        return None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            problems.append(Problem((*where, "client_ca_file"), f"cannot use {tls.client_ca_file}: {exc}"))
            return None
    context.verify_mode = tls.client_auth.verify_mode
    return context
