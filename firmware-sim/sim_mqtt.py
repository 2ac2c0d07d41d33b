"""paho-mqtt transport for the simulator: one shared connection or one per device.

paho already queues QoS 1 messages while the broker is away and resends unacknowledged
ones after reconnecting; this module adds what a simulator needs on top: retained
``online``/``offline`` status per device, a count of every acknowledgement (so the run
can end only when the broker has everything), and a ``pending`` figure for backpressure.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

_LOGGER = logging.getLogger(__name__)

_PAHO_LOGGER = logging.getLogger(f"{__name__}.paho")
_PAHO_CONNECTION_NOISE = ("Client is not connected", "failed to receive on socket", "timeout on socket")


def _demote_connection_noise(record: logging.LogRecord) -> bool:
    """Log paho's per-attempt connection errors at DEBUG.

    paho logs every lost connection and every failed reconnect attempt as ERROR (and
    once more on a clean disconnect); ``_on_disconnect`` already reports a loss once.
    """
    if record.levelno >= logging.ERROR and record.getMessage().startswith(_PAHO_CONNECTION_NOISE):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return _PAHO_LOGGER.isEnabledFor(logging.DEBUG)
    return True


_PAHO_LOGGER.addFilter(_demote_connection_noise)

_PLAIN_SCHEMES = {"mqtt": 1883, "tcp": 1883}
_TLS_SCHEMES = {"mqtts": 8883, "ssl": 8883, "tls": 8883}


@dataclass(frozen=True)
class BrokerUrl:
    """Where and how to connect, parsed from ``mqtt://[user:pass@]host:port``."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def redacted(self) -> str:
        """Return the URL without the password, for log lines."""
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> BrokerUrl:
    """Parse a broker URL; ValueError with the reason if it is not one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _PLAIN_SCHEMES and scheme not in _TLS_SCHEMES:
        raise ValueError(f"{url!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: unexpected path or query")
    try:
        port = parts.port or _PLAIN_SCHEMES.get(scheme) or _TLS_SCHEMES[scheme]
    except ValueError as err:
        raise ValueError(f"{url!r}: {err}") from None
    return BrokerUrl(
        host=parts.hostname,
        port=port,
        tls=scheme in _TLS_SCHEMES,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class _Tracker:
    """Matches publishes with their acknowledgements across all clients.

    paho may call ``on_publish`` before ``publish()`` has returned the mid to us, so an
    ack for an unknown mid is parked in ``_early`` until ``sent()`` claims it.
    Never call paho while holding ``_lock``: paho holds its own lock around on_publish.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, int], bool] = {}
        self._early: set[tuple[int, int]] = set()
        self.published = 0
        self.acked = 0
        self.dropped = 0

    def sent(self, key: tuple[int, int], counted: bool) -> None:
        with self._lock:
            if counted:
                self.published += 1
            if key in self._early:
                self._early.discard(key)
                self.acked += counted
            else:
                self._pending[key] = counted

    def done(self, key: tuple[int, int]) -> None:
        with self._lock:
            if key in self._pending:
                self.acked += self._pending.pop(key)
            else:
                self._early.add(key)

    def drop(self, counted: bool) -> None:
        with self._lock:
            self.dropped += counted

    @property
    def pending(self) -> int:
        return len(self._pending)


class MqttPublisher:
    """Publishes for many devices over paho, shared or one connection per device.

    ``statuses`` maps each device to its status topic. Shared mode marks them all
    ``online`` on every (re)connect, since a broker restarted without persistence has
    lost its retained messages; per-device mode gives each client its status topic as
    last will, so a crashed simulator shows its devices ``offline``.
    """

    def __init__(
        self,
        url: BrokerUrl,
        statuses: dict[str, str],
        *,
        per_device: bool = False,
        qos: int = 1,
        client_id: str = "fm-sim",
        ca_file: str | None = None,
        keepalive: int = 30,
    ) -> None:
        self._url = url
        self._statuses = statuses
        self._qos = qos
        self._tracker = _Tracker()
        self._connected: set[int] = set()
        self._all_up = False
        self._state_lock = threading.Lock()
        self._first = threading.Event()
        self._last_error = "no answer"
        self._keepalive = keepalive
        self._ca_file = ca_file
        self._clients: list[mqtt.Client] = []
        self._owned: list[list[str]] = []
        self._client_of: dict[str, int] = {}
        if per_device:
            for idx, device in enumerate(statuses):
                self._add_client(f"{client_id}-{device}", [device], will=statuses[device])
                self._client_of[device] = idx
        else:
            self._add_client(client_id, list(statuses), will=None)

    def _add_client(self, client_id: str, devices: list[str], will: str | None) -> None:
        idx = len(self._clients)
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            userdata=idx,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if self._url.username is not None:
            client.username_pw_set(self._url.username, self._url.password)
        if self._url.tls:
            client.tls_set(ca_certs=self._ca_file)
        if will is not None:
            client.will_set(will, "offline", qos=self._qos, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=8)
        client.max_inflight_messages_set(1000 if will is None else 100)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.enable_logger(_PAHO_LOGGER)
        self._clients.append(client)
        self._owned.append(devices)

    # -- paho callbacks (run in each client's network thread) --------------------

    def _on_connect(self, client: mqtt.Client, idx: int, flags: Any, reason: mqtt.ReasonCode, props: Any) -> None:
        del flags, props
        if reason.is_failure:
            if self._last_error != f"broker refused: {reason}":
                _LOGGER.error("%s refused the connection: %s", self._url.redacted(), reason)
            self._last_error = f"broker refused: {reason}"
            return
        for device in self._owned[idx]:
            self._send(idx, client, self._statuses[device], b"online", retain=True, counted=False)
        with self._state_lock:
            self._connected.add(idx)
            up = len(self._connected) == len(self._clients)
            if up and not self._all_up:
                _LOGGER.info("connected to %s (%d connection(s))", self._url.redacted(), len(self._clients))
            self._all_up = up
        if up:
            self._first.set()

    def _on_connect_fail(self, client: mqtt.Client, idx: int) -> None:
        del client
        self._last_error = "connection failed"
        _LOGGER.debug("client %d: connection to %s failed, retrying", idx, self._url.redacted())

    def _on_disconnect(self, client: mqtt.Client, idx: int, flags: Any, reason: mqtt.ReasonCode, props: Any) -> None:
        del client, flags, props
        with self._state_lock:
            self._connected.discard(idx)
            was_up, self._all_up = self._all_up, False
        if was_up and reason.is_failure:
            _LOGGER.warning(
                "lost %s (%s); reconnecting, unacknowledged QoS>0 messages will be resent",
                self._url.redacted(),
                reason,
            )

    def _on_publish(self, client: mqtt.Client, idx: int, mid: int, reason: mqtt.ReasonCode, props: Any) -> None:
        del client, reason, props
        self._tracker.done((idx, mid))

    # -- API ---------------------------------------------------------------------

    def _send(self, idx: int, client: mqtt.Client, topic: str, payload: bytes, *, retain: bool, counted: bool) -> None:
        info = client.publish(topic, payload, qos=self._qos, retain=retain)
        queued = info.rc == mqtt.MQTT_ERR_SUCCESS or (info.rc == mqtt.MQTT_ERR_NO_CONN and self._qos > 0)
        if queued:
            self._tracker.sent((idx, info.mid), counted)
        else:
            self._tracker.drop(counted)
            _LOGGER.debug("message on %s not sent: %s", topic, mqtt.error_string(info.rc))

    def start(self, timeout: float) -> None:
        """Connect every client; ConnectionError if not all are up within ``timeout``."""
        _LOGGER.info("connecting %d client(s) to %s", len(self._clients), self._url.redacted())
        for client in self._clients:
            client.connect_async(self._url.host, self._url.port, keepalive=self._keepalive)
            client.loop_start()
        if not self._first.wait(timeout):
            up = self.connected
            self._shutdown()
            if self._last_error == "connection failed":
                self._last_error = self._probe()
            raise ConnectionError(
                f"{self._url.redacted()}: {up} of {len(self._clients)} connection(s) up after "
                f"{timeout:g} s ({self._last_error})"
            )

    def _probe(self) -> str:
        """Find out why connecting fails: paho's on_connect_fail carries no reason."""
        try:
            with socket.create_connection((self._url.host, self._url.port), timeout=5) as sock:
                if self._url.tls:
                    context = ssl.create_default_context(cafile=self._ca_file)
                    with context.wrap_socket(sock, server_hostname=self._url.host):
                        pass
        except OSError as err:  # includes ssl.SSLError
            return str(err)
        return "the broker accepts connections but never answered CONNECT"

    def publish(self, device: str, topic: str, payload: bytes, *, counted: bool = True) -> None:
        """Publish for ``device`` (through its own client in per-device mode)."""
        idx = self._client_of.get(device, 0)
        self._send(idx, self._clients[idx], topic, payload, retain=False, counted=counted)

    def status(self, device: str, online: bool) -> None:
        """Publish a device's retained status, as its reconnect (or the broker, for its will) would."""
        idx = self._client_of.get(device, 0)
        payload = b"online" if online else b"offline"
        self._send(idx, self._clients[idx], self._statuses[device], payload, retain=True, counted=False)

    @property
    def pending(self) -> int:
        """Messages handed to paho and not yet acknowledged (or written, at QoS 0)."""
        return self._tracker.pending

    @property
    def published(self) -> int:
        """Reading/tap messages accepted for sending (status messages excluded)."""
        return self._tracker.published

    @property
    def acked(self) -> int:
        """Of those, how many the broker acknowledged (QoS 0: written to the socket)."""
        return self._tracker.acked

    @property
    def dropped(self) -> int:
        """QoS 0 messages lost because the broker was away."""
        return self._tracker.dropped

    @property
    def connected(self) -> int:
        """Clients currently connected."""
        with self._state_lock:
            return len(self._connected)

    @property
    def clients(self) -> int:
        """Number of MQTT connections."""
        return len(self._clients)

    def wait_acked(self, timeout: float, abort: threading.Event | None = None) -> bool:
        """Block until nothing is pending, ``timeout`` passes or ``abort`` is set."""
        deadline = time.monotonic() + timeout
        last_log = time.monotonic()
        while self.pending:
            now = time.monotonic()
            if now >= deadline or (abort is not None and abort.is_set()):
                return False
            if now - last_log >= 5.0:
                _LOGGER.info("waiting for %d acknowledgement(s)", self.pending)
                last_log = now
            time.sleep(0.02)
        return True

    def stop(self, timeout: float, abort: threading.Event | None = None) -> bool:
        """Mark every device ``offline``, wait for all acks, then disconnect.

        Returns whether everything published was acknowledged in time.
        """
        for idx, client in enumerate(self._clients):
            for device in self._owned[idx]:
                self._send(idx, client, self._statuses[device], b"offline", retain=True, counted=False)
        complete = self.wait_acked(timeout, abort)
        if not complete:
            _LOGGER.error("%d message(s) still unacknowledged after %g s", self.pending, timeout)
        self._shutdown()
        return complete

    def _shutdown(self) -> None:
        for client in self._clients:
            client.disconnect()
        for client in self._clients:
            client.loop_stop()
