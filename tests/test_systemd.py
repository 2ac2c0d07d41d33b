"""systemd's notify protocol: READY once started, WATCHDOG only while the pipeline works, STOPPING at stop.

The end-to-end test binds a real AF_UNIX datagram socket standing in for systemd's notify
socket and runs a real gateway process with ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` pointing at it.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable

import pytest

from gateway.systemd import MIN_STALE_S, Notifier, Watchdog, pipeline_healthy, status_line, watchdog_from_env
from tests.conftest import GatewayProcess, wait_for


@pytest.mark.parametrize(("now", "heartbeat", "failed", "ping"), [
    (100.0, 99.0, False, True),  # the loop went round a second ago
    (100.0, 70.0, False, True),  # exactly at the limit
    (100.0, 69.9, False, False),  # older than the limit: a hung ingest thread gets no ping
    (100.0, 99.0, True, False),  # a supervised thread died
])
def test_watchdog_pings_only_while_the_ingest_loop_goes_round(now: float, heartbeat: float, failed: bool,
                                                              ping: bool) -> None:
    assert pipeline_healthy(now, heartbeat, 30.0, failed) is ping


def test_watchdog_settings_from_the_environment() -> None:
    assert watchdog_from_env({"WATCHDOG_USEC": "60000000"}) == Watchdog(30.0, 30.0)
    assert watchdog_from_env({"WATCHDOG_USEC": "2000000"}) == Watchdog(1.0, MIN_STALE_S)
    assert watchdog_from_env({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, pid=2) is None  # not for us
    assert watchdog_from_env({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "2"}, pid=2) == Watchdog(30.0, 30.0)
    assert watchdog_from_env({}) is None and watchdog_from_env({"WATCHDOG_USEC": "0"}) is None


def test_status_line() -> None:
    assert status_line(True, 3, False) == "broker connected, 3 readings waiting for InfluxDB"
    assert "time decisions held" in status_line(False, 0, True)
    assert status_line(True, 0, False, stalled_s=42.0).startswith("ingest stalled for 42 s")


def test_without_a_notify_socket_nothing_is_sent() -> None:
    n = Notifier.from_env({})
    assert not n.enabled and n.send("READY=1") is False


def test_abstract_socket_address() -> None:
    name = f"fm-gateway-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier(f"@{name}").send("READY=1", "STATUS=two\nlines")
        assert sock.recv(4096) == b"READY=1\nSTATUS=two lines"


@pytest.fixture
def notify_socket(datagram_socket: tuple[str, socket.socket]) -> tuple[str, socket.socket]:
    """A real datagram socket where systemd's would be."""
    datagram_socket[1].settimeout(0.2)
    return datagram_socket


def test_gateway_says_ready_pings_the_watchdog_and_says_stopping(
        gateway_factory: Callable[..., GatewayProcess], notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    received: list[str] = []

    def got(what: str) -> bool:
        try:
            while True:
                received.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
        return any(what in m.split("\n") for m in received)

    g = gateway_factory(NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000").start()  # a ping every 0.5 s
    wait_for(lambda: got("READY=1"), what="READY=1")

    def pings() -> int:
        got("WATCHDOG=1")
        return sum("WATCHDOG=1" in m.split("\n") for m in received)

    wait_for(lambda: pings() >= 3, what="three WATCHDOG=1 pings")
    ready = next(m for m in received if "READY=1" in m.split("\n"))
    assert "STATUS=broker connected" in ready or "STATUS=broker not connected" in ready, ready
    first_ping = next(i for i, m in enumerate(received) if "WATCHDOG=1" in m.split("\n"))
    assert first_ping > received.index(ready)
    assert g.stop() == 0
    wait_for(lambda: got("STOPPING=1"), what="STOPPING=1")
