"""The modbus-rtu reader on real pseudo-terminals, polling pymodbus's RTU server through a cable the test
controls (firmware-sim/sim_modbus.py): readings, refusals, a silent slave, a silent bus, an unplugged
adapter. Progress is judged by counts of polls and answers, never by the clock."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import SerialPortSettings
from gateway.ingest import Message
from gateway.metrics import Metrics
from gateway.sensors.modbus_site import ModbusDeviceModel
from gateway.sensors.serial import register_metrics
from gateway.sensors.serial_modbus import BusStatus, ModbusReader, register_modbus_metrics
from tests.conftest import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "firmware-sim"))
from sim_modbus import Bus, float_registers, registers

NOW = 1763712000.5
UNITS = {
    1: (float_registers(2.5)[::-1], registers(350, 7), [True]),  # cover tilt (CDAB), level 0.350 m, cover open
    2: (float_registers(0.31), [], []),  # hydrant pressure 0.31 MPa
    3: ([0], [], []),  # answers, but has no register 50
}


def well(**kw: object) -> ModbusDeviceModel:
    return ModbusDeviceModel.model_validate({
        "device": "well-1", "bus": "pump-room", "kind": "drain_level", "unit": 1, "poll_s": 0.1, "timeout_s": 0.25,
        "retries": 1, "registers": [
            {"address": 0, "function": 4, "type": "uint16", "scale": 0.001, "field": "level_m"},
            {"address": 1, "function": 4, "type": "int16", "field": "rssi_dbm", "scale": -1},
            {"address": 0, "type": "float32", "word_order": "little", "field": "cover_tilt_deg"},
            {"address": 0, "function": 1, "type": "bool", "field": "cover_open"},
        ], **kw})


def hydrant(**kw: object) -> ModbusDeviceModel:
    return ModbusDeviceModel.model_validate({
        "device": "hyd-2", "bus": "pump-room", "kind": "fire_hydrant", "unit": 2, "poll_s": 0.1, "timeout_s": 0.25,
        "retries": 1, "registers": [{"address": 0, "type": "float32", "field": "pressure_mpa"}], **kw})


class Sink:
    """What the reader submits, as the ingest loop would take it, and what it says about the bus."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.buses: list[BusStatus] = []
        self.lock = threading.Lock()

    def __call__(self, messages: list[Message]) -> None:
        assert messages
        with self.lock:
            self.messages += messages

    def readings(self, device: str) -> list[dict]:
        with self.lock:
            return [json.loads(m.payload) for m in self.messages if m.device == device and m.problem is None]

    def refused(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(m.problem.reason, m.device) for m in self.messages if m.problem is not None]


@pytest.fixture
def line(tmp_path: Path) -> Iterator[Bus]:
    b = Bus(tmp_path / "usb-FTDI_FT232R_USB_UART_RS485-if00-port0", UNITS)
    yield b
    b.close()


@pytest.fixture
def readers() -> Iterator[list[ModbusReader]]:
    made: list[ModbusReader] = []
    yield made
    for r in made:
        r.stop()


def start(readers: list[ModbusReader], line: Bus, devices: list[ModbusDeviceModel], sink: Sink,
          **kw: object) -> ModbusReader:
    port = SerialPortSettings(port=str(line.link), mode="modbus-rtu", bus="pump-room", baudrate=38400,
                              **kw)  # type: ignore[arg-type]
    r = ModbusReader(port, devices, sink, sink.buses.append, clock=lambda: NOW, backoff=(0.2, 0.4))
    readers.append(r)
    r.start()
    return r


def test_polled_readings_are_decoded_and_handed_on(line, readers):
    sink = Sink()
    reader = start(readers, line, [well(), hydrant()], sink)
    wait_for(lambda: len(sink.readings("well-1")) >= 3 and len(sink.readings("hyd-2")) >= 3, 10,
             what="three readings of each")
    first = sink.readings("well-1")[0]
    assert first == {"ts": NOW, "seq": 0, "level_m": 0.35, "rssi_dbm": -7.0, "cover_tilt_deg": 2.5,
                     "cover_open": True}
    assert [r["seq"] for r in sink.readings("hyd-2")[:3]] == [0, 1, 2]
    assert sink.readings("hyd-2")[0]["pressure_mpa"] == 0.31
    m = next(m for m in sink.messages if m.device == "hyd-2")
    assert (m.source, m.kind, m.leaf, m.received_at) == (str(line.link), "fire_hydrant", "reading", NOW)
    assert sink.refused() == []
    c = reader.stats.devices["well-1"]
    assert c.requests >= 2 * c.answers and c.timeouts == c.crc_errors == c.garbage_bytes == 0
    assert line.cable.delivered[1] >= 6 and line.cable.delivered[2] >= 3  # the slaves heard every request
    assert sink.buses[0] == BusStatus("pump-room", str(line.link), False, NOW, ("well-1", "hyd-2"), ())
    health = reader.stats.as_json()
    assert (health["mode"], health["bus"], health["open"], health["bus_silent"]) == (
        "modbus-rtu", "pump-room", True, False)
    assert health["devices"]["hyd-2"]["answers"] >= 3


def test_noise_bad_crcs_and_refused_reads_are_dead_lettered_and_counted(line, readers):
    sink = Sink()
    wrong_map = ModbusDeviceModel.model_validate({
        "device": "hyd-3", "bus": "pump-room", "kind": "fire_hydrant", "unit": 3, "poll_s": 0.1, "timeout_s": 0.05,
        "registers": [{"address": 50, "field": "pressure_mpa"}]})
    reader = start(readers, line, [hydrant(), wrong_map], sink)
    wait_for(lambda: len(sink.readings("hyd-2")) >= 2, 10, what="readings")
    line.cable.noise = b"\x00\xff\x00"
    wait_for(lambda: ("garbage", "hyd-2") in sink.refused() or ("garbage", "hyd-3") in sink.refused(), 10,
             what="the noise refused")
    line.cable.corrupt = 1
    wait_for(lambda: any(r == "crc" for r, _ in sink.refused()), 10, what="the bad CRC refused")
    n = len(sink.readings("hyd-2"))
    wait_for(lambda: len(sink.readings("hyd-2")) > n + 2, 10, what="readings going on")
    assert ("modbus_exception", "hyd-3") in sink.refused()
    letter = next(m for m in sink.messages if m.problem and m.problem.reason == "modbus_exception")
    assert letter.problem.detail == ("unit 3 refused unit 3 function 3 at 50 x1: exception 2 "
                                     "(illegal_data_address)")
    assert letter.kind == "" and letter.source == str(line.link)  # refusals are not hearing from the device
    devices = reader.stats.devices
    assert devices["hyd-3"].exceptions >= 1 and devices["hyd-3"].answers == 0 and not devices["hyd-3"].silent
    assert devices["hyd-2"].crc_errors + devices["hyd-3"].crc_errors == 1
    assert sum(devices[d].garbage_bytes for d in devices) >= 3


def test_a_silent_slave_is_backed_off_while_the_others_keep_being_polled(line, readers, caplog):
    sink = Sink()
    reader = start(readers, line, [well(), hydrant()], sink, backoff_max_s=0.8)
    wait_for(lambda: len(sink.readings("hyd-2")) >= 2, 10, what="readings")
    line.cable.muted = {2}
    counts = reader.stats.devices
    wait_for(lambda: counts["hyd-2"].silent, 10, what="hyd-2 silent")
    well_before, hyd_before, answers = counts["well-1"].polls, counts["hyd-2"].polls, counts["well-1"].answers
    wait_for(lambda: counts["well-1"].polls >= well_before + 40, 20, what="40 more polls of well-1")
    probes = counts["hyd-2"].polls - hyd_before
    assert 1 <= probes <= 40 // 4, "probed at 0.2, 0.4, 0.8, 0.8... s, while well-1 is polled every 0.1 s"
    assert counts["well-1"].answers >= answers + 38, "well-1 keeps answering"
    assert [b.silent for b in sink.buses] == [False], "one silent device is no silent bus"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("modbus device hyd-2 (unit 2) on" in w and str(line.link) in w and "stopped answering" in w
               for w in warned)
    line.cable.muted = set()
    wait_for(lambda: not counts["hyd-2"].silent and counts["hyd-2"].interval_s == 0.1, 10, what="hyd-2 back")


def test_a_silent_bus_is_reported_once_and_again_when_it_answers(line, readers):
    sink = Sink()
    reader = start(readers, line, [well(), hydrant()], sink)
    wait_for(lambda: sink.buses, 10, what="the first round")
    line.cable.muted = {1, 2}
    wait_for(lambda: len(sink.buses) == 2, 10, what="the bus silent")
    assert sink.buses[1] == BusStatus("pump-room", str(line.link), True, NOW, ("well-1", "hyd-2"),
                                      ("well-1", "hyd-2"))
    assert reader.stats.bus_silent
    probes = reader.stats.devices["well-1"].polls
    wait_for(lambda: reader.stats.devices["well-1"].polls >= probes + 3, 10, what="three probes")
    assert len(sink.buses) == 2, "reported once"
    line.cable.muted = {2}
    wait_for(lambda: len(sink.buses) == 3, 10, what="the bus answering")
    assert sink.buses[2] == BusStatus("pump-room", str(line.link), False, NOW, ("well-1", "hyd-2"), ("hyd-2",))
    assert not reader.stats.bus_silent


def test_an_unplugged_adapter_is_a_silent_bus_and_polling_resumes_when_it_is_back(line, readers, caplog):
    sink = Sink()
    reader = start(readers, line, [well(), hydrant()], sink)
    wait_for(lambda: len(sink.readings("well-1")) >= 2, 10, what="readings")
    line.unplug()
    wait_for(lambda: not reader.stats.open, 10, what="the loss noticed")
    wait_for(lambda: [b.silent for b in sink.buses] == [False, True], 10, what="the bus silent")
    assert reader.stats.devices["well-1"].unsent >= 3 and reader.stats.failures >= 1
    n = len(sink.readings("well-1"))
    line.plug()
    wait_for(lambda: reader.stats.open and len(sink.readings("well-1")) >= n + 3, 10, what="polling resumed")
    wait_for(lambda: [b.silent for b in sink.buses] == [False, True, False], 10, what="the bus answering")
    assert reader.stats.reopenings == 1
    seqs = [r["seq"] for r in sink.readings("well-1")]
    assert seqs == list(range(len(seqs))), "no reading lost or repeated around the gap"
    records = [r.getMessage() for r in caplog.records if r.name.startswith("gateway.sensors.serial")]
    assert all(str(line.link) in r for r in records), "every line names the port"


def test_new_devices_from_a_reloaded_site_file(line, readers):
    sink = Sink()
    reader = start(readers, line, [well()], sink)
    wait_for(lambda: len(sink.readings("well-1")) >= 2, 10, what="well-1 readings")
    reader.set_devices([hydrant()])
    wait_for(lambda: len(sink.readings("hyd-2")) >= 2, 10, what="hyd-2 readings")
    n = len(sink.readings("well-1"))
    wait_for(lambda: len(sink.readings("hyd-2")) >= 6, 10, what="more hyd-2 readings")
    assert len(sink.readings("well-1")) <= n + 1 and list(reader.stats.devices) == ["hyd-2"]


def test_a_bus_without_devices_idles_and_stops(line, readers, caplog):
    reader = start(readers, line, [], Sink())
    wait_for(lambda: reader.stats.open, 10, what="the port open")
    reader.stop()
    assert reader._thread is not None and not reader._thread.is_alive()
    assert any("no [[modbus]] device in the site file names this bus" in r.getMessage() for r in caplog.records)


def test_metrics_per_device(line, readers):
    sink = Sink()
    reader = start(readers, line, [well(), hydrant()], sink)
    metrics = Metrics()
    register_metrics(metrics, [reader])
    register_modbus_metrics(metrics, [reader])
    wait_for(lambda: reader.stats.devices["hyd-2"].answers >= 2, 10, what="answers")
    text = metrics.render().splitlines()
    port = str(line.link)
    assert f'gateway_serial_open{{port="{port}"}} 1' in text
    assert f'gateway_modbus_bus_silent{{port="{port}",bus="pump-room"}} 0' in text
    assert any(x.startswith(f'gateway_modbus_answers_total{{port="{port}",device="hyd-2"}} ') for x in text)
    assert f'gateway_modbus_crc_errors_total{{port="{port}",device="well-1"}} 0' in text
    assert not any(x.startswith("gateway_serial_lines_total") for x in text), "no line series for a Modbus bus"
