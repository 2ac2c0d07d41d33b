"""Real servers for the suite: Mosquitto and InfluxDB on free loopback ports, and the
gateway as a separate process, all stopped by PID.

A gateway process whose log shows a traceback or a CRITICAL line fails the test that
ran it; in-process code that logs an exception fails its test too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.devservers import Influxd, Mosquitto

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> object:
    """Poll until ``predicate`` is truthy; fail the test with ``what`` otherwise."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def _fail_on_logged_exceptions(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    bad = [r for r in caplog.get_records("call") if r.exc_info or r.levelno >= logging.CRITICAL]
    if bad:
        pytest.fail("code under test logged an exception: " + "; ".join(r.getMessage() for r in bad))


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def influxd(servers_dir: Path) -> Iterator[Influxd]:
    server = Influxd(servers_dir / "influxd").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mosquitto(servers_dir: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(servers_dir / "mosquitto").start()
    yield server
    server.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test's own, for tests that stop or restart it."""
    server = Mosquitto(tmp_path / "mosquitto").start()
    yield server
    server.stop()


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An InfluxDB of this test's own, for tests that stop it."""
    server = Influxd(tmp_path / "influxd").start()
    yield server
    server.stop()


@dataclass
class GatewayProcess:
    """``gateway run`` in its own process, configured by GATEWAY_* variables."""

    env: dict[str, str]
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    config: Path | None = None  # a TOML settings file (what GATEWAY_* variables cannot say, like webhooks)
    starts: int = 0
    allowed_log: list[str] = field(default_factory=list)

    def start(self) -> GatewayProcess:
        self.starts += 1
        with open(self.log_path, "ab") as log:
            args = ["--config", str(self.config)] if self.config else []
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", *args], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=ROOT)
        wait_for(lambda: self._connected(), 30, 0.1, "the gateway to connect to the broker")
        return self

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{(self.data_dir / 'api.port').read_text().strip()}"

    @property
    def token(self) -> str:
        return (self.data_dir / "api-token").read_text().strip()

    def _connected(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"gateway exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
        try:
            return bool(self.health()["mqtt"]["connected"])
        except (OSError, ValueError, KeyError):
            return False

    def get(self, path: str, token: str | None = None) -> object:
        req = urllib.request.Request(self.api_url + path)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if path.startswith("/api/") else body.decode()

    def health(self) -> dict:
        return self.get("/api/v1/health")  # type: ignore[return-value]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def check_log(self) -> None:
        text = self.log()
        for marker in ("Traceback", " CRITICAL "):
            if marker in text:
                pytest.fail(f"gateway log shows {marker.strip()}:\n{text[-4000:]}")


@pytest.fixture
def gateway_factory(tmp_path: Path, influxd: Influxd, mosquitto: Mosquitto,
                    request: pytest.FixtureRequest) -> Iterator[Callable[..., GatewayProcess]]:
    """Make gateways with a database of the test's own; overrides are GATEWAY_* variables."""
    made: list[GatewayProcess] = []
    db = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]

    def make(config: Path | None = None, **overrides: str) -> GatewayProcess:
        n = len(made)
        data_dir = tmp_path / f"gw{n}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            GATEWAY_MQTT_URL=mosquitto.url, GATEWAY_INFLUX_URL=influxd.url, GATEWAY_INFLUX_API="v1",
            GATEWAY_INFLUX_DB=db, GATEWAY_SITE="t", GATEWAY_GATEWAY_ID=f"gw{n}", GATEWAY_DATA_DIR=str(data_dir),
            GATEWAY_API_BIND="127.0.0.1:0", GATEWAY_INFLUX_BATCH_AGE_S="0.2", GATEWAY_INFLUX_RETRY_MIN_S="0.2",
            GATEWAY_INFLUX_RETRY_MAX_S="1", GATEWAY_MQTT_RECONNECT_MAX_S="2",
            # A session of this test's own: the broker keeps persistent sessions, and one named like another
            # test's would receive what was queued for that test.
            GATEWAY_MQTT_CLIENT_ID=f"gw-{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]}-{n}",
        )
        env.update(overrides)
        g = GatewayProcess(env, data_dir, tmp_path / f"gw{n}.log", config=config)
        made.append(g)
        return g

    yield make
    for g in made:
        if g.proc and g.proc.poll() is None:
            g.proc.send_signal(signal.SIGTERM)
            try:
                g.proc.wait(20)
            except subprocess.TimeoutExpired:
                g.kill()
        g.check_log()


class Publisher:
    """A device side: paho publishing at QoS 1 and waiting for the broker's PUBACK."""

    def __init__(self, port: int, client_id: str = "") -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect(host="127.0.0.1", port=port)
        self.client.loop_start()
        self.pending: list[mqtt.MQTTMessageInfo] = []

    def send(self, topic: str, payload: bytes | str | dict, qos: int = 1, retain: bool = False,
             wait: bool = True) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if wait:
            info.wait_for_publish(10)
            assert info.is_published(), f"broker did not acknowledge {topic}"
        else:
            self.pending.append(info)

    def flush(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        for info in self.pending:
            info.wait_for_publish(max(0.1, end - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge every message"
        self.pending.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    p = Publisher(mosquitto.port)
    yield p
    p.close()


class Subscriber:
    """Another client on the broker, collecting what arrives on one topic filter (retained included)."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.connect(host="127.0.0.1", port=port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def payloads(self) -> list[bytes]:
        return [p for _, p, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="session")
def site_tls(servers_dir: Path) -> dict[str, Path]:
    """A site CA and a server certificate for localhost and 127.0.0.1, made with openssl."""
    d = servers_dir / "tls"
    d.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=test site CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "ext")
    return {"ca": d / "ca.crt", "cert": d / "server.crt", "key": d / "server.key"}


@pytest.fixture
def secure_mosquitto(tmp_path: Path, site_tls: dict[str, Path]) -> Iterator[Mosquitto]:
    """A broker as a site should run it: TLS only, no anonymous access, one account (gw / gw-secret)."""
    passwords = tmp_path / "passwords"
    passwords.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "gw", "gw-secret"], check=True, capture_output=True)
    server = Mosquitto(tmp_path / "mosquitto-tls", extra=[
        "allow_anonymous false", f"password_file {passwords}",
        f"cafile {site_tls['ca']}", f"certfile {site_tls['cert']}", f"keyfile {site_tls['key']}",
    ]).start()
    yield server
    server.stop()


@pytest.fixture
def datagram_socket() -> Iterator[tuple[str, socket.socket]]:
    """A real AF_UNIX datagram socket where a system service's would be (systemd's notify socket,
    journald's native one), bound on a short path: sun_path holds 108 bytes, pytest's tmp_path more."""
    path = f"/tmp/fm-dgram-{uuid.uuid4().hex[:12]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()
    os.unlink(path)


CHROMIUM = Path(os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium"))
#: Headless as root, and quiet: no call home (the test network is closed, like a site's LAN).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Browser contexts (Playwright's sync API) on the system's Chromium, each with a fresh profile
    folder, all closed at the end. Missing Chromium fails the test: the pages would be untested."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) "
                    "or point TEST_CHROMIUM at a Chromium binary; the browser tests need it")
    from playwright.sync_api import sync_playwright  # only the browser tests need it installed

    contexts: list[object] = []
    with sync_playwright() as p:
        def launch(**options: object) -> object:
            profile = tmp_path / f"chromium-profile-{len(contexts)}"
            context = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                           args=CHROMIUM_ARGS, **options)
            contexts.append(context)
            return context

        yield launch
        for context in contexts:
            context.close()  # type: ignore[attr-defined]
