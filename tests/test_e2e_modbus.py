"""Modbus RTU slaves (pymodbus's server) on a pseudo-terminal bus, the gateway polling them as its own
process: scaled readings in InfluxDB, a silent slave's asset unknown while the others keep being polled,
one ticket for a silent bus, and an adapter unplugged and plugged back in. Progress is judged by counts
and states, never by the clock."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware-sim"))
from sim_modbus import Bus, float_registers, registers

SITE_FILE = """
[site]
name = "测试小区"

[[assets]]
id = "W-1"
name = "1号雨水井"
category = "drainage"
kind = "drain_level"
device = "well-1"

[[assets]]
id = "H-2"
name = "2号消火栓"
category = "fire"
kind = "fire_hydrant"
device = "hyd-2"

[[assets]]
id = "FE-3"
category = "fire"
kind = "fire_extinguisher"
device = "ext-3"

[[modbus]]
device = "well-1"
bus = "pump-room"
kind = "drain_level"
unit = 1
poll_s = 0.2
timeout_s = 0.2
retries = 1
registers = [
  { address = 0, function = 4, type = "uint16", scale = 0.001, field = "level_m" },
  { address = 0, function = 1, type = "bool", field = "cover_open" },
]

[[modbus]]
device = "hyd-2"
bus = "pump-room"
kind = "fire_hydrant"
unit = 2
poll_s = 0.2
timeout_s = 0.2
retries = 1
registers = [{ address = 0, type = "float32", word_order = "little", field = "pressure_mpa" }]

[[modbus]]
device = "ext-3"
bus = "pump-room"
kind = "fire_extinguisher"
unit = 3
poll_s = 0.2
timeout_s = 0.2
retries = 1
registers = [{ address = 10, type = "int16", scale = 0.01, offset = 0.02, field = "pressure_mpa" }]
"""

UNITS = {
    1: ([], registers(350), [False]),  # 0.350 m, cover closed
    2: (float_registers(0.31)[::-1], [], []),  # 0.31 MPa, CDAB
    3: ([0] * 10 + registers(118), [], []),  # 1.18 + 0.02 = 1.2 MPa
}


@pytest.fixture
def line(tmp_path: Path) -> Iterator[Bus]:
    b = Bus(tmp_path / "usb-FTDI_FT232R_USB_UART_A10K1XYZ-if00-port0", UNITS)
    yield b
    b.close()


def gateway(gateway_factory, tmp_path: Path, line: Bus):
    site = tmp_path / "site.toml"
    site.write_text(SITE_FILE, encoding="utf-8")
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[[serial]]
port = {json.dumps(str(line.link))}
mode = "modbus-rtu"
bus = "pump-room"
baudrate = 38400
parity = "E"
backoff_max_s = 1
""", encoding="utf-8")
    return gateway_factory(config, GATEWAY_SITE_FILE=str(site)).start()


def states(g) -> dict[str, str]:
    return {a["asset"]: a["state"] for a in g.get("/api/v1/assets", g.token)["items"]}


def live(g) -> list[tuple[str, str]]:
    items = g.get("/api/v1/tickets?status=open&status=acknowledged&limit=100", g.token)["items"]
    return sorted((t["subject"], t["fault"]) for t in items)


def counts(g) -> dict[str, dict]:
    (bus,) = g.health()["serial"]
    return bus["devices"]


def test_polled_slaves_land_in_influxdb_and_a_silent_bus_is_one_ticket(gateway_factory, influxd, tmp_path, line):
    g = gateway(gateway_factory, tmp_path, line)
    db = g.env["GATEWAY_INFLUX_DB"]
    for kind in ("drain_level", "fire_hydrant", "fire_extinguisher"):
        wait_for(lambda k=kind: influxd.count(k, "pressure_mpa" if k != "drain_level" else "level_m", db) >= 3,
                 what=f"{kind} readings in InfluxDB")
    rows = {}
    for kind in ("drain_level", "fire_hydrant", "fire_extinguisher"):
        series = influxd.query(f'SELECT * FROM "{kind}" LIMIT 1', db)[0]
        rows[kind] = dict(zip(series["columns"], series["values"][0], strict=True))
    assert {k: (r["device"], r["asset"]) for k, r in rows.items()} == {
        "drain_level": ("well-1", "W-1"), "fire_hydrant": ("hyd-2", "H-2"), "fire_extinguisher": ("ext-3", "FE-3")}
    assert (rows["drain_level"]["level_m"], rows["drain_level"]["cover_open"]) == (0.35, False)
    assert rows["fire_hydrant"]["pressure_mpa"] == 0.31 and rows["fire_extinguisher"]["pressure_mpa"] == 1.2
    wait_for(lambda: states(g) == {"W-1": "intact", "H-2": "intact", "FE-3": "intact"}, what="every asset intact")

    # One slave stops answering: its asset goes unknown with a ticket of its own; the others are polled on.
    line.cable.muted = {2}
    wait_for(lambda: states(g)["H-2"] == "unknown", what="H-2 unknown")
    wait_for(lambda: live(g) == [("device:hyd-2", "device_lost")], what="hyd-2's own ticket")
    before = counts(g)
    wait_for(lambda: counts(g)["well-1"]["answers"] >= before["well-1"]["answers"] + 15, what="well-1 polled on")
    now = counts(g)
    assert now["ext-3"]["answers"] >= before["ext-3"]["answers"] + 10
    assert now["hyd-2"]["silent"] and now["hyd-2"]["polls"] - before["hyd-2"]["polls"] <= 15 // 2
    assert states(g)["W-1"] == "intact" and not g.health()["serial"][0]["bus_silent"]

    # Every slave silent: one ticket for the bus, in place of hyd-2's, and none for the others.
    line.cable.muted = {1, 2, 3}
    wait_for(lambda: g.health()["serial"][0]["bus_silent"], what="the bus silent")
    wait_for(lambda: states(g) == {"W-1": "unknown", "H-2": "unknown", "FE-3": "unknown"},
             what="every asset unknown")
    assert live(g) == [("bus:pump-room", "bus_silent")]
    (ticket,) = g.get("/api/v1/tickets?status=open", g.token)["items"]
    assert ticket["priority"] == "urgent" and "pump-room" in ticket["title"]
    cancelled = g.get("/api/v1/tickets?status=cancelled", g.token)["items"]
    assert [t["subject"] for t in cancelled] == ["device:hyd-2"]

    # The bus answers again: its ticket clears, the assets come back, nobody gets a ticket of their own.
    line.cable.muted = set()
    wait_for(lambda: states(g) == {"W-1": "intact", "H-2": "intact", "FE-3": "intact"}, what="assets back")
    wait_for(lambda: g.get(f"/api/v1/tickets/{ticket['id']}", g.token)["self_cleared"], what="bus ticket cleared")
    assert not g.health()["serial"][0]["bus_silent"]
    assert [s for s, _ in live(g)] == ["bus:pump-room"], "self-cleared, it waits for maintenance to confirm"
    metrics = g.get("/metrics")
    assert f'gateway_modbus_bus_silent{{port="{line.link}",bus="pump-room"}} 0' in metrics
    assert f'gateway_serial_open{{port="{line.link}"}} 1' in metrics
    assert g.stop() == 0
    log = g.log()
    assert f"modbus device hyd-2 (unit 2) on {line.link} (bus pump-room) stopped answering" in log
    assert f"serial port {line.link}: modbus bus pump-room is silent" in log


def test_an_unplugged_adapter_is_reopened_and_polling_resumes(gateway_factory, influxd, tmp_path, line):
    g = gateway(gateway_factory, tmp_path, line)
    db = g.env["GATEWAY_INFLUX_DB"]
    wait_for(lambda: influxd.count("drain_level", "level_m", db) >= 3, what="readings")
    line.unplug()
    wait_for(lambda: not g.health()["serial"][0]["open"], what="the loss noticed")
    wait_for(lambda: g.health()["serial"][0]["bus_silent"], what="an unplugged bus is silent")
    wait_for(lambda: live(g) == [("bus:pump-room", "bus_silent")], what="the bus's ticket")
    stored = influxd.count("drain_level", "level_m", db)
    line.plug()
    wait_for(lambda: g.health()["serial"][0]["open"], what="the port open again")
    wait_for(lambda: influxd.count("drain_level", "level_m", db) >= stored + 5, what="polling resumed")
    wait_for(lambda: not g.health()["serial"][0]["bus_silent"], what="the bus answering")
    bus = g.health()["serial"][0]
    assert bus["reopenings"] == 1 and bus["devices"]["well-1"]["unsent"] >= 3
    assert [s for s, _ in live(g)] == ["bus:pump-room"]  # self-cleared: no device got a ticket of its own
    assert g.stop() == 0
