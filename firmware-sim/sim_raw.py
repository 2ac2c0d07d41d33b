"""Minimal raw-socket MQTT 3.1.1 QoS 1 publisher for load generation.

paho-mqtt spends ~100 µs of CPU per QoS 1 message and tops out near 9k msgs/s, which
would make the load generator the bottleneck of a gateway benchmark. This publisher
only frames PUBLISH packets, keeps up to ``window`` unacknowledged, and counts PUBACKs:
a few µs per message, single-threaded, no reconnect (a benchmark must not hide a drop).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

_LOGGER = logging.getLogger(__name__)

_U16 = struct.Struct("!H")
_SEND_CHUNK = 64 * 1024
_PUBLISH_QOS1 = b"\x32"
_DISCONNECT = b"\xe0\x00"
_HEADER_CACHE = 100_000
_CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class BurstError(ConnectionError):
    """The broker refused or dropped the connection; carries the progress made so far."""

    def __init__(self, message: str, sent: int = 0, acked: int = 0, seconds: float = 0.0) -> None:
        super().__init__(message)
        self.sent = sent
        self.acked = acked
        self.seconds = seconds


def _varint(n: int) -> bytes:
    """MQTT 'remaining length' encoding."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_str(data: bytes) -> bytes:
    return _U16.pack(len(data)) + data


def connect_packet(
    client_id: str, username: str | None = None, password: str | None = None, keepalive: int = 60
) -> bytes:
    """CONNECT with clean session: a load generator has no state worth resuming."""
    flags = 0x02
    payload = _mqtt_str(client_id.encode())
    if username is not None:
        flags |= 0x80
        payload += _mqtt_str(username.encode())
        if password is not None:
            flags |= 0x40
            payload += _mqtt_str(password.encode())
    body = _mqtt_str(b"MQTT") + bytes([4, flags]) + _U16.pack(keepalive) + payload
    return b"\x10" + _varint(len(body)) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise BurstError("broker closed the connection before CONNACK")
        data += chunk
    return data


def _count_pubacks(buf: bytearray, inflight: set[int]) -> int:
    """Consume complete packets from ``buf``; return how many in-flight PUBACKs it held."""
    acked = 0
    pos, end = 0, len(buf)
    while end - pos >= 2:
        length, mult, j = 0, 1, pos + 1
        while j < end:
            byte = buf[j]
            j += 1
            length += (byte & 0x7F) * mult
            mult *= 128
            if not byte & 0x80:
                break
        else:
            break  # remaining length not complete yet
        if j + length > end:
            break
        if buf[pos] & 0xF0 == 0x40 and length >= 2:
            packet_id = (buf[j] << 8) | buf[j + 1]
            if packet_id in inflight:
                inflight.remove(packet_id)
                acked += 1
        pos = j + length
    del buf[:pos]
    return acked


def burst(
    host: str,
    port: int,
    topic_payloads: Iterable[tuple[str | bytes, bytes]],
    window: int = 1000,
    *,
    username: str | None = None,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    client_id: str | None = None,
    timeout: float = 30.0,
    stop: threading.Event | None = None,
) -> tuple[int, int, float]:
    """Publish every ``(topic, payload)`` at QoS 1 as fast as the broker acknowledges.

    Returns ``(sent, acked, seconds)``; seconds run from the first PUBLISH to the last
    PUBACK. Raises BurstError if the broker refuses, drops the connection, or stops
    acknowledging for ``timeout`` seconds. Setting ``stop`` ends the burst early: nothing
    more is sent, and what is in flight is still waited for.
    """
    if not 1 <= window <= 65535:
        raise ValueError(f"window {window}: must be 1..65535")
    sock = socket.create_connection((host, port), timeout=timeout)
    if ssl_context is not None:
        sock = ssl_context.wrap_socket(sock, server_hostname=host)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(connect_packet(client_id or f"fm-sim-burst-{os.getpid()}", username, password))
        connack = _recv_exact(sock, 4)
        if connack[0] != 0x20 or connack[3] != 0:
            reason = _CONNACK_CODES.get(connack[3], f"CONNACK {connack.hex()}")
            raise BurstError(f"broker refused the connection: {reason}")
        result = _pump(sock, topic_payloads, window, timeout, stop)
        sock.sendall(_DISCONNECT)
        return result
    finally:
        sock.close()


def _pump(
    sock: socket.socket,
    topic_payloads: Iterable[tuple[str | bytes, bytes]],
    window: int,
    timeout: float,
    stop: threading.Event | None,
) -> tuple[int, int, float]:
    """Keep the window full; read PUBACKs without blocking until the window is full."""
    headers: dict[str | bytes, bytes] = {}
    inflight: set[int] = set()
    out = bytearray()
    rbuf = bytearray()
    sent = acked = 0
    packet_id = 0
    items: Iterator[tuple[str | bytes, bytes]] = iter(topic_payloads)
    exhausted = False
    start = time.perf_counter()
    while True:
        if stop is not None and stop.is_set():
            exhausted = True
        while not exhausted and len(inflight) < window and len(out) < _SEND_CHUNK:
            try:
                topic, payload = next(items)
            except StopIteration:
                exhausted = True
                break
            head = headers.get(topic)
            if head is None:
                raw = topic.encode() if isinstance(topic, str) else topic
                head = _mqtt_str(raw)
                if len(headers) < _HEADER_CACHE:
                    headers[topic] = head
            packet_id = packet_id % 65535 + 1
            while packet_id in inflight:
                packet_id = packet_id % 65535 + 1
            inflight.add(packet_id)
            out += _PUBLISH_QOS1
            out += _varint(len(head) + 2 + len(payload))
            out += head
            out += _U16.pack(packet_id)
            out += payload
            sent += 1
        if out:
            try:
                sock.sendall(out)
            except OSError as err:
                raise BurstError(f"send failed: {err}", sent, acked, time.perf_counter() - start) from err
            out.clear()
        if exhausted and not inflight:
            return sent, acked, time.perf_counter() - start
        block = exhausted or len(inflight) >= window
        buffered = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        readable = buffered or select.select([sock], [], [], timeout if block else 0.0)[0]
        if not readable:
            if block:
                raise BurstError(
                    f"no PUBACK for {timeout:.0f} s ({len(inflight)} unacknowledged)",
                    sent,
                    acked,
                    time.perf_counter() - start,
                )
            continue
        try:
            data = sock.recv(256 * 1024)
        except OSError as err:
            raise BurstError(f"receive failed: {err}", sent, acked, time.perf_counter() - start) from err
        if not data:
            raise BurstError("broker closed the connection", sent, acked, time.perf_counter() - start)
        rbuf += data
        acked += _count_pubacks(rbuf, inflight)


def streetlight_burst(
    prefix: str, site: str, devices: Sequence[str], n: int, clock: Callable[[], float] = time.time
) -> Iterator[tuple[bytes, bytes]]:
    """``n`` fixed-shape streetlight readings, round robin over ``devices``.

    The payload is the benchmark's: ``{"ts", "seq", "on", "voltage_v", "current_a"}``,
    ``ts`` in µs so that readings of one device never share a timestamp.
    """
    if not devices:
        raise ValueError("burst needs at least one streetlight device")
    topics = [f"{prefix}/{site}/streetlight/{dev}/reading".encode() for dev in devices]
    count = len(topics)
    template = b'{"ts": %.6f, "seq": %d, "on": true, "voltage_v": 221.5, "current_a": 0.42}'
    for k in range(n):
        seq, i = divmod(k, count)
        yield topics[i], template % (clock(), seq)
