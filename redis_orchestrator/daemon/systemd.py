"""systemd's notify protocol with the standard library: READY=1, STATUS=..., WATCHDOG=1.

sd_notify(3) is one datagram of newline-separated `KEY=value` lines sent to the AF_UNIX socket named
in $NOTIFY_SOCKET (a path, or an abstract name written with a leading `@`). Outside systemd the
variable is unset and every call is a no-op, so the daemon needs no "am I under systemd" switch.

    $ NOTIFY_SOCKET=@/run/sd-notify-test  WATCHDOG_USEC=4000000  WATCHDOG_PID=1234
    -> datagrams "READY=1", "STATUS=catalog 2026.11.22: 6 nodes (6 ok)", "WATCHDOG=1" (every 2 s)

The watchdog pings at half of WATCHDOG_USEC while the daemon's loops are alive, and stops as soon as
they are not: then systemd kills the service with SIGABRT and restarts it (Restart=on-failure).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from redis_orchestrator import logs
from redis_orchestrator.daemon.health import LoopHealth


class Notifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET; silent when there is none. Never raises."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._socket: socket.socket | None = None
        self._failed = False
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, message: str) -> bool:
        """Send one datagram (`READY=1`, `STATUS=...`, `WATCHDOG=1`...). True if it was sent.

        STATUS lines repeat every second in the daemon; only a changed one is sent."""
        if self.address is None:
            return False
        if message.startswith("STATUS="):
            if message == self._last_status:
                return False
            self._last_status = message
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # Never block the event loop: with the receiver's queue full, a blocking sendto
                # waits until it drains. Drop the message instead (EAGAIN), like a missed ping.
                self._socket.setblocking(False)
            self._socket.sendto(message.encode("utf-8", "replace"), self.address)
        except OSError as exc:
            if not self._failed:  # one line per state change, not one per ping
                logs.warning("sd_notify_failed", f"cannot write to NOTIFY_SOCKET: {exc}")
                self._failed = True
            return False
        if self._failed:
            logs.event("sd_notify_recovered")
            self._failed = False
        return True

    def send(self, message: str) -> None:
        """`notify` without its result: the Daemon's notify hook."""
        self.notify(message)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # Linux abstract namespace
    if value.startswith("/"):
        return value
    return None  # vsock and other forms are not used by systemd for services


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when systemd asks for none.

    WATCHDOG_PID, when set, names the process the watchdog is for: a child that inherited the
    environment must not ping on its parent's behalf (sd_watchdog_enabled(3))."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    watched = env.get("WATCHDOG_PID", "")
    if watched.isdigit() and int(watched) != (pid if pid is not None else os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


async def watchdog_loop(notifier: Notifier, interval: float, health: LoopHealth) -> None:
    """WATCHDOG=1 every `interval` while `health` says the loops are alive; logs each change."""
    healthy = True
    while True:
        ok, reason = health.check()
        if ok:
            notifier.notify("WATCHDOG=1")
            if not healthy:
                logs.event("watchdog_resumed")
        elif healthy:
            logs.error("watchdog_withheld", f"not pinging the systemd watchdog: {reason}")
        healthy = ok
        await asyncio.sleep(interval)
