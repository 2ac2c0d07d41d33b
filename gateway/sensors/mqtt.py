"""MQTT transport: one persistent QoS 1 session whose messages are acknowledged only
after the gateway made them durable.

The ingest thread drives it: :meth:`MqttTransport.poll` reads whatever the socket has,
the ingestor commits it, :meth:`MqttTransport.ack` sends the PUBACKs of the batch in one
write. No hand-off between threads on the hot path. The session is persistent (v5
``clean_start=False`` with a session expiry, or a 3.1.1 persistent session), so what is
published while the gateway is away waits in the broker; after every connect the
subscription is renewed. With MQTT v5 the gateway asks for a receive window
(``receive_maximum``) wide enough to keep the pipe full while a batch commits; the broker
never has more unacknowledged messages out to us, which also bounds our memory.

Other threads only queue publishes (:meth:`publish_event`) and wake the loop. The packets
are :mod:`gateway.sensors.mqtt_packets`; why the gateway frames them itself is said there.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from gateway.config import MqttSettings, Settings, parse_mqtt_url
from gateway.sensors import mqtt_packets as mp

_LOGGER = logging.getLogger(__name__)
_READ_CHUNK = 256 * 1024
_CONNECT_TIMEOUT_S = 10.0
_MAX_OWN_PUBLISHES = 10_000  # status and events waiting for the broker; older ones are dropped



def tls_context(m: MqttSettings) -> ssl.SSLContext:
    """The broker connection's TLS: the site CA (or the system's), a client certificate if given."""
    ctx = ssl.create_default_context(cafile=str(m.ca_file) if m.ca_file else None)
    if m.cert_file:
        ctx.load_cert_chain(str(m.cert_file), str(m.key_file) if m.key_file else None)
    if m.tls_insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx

class Inbound(NamedTuple):
    """A received message and what is needed to acknowledge it (a NamedTuple: cheap on the hot path)."""

    topic: str
    payload: bytes
    received_at: float
    mid: int
    qos: int
    generation: int


class MqttTransport:
    """Not thread-safe except :meth:`publish_event` and :meth:`wake`: one thread polls."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.s = settings
        m = settings.mqtt
        self.endpoint = parse_mqtt_url(m.url)  # where to: the password is read at each connection
        self.v5 = m.protocol == "5"
        self.base = f"{m.topic_prefix}/{settings.site}"
        self.status_topic = f"{self.base}/gateway/{settings.gateway_id}/status"
        self.events_topic = f"{self.base}/gateway/{settings.gateway_id}/events"
        self.clock = clock
        self.connected = False  # subscribed: only then is nothing published to us lost
        self.connected_since: float | None = None
        self.last_disconnect: str | None = None
        # v5 tells the broker the largest packet we take, so a runaway publisher's message is
        # discarded by the broker instead of being redelivered to us forever.
        self.max_packet = max(1 << 20, 16 * m.max_payload_bytes) if self.v5 else mp.PROTOCOL_MAX_PACKET
        self._ssl = tls_context(self.s.mqtt) if self.endpoint.tls else None
        self._sock: socket.socket | None = None
        self._framer = mp.Framer(self.v5, self.max_packet)
        self._early: list[mp.Publish | mp.Control] = []  # arrived with the CONNACK
        self._last_received = 0  # µs
        self._out = bytearray()
        self._generation = 0
        self._next_mid = 0
        self._sub_mid = -1
        self._own: dict[int, tuple[str, bytes, bool]] = {}  # our QoS 1 publishes awaiting PUBACK
        self._requests: deque[tuple[str, bytes, bool]] = deque()
        self._keepalive = m.keepalive_s
        self._last_sent = 0.0
        self._ping_sent: float | None = None
        self._delay = m.reconnect_min_s
        self._next_attempt = 0.0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- any thread ----------------------------------------------------------------------------
    def publish_event(self, payload: str, topic: str | None = None, retain: bool = False) -> None:
        """Queue a QoS 1 publish; it is sent by the polling thread, again after a reconnect."""
        self._requests.append((topic or self.events_topic, payload.encode(), retain))
        self.wake()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed (stopped)
            self._wake_w.send(b"\x00")

    # -- the polling thread --------------------------------------------------------------------
    def poll(self, timeout: float) -> list[Inbound]:
        """Messages received within ``timeout`` (what one read brought); connects when due."""
        now = self.clock()
        if self._sock is None and now >= self._next_attempt:
            self._connect()
        if self._sock is None:
            self._wait([self._wake_r], [], min(timeout, max(0.0, self._next_attempt - now)))
            return []
        if self._early:
            packets, self._early = self._early, []
            return self._dispatch(packets)
        self._queue_requests()
        self._keep_alive(now)
        if self._out:
            self._flush()
        sock = self._sock
        if sock is None:
            return []
        due = (self._ping_sent if self._ping_sent is not None else self._last_sent) + self._keepalive - now
        readable = self._wait([sock, self._wake_r], [sock] if self._out else [], max(0.01, min(timeout, due)))
        if sock in readable:
            return self._read(sock)
        return []

    def ack(self, batch: list[Inbound]) -> None:
        """Acknowledge messages now durable, in one write; ids from a lost session are not sent."""
        gen = self._generation
        puback = mp.puback
        self._out += b"".join([puback(m.mid) for m in batch if m.qos and m.generation == gen])
        self._flush()

    def stop(self, timeout: float = 3.0) -> None:
        """Say goodbye properly: retained ``offline`` status, then DISCONNECT (the will is not sent)."""
        if self._sock is not None and self.connected:
            self.publish_event("offline", self.status_topic, retain=True)
            end = self.clock() + timeout
            while self._sock is not None and (self._requests or self._own) and self.clock() < end:
                self.poll(0.1)  # what arrives meanwhile is not acknowledged: the broker keeps it
        if self._sock is not None:
            self._out += mp.DISCONNECT_PACKET
            self._flush()
            self._close()
        self.connected = False
        self._wake_r.close()
        self._wake_w.close()

    # -- internals -----------------------------------------------------------------------------
    def _wait(self, rlist: list[socket.socket], wlist: list[socket.socket], timeout: float) -> list[socket.socket]:
        if self._ssl is not None and self._sock is not None and self._sock in rlist and self._sock.pending():
            return [self._sock]  # TLS already holds decrypted bytes that select cannot see
        readable, writable, _ = select.select(rlist, wlist, [], timeout)
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        if writable and self._out:
            self._flush()
        return readable

    def _read(self, sock: socket.socket) -> list[Inbound]:
        try:
            data = sock.recv(_READ_CHUNK)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return []
        except OSError as exc:
            self._lost(f"connection error: {exc}")
            return []
        if not data:
            self._lost("the broker closed the connection")
            return []
        try:
            packets = self._framer.feed(data)
        except mp.ProtocolError as exc:
            self._lost(f"protocol error from the broker: {exc}")
            return []
        return self._dispatch(packets)

    def _dispatch(self, packets: list[mp.Publish | mp.Control]) -> list[Inbound]:
        gen, last, wall = self._generation, self._last_received, time.time
        out: list[Inbound] = []
        for p in packets:
            if type(p) is mp.Publish:
                if p.qos == 2:
                    self._lost("the broker sent a QoS 2 PUBLISH on a QoS 1 subscription")
                    return []
                # A reading without ts is stamped when received, in strictly increasing µs (InfluxDB's
                # precision here), so readings of one device in one read never share a point.
                now = int(wall() * 1e6)
                last = now if now > last else last + 1
                out.append(Inbound(p.topic, p.payload, last / 1e6, p.mid, p.qos, gen))
            else:
                try:
                    self._control(p)  # type: ignore[arg-type]
                except mp.ProtocolError as exc:
                    self._lost(f"protocol error from the broker: {exc}")
                if self._sock is None:
                    return []  # what came before it was never acknowledged; the broker redelivers
        self._last_received = last
        return out

    def _control(self, p: mp.Control) -> None:
        if p.type == mp.PUBACK:
            self._own.pop(mp.packet_id(p.body), None)
        elif p.type == mp.PINGRESP:
            self._ping_sent = None
        elif p.type == mp.SUBACK:
            mid, codes = mp.suback(p.body, self.v5)
            if mid != self._sub_mid:
                return
            if any(c >= 0x80 for c in codes):
                _LOGGER.error("MQTT broker %s:%d refused the subscription to %s/#: reason 0x%02x; check its ACL",
                              self.endpoint.host, self.endpoint.port, self.base, codes[0])
                return
            self.connected = True
            self.connected_since = time.time()
            _LOGGER.info("subscribed to %s/# on MQTT broker %s:%d", self.base, self.endpoint.host, self.endpoint.port)
        elif p.type == mp.DISCONNECT:
            code = p.body[0] if p.body else 0
            self._lost(f"the broker disconnected us: reason 0x{code:02x}")
        else:
            self._lost(f"unexpected MQTT packet type {p.type} from the broker")

    def _mid(self) -> int:
        for _ in range(65535):
            self._next_mid = self._next_mid % 65535 + 1
            if self._next_mid not in self._own and self._next_mid != self._sub_mid:
                return self._next_mid
        raise RuntimeError("all 65535 MQTT packet identifiers are in use")

    def _queue_requests(self) -> None:
        while self._requests:
            topic, payload, retain = self._requests.popleft()
            if len(self._own) >= _MAX_OWN_PUBLISHES:
                dropped = next(iter(self._own))
                _LOGGER.warning("dropping an unacknowledged gateway event on %s: %d are waiting for the broker",
                                self._own.pop(dropped)[0], _MAX_OWN_PUBLISHES)
            mid = self._mid()
            self._own[mid] = (topic, payload, retain)
            if self._sock is not None:
                self._out += mp.publish(topic, payload, v5=self.v5, qos=1, mid=mid, retain=retain)

    def _keep_alive(self, now: float) -> None:
        if self._ping_sent is not None and now - self._ping_sent > self._keepalive:
            self._lost(f"no PINGRESP within {self._keepalive} s")
        elif self._ping_sent is None and now - self._last_sent >= self._keepalive:
            self._out += mp.PINGREQ_PACKET
            self._ping_sent = now

    def _flush(self) -> None:
        sock = self._sock
        if sock is None:
            self._out.clear()
            return
        try:
            while self._out:
                sent = sock.send(self._out)
                del self._out[:sent]
                self._last_sent = self.clock()
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return  # the rest goes when the socket is writable
        except OSError as exc:
            self._lost(f"connection error: {exc}")

    def _connect(self) -> None:
        m = self.s.mqtt
        try:  # read at each connection: a password changed in mqtt.password_file is used at the next one
            ep = m.endpoint()
        except (OSError, UnicodeDecodeError) as exc:
            self._retry_later(f"cannot read mqtt.password_file: {exc}", level=logging.ERROR)
            return
        packet = mp.connect(
            self.s.client_id, v5=self.v5, keepalive=m.keepalive_s, clean_start=False,
            username=ep.username, password=ep.password,
            will=mp.Will(self.status_topic, b"offline"), session_expiry=m.session_expiry_s,
            receive_maximum=m.receive_maximum, maximum_packet=self.max_packet if self.v5 else 0,
        )
        framer = mp.Framer(self.v5, self.max_packet)
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((ep.host, ep.port), timeout=_CONNECT_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=ep.host)
            sock.sendall(packet)
            packets: list[mp.Publish | mp.Control] = []
            while not packets:
                data = sock.recv(_READ_CHUNK)
                if not data:
                    raise ConnectionError("the broker closed the connection before CONNACK")
                packets = framer.feed(data)
            first = packets[0]
            if not (isinstance(first, mp.Control) and first.type == mp.CONNACK):
                raise mp.ProtocolError("the broker's first packet is not a CONNACK")
            session_present, code, props = mp.connack(first.body, self.v5)
        except (OSError, mp.ProtocolError) as exc:
            if sock is not None:
                sock.close()
            self._retry_later(f"cannot connect: {exc}")
            return
        if code:
            sock.close()
            reason = (mp.CONNACK_V5 if self.v5 else mp.CONNACK_V3).get(code, f"reason 0x{code:02x}")
            detail = props.get(mp.REASON_STRING)
            self._retry_later(f"the broker refused the connection: {reason}" + (f" ({detail})" if detail else ""),
                              level=logging.ERROR)
            return
        sock.setblocking(False)
        self._sock, self._framer, self._early = sock, framer, packets[1:]
        self._keepalive = int(props.get(mp.SERVER_KEEP_ALIVE, m.keepalive_s)) or m.keepalive_s  # type: ignore[arg-type]
        self._delay = m.reconnect_min_s
        self._ping_sent = None
        if not session_present:
            self._generation += 1  # message ids of any earlier session mean nothing now
        self._sub_mid = -1
        self._sub_mid = self._mid()
        self._out += mp.subscribe(self._sub_mid, f"{self.base}/#", 1, v5=self.v5, no_local=True)
        for mid, (topic, payload, retain) in self._own.items():  # unacknowledged: send again
            self._out += mp.publish(topic, payload, v5=self.v5, qos=1, mid=mid, retain=retain, dup=session_present)
        self._requests.appendleft((self.status_topic, b"online", True))
        self._queue_requests()
        self._flush()
        _LOGGER.info("connected to MQTT broker %s:%d as %s (%s, session %s)", ep.host, ep.port, self.s.client_id,
                     "MQTT v5" if self.v5 else "MQTT 3.1.1", "resumed" if session_present else "new")

    def _retry_later(self, why: str, level: int = logging.WARNING) -> None:
        self.last_disconnect = why
        _LOGGER.log(level, "MQTT broker %s:%d: %s; retrying in %.3g s", self.endpoint.host, self.endpoint.port, why,
                    self._delay)
        self._next_attempt = self.clock() + self._delay
        self._delay = min(self._delay * 2, self.s.mqtt.reconnect_max_s)

    def _lost(self, why: str) -> None:
        self._close()
        self.last_disconnect = why
        _LOGGER.warning("disconnected from MQTT broker %s:%d: %s; reconnecting with backoff", self.endpoint.host,
                        self.endpoint.port, why)
        self._next_attempt = self.clock() + self._delay
        self._delay = min(self._delay * 2, self.s.mqtt.reconnect_max_s)

    def _close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self.connected = False
        self._out.clear()
        self._early = []
