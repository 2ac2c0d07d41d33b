"""systemd's notify protocol (sd_notify(3)) with the standard library: READY, WATCHDOG, STOPPING, STATUS.

The unit is ``Type=notify`` with ``WatchdogSec``: systemd counts the gateway started only
once it says ``READY=1``, and restarts it when the ``WATCHDOG=1`` pings stop. The pings
are sent only while the pipeline works (the ingest loop ticked recently and no thread
died), so a hung ingest thread, which a process that merely stays alive would hide, is
restarted too. Without ``$NOTIFY_SOCKET`` (not run by systemd) everything here does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)
MIN_STALE_S = 15.0  # longer than a broker connect may block the ingest loop (10 s)


class Notifier:
    """Sends datagrams to systemd's notify socket; a no-op without one."""

    def __init__(self, address: str | None) -> None:
        self.address = address or None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        return cls((os.environ if env is None else env).get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """``send("READY=1", "STATUS=...")``; False (logged, never raised) when it could not be sent."""
        if self.address is None:
            return False
        addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address  # abstract namespace
        data = "\n".join(a.replace("\n", " ") for a in assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(data, addr)
        except OSError as exc:
            _LOGGER.warning("cannot notify systemd at %s: %s", self.address, exc)
            return False
        return True


@dataclass(frozen=True, slots=True)
class Watchdog:
    """How often to ping, and how old the ingest loop's heartbeat may be for a ping to be honest."""

    interval_s: float  # half of WatchdogSec, as sd_watchdog_enabled(3) advises
    stale_after_s: float


def watchdog_from_env(env: Mapping[str, str] | None = None, pid: int | None = None) -> Watchdog | None:
    """``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, when set, naming this process), or None: no watchdog."""
    env = os.environ if env is None else env
    usec, for_pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if for_pid and for_pid != str(os.getpid() if pid is None else pid):
        return None
    half = int(usec) / 2e6
    return Watchdog(half, max(half, MIN_STALE_S))


def pipeline_healthy(now: float, heartbeat: float, stale_after_s: float, failed: bool) -> bool:
    """Whether a WATCHDOG=1 ping is honest: the ingest loop went round within ``stale_after_s`` (monotonic
    seconds) and no supervised thread died."""
    return not failed and now - heartbeat <= stale_after_s


def status_line(connected: bool, waiting: int, clock_held: bool, stalled_s: float | None = None) -> str:
    """The one line ``systemctl status`` shows."""
    if stalled_s is not None:
        return f"ingest stalled for {stalled_s:.0f} s: watchdog pings stopped"
    parts = ["broker connected" if connected else "broker not connected", f"{waiting} readings waiting for InfluxDB"]
    if clock_held:
        parts.append("clock not synchronised: time decisions held")
    return ", ".join(parts)
