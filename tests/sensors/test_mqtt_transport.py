"""The MQTT transport in-process against a real Mosquitto: persistent session, acknowledgement
only when asked, status and will, events, MQTT 3.1.1, TLS with passwords, keepalive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.devservers import Mosquitto, free_port
from gateway.sensors.mqtt import Inbound, MqttTransport
from tests.conftest import Publisher, Subscriber, wait_for


def settings(url: str, **mqtt: object) -> Settings:
    return Settings.model_validate({"site": "tr", "gateway_id": "gw1", "mqtt": {"url": url, **mqtt}})


@pytest.fixture
def transports() -> Iterator[Callable[..., MqttTransport]]:
    made: list[MqttTransport] = []

    def make(url: str, **mqtt: object) -> MqttTransport:
        t = MqttTransport(settings(url, **mqtt))
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop(timeout=1.0)


def poll_until(t: MqttTransport, done: Callable[[list[Inbound]], bool], timeout: float = 10.0) -> list[Inbound]:
    got: list[Inbound] = []
    end = time.monotonic() + timeout
    while not done(got):
        if time.monotonic() > end:
            pytest.fail(f"timed out polling: {len(got)} messages, connected={t.connected}, "
                        f"last problem {t.last_disconnect!r}")
        got += t.poll(0.05)
    return got


def connect(t: MqttTransport) -> None:
    poll_until(t, lambda _: t.connected)


def devices_only(got: list[Inbound]) -> list[Inbound]:
    """Without the gateway's own retained status, which a subscription to the site also brings."""
    return [m for m in got if "/gateway/" not in m.topic]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_unacknowledged_messages_come_back_acknowledged_ones_do_not(transports, mosquitto: Mosquitto,
                                                                    publisher: Publisher, protocol: str):
    """The heart of 'nothing lost': what was not acknowledged is redelivered to the next session.

    15 messages: a 3.1.1 session gets no more than mosquitto's 20 in flight until it acknowledges.
    """
    first = transports(mosquitto.url, protocol=protocol, client_id=f"gw-redeliver-{protocol.replace('.', '')}")
    connect(first)
    for i in range(15):
        publisher.send(f"fm/tr/streetlight/lamp-{i}/reading", b'{"on": true}', wait=False)
    publisher.flush()
    got = devices_only(poll_until(first, lambda g: len(devices_only(g)) >= 15))
    assert sorted(m.topic for m in got) == sorted(f"fm/tr/streetlight/lamp-{i}/reading" for i in range(15))
    first.stop()  # nothing acknowledged

    second = transports(mosquitto.url, protocol=protocol, client_id=first.s.client_id)
    again = poll_until(second, lambda g: len(devices_only(g)) >= 15)
    assert sorted(m.topic for m in devices_only(again)) == sorted(m.topic for m in got)
    second.ack(again)
    publisher.send("fm/tr/streetlight/lamp-x/reading", b'{"on": false}')
    poll_until(second, lambda g: bool(devices_only(g)))  # the PUBACKs went out before this one arrived
    second.stop()

    third = transports(mosquitto.url, protocol=protocol, client_id=first.s.client_id)
    rest = poll_until(third, lambda g: bool(devices_only(g)))
    time.sleep(0.3)
    rest += third.poll(0.3)
    assert [m.topic for m in devices_only(rest)] == ["fm/tr/streetlight/lamp-x/reading"]


def test_received_times_are_strictly_increasing(transports, mosquitto: Mosquitto, publisher: Publisher):
    """Readings without ts are stamped on receipt; two in one read must never share a time."""
    t = transports(mosquitto.url, client_id="gw-times")
    connect(t)
    for i in range(300):
        publisher.send("fm/tr/streetlight/lamp-1/reading", b'{"on": true, "seq": %d}' % i, wait=False)
    publisher.flush()
    got = devices_only(poll_until(t, lambda g: len(devices_only(g)) >= 300))
    micros = [round(m.received_at * 1e6) for m in got]
    assert micros == sorted(set(micros))
    t.ack(got)


def test_status_online_while_connected_offline_on_stop(transports, mosquitto: Mosquitto):
    t = transports(mosquitto.url, client_id="gw-status")
    connect(t)
    sub = Subscriber(mosquitto.port, t.status_topic)
    try:
        wait_for(lambda: sub.payloads()[-1:] == [b"online"], 10, what="retained online status")
        t.stop()
        wait_for(lambda: sub.payloads()[-1:] == [b"offline"], 10, what="offline status on a clean stop")
    finally:
        sub.close()


def test_events_from_another_thread_reach_subscribers(transports, mosquitto: Mosquitto):
    t = transports(mosquitto.url, client_id="gw-events")
    connect(t)
    sub = Subscriber(mosquitto.port, t.events_topic)
    try:
        time.sleep(0.2)  # the subscription is in place
        sender = threading.Thread(target=lambda: [t.publish_event(f'{{"n": {i}}}') for i in range(5)])
        sender.start()
        sender.join()
        end = time.monotonic() + 10
        while len(sub.messages) < 5 and time.monotonic() < end:
            t.poll(0.05)
        assert sub.payloads() == [f'{{"n": {i}}}'.encode() for i in range(5)]
    finally:
        sub.close()


def test_keepalive_pings_keep_an_idle_connection(mosquitto: Mosquitto):
    """With the clock moved past keepalive twice, PINGREQs go out and their PINGRESPs keep us connected."""
    now = [1000.0]
    t = MqttTransport(settings(mosquitto.url, client_id="gw-keepalive", keepalive_s=5), clock=lambda: now[0])
    try:
        connect(t)
        for _ in range(3):
            now[0] += 6
            for _ in range(10):
                t.poll(0.05)
        assert t.connected and t.last_disconnect is None
    finally:
        t.stop(timeout=1.0)


def test_unreachable_broker_backs_off_and_says_why(transports, caplog: pytest.LogCaptureFixture):
    t = transports(f"mqtt://127.0.0.1:{free_port()}", client_id="gw-nowhere", reconnect_min_s=0.1,
                   reconnect_max_s=0.4)
    start = time.monotonic()
    while time.monotonic() - start < 1.5:
        assert t.poll(0.05) == []
    assert not t.connected
    assert "Connection refused" in (t.last_disconnect or "")
    attempts = [r for r in caplog.records if "cannot connect" in r.getMessage()]
    assert 3 <= len(attempts) <= 8, "backoff doubles up to reconnect_max_s"
    assert attempts[0].getMessage().endswith("retrying in 0.1 s")
    assert attempts[-1].getMessage().endswith("retrying in 0.4 s")


def test_tls_with_a_password(transports, secure_mosquitto: Mosquitto, site_tls, tmp_path: Path):
    url = f"mqtts://gw:gw-secret@localhost:{secure_mosquitto.port}"
    listener = transports(url, ca_file=site_tls["ca"], client_id="gw-tls-listener")
    connect(listener)
    # The installer's way: the user in the URL, its password in a file of its own.
    (tmp_path / "mqtt-password").write_text("gw-secret\n")
    sender = transports(f"mqtts://gw@localhost:{secure_mosquitto.port}", ca_file=site_tls["ca"],
                        client_id="gw-tls-sender", password_file=tmp_path / "mqtt-password")
    connect(sender)
    sender.publish_event("hello over TLS")

    def arrived(got: list[Inbound]) -> bool:
        sender.poll(0.01)  # the sender's own thread would do this
        return any(m.topic == sender.events_topic for m in got)

    got = poll_until(listener, arrived)
    assert [m.payload for m in got if m.topic == sender.events_topic] == [b"hello over TLS"]


def test_the_password_file_is_read_at_each_connection(transports, secure_mosquitto: Mosquitto, site_tls,
                                                      tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A password changed in mqtt.password_file is used at the next connection, without a restart; a file
    that cannot be read is said so (not the password) and retried."""
    file = tmp_path / "mqtt-password"
    file.write_text("the-old-password\n")
    t = transports(f"mqtts://gw@localhost:{secure_mosquitto.port}", ca_file=site_tls["ca"], client_id="gw-rotated",
                   password_file=file, reconnect_min_s=0.05, reconnect_max_s=0.05)
    poll_until(t, lambda _: "not authorized" in (t.last_disconnect or ""))
    file.unlink()
    poll_until(t, lambda _: "cannot read mqtt.password_file" in (t.last_disconnect or ""))
    file.write_text("gw-secret\n")
    connect(t)
    assert "gw-secret" not in caplog.text and "the-old-password" not in caplog.text


@pytest.mark.parametrize(("url", "ca", "why"), [
    ("mqtts://gw:wrong@localhost:{port}", "ca", "not authorized"),
    ("mqtts://localhost:{port}", "ca", "not authorized"),
    ("mqtts://gw:gw-secret@localhost:{port}", "cert", "certificate verify failed"),
    ("mqtt://gw:gw-secret@localhost:{port}", None, "cannot connect"),
], ids=["bad-password", "anonymous", "unknown-ca", "plain-tcp-to-tls"])
def test_refused_connections_say_why(transports, secure_mosquitto: Mosquitto, site_tls, url: str, ca: str | None,
                                     why: str):
    t = transports(url.format(port=secure_mosquitto.port), ca_file=site_tls[ca] if ca else None,
                   client_id="gw-refused", reconnect_min_s=5)
    for _ in range(5):
        t.poll(0.05)
    assert not t.connected
    assert why in (t.last_disconnect or "")
    assert "gw-secret" not in (t.last_disconnect or "")
