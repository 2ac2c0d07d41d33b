"""The monitor in-process, on a real TicketStore: ledger from the moment of service, device
health, the smoke alarm's rising edge, and arrival proven by tapping the asset's tag."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import events
from gateway.devices import Transition
from gateway.monitor import Monitor
from gateway.sensors.base import Debounce, Reading
from gateway.sensors.checkpoint import Tap
from gateway.site import Site, load_site
from gateway.tickets import TicketStore

T0 = 1_795_000_000.0  # 2026-11-18 22:13 in Shanghai: lamps are expected lit
SITE = """
[site]
latitude = 31.23
longitude = 121.47

[[assets]]
id = "FE-1"
category = "fire"
kind = "fire_extinguisher"
device = "ext-1"

[[assets]]
id = "SD-1"
name = "3号楼烟感"
category = "fire"
kind = "smoke_detector"
device = "smoke-1"

[[assets]]
id = "W-1"
category = "drainage"
kind = "drain_level"

[[checkpoints]]
id = "CP-FE-1"
tag = "04A224B2C15E80"
asset = "FE-1"
"""


def site(tmp_path: Path, text: str = SITE) -> Site:
    (tmp_path / "site.toml").write_text(text)
    return load_site(tmp_path / "site.toml")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TicketStore]:
    s = TicketStore(tmp_path / "gateway.db", site(tmp_path).tz)
    yield s
    s.close()


def reading(kind_fields: dict, device: str, ts: float, seq: int = 0) -> Reading:
    return Reading("", device, ts, ts, seq, kind_fields)


def kinds_of(store: TicketStore) -> list[str]:
    return [e.type for e in events.after(store.db, 0, 1000)]


def test_every_asset_has_a_state_from_its_first_day(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s")
    lines = m.set_site(site(tmp_path), {}, T0)
    assert {a: s["state"] for a, s in store.current_states().items()} == {"FE-1": "unknown", "SD-1": "unknown",
                                                                          "W-1": "unknown"}
    assert len(lines) == 3 and all(line.startswith("asset_state,site=s,asset=") for _, line in lines)
    m.observe([("fire_extinguisher", reading({"pressure_mpa": 1.2}, "ext-1", T0 + 10))])
    assert store.current_states()["FE-1"]["state"] == "intact"
    again = Monitor(store, "s")
    assert again.set_site(site(tmp_path), {"ext-1": True}, T0 + 20) == []  # known assets keep their ledger
    assert {s["asset"]: s["state"] for s in again.states()[0]}["FE-1"] == "intact"


def test_a_silent_device_makes_its_asset_unknown_and_opens_a_device_ticket(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s")
    m.set_site(site(tmp_path), {}, T0)
    m.observe([("fire_extinguisher", reading({"pressure_mpa": 1.2}, "ext-1", T0 + 10))])
    m.devices([Transition("ext-1", "fire_extinguisher", False, "silent", T0 + 3600)])
    assert store.current_states()["FE-1"]["state"] == "unknown"
    [t] = store.list(status=("open",))[0]
    assert (t["fault"], t["device"], t["asset"]) == ("device_lost", "ext-1", "FE-1")
    m.devices([Transition("ext-1", "fire_extinguisher", True, "reading", T0 + 3700)])
    assert store.current_states()["FE-1"]["state"] == "intact"
    assert store.get(t["id"])["self_cleared"] is True


def test_a_smoke_alarm_is_announced_once_per_rising_edge(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s")
    m.set_site(site(tmp_path), {}, T0)
    for i, alarm in enumerate((False, True, True, False, True)):
        m.observe([("smoke_detector", reading({"alarm": alarm}, "smoke-1", T0 + i, i))])
    alarms = [e for e in events.after(store.db, 0, 1000) if e.type == "fire.alarm"]
    assert [e.at for e in alarms] == [T0 + 1, T0 + 4]
    assert "3号楼烟感" in alarms[0].title
    assert store.list()[1] == 0, "an alarm is an emergency event, not an equipment fault"


def test_tapping_the_assets_tag_proves_arrival(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s")
    m.set_site(site(tmp_path), {}, T0)
    for i in range(2):
        m.observe([("fire_extinguisher", reading({"pressure_mpa": 0.5}, "ext-1", T0 + 61 * i, i))])
    [t] = store.list(status=("open",))[0]
    assert t["fault"] == "pressure_low" and t["priority"] == "emergency"
    m.observe([("checkpoint", Tap("reader-9", "04A224B2C15E80", "M042", T0 + 300, T0 + 300))])
    after = store.get(t["id"])
    assert (after["status"], after["on_site_by"], after["on_site_at"]) == ("on_site", "M042", T0 + 300)
    assert after["acknowledged_at"] == T0 + 300
    assert "ticket.arrive" in kinds_of(store)
    m.observe([("checkpoint", Tap("reader-9", "04A224B2C15E80", None, T0 + 400, T0 + 400))])
    assert store.get(t["id"])["on_site_at"] == T0 + 300, "a second tap changes nothing"


def test_an_unbound_asset_stays_unknown_and_an_unbound_device_is_ignored(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s")
    m.set_site(site(tmp_path), {}, T0)
    assert m.observe([("fire_extinguisher", reading({"pressure_mpa": 0.1}, "ext-unbound", T0))]) == []
    assert {s["asset"]: s["state"] for s in m.states()[0]}["W-1"] == "unknown"


CIRCUIT_SITE = """
[[assets]]
id = "L-1"
category = "lighting"
kind = "streetlight"
device = "lamp-1"
circuit = "C-north"
schedule = "18:00-06:00"

[[assets]]
id = "L-2"
category = "lighting"
kind = "streetlight"
device = "lamp-2"
circuit = "C-north"
schedule = "18:00-06:00"
"""
NIGHT = 1_795_010_400.0  # 2026-11-19 01:00 in Shanghai


def lamp(device: str, on: bool, ts: float, seq: int) -> tuple[str, Reading]:
    return "streetlight", reading({"on": on, "current_a": 0.41 if on else 0.0}, device, ts, seq)


def test_a_whole_circuit_dark_is_one_emergency(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s")
    m.set_site(site(tmp_path, CIRCUIT_SITE), {}, NIGHT)
    for i in range(2):
        m.observe([lamp("lamp-1", False, NIGHT + 61 * i, i)])
    assert [t["fault"] for t in store.list()[0]] == ["lamp_out"], "one lamp out is not the circuit"
    for i in range(2):
        m.observe([lamp("lamp-2", False, NIGHT + 61 * i, i)])
    circuit = [t for t in store.list()[0] if t["fault"] == "circuit_dark"]
    assert len(circuit) == 1 and circuit[0]["priority"] == "emergency" and "C-north" in circuit[0]["title"]
    for i in range(2, 4):
        m.observe([lamp("lamp-1", True, NIGHT + 61 * i, i)])
    assert store.get(circuit[0]["id"])["self_cleared"] is True, "a lamp back on: the circuit is lit again"


def test_debounce_is_per_kind_and_configurable(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s", {"fire_extinguisher": Debounce(1, 0.0)})
    m.set_site(site(tmp_path), {}, T0)
    m.observe([("fire_extinguisher", reading({"pressure_mpa": 0.5}, "ext-1", T0))])
    assert [t["fault"] for t in store.list()[0]] == ["pressure_low"], "opens on the first failing reading"


BUS_SITE = """
[[assets]]
id = "W-1"
category = "drainage"
kind = "drain_level"
device = "well-1"

[[assets]]
id = "H-1"
category = "fire"
kind = "fire_hydrant"
device = "hyd-1"

[[assets]]
id = "FE-1"
category = "fire"
kind = "fire_extinguisher"
device = "ext-1"

[[modbus]]
device = "well-1"
bus = "pump-room"
kind = "drain_level"
unit = 1
registers = [{ address = 0, scale = 0.001, field = "level_m" }]

[[modbus]]
device = "hyd-1"
bus = "pump-room"
kind = "fire_hydrant"
unit = 2
registers = [{ address = 0, scale = 0.01, field = "pressure_mpa" }]
"""


def live(store: TicketStore) -> list[tuple[str, str, str]]:
    return sorted((t["subject"], t["fault"], t["status"]) for t in store.list(status=("open", "acknowledged"))[0])


def lost(device: str, kind: str, at: float) -> Transition:
    return Transition(device, kind, False, "silent", at)


def test_a_silent_bus_is_one_ticket_in_place_of_its_devices(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s")
    m.set_site(site(tmp_path, BUS_SITE), {}, T0)
    m.observe([("drain_level", reading({"level_m": 0.2}, "well-1", T0)),
               ("fire_hydrant", reading({"pressure_mpa": 0.3}, "hyd-1", T0))])
    m.devices([lost("well-1", "drain_level", T0 + 100)])  # one device lost before the bus is found silent
    assert live(store) == [("device:well-1", "device_lost", "open")]
    m.bus("pump-room", True, T0 + 101, ("well-1", "hyd-1"), "/dev/serial/by-id/usb-rs485")
    [bus] = store.list(status=("open",))[0]
    assert (bus["subject"], bus["fault"], bus["priority"], bus["asset"]) == ("bus:pump-room", "bus_silent", "urgent",
                                                                              None)
    assert bus["title"] == "总线 pump-room 总线无响应（2 台设备）"
    cancelled = store.list(status=("cancelled",))[0]
    assert [t["subject"] for t in cancelled] == ["device:well-1"], "the bus's ticket takes its place"
    m.devices([lost("hyd-1", "fire_hydrant", T0 + 102)])  # lost on a silent bus: no ticket of its own
    m.bus("pump-room", True, T0 + 103, ("well-1", "hyd-1"))  # said again: nothing new
    assert live(store) == [("bus:pump-room", "bus_silent", "open")]
    assert store.get(bus["id"])["occurrences"] == 1
    assert {a: s["state"] for a, s in store.current_states().items()} == {"W-1": "unknown", "H-1": "unknown",
                                                                          "FE-1": "unknown"}
    m.devices([lost("ext-1", "fire_extinguisher", T0 + 104)])  # not on the bus: a ticket of its own
    assert ("device:ext-1", "device_lost", "open") in live(store)
    m.bus("pump-room", False, T0 + 200, ("hyd-1",))  # well-1 answers again, hyd-1 still does not
    assert store.get(bus["id"])["self_cleared"] is True
    assert live(store) == [("bus:pump-room", "bus_silent", "open"), ("device:ext-1", "device_lost", "open"),
                           ("device:hyd-1", "device_lost", "open")]
    m.devices([Transition("well-1", "drain_level", True, "reading", T0 + 201)])
    assert store.current_states()["W-1"]["state"] == "intact"


def test_a_silent_bus_survives_a_restart_without_a_second_ticket(tmp_path: Path, store: TicketStore):
    m = Monitor(store, "s")
    m.set_site(site(tmp_path, BUS_SITE), {}, T0)
    m.bus("pump-room", True, T0 + 100, ("well-1", "hyd-1"))
    again = Monitor(store, "s")
    again.set_site(site(tmp_path, BUS_SITE), {"well-1": False, "hyd-1": True}, T0 + 200)
    again.bus("pump-room", True, T0 + 300, ("well-1", "hyd-1"))
    again.devices([lost("hyd-1", "fire_hydrant", T0 + 301)])
    assert live(store) == [("bus:pump-room", "bus_silent", "open")]
    [t] = store.list(status=("open",))[0]
    assert t["occurrences"] == 1
    again.bus("pump-room", False, T0 + 400, ("well-1", "hyd-1"))
    assert live(store) == [("bus:pump-room", "bus_silent", "open"), ("device:hyd-1", "device_lost", "open"),
                           ("device:well-1", "device_lost", "open")], "lost before the restart, still lost"
