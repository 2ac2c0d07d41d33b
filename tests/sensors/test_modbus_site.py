"""Modbus devices in the site file and modbus-rtu ports in the settings: what is accepted, and every
problem at once with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings
from gateway.sensors.modbus_map import Register
from gateway.sensors.modbus_rtu import Request
from gateway.sensors.serial_modbus import bus_problems, heartbeats
from gateway.site import load_site

SITE = """
[[assets]]
id = "W-3"
category = "drainage"
kind = "drain_level"
device = "well-3"

[[modbus]]
device = "well-3"
bus = "pump-room"
kind = "drain_level"
unit = 3
poll_s = 5
registers = [
  { address = 0, function = 4, type = "uint16", scale = 0.001, field = "level_m" },
  { address = 2, function = 4, type = "float32", word_order = "little", field = "cover_tilt_deg", count = 2 },
  { address = 0, function = 1, type = "bool", field = "cover_open" },
]

[[modbus]]
device = "hyd-7"
bus = "pump-room"
kind = "fire_hydrant"
unit = 7
timeout_s = 0.3
retries = 1
registers = [{ address = 100, type = "int16", scale = 0.01, offset = -0.05, field = "pressure_mpa" }]

[[modbus]]
device = "ext-1"
bus = "lobby"
kind = "fire_extinguisher"
unit = 1
registers = [
  { address = 0, type = "uint16", scale = 0.001, field = "pressure_mpa" },
  { address = 1, type = "bool", bit = 0, field = "present" },
]

[[modbus]]
device = "smoke-1"
bus = "lobby"
kind = "smoke_detector"
unit = 2
registers = [  # bools may share a register, bit by bit, and a number may overlay them
  { address = 0, type = "bool", bit = 0, field = "alarm" },
  { address = 0, type = "bool", bit = 1, field = "tamper" },
  { address = 0, type = "uint16", field = "battery_pct" },
]
"""


def site_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_modbus_devices_and_their_register_maps(tmp_path):
    site = load_site(site_file(tmp_path, SITE))
    assert list(site.buses) == ["pump-room", "lobby"]
    assert [d.device for d in site.buses["pump-room"]] == ["well-3", "hyd-7"]
    well, hyd = site.buses["pump-room"]
    assert well.plan().requests == (Request(3, 1, 0, 1), Request(3, 4, 0, 1), Request(3, 4, 2, 2))
    assert (well.poll_s, well.timeout_s, well.retries) == (5.0, 0.5, 2)  # timeout and retries by default
    assert well.register_map()[1] == Register("cover_tilt_deg", 2, 4, "float32", "big", "little", 1.0, 0.0, None)
    assert hyd.plan().requests == (Request(7, 3, 100, 1),) and (hyd.poll_s, hyd.retries) == (10.0, 1)
    # heartbeat: poll_s, or the bus's round when every device times out, plus its own tries
    assert heartbeats(site.modbus) == pytest.approx({"well-3": 5.0 + 1.5, "hyd-7": 10.0 + 0.6, "ext-1": 10.0 + 1.5,
                                                     "smoke-1": 10.0 + 1.5})
    slow = [well.model_copy(update={"timeout_s": 2.0}), hyd.model_copy(update={"poll_s": 1.0})]
    assert heartbeats(slow) == pytest.approx({"well-3": 6.6 + 6.0, "hyd-7": 6.6 + 0.6})  # a round: 6 + 0.6 s
    (smoke,) = [d for d in site.modbus if d.device == "smoke-1"]
    assert smoke.plan().requests == (Request(2, 3, 0, 1),)


def test_register_map_problems_name_the_field(tmp_path):
    bad = """
[[modbus]]
device = "well-3"
bus = "b"
kind = "drain_level"
unit = 248
registers = [{ address = 0, type = "uint16", field = "level_m" }]

[[modbus]]
device = "well-4"
bus = "b"
kind = "drain_level"
unit = 4
registers = [
  { address = 0, type = "uint16", field = "level" },
  { address = 1, type = "uint16", field = "cover_open" },
  { address = 2, type = "float32", field = "cover_tilt_deg" },
  { address = 3, type = "uint16", field = "battery_pct" },
]

[[modbus]]
device = "hyd-1"
bus = "b"
kind = "fire_hydrant"
unit = 5
registers = [{ address = 0, type = "float32", field = "pressure_mpa", count = 1 }]

[[modbus]]
device = "hyd-2"
bus = "b"
kind = "fire_hydrant"
unit = 6
registers = [
  { address = 0, function = 1, type = "uint16", field = "pressure_mpa" },
  { address = 0, type = "bool", field = "present" },
  { address = 0, type = "uint16", bit = 3, scale = 2, field = "rssi_dbm" },
]

[[modbus]]
device = "smoke-1"
bus = "b"
kind = "toaster"
unit = 7
registers = [{ address = 0, field = "alarm" }]

[[modbus]]
device = "hyd-3"
bus = "b"
kind = "fire_hydrant"
unit = 8
poll_s = 0
timeout_s = 11
retries = 9
registers = []
"""
    path = site_file(tmp_path, bad)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    p = info.value.problems
    assert f"{path}: modbus.0.unit: Input should be less than or equal to 247 (got 248)" in p
    well4 = next(x for x in p if x.startswith(f"{path}: modbus.1: device well-4: "))
    assert "registers.0.field: 'level' is not a drain_level field (known: battery_pct, cover_open, " \
           "cover_tilt_deg, level_m, rssi_dbm)" in well4
    assert "registers.1.type: cover_open is a bool, not uint16" in well4
    assert "registers: a drain_level reading needs level_m: map it to a register" in well4
    assert "registers.3: battery_pct (function 3, address 3) overlaps cover_tilt_deg (address 2, 2 registers)" \
           in well4
    assert any(x.startswith(f"{path}: modbus.2.registers.0: field 'pressure_mpa': a float32 takes 2 registers, "
                            "not count = 1") for x in p)
    assert any(x.startswith(f"{path}: modbus.3.registers.0: field 'pressure_mpa': function 1 reads bits: type "
                            "must be bool, not uint16") for x in p)
    assert any(x.startswith(f"{path}: modbus.3.registers.1: field 'present': a bool from register 0 needs bit")
               for x in p)
    assert any(x.startswith(f"{path}: modbus.3.registers.2: field 'rssi_dbm': bit is only for type bool")
               for x in p)
    assert any(x.startswith(f"{path}: modbus.4.kind: unknown sensor kind") for x in p)
    for key in ("poll_s", "timeout_s", "retries", "registers"):
        assert any(x.startswith(f"{path}: modbus.5.{key}: ") for x in p), key
    assert len(p) == 11, p


def test_devices_units_and_bindings_are_checked_across_the_file(tmp_path):
    text = SITE + """
[[modbus]]
device = "hyd-7"
bus = "pump-room"
kind = "fire_hydrant"
unit = 3
registers = [{ address = 0, field = "pressure_mpa" }]

[[assets]]
id = "FE-1"
category = "fire"
kind = "fire_hydrant"
device = "ext-1"

[faults.bus_silent]
priority = "emergency"
"""
    path = site_file(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert info.value.problems == [
        f"{path}: modbus device hyd-7 appears 2 times (must be unique)",
        f"{path}: modbus unit 3 on bus pump-room appears 2 times (must be unique)",
        f"{path}: modbus.2.kind: ext-1 reports as fire_extinguisher, but asset FE-1 it is bound to is a fire_hydrant",
    ]


def test_every_device_names_a_configured_bus(tmp_path):
    site = load_site(site_file(tmp_path, SITE))
    settings = load_settings(site_file(tmp_path, """
[[serial]]
port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1XYZ-if00-port0"
mode = "modbus-rtu"
bus = "pump-room"
baudrate = 19200
parity = "E"
"""), {})
    (port,) = settings.serial
    assert (port.bus, port.baudrate, port.parity, port.silent_after, port.backoff_max_s) == (
        "pump-room", 19200, "E", 3, 60.0)
    assert bus_problems(settings.serial, site.modbus, "site.toml") == [
        'site.toml: modbus.2.bus: no [[serial]] port with mode "modbus-rtu" and bus = "lobby" in the settings '
        "(device ext-1)",
        'site.toml: modbus.3.bus: no [[serial]] port with mode "modbus-rtu" and bus = "lobby" in the settings '
        "(device smoke-1)"]


def test_modbus_port_settings_problems(tmp_path):
    path = site_file(tmp_path, """
[[serial]]
port = "/dev/ttyUSB0"
mode = "modbus-rtu"

[[serial]]
port = "/dev/ttyUSB1"
mode = "json-lines"
bus = "b"

[[serial]]
port = "/dev/ttyUSB2"
mode = "modbus-rtu"
bus = "b"
silent_after = 5

[[serial]]
port = "/dev/ttyUSB3"
mode = "modbus-rtu"
bus = "b"
reader = "r"

[[serial]]
port = "/dev/ttyUSB4"
mode = "modbus-rtu"
bus = "b 2"
backoff_max_s = 0
""")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    p = info.value.problems
    assert any("serial.0:" in x and "bus is required for mode modbus-rtu" in x for x in p)
    assert any("serial.1:" in x and "bus is only for mode modbus-rtu" in x for x in p)
    assert any("serial.3:" in x and "reader is only for mode nfc-lines" in x for x in p)
    assert any(x.startswith(f"{path}: serial.4.bus: must be 1-64 of") for x in p)
    assert any(x.startswith(f"{path}: serial.4.backoff_max_s: ") for x in p)
    assert "serial: port /dev/ttyUSB2: silent_after must not exceed ingest.heartbeat_misses (3), or a silent " \
           "bus's devices open tickets of their own before the bus's one" in p
    assert len(p) == 6, p
