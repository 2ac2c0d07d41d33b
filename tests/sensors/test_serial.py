"""Serial readers on real pseudo-terminals: the test writes as a reader or concentrator would on the
master side, pyserial opens the slave path (CONTRACT.md "Serial")."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import tty
from pathlib import Path

import pytest

from gateway.config import ConfigError, SerialPortSettings, load_settings
from gateway.ingest import Message
from gateway.metrics import Metrics
from gateway.sensors.base import Rejection
from gateway.sensors.serial import SerialReader, register_metrics
from tests.conftest import Publisher, wait_for

NOW = 1763712000.25


class Pty:
    """A pseudo-terminal whose slave path stands for a serial device."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # as pyserial will: no echo, no CR -> LF, even for bytes written before it opens
        self.path = os.ttyname(self.slave)
        self.closed = False

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        """The device goes away: the reader's next read fails, and the path disappears."""
        if not self.closed:
            self.closed = True
            os.close(self.master)
            os.close(self.slave)


@pytest.fixture
def ptys():
    made: list[Pty] = []

    def make() -> Pty:
        made.append(Pty())
        return made[-1]

    yield make
    for p in made:
        p.close()


class Sink:
    """What a reader submits, as the ingest loop's queue would take it."""

    def __init__(self) -> None:
        self.batches: list[list[Message]] = []
        self.lock = threading.Lock()

    def __call__(self, messages: list[Message]) -> None:
        assert messages, "a reader submits no empty batch"
        with self.lock:
            self.batches.append(list(messages))

    @property
    def messages(self) -> list[Message]:
        with self.lock:
            return [m for b in self.batches for m in b]

    def taps(self) -> list[str]:
        return [json.loads(m.payload)["tag"] for m in self.messages if m.problem is None and m.leaf == "tap"]

    def problems(self) -> list[str]:
        return [m.problem.reason for m in self.messages if m.problem is not None]


@pytest.fixture
def readers():
    made: list[SerialReader] = []

    def make(settings: SerialPortSettings, sink: Sink, wait_open: bool = True, **kw) -> SerialReader:
        r = SerialReader(settings, sink, **kw)
        made.append(r)
        r.start()
        if wait_open:  # pyserial empties the input queue as it opens: what a device sent before is gone
            wait_for(lambda: r.stats.open, 5, what=f"{settings.port} open")
        return r

    yield make
    for r in made:
        r.stop()


def nfc(port: str, **kw) -> SerialPortSettings:
    return SerialPortSettings(port=port, mode="nfc-lines", reader="gate-1", **kw)


def tap(port: str, tag: str) -> Message:
    return Message(port, "checkpoint", "gate-1", "tap", json.dumps({"tag": tag, "ts": NOW}).encode(), NOW)


def test_uids_between_garbage_and_partial_lines_give_exactly_the_taps(ptys, readers):
    pty = ptys()
    sink = Sink()
    reader = readers(nfc(pty.path, timeout=0.3, max_line=64), sink, clock=lambda: NOW)
    pty.write(b"\x00\xff\xfe\x07READER v1.2\r\n")  # power-up noise and a banner on one line
    pty.write(b"04A224B2C15E80\r\n")
    pty.write(b"04A2")  # cut off mid-line: refused once no byte follows for the timeout
    time.sleep(0.8)
    for b in b"04:a2:24:b2:c1:5e:81\r":  # a byte at a time, CR only
        pty.write(bytes([b]))
    pty.write(b"\n" + b"Z" * 200 + b"\r\n")  # over-long
    pty.write(b"\xff\xff\xffDEADBEEF\n")  # noise before a line: the line is kept
    pty.write(b"\xc3\x28\r\nhello\r\n0102030405\r\n")
    wait_for(lambda: len(sink.taps()) == 4, 5, what="four taps")
    wait_for(lambda: len(sink.problems()) == 6, 5, what="six refusals")
    got = sink.messages
    assert [m for m in got if m.problem is None] == [
        tap(pty.path, "04A224B2C15E80"), tap(pty.path, "04A224B2C15E81"), tap(pty.path, "DEADBEEF"),
        tap(pty.path, "0102030405")]
    refused = [(m.problem.reason, m.payload) for m in got if m.problem is not None]
    assert refused == [
        ("garbage", b"\x00\xff\xfe\x07READER v1.2"),
        ("garbage", b"04A2"),
        ("too_large", b"Z" * 64),
        ("garbage", b"\xff\xff\xff"),
        ("garbage", b"\xc3\x28"),
        ("schema", b"hello"),
    ]
    partial = next(m for m in got if m.payload == b"04A2")
    assert partial.problem == Rejection("garbage", "partial line without a line end: no byte for 0.3 s")
    for m in got:
        assert (m.source, m.kind, m.device, m.received_at) == (pty.path, "checkpoint", "gate-1", NOW)
        assert m.leaf == ("tap" if m.problem is None else "")
    s = reader.stats
    assert (s.lines, s.garbage, s.refused, s.reopenings, s.open) == (5, 5, 1, 0, True)


def test_a_reader_printing_a_refused_uid_line(ptys, readers):
    pty = ptys()
    sink = Sink()
    readers(nfc(pty.path), sink, clock=lambda: NOW)
    pty.write(b"04A2\r\n04A224B2C15E80\r\n")
    wait_for(lambda: len(sink.messages) == 2, 5, what="two messages")
    short, good = sink.messages
    assert short.problem is not None and short.problem.reason == "schema" and "cut short" in short.problem.detail
    assert short.payload == b"04A2"
    assert good == tap(pty.path, "04A224B2C15E80")


def test_json_lines_concentrator(ptys, readers):
    pty = ptys()
    sink = Sink()
    reader = readers(SerialPortSettings(port=pty.path, mode="json-lines"), sink, clock=lambda: NOW)
    lines = [
        b'{"kind": "drain_level", "device": "well-1", "seq": 1, "level_m": 0.35, "cover_open": false}',
        b'{"kind": "fire_hydrant", "device": "hyd-2", "pressure_mpa": 0.31}',
        b'{"tap": true, "device": "rd-9", "tag": "04:a2:24:b2:c1:5e:80", "badge": "G017"}',
        b'{"kind": "drain_level", "device": "well-1", "level_m": 0.4',  # cut short, then a line end
        b'{"kind": "toaster", "device": "t-1", "on": true}',
        b'{"kind": "fire_hydrant", "device": "hyd 2", "pressure_mpa": 0.31}',
        b"\x00\x01\x02",
    ]
    pty.write(b"\r\n".join(lines) + b"\r\n")
    wait_for(lambda: len(sink.messages) == len(lines), 5, what="a message per line")
    good = [(m.kind, m.device, m.leaf, json.loads(m.payload)) for m in sink.messages if m.problem is None]
    assert good == [
        ("drain_level", "well-1", "reading", {"seq": 1, "level_m": 0.35, "cover_open": False}),
        ("fire_hydrant", "hyd-2", "reading", {"pressure_mpa": 0.31}),
        ("checkpoint", "rd-9", "tap", {"tag": "04:a2:24:b2:c1:5e:80", "badge": "G017"}),
    ]
    bad = [(m.source, m.kind, m.device, m.problem.reason, m.payload) for m in sink.messages if m.problem]
    assert bad == [
        (pty.path, "", "", "bad_json", lines[3]),
        (pty.path, "", "", "unknown_kind", lines[4]),
        (pty.path, "", "", "schema", lines[5]),
        (pty.path, "", "", "garbage", lines[6]),
    ]
    assert (reader.stats.lines, reader.stats.garbage, reader.stats.refused) == (6, 1, 3)


def test_port_lost_and_back_under_a_stable_name_is_reopened(ptys, readers, tmp_path, caplog):
    """Like /dev/serial/by-id/...: a link that vanishes when the adapter is pulled and comes back with it."""
    link = tmp_path / "usb-ACME_NFC_Reader_0001-if00"
    first = ptys()
    link.symlink_to(first.path)
    sink = Sink()
    reader = readers(nfc(str(link)), sink, clock=lambda: NOW)
    first.write(b"04A224B2C15E80\r\n")
    wait_for(lambda: sink.taps() == ["04A224B2C15E80"], 5, what="the first tap")
    first.write(b"04A2")  # unplugged mid-line
    time.sleep(0.3)
    first.close()
    link.unlink()
    wait_for(lambda: not reader.stats.open, 5, what="the loss noticed")
    wait_for(lambda: reader.stats.failures >= 2, 5, what="a failed reopening")  # lost at t, open fails at t+1
    assert reader.stats.last_error.startswith("cannot open")
    second = ptys()
    link.symlink_to(second.path)
    wait_for(lambda: reader.stats.open, 10, what="the port reopened (next try 2 s after the failed one)")
    second.write(b"DEADBEEF\r\n")
    wait_for(lambda: sink.taps() == ["04A224B2C15E80", "DEADBEEF"], 5, what="reading resumed")
    partial = [m for m in sink.messages if m.problem is not None]
    assert [(m.problem.reason, m.payload) for m in partial] == [("garbage", b"04A2")]
    assert "the port was lost" in partial[0].problem.detail
    assert reader.stats.reopenings == 1
    records = [r for r in caplog.records if r.name.startswith("gateway.sensors.serial")]
    assert all(str(link) in r.getMessage() for r in records)  # every line names the port
    assert any("lost" in r.getMessage() and r.levelno == logging.WARNING for r in records)
    assert any("open again" in r.getMessage() for r in records)


def test_port_that_appears_later_is_opened_with_doubling_backoff(ptys, readers, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="gateway.sensors.serial_port")
    link = tmp_path / "ttyLATER"
    sink = Sink()
    reader = readers(nfc(str(link)), sink, clock=lambda: NOW, backoff=(0.1, 0.8), wait_open=False)
    wait_for(lambda: reader.stats.failures >= 7, 10, what="seven attempts")
    assert not reader.stats.open
    waits = [float(m.group(1)) for r in caplog.records
             if (m := re.search(r"ttyLATER: cannot open: .*; trying again in ([0-9.]+) s", r.getMessage()))]
    assert waits[:7] == [0.1, 0.2, 0.4, 0.8, 0.8, 0.8, 0.8]
    pty = ptys()
    link.symlink_to(pty.path)
    wait_for(lambda: reader.stats.open, 5, what="the port open once it appeared")
    pty.write(b"04A224B2C15E80\n")
    wait_for(lambda: sink.taps() == ["04A224B2C15E80"], 5, what="the tap")
    assert reader.stats.reopenings == 1


def test_stop_is_prompt_and_hands_on_the_partial_line(ptys, tmp_path):
    sink = Sink()
    missing = SerialReader(nfc(str(tmp_path / "nothing-here")), sink, backoff=(30.0, 30.0))
    missing.start()
    wait_for(lambda: missing.stats.failures == 1, 5, what="the failed open")
    assert missing.stop(timeout=10)  # its 30 s backoff is cut short
    pty = ptys()
    reader = SerialReader(nfc(pty.path, timeout=30), sink, clock=lambda: NOW)
    reader.start()
    wait_for(lambda: reader.stats.open, 5, what="the port open")
    pty.write(b"04A224")
    time.sleep(0.3)
    reader.stop()
    assert not reader.stats.open
    (m,) = sink.messages
    assert m.payload == b"04A224" and m.problem.reason == "garbage" and "gateway stopped" in m.problem.detail


def test_metrics_per_port(ptys, readers):
    pty = ptys()
    sink = Sink()
    reader = readers(nfc(pty.path), sink)
    metrics = Metrics()
    register_metrics(metrics, [reader])
    pty.write(b"04A224B2C15E80\r\n\x00\x01\r\nxyz\r\n")
    wait_for(lambda: len(sink.messages) == 3, 5, what="three messages")
    text = metrics.render()
    label = f'{{port="{pty.path}"}}'
    for line in (f"gateway_serial_lines_total{label} 2", f"gateway_serial_garbage_total{label} 1",
                 f"gateway_serial_refused_total{label} 1", f"gateway_serial_reopenings_total{label} 0",
                 f"gateway_serial_open{label} 1", "# TYPE gateway_serial_open gauge"):
        assert line in text.splitlines(), line


# -- settings -----------------------------------------------------------------------------------

def _settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_serial_settings_defaults(tmp_path):
    s = load_settings(_settings_file(tmp_path, """
[[serial]]
port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1XYZ-if00-port0"
mode = "nfc-lines"
reader = "gate-1"

[[serial]]
port = "rfc2217://10.0.0.5:4001"
mode = "json-lines"
baudrate = 115200
parity = "even"
stopbits = 2
max_line = 8192
timeout = 0.5
"""), {})
    a, b = s.serial
    assert (a.mode, a.reader, a.baudrate, a.bytesize, a.parity, a.stopbits, a.max_line, a.timeout) == (
        "nfc-lines", "gate-1", 9600, 8, "N", 1, 4096, 1.0)
    assert (b.mode, b.reader, b.baudrate, b.parity, b.stopbits, b.max_line, b.timeout) == (
        "json-lines", None, 115200, "E", 2, 8192, 0.5)
    assert load_settings(None, {}).serial == []


def test_serial_settings_problems_in_one_pass(tmp_path):
    path = _settings_file(tmp_path, """
[[serial]]
port = "/dev/ttyUSB0"
mode = "modbus-rtu"

[[serial]]
port = "/dev/ttyUSB1"
mode = "nfc-lines"

[[serial]]
port = "/dev/ttyUSB2"
mode = "json-lines"
reader = "r"

[[serial]]
port = "/dev/ttyUSB3"
mode = "nfc-lines"
reader = "gate 3"
parity = "Q"
bytesize = 9
baudrate = 0
colour = "red"

[[serial]]
port = "/dev/ttyUSB4"
mode = "nfc"
reader = "r"
""")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    p = info.value.problems
    assert any("serial.0:" in x and "bus is required for mode modbus-rtu" in x for x in p)
    assert any("serial.1:" in x and "reader is required for mode nfc-lines" in x for x in p)
    assert any("serial.2:" in x and "reader is only for mode nfc-lines" in x for x in p)
    for key in ("reader", "parity", "bytesize", "baudrate"):
        assert any(x.startswith(f"{path}: serial.3.{key}: ") for x in p), key
    assert f"{path}: serial.3.colour: unknown key" in p
    assert any(x.startswith(f"{path}: serial.4.mode: must be one of nfc-lines, json-lines, modbus-rtu") for x in p)
    assert len(p) == 9, p


def test_serial_port_configured_twice(tmp_path):
    path = _settings_file(tmp_path, """
[[serial]]
port = "/dev/ttyUSB0"
mode = "json-lines"
[[serial]]
port = "/dev/ttyUSB0"
mode = "nfc-lines"
reader = "r"
""")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert info.value.problems == ["serial: port /dev/ttyUSB0 is configured 2 times (one [[serial]] per port)"]


# -- through the gateway process ----------------------------------------------------------------

SITE_FILE = """
[site]
name = "测试小区"

[[checkpoints]]
id = "CP-GATE"
name = "北门"
tag = "04A224B2C15E80"
"""


def test_gateway_takes_taps_from_a_pty_reader(gateway_factory, influxd, ptys, tmp_path, publisher: Publisher):
    pty = ptys()
    missing = tmp_path / "usb-not-plugged-in"
    site_file = tmp_path / "site.toml"
    site_file.write_text(SITE_FILE, encoding="utf-8")
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[[serial]]
port = {json.dumps(pty.path)}
mode = "nfc-lines"
reader = "gate-reader"
timeout = 0.3

[[serial]]
port = {json.dumps(str(missing))}
mode = "json-lines"
""", encoding="utf-8")
    g = gateway_factory(config, GATEWAY_SITE_FILE=str(site_file)).start()
    db = g.env["GATEWAY_INFLUX_DB"]
    wait_for(lambda: f'gateway_serial_open{{port="{pty.path}"}} 1' in g.get("/metrics"), 10, what="the port open")
    pty.write(b"\x00\x00READER BOOT\x07\r\n04:a2:24:b2:c1:5e:80\r\n")
    pty.write(b"04A2")
    time.sleep(0.8)  # a partial line: refused after the port's timeout
    pty.write(b"\xff\xfe\xfd\r\nnot a tag\r\nDEADBEEF\r\n")
    publisher.send("fm/t/fire_hydrant/hyd-1/reading", {"pressure_mpa": 0.3})  # MQTT goes on alongside
    wait_for(lambda: influxd.count("checkpoint_tap", "tag", db) == 2, what="both taps in InfluxDB")
    wait_for(lambda: influxd.count("fire_hydrant", "pressure_mpa", db) == 1, what="the MQTT reading")
    series = influxd.query("SELECT * FROM checkpoint_tap", db)[0]
    rows = [dict(zip(series["columns"], v, strict=True)) for v in series["values"]]
    assert [(r["reader"], r.get("checkpoint"), r["tag"], r["site"]) for r in rows] == [
        ("gate-reader", "CP-GATE", "04A224B2C15E80", "t"), ("gate-reader", None, "DEADBEEF", "t")]
    assert all(abs(r["time"] / 1e6 - time.time()) < 60 for r in rows)  # stamped with the receive time
    expected = {"garbage": 3, "schema": 1}
    wait_for(lambda: g.health()["dead_letters"] == expected, what=f"dead letters {expected}")
    letters = g.get("/api/v1/dead-letters?limit=100", g.token)["items"]
    assert all(d["source"] == pty.path and d["detail"] for d in letters)
    assert sorted(d["reason"] for d in letters) == ["garbage", "garbage", "garbage", "schema"]
    metrics = g.get("/metrics")
    assert f'gateway_serial_lines_total{{port="{pty.path}"}} 3' in metrics
    assert f'gateway_serial_garbage_total{{port="{pty.path}"}} 3' in metrics
    assert f'gateway_serial_open{{port="{missing}"}} 0' in metrics
    assert 'gateway_readings_accepted_total{kind="checkpoint"} 2' in metrics
    health = g.health()
    assert health["mqtt"]["connected"]
    ports = {p["port"]: p for p in health["serial"]}
    assert ports[str(pty.path)]["open"] is True and ports[str(missing)]["open"] is False
    assert g.stop() == 0
    log = g.log()
    assert f"serial port {missing}: cannot open" in log and f"serial port {pty.path} open" in log
