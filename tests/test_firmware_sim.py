"""firmware-sim scenarios: parsing errors that name the place, value models that produce the faults each
event announces (judged by the gateway's own checks), a device's buffered late readings, and a scenario run
end to end through the broker and a gateway process; last, ``gateway.demo`` starting and stopping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.devservers import free_port
from gateway.sensors import KINDS
from gateway.sensors.base import CheckContext
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware-sim"))

from sim_clock import SceneClock  # noqa: E402
from sim_field import FIELD_DEVICES, TRANSMITTERS, FieldFleet, image  # noqa: E402
from sim_run import Options  # noqa: E402
from sim_scenario import ANNOUNCES, ScenarioError, apply, load, parse  # noqa: E402
from sim_scene import ScenarioSimulation  # noqa: E402
from sim_site import build_fleet  # noqa: E402
from sim_values import LampSchedule, reading  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
SIM = ROOT / "firmware-sim" / "simulate.py"
FLEET = '[site]\ndevices = { streetlight = 2, fire_extinguisher = 1, fire_hydrant = 1, smoke_detector = 1, ' \
        'drain_level = 1 }\ncheckpoints = 4\nguards = 1\n'
RATED = {"streetlight": {"current_a": 0.42}, "drain_level": {"depth_m": 3.0, "alarm_level_m": 1.8}}


@pytest.mark.parametrize(("text", "message"), [
    ('events = [{ at = "20:00", device = "lamp-0001", event = "lamp_fial" }]\n' + FLEET,
     "events[0] (line 1): event: 'lamp_fial' is not one of"),
    ('events = [\n { at = "20:00", device = "lamp-0001", event = "lamp_fail" },\n'
     ' { at = "25:00", device = "lamp-0002", event = "lamp_fail" },\n]\n' + FLEET,
     "events[1] (line 3): at: '25:00' is not a time of day"),
    ('events = [{ at = "09:00", device = "lamp-0003", event = "leak" }]\n' + FLEET,
     "device: 'lamp-0003' is not a fire_extinguisher of this site's fleet"),
    ('events = [{ at = "09:00", device = "lamp-0009", event = "silent" }]\n' + FLEET,
     "device: 'lamp-0009' is not a device of this site's fleet"),
    ('events = [{ at = "09:00", event = "tamper" }]\n' + FLEET, "events[0] (line 1): device: missing"),
    ('events = [{ at = "09:00", device = "ext-0001", event = "leak", mpa_per_hour = "fast" }]\n' + FLEET,
     "mpa_per_hour: must be a number"),
    ('events = [{ at = "09:00", device = "ext-0001", event = "leak", mpa = 1 }]\n' + FLEET,
     "events[0] (line 1): mpa: not a field of leak"),
    ('events = [{ at = "23:00", guard = "G002", event = "skip", checkpoint = "CP-0001" }]\n' + FLEET,
     "guard: 'G002' is not one of G001..G001"),
    ('events = [{ at = "23:00", guard = "G001", event = "skip", checkpoint = "CP-0099" }]\n' + FLEET,
     "checkpoint: 'CP-0099' is not one of CP-0001..CP-0004"),
    (FLEET + "colour = 1\n", "site.colour: unknown field"),
    (FLEET + "[patrol]\nevents = []\n", "patrol.events: unknown field"),
    ("[site\n", "s.toml: "),
])
def test_scenario_errors_name_the_place(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse(text, "s.toml")
    assert message in str(err.value) and str(err.value).startswith("s.toml: ")


def test_the_demo_scenario_parses_in_time_order() -> None:
    sc = load(ROOT / "firmware-sim" / "scenarios" / "demo-day.toml")
    assert sc.count("streetlight") == 200 and sc.checkpoints == 30 and sc.guards == 4
    assert [e.at for e in sc.events] == sorted(e.at for e in sc.events) and len(sc.events) == 18
    assert {e.event for e in sc.events} >= set(ANNOUNCES) - {"ballast_ageing"} | {"ballast_ageing"}


NIGHT = datetime(2026, 11, 21, 20, 0, tzinfo=TZ).timestamp()
DAY = datetime(2026, 11, 21, 11, 0, tzinfo=TZ).timestamp()


@pytest.mark.parametrize(("event", "now", "hours_after"), [
    ('{ device = "lamp-0001", event = "lamp_fail" }', NIGHT, 0.0),
    ('{ device = "lamp-0001", event = "day_burning" }', DAY, 0.0),
    ('{ device = "lamp-0001", event = "ballast_ageing", pct_per_day = 10 }', NIGHT, 60.0),
    ('{ device = "ext-0001", event = "leak", mpa_per_hour = 0.05 }', DAY, 5.0),
    ('{ event = "hydrant_main_drop", mpa = 0.25 }', DAY, 0.0),
    ('{ device = "smoke-0001", event = "battery_low" }', DAY, 3.0),
    ('{ device = "smoke-0001", event = "tamper" }', DAY, 0.0),
    ('{ device = "well-0001", event = "cover_knocked" }', DAY, 0.0),
    ('{ event = "rain", hours = 2 }', DAY, 2.0),
])
def test_each_event_yields_the_fault_it_announces(event: str, now: float, hours_after: float) -> None:
    """Healthy before; after the event (and ``hours_after`` on the scenario clock) the gateway's own check
    finds the announced fault; ``restore`` makes the device healthy again."""
    sc = parse(f'events = [{{ at = "09:00", {event[1:]}]\n' + FLEET)
    [ev] = sc.events
    schedule = LampSchedule.parse("18:00-06:00", TZ, 31.23, 121.47)
    devices, _ = build_fleet(dict(sc.devices), site="t", born=now, seed=1, schedule=schedule)
    fleet = {d.device: d for d in devices}

    def failing(device: str, scene: float) -> frozenset[str]:
        d = fleet[device]
        kind = KINDS[d.kind]
        fields = {k: v for k, v in reading(d.kind, d, now, scene=scene).items() if k not in ("ts", "seq")}
        lit = schedule.lit(now) if d.kind == "streetlight" else None
        return kind.check(fields, CheckContext({**kind.limits, **RATED.get(d.kind, {})}, lit))

    touched = apply(ev, fleet, now)[0]
    later = now + hours_after * 3600
    fleet[touched].cond = type(fleet[touched].cond)()  # undo: healthy before the event
    assert failing(touched, later) == frozenset()
    apply(ev, fleet, now)
    assert ANNOUNCES[ev.event] in failing(touched, later)
    if ev.event == "rain":  # the rain stops and the well drains
        assert failing(touched, later + 12 * 3600) == frozenset()
        return
    restore = parse(f'events = [{{ at = "10:00", device = "{touched}", event = "restore" }}]\n' + FLEET).events[0]
    apply(restore, fleet, later)
    assert failing(touched, later) == frozenset()


class FakePublisher:
    pending = published = acked = dropped = connected = clients = 0

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict | bytes]] = []

    def publish(self, device: str, topic: str, payload: bytes, *, counted: bool = True) -> None:
        self.sent.append((topic, json.loads(payload)))

    def status(self, device: str, online: bool) -> None:
        self.sent.append(("status", b"online" if online else b"offline"))


def test_a_device_whose_broker_is_away_buffers_then_sends_late_readings_in_order() -> None:
    sc = parse('events = [{ at = "13:00", device = "well-0001", event = "broker_away", minutes = 60 }]\n' + FLEET)
    devices, _ = build_fleet(dict(sc.devices), site="t", born=0.0, seed=1)
    pub = FakePublisher()
    real0 = datetime(2026, 11, 21, 9, 0, tzinfo=TZ).timestamp()
    sim = ScenarioSimulation(devices, pub, Options(site="t", sim_start=real0), 1, sc, 60.0, "12:59", [])
    well = sim.fleet["well-0001"]
    sim._happen(sc.events[0], sim.scene(real0 + 1))  # the event is applied at 13:00 on the scenario clock
    for i in range(70):  # a reading a real second: 70 scenario minutes
        sim.emit(well, real0 + 1 + i)
    readings = [p for t, p in pub.sent if t != "status"]
    assert [t for t, _ in pub.sent if t == "status"] == ["status", "status"]
    assert pub.sent[0] == ("status", b"offline") and len(readings) == 70
    assert [r["seq"] for r in readings] == list(range(70))  # in order, nothing lost
    assert [r["ts"] for r in readings] == sorted(r["ts"] for r in readings)
    first_sent = next(i for i, (t, _) in enumerate(pub.sent) if t != "status")
    assert pub.sent[first_sent - 1] == ("status", b"online")  # sent only once back online: late


def _lit_now() -> str:
    now = datetime.now(TZ)
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"


def test_a_dark_lamp_at_20_00_yields_its_ticket(gateway_factory, mosquitto, tmp_path: Path) -> None:
    (tmp_path / "dark.toml").write_text(
        'events = [{ at = "20:00", device = "lamp-0002", event = "lamp_fail" }]\n'
        '[site]\ndevices = { streetlight = 3 }\n')
    site = tmp_path / "site.toml"
    # A site of its own: the simulator leaves its devices' retained statuses on the shared broker, which
    # would reach later tests' gateways (site "t") as devices gone offline.
    sim = [sys.executable, str(SIM), "--mqtt-url", mosquitto.url, "--site", "dark", "--scenario",
           str(tmp_path / "dark.toml"), "--site-file", str(site), "--lamp-schedule", _lit_now(),
           "--start", "19:59", "--speed", "30", "--interval", "1", "--seed", "7"]
    subprocess.run([*sim, "--files-only"], check=True, timeout=30)
    config = tmp_path / "gateway.toml"
    config.write_text("[kinds.streetlight]\ndebounce_n = 2\ndebounce_s = 0\n")
    g = gateway_factory(config, GATEWAY_SITE_FILE=str(site), GATEWAY_SITE="dark").start()
    proc = subprocess.Popen([*sim, "--log-level", "WARNING"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def ticket() -> list:
            return g.get("/api/v1/tickets?asset=L-0002", g.token)["items"]  # type: ignore[index]
        [t] = wait_for(ticket, 40, 0.5, "the dark lamp's ticket")  # type: ignore[misc]
        assert t["fault"] == "lamp_out" and t["asset"] == "L-0002"
        assert g.get("/api/v1/tickets?asset=L-0001", g.token)["items"] == []  # type: ignore[index]
        assert g.get("/api/v1/tickets?asset=L-0003", g.token)["items"] == []  # type: ignore[index]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out.decode().splitlines()[-1])
    assert summary["events"] == [{"at": "20:00", "event": "lamp_fail", "devices": 1, "expect": "lamp_out"}]
    assert summary["acked"] == summary["published"] > 0


def test_the_demo_starts_and_stops_cleanly(mosquitto, influxd, tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text('events = [{ at = "07:01", device = "ext-0001", event = "leak", mpa_per_hour = 5 }]\n'
                        '[site]\ndevices = { streetlight = 2, fire_extinguisher = 2 }\ncheckpoints = 2\nguards = 1\n')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(DEMO_DIR=str(tmp_path / "demo"), DEMO_SCENARIO=str(scenario), DEMO_INTERVAL="1",
               GATEWAY_MQTT_URL=mosquitto.url, GATEWAY_INFLUX_URL=influxd.url, GATEWAY_API_BIND=f"127.0.0.1:{port}",
               GATEWAY_INFLUX_DB="t_demo", GATEWAY_GATEWAY_ID="demo-smoke", GATEWAY_MQTT_CLIENT_ID="demo-smoke")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        banner = b""
        end = time.monotonic() + 45
        while b"G001 / " not in banner and time.monotonic() < end:
            line = proc.stdout.readline() if proc.stdout else b""  # type: ignore[union-attr]
            assert line or proc.poll() is None, "the demo exited early"
            banner += line
        assert b"Demo site running" in banner and b"manager / " in banner and b"/manager" in banner
        token = (tmp_path / "demo" / "gateway" / "api-token").read_text().strip()

        def get(path: str) -> dict:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/{path}",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.load(r)
        assert sorted(u["name"] for u in get("users")["items"]) == ["G001", "admin", "maintenance", "manager"]

        def transmitters() -> dict[str, int]:
            buses = [p for p in get("health")["serial"] if p.get("mode") == "modbus-rtu"]
            return {name: d["answers"] for p in buses for name, d in p["devices"].items()}
        wait_for(lambda: (t := transmitters()) and all(t.values()), 30, what="the demo's Modbus transmitters answering")
        assert set(transmitters()) == {"mb-well-01", "mb-well-02", "mb-main-01"}
        # The MQTT simulator is started last: stop the demo only once its readings arrive, so that its
        # summary below says it ran and stopped rather than that it was stopped before it began.
        def simulated() -> bool:
            seen = get("devices?kind=fire_extinguisher")
            return seen["total"] == 2 and all(d["readings"] for d in seen["items"])
        wait_for(simulated, 30, what="the simulator's readings")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert b"Traceback" not in err and b"stopped cleanly" in err
    assert json.loads(out.decode().splitlines()[-1])["acked"] > 0  # the simulator's summary: it stopped too


def test_the_field_devices_follow_the_scenario_on_its_clock() -> None:
    """Rain fills the RS-485 wells and the hydrant main's drop empties its transmitter, on the scenario clock
    the MQTT fleet shares; ``restore`` brings the main back; an event on an MQTT device leaves them alone."""
    sc = parse('events = [{ at = "08:00", event = "rain", hours = 2 }, { at = "08:00", event = "hydrant_main_drop" },'
               ' { at = "09:00", event = "restore" },'
               ' { at = "08:00", device = "well-0001", event = "cover_knocked" }]\n' + FLEET)
    real0 = datetime(2026, 11, 21, 9, 0, tzinfo=TZ).timestamp()
    fleet = FieldFleet(sc, SceneClock.starting("07:00", real0, 60.0, TZ))  # a scenario hour a real minute

    def failing(device: str, real: float) -> frozenset[str]:
        d = fleet.states[device]
        kind = KINDS[d.kind]
        fields = {k: v for k, v in fleet.reading(device, real).items() if k not in ("ts", "seq")}
        assert image(d.kind, fields)  # the transmitters' registers can hold every reading
        return kind.check(fields, CheckContext({**kind.limits, **RATED.get(d.kind, {})}, None))

    wells = [d.device for d in FIELD_DEVICES if d.kind == "drain_level"]
    mains = [d.device for d in FIELD_DEVICES if d.kind == "fire_hydrant"]
    assert len(wells) == 3 and len(mains) == 2 and {d.unit for d in TRANSMITTERS} == {1, 2, 3}
    for device in wells + mains:
        assert failing(device, real0 + 30) == frozenset(), device  # 07:30: nothing yet
    for device in mains:
        assert failing(device, real0 + 105) == {"pressure_low"}  # 08:45: the main has dropped
    for device in mains:
        assert failing(device, real0 + 150) == frozenset()  # 09:30: restored
    for device in wells:
        assert failing(device, real0 + 180) == {"level_high"}  # 10:00: two hours of rain
        assert fleet.reading(device, real0 + 180)["cover_open"] is False  # well-0001's cover is not theirs
    assert [e.event for e in fleet.happened] == ["rain", "hydrant_main_drop", "restore"]


def test_the_serial_devices_reach_a_gateway_and_the_gate_reader_makes_rounds(gateway_factory, tmp_path: Path) -> None:
    """The demo's pty NFC reader, JSON-lines concentrator and Modbus transmitters, read by a gateway through
    its [[serial]] ports: the gate guard's tap starts a round of the gate route, the field devices' readings
    arrive and the scenario's rain and main drop open their tickets."""
    from sim_serial import GATE, GATE_GUARD, READER, SerialSims, site_lines

    sc = parse('events = [{ at = "08:00", event = "rain", hours = 4 }, { at = "08:00", event = "hydrant_main_drop" }]\n'
               + FLEET + "[patrol]\nevery_min = 5\ntolerance_min = 2.5\n")  # windows that tile the day
    site_file = tmp_path / "site.toml"
    site_file.write_text('[site]\nname = "t"\n' + site_lines(sc.patrol, 0.2), encoding="utf-8")
    sims = SerialSims(sc, SceneClock.starting("07:00", time.time(), 300.0, TZ), 0.2, tmp_path / "usb-RS485")
    try:
        config = tmp_path / "gateway.toml"
        config.write_text(sims.settings_toml() + "".join(
            f"[kinds.{k}]\ndebounce_n = 2\ndebounce_s = 0\n" for k in ("drain_level", "fire_hydrant")))
        g = gateway_factory(config, GATEWAY_SITE_FILE=str(site_file)).start()
        sims.start()
        assert sims.tap_gate()

        def taps() -> list:
            return g.get("/api/v1/taps", g.token)["items"]
        wait_for(lambda: taps(), 15, what="a tap from the pty reader")
        assert {(t["reader"], t["checkpoint"], t["guard"]) for t in taps()} == {(READER, GATE[0], GATE_GUARD)}
        rounds = g.get("/api/v1/rounds?route=GATE", g.token)["items"]
        assert [r["guard"] for r in rounds if r["started_at"]] == [GATE_GUARD]  # the tap counts for a round
        def kinds() -> dict[str, str]:
            return {d["device"]: d["kind"] for d in g.get("/api/v1/devices?limit=100", g.token)["items"]
                    if d["readings"]}
        wait_for(lambda: kinds().items() >= {d.device: d.kind for d in FIELD_DEVICES}.items(), 15,
                 what="every field device read")

        def faults() -> set[tuple[str, str]]:
            items = g.get("/api/v1/tickets?limit=100", g.token)["items"]
            return {(t["asset"], t["fault"]) for t in items}
        expect = {(d.asset, "level_high" if d.kind == "drain_level" else "pressure_low") for d in FIELD_DEVICES}
        wait_for(lambda: faults() >= expect, 60, what="rain and the main's drop, on every serial device")
        health = g.health()
        ports = {p["port"]: p["open"] for p in health["serial"]}
        assert ports == {sims.nfc.path: True, sims.concentrator.path: True, str(sims.bus.link): True}
        (bus,) = [p for p in health["serial"] if p["port"] == str(sims.bus.link)]
        assert all(bus["devices"][d.device]["answers"] > 0 for d in TRANSMITTERS)
        assert health["dead_letters"] == {}
        assert g.stop() == 0
    finally:
        sims.stop()


def test_a_day_burning_lamp_keeps_the_scenarios_own_schedule(tmp_path: Path) -> None:
    """The demo lights its lamps around the clock (--lamp-schedule); a lamp that burns by day keeps the
    scenario's real night in the site file, so the gateway can tell it burns by day."""
    scenario, site = tmp_path / "s.toml", tmp_path / "site.toml"
    scenario.write_text('events = [{ at = "09:00", device = "lamp-0002", event = "day_burning" }]\n'
                        '[site]\nlamp_schedule = "18:00-06:00"\ndevices = { streetlight = 2 }\n')
    subprocess.run([sys.executable, str(SIM), "--scenario", str(scenario), "--site-file", str(site),
                    "--lamp-schedule", "08:00-20:00", "--files-only"], check=True, timeout=30)
    assets = tomllib.loads(site.read_text(encoding="utf-8"))["assets"]
    assert {a["id"]: a["schedule"] for a in assets} == {"L-0001": "08:00-20:00", "L-0002": "18:00-06:00"}
