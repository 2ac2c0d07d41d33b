"""InfluxDB line protocol of readings and taps (CONTRACT.md "InfluxDB"), time in microseconds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.devices import DeviceRegistry
from gateway.ingest import Ingestor, Message
from gateway.lineprotocol import device_tags, reading_line, string_field, tag_value, tap_line, to_us
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.site import Site

TS = 1_763_712_000.5
TS_US = "1763712000500000"

_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?\d+i")


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is neither backslash-escaped nor inside a quoted string."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return parts


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """A strict reader of one point: (measurement, tags, raw field values, time); fails on bad syntax."""
    assert "\n" not in line, f"a point spans lines: {line!r}"
    sections = _split(line, " ")
    assert len(sections) == 3, f"not measurement+tags, fields, time: {line!r}"
    head, fields_text, time_text = sections
    measurement, *tag_parts = _split(head, ",")
    tags: dict[str, str] = {}
    for part in tag_parts:
        key, value = _split(part, "=")
        assert key and value, f"empty tag key or value in {line!r}"
        tags[_unescape(key)] = _unescape(value)
    fields: dict[str, str] = {}
    for part in _split(fields_text, ","):
        pieces = _split(part, "=")
        assert len(pieces) == 2, f"field {part!r} is not key=value in {line!r}"
        key, value = _unescape(pieces[0]), pieces[1]
        assert key, f"empty field key in {line!r}"
        assert key not in fields, f"field {key!r} twice in {line!r}"
        assert (value in ("true", "false") or _NUMBER.fullmatch(value) or _INTEGER.fullmatch(value)
                or (value.startswith('"') and value.endswith('"') and len(value) >= 2)), f"bad value {value!r}"
        fields[key] = value
    assert time_text.isdigit(), f"time {time_text!r} is not an integer"
    return measurement, tags, fields, int(time_text)


# -- readings -------------------------------------------------------------------------------------


def test_reading_line_exact() -> None:
    tags = device_tags("park1", "lamp-1", "L-001", "lighting")
    fields = {"on": True, "voltage_v": 221.4, "current_a": 0.41}
    line = reading_line(measurement="streetlight", tags=tags, fields=fields, flags=frozenset(), ts=TS)
    assert line == f"streetlight,site=park1,device=lamp-1,asset=L-001,category=lighting " \
                   f"on=true,voltage_v=221.4,current_a=0.41 {TS_US}"
    assert parse_line(line)[3] == int(TS_US)


def test_reading_line_false_and_whole_floats() -> None:
    line = reading_line(measurement="smoke_detector", tags=",site=s,device=sd-9,category=fire",
                        fields={"alarm": False, "battery_pct": 100.0, "tamper": True}, flags=frozenset(), ts=TS)
    assert line == f"smoke_detector,site=s,device=sd-9,category=fire alarm=false,battery_pct=100.0,tamper=true {TS_US}"


def test_reading_line_flags_are_sorted_booleans() -> None:
    line = reading_line(measurement="drain_level", tags=",site=s,device=w1,category=drainage",
                        fields={"level_m": 0.35}, flags=frozenset({"late", "clock_skew"}), ts=TS)
    assert line == f"drain_level,site=s,device=w1,category=drainage level_m=0.35,clock_skew=true,late=true {TS_US}"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0.0"), (-71.0, "-71.0"), (1e-05, "1e-05"), (1e20, "1e+20"), (12.345678, "12.345678")],
)
def test_float_values_round_trip(value: float, text: str) -> None:
    line = reading_line(measurement="fire_hydrant", tags=",site=s,device=h1,category=fire",
                        fields={"pressure_mpa": value}, flags=frozenset(), ts=TS)
    _, _, fields, _ = parse_line(line)
    assert fields["pressure_mpa"] == text
    assert float(fields["pressure_mpa"]) == value


@pytest.mark.parametrize(
    ("ts", "us"),
    [(0.0, 0), (1.0, 1_000_000), (TS, 1_763_712_000_500_000), (1_763_712_000.123456, 1_763_712_000_123_456),
     (1_763_712_000.0000004, 1_763_712_000_000_000)],
)
def test_microseconds(ts: float, us: int) -> None:
    assert to_us(ts) == us


def test_device_tags_omit_asset_when_unbound() -> None:
    assert device_tags("park1", "lamp-9", None, "lighting") == ",site=park1,device=lamp-9,category=lighting"
    assert device_tags("park1", "lamp-9", "", "lighting") == ",site=park1,device=lamp-9,category=lighting"


def test_device_tags_bound() -> None:
    tags = device_tags("park1", "ext-4", "FE-B2-03", "fire")
    assert tags == ",site=park1,device=ext-4,asset=FE-B2-03,category=fire"


# -- taps -----------------------------------------------------------------------------------------


def test_tap_line_exact() -> None:
    line = tap_line("park1", "phone-7", "cp-gate", "04A224B2C15E80", "G017", TS)
    assert line == ('checkpoint_tap,site=park1,reader=phone-7,checkpoint=cp-gate '
                    f'tag="04A224B2C15E80",badge="G017" {TS_US}')


def test_tap_line_without_checkpoint_or_badge() -> None:
    line = tap_line("park1", "phone-7", None, "04A2", None, TS)
    assert line == f'checkpoint_tap,site=park1,reader=phone-7 tag="04A2" {TS_US}'


def test_tap_line_escapes_quotes_and_backslashes_in_fields() -> None:
    line = tap_line("park1", "phone-7", None, "04A2", 'G"0\\17', TS)
    assert line == f'checkpoint_tap,site=park1,reader=phone-7 tag="04A2",badge="G\\"0\\\\17" {TS_US}'
    parse_line(line)


def test_tap_line_escapes_commas_spaces_equals_in_tag_values() -> None:
    line = tap_line("park1", "phone-7", "gate 1,north=a", "04A2", None, TS)
    assert line == f'checkpoint_tap,site=park1,reader=phone-7,checkpoint=gate\\ 1\\,north\\=a tag="04A2" {TS_US}'
    _, tags, _, _ = parse_line(line)
    assert tags["checkpoint"] == "gate 1,north=a"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("plain", '"plain"'), ('say "hi"', '"say \\"hi\\""'), ("back\\slash", '"back\\\\slash"'), ("", '""')],
)
def test_string_field(raw: str, escaped: str) -> None:
    assert string_field(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("plain", "plain"), ("a b", "a\\ b"), ("a,b", "a\\,b"), ("a=b", "a\\=b"), ("a\\b", "a\\\\b")],
)
def test_tag_value(raw: str, escaped: str) -> None:
    assert tag_value(raw) == escaped


# -- lines the ingestor writes for device payloads ------------------------------------------------

NOW = 1_763_712_000.0


@pytest.fixture
def ingestor(tmp_path: Path) -> Iterator[Ingestor]:
    outbox = Outbox(tmp_path / "outbox.db", 10**8)
    registry = DeviceRegistry(tmp_path / "devices.db", {}, 3)
    try:
        yield Ingestor(Settings(site="park1", data_dir=tmp_path), Site.empty(), outbox, registry, Metrics())
    finally:
        registry.close()
        outbox.close()


def lines_for(ingestor: Ingestor, *payloads: bytes) -> list[str]:
    for p in payloads:
        ingestor.handle([Message("fm/park1/streetlight/lamp-1/reading", "streetlight", "lamp-1", "reading", p, NOW)])
    return [line for _, _, line in ingestor.outbox.peek(100)]


def test_reading_from_a_device_as_written(ingestor: Ingestor) -> None:
    """The contract's first example, as the point InfluxDB gets (field order is free)."""
    payload = b'{"ts": 1763712000.5, "seq": 4711, "on": true, "voltage_v": 221.4, "current_a": 0.41}'
    [line] = lines_for(ingestor, payload)
    measurement, tags, fields, us = parse_line(line)
    assert line.startswith("streetlight,site=park1,device=lamp-1,category=lighting ")
    assert measurement == "streetlight"
    assert tags == {"site": "park1", "device": "lamp-1", "category": "lighting"}  # unbound: no asset tag
    assert us == int(TS_US)
    # seq identifies the message (dedupe), it is not a measurement: not written (CONTRACT.md fields).
    assert fields == {"on": "true", "voltage_v": "221.4", "current_a": "0.41"}


def test_extra_field_names_from_devices_make_valid_lines(ingestor: Ingestor) -> None:
    """Unknown numeric extras are kept (CONTRACT.md); their names come from the device and may need escaping."""
    [line] = lines_for(ingestor, b'{"on": true, "current_a": 0.4, "door open": 1, "a,b": 2, "x=y": true}')
    _, _, fields, _ = parse_line(line)
    assert fields.get("door open", "1.0") == "1.0"  # escaped and kept, or dropped; never a broken line


def test_extra_field_named_like_a_flag_does_not_collide(ingestor: Ingestor) -> None:
    """A device field called ``late`` must not give the point two ``late`` fields (InfluxDB: field type conflict)."""
    lines = lines_for(ingestor,
                      b'{"ts": 1763711990, "on": true, "current_a": 0.4}',
                      b'{"ts": 1763711900, "on": true, "current_a": 0.4, "late": 3}')
    assert len(lines) == 2
    _, _, fields, _ = parse_line(lines[1])
    assert fields["late"] == "true"


@pytest.mark.parametrize(
    "line",
    [
        "m,site=s f=1.0",  # no time
        "m,site=s a b=1.0 1",  # unescaped space in a key
        "m,site=s f=1.0,f=true 1",  # the same field twice
        "m,site=s f=inf 1",  # not a number InfluxDB reads
        "m,site=s f=1.0 1\nm f=2.0 2",  # two points
        "m,site= f=1.0 1",  # empty tag value
    ],
)
def test_parse_line_refuses_what_influxdb_refuses(line: str) -> None:
    with pytest.raises(AssertionError):
        parse_line(line)
