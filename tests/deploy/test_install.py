"""deploy/raspberry-pi/install.sh for real, into a temporary root.

One install (module fixture) is shared: its unit is verified by systemd-analyze, its broker
settings run in a real Mosquitto (anonymous refused, each account confined to its topics),
its InfluxDB variables run in a real influxd, and the gateway runs from the installed
virtualenv with the installed settings, unchanged. The last tests re-run the installer
(nothing changes; a code change upgrades) and uninstall it (data kept; --purge removes it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import ssl
import stat
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.devservers import Influxd, free_port, wait_tcp
from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "raspberry-pi" / "install.sh"
SITE = "sunny"
LAN = "127.0.0.2"  # a second loopback address plays the LAN
DB = "deploy_facility"
NOT_AUTHORIZED = 0x87


@dataclass
class Install:
    root: Path
    source: Path
    mqtt_port: int
    mqtts_port: int
    influx: Influxd
    outputs: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(INSTALL), "--root", str(self.root), "--no-packages", "--source",
                                 str(self.source), *args], capture_output=True, text=True, timeout=900)
        self.outputs.append(result.stdout + result.stderr)
        if check:
            assert result.returncode == 0, f"install.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def password(self, account: str) -> str:
        return self.path(f"etc/fm-gateway/mqtt/{account}.password").read_text().strip()

    def ids(self, name: str, file: str = "passwd") -> str | None:
        for line in self.path(f"etc/{file}").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return fields[2] if file == "passwd" else line
        return None


def new_install(base: Path, influxd: Influxd) -> Install:
    """An empty root with the system's accounts (as an image has them) and a copy of the checkout, so that a
    test can change its code."""
    root, source = base / "root", base / "src"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group"):
        shutil.copy(f"/etc/{name}", root / "etc" / name)
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "gateway", source / "gateway", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return Install(root, source, free_port(), free_port(), influxd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, influxd: Influxd) -> Install:
    inst = new_install(tmp_path_factory.mktemp("deploy"), influxd)
    inst.run("--site", SITE, "--site-name", "阳光花园", "--lan-address", LAN, "--mqtt-port", str(inst.mqtt_port),
             "--tls", "--mqtts-port", str(inst.mqtts_port), "--api-bind", "127.0.0.1:0",
             "--influx-url", influxd.url, "--influx-db", DB)
    inst.secrets = [p.read_text().strip() for p in inst.path("etc/fm-gateway/mqtt").glob("*.password")]
    return inst


# --- a broker with the installed settings ----------------------------------------------------

class Broker:
    def __init__(self, inst: Install, folder: Path) -> None:
        folder.mkdir()
        conf = folder / "mosquitto.conf"
        # What Debian's /etc/mosquitto/mosquitto.conf does, then the installed conf.d.
        lines = ["persistence false", f"log_dest file {folder / 'mosquitto.log'}",
                 *(["user root"] if os.geteuid() == 0 else []),  # root would become 'mosquitto': no temp folder
                 f"include_dir {inst.path('etc/mosquitto/conf.d')}"]
        conf.write_text("\n".join(lines) + "\n")
        self.folder = folder
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(folder / "stderr", "wb"), start_new_session=True)  # noqa: SIM115
        assert wait_tcp(inst.mqtt_port), f"mosquitto did not start: {(folder / 'stderr').read_text()}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)


@pytest.fixture(scope="module")
def broker(installed: Install, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(installed, tmp_path_factory.mktemp("broker") / "mosquitto")
    yield b
    b.stop()


class Client:
    """A paho MQTT v5 client: the CONNACK's reason, PUBACK reasons by message id, what it received."""

    def __init__(self, port: int, user: str | None = None, password: str | None = None, host: str = "127.0.0.1",
                 ca: Path | None = None) -> None:
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.connected = threading.Event()
        self.reason: int | None = None
        self.acks: dict[int, int] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.c.on_connect = self._on_connect
        self.c.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc.value)
        self.c.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        if user is not None:
            self.c.username_pw_set(user, password)
        if ca is not None:
            self.c.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
        self.c.connect(host, port)
        self.c.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def _on_connect(self, _c: object, _u: object, _flags: object, rc: mqtt.ReasonCode, _p: object) -> None:
        self.reason = rc.value
        self.connected.set()

    def publish(self, topic: str, payload: str = "{}") -> int:
        """QoS 1; the PUBACK's reason code."""
        info = self.c.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.acks, 10, what=f"PUBACK of {topic}")
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *_: done.set()
        self.c.subscribe(topic, qos=1)
        assert done.wait(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def watcher(installed: Install, broker: Broker) -> Iterator[Client]:
    """The gateway's account, subscribed to fm/#."""
    c = Client(installed.mqtt_port, "fm-gateway", installed.password("fm-gateway"))
    assert c.reason == 0
    c.subscribe("fm/#")
    yield c
    c.close()


def delivered(inst: Install, watcher: Client, sender: Client, topic: str) -> bool:
    """Whether ``topic`` published by ``sender`` reaches the watcher (the gateway's account). A marker
    published after it on an allowed topic shows that everything before it has arrived."""
    n = len(watcher.messages)
    payload = f'{{"probe": "{topic}"}}'
    ack = sender.publish(topic, payload)
    marker = f"fm/{SITE}/checkpoint/marker-{time.monotonic_ns()}/tap"
    marker_client = Client(inst.mqtt_port, "class-checkpoint", inst.password("class-checkpoint"))
    try:
        assert marker_client.publish(marker) == 0
    finally:
        marker_client.close()
    wait_for(lambda: any(t == marker for t, _ in watcher.messages[n:]), 10, what="the marker")
    got = any(t == topic and p == payload.encode() for t, p in watcher.messages[n:])
    assert got == (ack == 0), f"PUBACK {ack:#x} but delivered={got} for {topic}"
    return got


# --- the installation ------------------------------------------------------------------------

def test_installed_files_owners_and_modes(installed: Install) -> None:
    uid = installed.ids("fm-gateway")
    assert uid is not None, "no user fm-gateway in the root's passwd"
    dialout = installed.ids("dialout", "group")
    assert dialout is not None and "fm-gateway" in dialout.split(":")[3].split(",")
    gid = next(line.split(":")[2] for line in installed.path("etc/group").read_text().splitlines()
               if line.startswith("fm-gateway:"))

    def mode(p: str) -> tuple[str, str, str]:
        st = installed.path(p).stat()
        return oct(stat.S_IMODE(st.st_mode)), str(st.st_uid), str(st.st_gid)

    assert mode("etc/fm-gateway") == ("0o750", "0", gid)
    assert mode("etc/fm-gateway/gateway.toml") == ("0o640", "0", gid)
    assert mode("etc/fm-gateway/mqtt") == ("0o750", "0", gid)
    for pw in installed.path("etc/fm-gateway/mqtt").glob("*.password"):
        # The gateway reads its own password (mqtt.password_file); the devices' are root's alone.
        own = pw.name == "fm-gateway.password"
        assert mode(str(pw.relative_to(installed.root))) == (("0o640", "0", gid) if own else ("0o600", "0", "0"))
    assert mode("var/lib/fm-gateway") == ("0o750", uid, gid)
    assert mode("etc/mosquitto/fm-gateway/passwd")[0] == "0o640"
    assert mode("etc/mosquitto/fm-gateway/server.key")[0] == "0o640"
    assert installed.path("opt/fm-gateway/venv/bin/gateway").is_file()

    # Every path in the generated settings and unit is inside the root.
    for p in ("etc/fm-gateway/gateway.toml", "etc/systemd/system/fm-gateway.service",
              "etc/mosquitto/conf.d/fm-gateway.conf"):
        text = installed.path(p).read_text()
        assert str(installed.root) in text
        settings = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        for word in settings.replace('"', " ").replace("=", " ").split():
            if word.startswith(("/etc/", "/var/", "/opt/")):
                pytest.fail(f"{p}: {word} is outside the root")


def no_secret_in_output(installed: Install) -> None:
    assert len(installed.secrets) == 7  # the gateway and six device classes
    for out in installed.outputs:
        for secret in installed.secrets:
            assert len(secret) == 48 and secret not in out


def test_no_secret_in_the_installers_output(installed: Install) -> None:
    no_secret_in_output(installed)


def test_no_secret_in_the_settings(installed: Install) -> None:
    """The settings file can be shown or copied: it names the password file instead."""
    text = installed.path("etc/fm-gateway/gateway.toml").read_text()
    assert not [secret for secret in installed.secrets if secret in text]
    assert f'url = "mqtt://fm-gateway@127.0.0.1:{installed.mqtt_port}"' in text
    assert f'password_file = "{installed.path("etc/fm-gateway/mqtt/fm-gateway.password")}"' in text


def test_unit_verifies_and_is_hardened(installed: Install) -> None:
    unit = installed.path("etc/systemd/system/fm-gateway.service")
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "fm-gateway.service" not in verify.stderr, verify.stderr  # no warning about the unit
    text = unit.read_text()
    lines = {line.strip() for line in text.splitlines()}
    for wanted in ("Type=notify", "NotifyAccess=main", "Restart=always", "WatchdogSec=60", "NoNewPrivileges=true",
                   "ProtectSystem=strict", "PrivateTmp=true", "ProtectHome=true", "DevicePolicy=closed",
                   "DeviceAllow=char-ttyUSB rw", "DeviceAllow=char-ttyAMA rw", "DeviceAllow=char-ttyS rw",
                   "DeviceAllow=char-ttyACM rw", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                   "User=fm-gateway", "SupplementaryGroups=dialout", "StandardOutput=journal",
                   f"ReadWritePaths={installed.path('var/lib/fm-gateway')}",
                   f"ExecStart={installed.path('opt/fm-gateway/venv/bin/gateway')} run --config "
                   f"{installed.path('etc/fm-gateway/gateway.toml')}"):
        assert wanted in lines, wanted
    assert [line for line in lines if line.startswith("ReadWritePaths=")] == [
        f"ReadWritePaths={installed.path('var/lib/fm-gateway')}"]
    assert "After=network-online.target mosquitto.service influxdb.service" in lines
    # systemd's own rating: 'OK' or better (it is 10 for a unit without any sandboxing).
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=25", str(unit)],
                              capture_output=True, text=True)
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr


def test_settings_pass_gateway_check(installed: Install) -> None:
    gateway = installed.path("opt/fm-gateway/venv/bin/gateway")
    config = installed.path("etc/fm-gateway/gateway.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = subprocess.run([str(gateway), "check", "--config", str(config)], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert f"site {SITE}" in result.stdout and f"InfluxDB v1 at {installed.influx.url}" in result.stdout
    site = installed.path("etc/fm-gateway/site.toml").read_text()
    assert 'name = "阳光花园"' in site


# --- the broker ------------------------------------------------------------------------------

def test_anonymous_and_wrong_passwords_are_refused(installed: Install, broker: Broker) -> None:
    anonymous = Client(installed.mqtt_port)
    assert anonymous.reason == NOT_AUTHORIZED
    anonymous.close()
    wrong = Client(installed.mqtt_port, "class-streetlight", "not-the-password")
    assert wrong.reason in (0x86, NOT_AUTHORIZED)  # bad user name or password
    wrong.close()


def test_a_device_class_publishes_under_its_kind_only(installed: Install, broker: Broker, watcher: Client) -> None:
    lamps = Client(installed.mqtt_port, "class-streetlight", installed.password("class-streetlight"))
    assert lamps.reason == 0
    try:
        assert delivered(installed, watcher, lamps, f"fm/{SITE}/streetlight/lamp-0001/reading")
        assert delivered(installed, watcher, lamps, f"fm/{SITE}/streetlight/lamp-0002/status")
        for topic in (f"fm/{SITE}/fire_hydrant/h-1/reading",  # another kind
                      f"fm/{SITE}/gateway/gw1/events",          # the gateway's
                      "fm/othersite/streetlight/lamp-0001/reading", "elsewhere/x"):
            assert lamps.publish(topic) == NOT_AUTHORIZED, topic
            assert not delivered(installed, watcher, lamps, topic)
    finally:
        lamps.close()


def test_the_gateway_reads_all_and_writes_its_own_only(installed: Install, broker: Broker,
                                                          watcher: Client) -> None:
    assert delivered(installed, watcher, watcher, f"fm/{SITE}/gateway/gw1/status")
    assert watcher.publish(f"fm/{SITE}/streetlight/lamp-0001/reading") == NOT_AUTHORIZED
    assert not delivered(installed, watcher, watcher, f"fm/{SITE}/streetlight/lamp-0001/reading")


def test_add_device_account_publishes_under_its_own_id(installed: Install, broker: Broker,
                                                       watcher: Client) -> None:
    result = installed.run("--add-device", "lamp-0042")
    assert "lamp-0042.password" in result.stdout
    password = installed.password("lamp-0042")
    assert password not in result.stdout + result.stderr
    broker.proc.send_signal(signal.SIGHUP)  # what `systemctl reload mosquitto` does

    def connects() -> bool:
        c = Client(installed.mqtt_port, "lamp-0042", password)
        c.close()
        return c.reason == 0

    wait_for(connects, 10, 0.2, "the new account to be accepted")
    lamp = Client(installed.mqtt_port, "lamp-0042", password)
    try:
        assert delivered(installed, watcher, lamp, f"fm/{SITE}/streetlight/lamp-0042/reading")
        assert lamp.publish(f"fm/{SITE}/streetlight/lamp-0043/reading") == NOT_AUTHORIZED
        assert not delivered(installed, watcher, lamp, f"fm/{SITE}/streetlight/lamp-0043/reading")
    finally:
        lamp.close()
    # Reserved names are refused.
    assert installed.run("--add-device", "fm-gateway", check=False).returncode != 0


def test_tls_listener_on_the_lan_address(installed: Install, broker: Broker, watcher: Client) -> None:
    assert wait_tcp(installed.mqtts_port)
    ca = installed.path("etc/fm-gateway/tls/ca.crt")
    for host in ("127.0.0.1", LAN):
        c = Client(installed.mqtts_port, "class-drain_level", installed.password("class-drain_level"), host=host,
                   ca=ca)
        assert c.reason == 0
        n = len(watcher.messages)
        assert c.publish(f"fm/{SITE}/drain_level/well-{host}/reading") == 0
        wait_for(lambda h=host, n=n: (f"fm/{SITE}/drain_level/well-{h}/reading", b"{}") in watcher.messages[n:], 10)
        c.close()
    # No plain MQTT on the LAN address when TLS is on.
    with pytest.raises(OSError):
        Client(installed.mqtt_port, "class-drain_level", installed.password("class-drain_level"), host=LAN)


# --- InfluxDB --------------------------------------------------------------------------------

def _influx_env(installed: Install) -> dict[str, str]:
    lines = installed.path("etc/default/influxdb").read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if line.startswith("# BEGIN fm-gateway"))
    end = lines.index("# END fm-gateway")
    return dict(line.split("=", 1) for line in lines[begin + 1:end] if not line.startswith("#"))


def test_influxdb_variables_take_effect(installed: Install, tmp_path: Path) -> None:
    env = _influx_env(installed)
    assert env["INFLUXDB_HTTP_BIND_ADDRESS"] == installed.influx.url.removeprefix("http://")
    shown = subprocess.run(["influxd", "config", "-config", "/etc/influxdb/influxdb.conf"], capture_output=True,
                           text=True, env={"PATH": os.environ["PATH"], **env}, check=True).stdout
    import tomllib

    conf = tomllib.loads(shown)
    assert conf["bind-address"] == "127.0.0.1:8088"
    assert conf["http"]["bind-address"] == env["INFLUXDB_HTTP_BIND_ADDRESS"]
    assert conf["http"]["log-enabled"] is False
    assert conf["monitor"]["store-enabled"] is False
    assert conf["data"]["query-log-enabled"] is False
    assert conf["data"]["index-version"] == "tsi1"
    assert conf["data"]["wal-fsync-delay"] == "100ms"
    assert conf["data"]["cache-snapshot-write-cold-duration"] == "1h0m0s"
    assert conf["data"]["compact-full-write-cold-duration"] == "24h0m0s"
    assert conf["data"]["max-concurrent-compactions"] == 1
    assert conf.get("reporting-enabled", False) is False and conf.get("reporting-disabled", True) is True


def test_influxd_starts_with_them_and_the_retention_is_400_days(installed: Install, tmp_path: Path) -> None:
    port, rpc = free_port(), free_port()
    env = {"PATH": os.environ["PATH"], **_influx_env(installed),
           # the test's own ports and folders; everything else as installed
           "INFLUXDB_HTTP_BIND_ADDRESS": f"127.0.0.1:{port}", "INFLUXDB_BIND_ADDRESS": f"127.0.0.1:{rpc}",
           "INFLUXDB_META_DIR": str(tmp_path / "meta"), "INFLUXDB_DATA_DIR": str(tmp_path / "data"),
           "INFLUXDB_DATA_WAL_DIR": str(tmp_path / "wal")}
    proc = subprocess.Popen(["influxd", "-config", "/etc/influxdb/influxdb.conf"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "influxd.log", "wb"),  # noqa: SIM115
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    setup = REPO / "deploy" / "raspberry-pi" / "influx-setup.sh"

    def query(q: str) -> list:
        data = urllib.parse.urlencode({"q": q}).encode()
        with urllib.request.urlopen(url + "/query", data, timeout=10) as r:
            return json.load(r)["results"][0].get("series", [{}])[0].get("values", [])

    def default_rp(db: str) -> tuple[str, str]:
        return next((row[0], row[1]) for row in query(f'SHOW RETENTION POLICIES ON "{db}"') if row[-1] is True)

    try:
        def setup_run(db: str, days: str = "400") -> str:
            r = subprocess.run([str(setup), url, db, days], capture_output=True, text=True, timeout=90)
            assert r.returncode == 0, r.stderr
            return r.stdout

        assert "created database facility" in setup_run("facility")  # waits for influxd to answer
        assert default_rp("facility") == ("autogen", "9600h0m0s")
        assert "unchanged" in setup_run("facility")
        # A database the gateway made first (forever), or one changed by hand: altered to 400 days.
        query('CREATE DATABASE "early"')
        assert default_rp("early") == ("autogen", "0s")
        assert "changed from 0s to 400d" in setup_run("early")
        assert default_rp("early") == ("autogen", "9600h0m0s")
        assert "changed from 9600h0m0s to 30d" in setup_run("early", "30")
        assert default_rp("early") == ("autogen", "720h0m0s")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode == 0, (tmp_path / "influxd.log").read_text()[-2000:]


def test_the_installer_set_up_its_database(installed: Install) -> None:
    series = installed.influx.query(f'SHOW RETENTION POLICIES ON "{DB}"', DB)
    assert [row[:2] for row in series[0]["values"] if row[-1] is True] == [["autogen", "9600h0m0s"]]


# --- the gateway from the installation ---------------------------------------------------------

def test_the_gateway_runs_from_the_install(installed: Install, broker: Broker) -> None:
    data = installed.path("var/lib/fm-gateway")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    log_path = data.parent / "gateway-test.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(installed.path("opt/fm-gateway/venv/bin/gateway")), "run", "--config",
                                 str(installed.path("etc/fm-gateway/gateway.toml"))], env=env, cwd=data,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        def health() -> dict | None:
            if proc.poll() is not None:
                pytest.fail(f"the gateway exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                port = (data / "api.port").read_text().strip()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as r:
                    body = json.load(r)
            except (OSError, ValueError):
                return None
            return body if body["mqtt"]["connected"] else None

        wait_for(health, 60, 0.2, "the installed gateway's /api/v1/health with MQTT connected")
        # A reading from a device class account reaches InfluxDB through the installed broker settings.
        lamps = Client(installed.mqtt_port, "class-streetlight", installed.password("class-streetlight"))
        reading = {"ts": time.time(), "seq": 1, "on": True, "current_a": 0.4, "voltage_v": 220.0}
        assert lamps.publish(f"fm/{SITE}/streetlight/lamp-0001/reading", json.dumps(reading)) == 0
        lamps.close()
        wait_for(lambda: installed.influx.count("streetlight", "current_a", DB) == 1, 30, 0.2,
                 "the reading in InfluxDB")
        assert (data / "admin-password").stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log_path.read_text()[-3000:]
    text = log_path.read_text()
    assert "Traceback" not in text
    assert installed.password("fm-gateway") not in text


def test_a_central_influxdb_v2_gets_its_token_from_a_file(tmp_path: Path, influxd: Influxd) -> None:
    """``--influx-api v2``: the token given in a file is copied where the gateway alone reads it, the
    settings name that copy, and ``gateway check`` takes them (no InfluxDB 2 here: nothing is written)."""
    inst = new_install(tmp_path, influxd)
    given = tmp_path / "influx-token"
    given.write_text("tok-v2-Zm9vYmFy\n")
    given.chmod(0o600)
    inst.run("--site", SITE, "--mqtt-port", str(inst.mqtt_port), "--api-bind", "127.0.0.1:0",
             "--influx-api", "v2", "--influx-url", "https://influx.example.com:8086", "--influx-org", "acme",
             "--influx-db", "facility", "--influx-token-file", str(given))
    text = inst.path("etc/fm-gateway/gateway.toml").read_text()
    assert "tok-v2-Zm9vYmFy" not in text and "tok-v2-Zm9vYmFy" not in "".join(inst.outputs)
    copy = inst.path("etc/fm-gateway/influx-token")
    assert f'token_file = "{copy}"' in text and 'api = "v2"' in text and 'org = "acme"' in text
    assert copy.read_text() == "tok-v2-Zm9vYmFy\n"
    gid = next(line.split(":")[2] for line in inst.path("etc/group").read_text().splitlines()
               if line.startswith("fm-gateway:"))
    st = copy.stat()
    assert (oct(stat.S_IMODE(st.st_mode)), st.st_uid, str(st.st_gid)) == ("0o640", 0, gid)
    assert not inst.path("etc/default/influxdb").exists()  # no local InfluxDB to tune
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    check = subprocess.run([str(inst.path("opt/fm-gateway/venv/bin/gateway")), "check", "--config",
                            str(inst.path("etc/fm-gateway/gateway.toml"))], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stderr
    assert "InfluxDB v2 at https://influx.example.com:8086" in check.stdout, check.stdout


# --- re-running, upgrading, uninstalling ----------------------------------------------------------

def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root (but the data folder and bytecode caches): mode, owner, content hash."""
    out = {}
    skip = root / "var" / "lib" / "fm-gateway"
    for p in sorted(root.rglob("*")):
        if p == skip or skip in p.parents or "__pycache__" in p.parts:
            continue
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            what = os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            what = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            what = "dir"
        out[str(p.relative_to(root))] = (oct(st.st_mode), st.st_uid, st.st_gid, what)
    return out


def test_a_second_run_changes_nothing(installed: Install) -> None:
    before = snapshot(installed.root)
    result = installed.run()  # no options: the saved ones are used
    after = snapshot(installed.root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], changed
    assert "nothing changed" in result.stdout
    assert "is up to date" in result.stdout  # the virtualenv was not rebuilt


def test_a_code_change_is_installed_by_a_rerun(installed: Install) -> None:
    init = installed.source / "gateway" / "__init__.py"
    marker = f"# upgrade marker {time.time_ns()}\n"
    init.write_text(init.read_text() + marker)
    before = snapshot(installed.root)
    result = installed.run()
    assert "installing the gateway" in result.stdout
    site_packages = next(installed.path("opt/fm-gateway/venv/lib").glob("python3*/site-packages"))
    assert (site_packages / "gateway" / "__init__.py").read_text().endswith(marker)
    after = snapshot(installed.root)
    # The settings the operator may have edited, and the accounts, are untouched.
    for kept in ("etc/fm-gateway/gateway.toml", "etc/fm-gateway/site.toml", "etc/mosquitto/fm-gateway/passwd"):
        assert before[kept] == after[kept]


def test_uninstall_keeps_the_data(installed: Install) -> None:
    installed.run("--uninstall")
    assert not installed.path("opt/fm-gateway").exists()
    assert not installed.path("etc/systemd/system/fm-gateway.service").exists()
    assert installed.path("var/lib/fm-gateway/gateway.db").is_file()
    assert installed.path("etc/fm-gateway/gateway.toml").is_file()
    assert installed.path("etc/fm-gateway/mqtt/fm-gateway.password").is_file()
    assert installed.ids("fm-gateway") is not None


def test_uninstall_purge_removes_the_data(installed: Install) -> None:
    installed.run("--uninstall", "--purge")
    for gone in ("var/lib/fm-gateway", "etc/fm-gateway", "etc/mosquitto/conf.d/fm-gateway.conf",
                 "etc/mosquitto/fm-gateway", "etc/systemd/system/mosquitto.service.d/fm-gateway.conf",
                 "etc/default/influxdb", "opt/fm-gateway"):
        assert not installed.path(gone).exists(), gone
    assert installed.ids("fm-gateway") is None
    assert installed.ids("fm-gateway", "group") is None
    # The InfluxDB database is kept (the message says how to drop it).
    assert ["deploy_facility"] in installed.influx.query("SHOW DATABASES", DB)[0]["values"]
    assert "DROP DATABASE" in installed.outputs[-1]
    no_secret_in_output(installed)
