"""MQTT transport on paho-mqtt 2.x: a persistent QoS 1 session whose messages are
acknowledged only after the gateway made them durable.

paho's network thread only queues what arrives; the ingest thread takes it in batches,
commits it and then calls :meth:`MqttTransport.ack`. With MQTT v5 the gateway asks the
broker for a receive window (``receive_maximum``) wide enough to keep the pipe full
while a batch is being committed; the broker never has more unacknowledged messages
out to us than that, which also bounds the gateway's memory.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from typing import NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.config import Settings, parse_mqtt_url

_LOGGER = logging.getLogger(__name__)


class Inbound(NamedTuple):
    """A received message and what is needed to acknowledge it (a NamedTuple: cheap on the hot path)."""

    topic: str
    payload: bytes
    received_at: float
    mid: int
    qos: int
    generation: int


class MqttTransport:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        m = settings.mqtt
        self.endpoint = parse_mqtt_url(m.url)
        self.v5 = m.protocol == "5"
        self.base = f"{m.topic_prefix}/{settings.site}"
        self.status_topic = f"{self.base}/gateway/{settings.gateway_id}/status"
        self.events_topic = f"{self.base}/gateway/{settings.gateway_id}/events"
        self.inbox: deque[Inbound] = deque()
        self.arrived = threading.Event()
        self.connected = False
        self.connected_since: float | None = None
        self.last_disconnect: str | None = None
        self._generation = 0
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
            clean_session=None if self.v5 else False,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            client.tls_set(
                ca_certs=str(m.ca_file) if m.ca_file else None,
                certfile=str(m.cert_file) if m.cert_file else None,
                keyfile=str(m.key_file) if m.key_file else None,
                cert_reqs=ssl.CERT_NONE if m.tls_insecure else ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(m.tls_insecure)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=max(1, round(m.reconnect_min_s)), max_delay=round(m.reconnect_max_s))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self.client = client

    def start(self) -> None:
        m = self.s.mqtt
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = m.session_expiry_s
            props.ReceiveMaximum = m.receive_maximum
        _LOGGER.info("connecting to MQTT broker %s:%d as %s (%s)", self.endpoint.host, self.endpoint.port,
                     self.s.client_id, "MQTT v5" if self.v5 else "MQTT 3.1.1")
        self.client.connect_async(
            self.endpoint.host, self.endpoint.port, keepalive=m.keepalive_s,
            clean_start=False if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Say goodbye properly: retained ``offline`` status, then disconnect."""
        if self.connected:
            info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
            info.wait_for_publish(timeout=3.0)
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho callbacks (paho's network thread) ------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: object, flags: mqtt.ConnectFlags,
                    reason: mqtt.ReasonCode, _p: Properties | None) -> None:
        if reason.is_failure:
            _LOGGER.error("MQTT broker %s:%d refused the connection: %s", self.endpoint.host, self.endpoint.port,
                          reason)
            return
        if not flags.session_present:
            self._generation += 1  # message ids of any earlier session mean nothing now
        topic = f"{self.base}/#"
        if self.v5:
            client.subscribe(topic, options=SubscribeOptions(qos=1, noLocal=True))
        else:
            client.subscribe(topic, qos=1)
        client.publish(self.status_topic, "online", qos=1, retain=True)
        _LOGGER.info("connected to MQTT broker %s:%d (session %s), subscribed to %s", self.endpoint.host,
                     self.endpoint.port, "resumed" if flags.session_present else "new", topic)

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, reasons: list[mqtt.ReasonCode],
                      _p: Properties | None) -> None:
        """Connected means subscribed: only then is nothing published to us lost."""
        for r in reasons:
            if r.is_failure:
                _LOGGER.error("MQTT broker refused the subscription to %s/#: %s", self.base, r)
                return
        self.connected = True
        self.connected_since = time.time()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: mqtt.DisconnectFlags,
                       reason: mqtt.ReasonCode, _p: Properties | None) -> None:
        self.connected = False
        self.last_disconnect = str(reason)
        _LOGGER.warning("disconnected from MQTT broker %s:%d: %s; reconnecting with backoff",
                        self.endpoint.host, self.endpoint.port, reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.inbox.append(Inbound(msg.topic, msg.payload, time.time(), msg.mid, msg.qos, self._generation))
        if not self.arrived.is_set():
            self.arrived.set()

    # -- ingest thread -------------------------------------------------------------------------
    def take(self, limit: int) -> list[Inbound]:
        inbox = self.inbox
        n = min(len(inbox), limit)
        return [inbox.popleft() for _ in range(n)]

    def ack(self, batch: list[Inbound]) -> None:
        """Acknowledge messages now durable; ids from a lost session are not sent."""
        gen = self._generation
        ack = self.client.ack
        for m in batch:
            if m.qos and m.generation == gen:
                ack(m.mid, m.qos)

    def publish_event(self, payload: str) -> None:
        self.client.publish(self.events_topic, payload, qos=1)
