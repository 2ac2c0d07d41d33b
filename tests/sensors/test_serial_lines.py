"""The serial line framer and the per-mode line decoders: pure, no port (CONTRACT.md "Serial")."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sensors.base import Rejection
from gateway.sensors.serial_lines import Garbage, Line, LineFramer, json_line, nfc_line

UID = "04A224B2C15E80"


def frames_of(data: bytes, max_line: int = 4096) -> list[Line | Garbage]:
    return LineFramer(max_line).feed(data)


def byte_at_a_time(data: bytes, max_line: int = 4096) -> list[Line | Garbage]:
    framer = LineFramer(max_line)
    out: list[Line | Garbage] = []
    for i in range(len(data)):
        out += framer.feed(data[i: i + 1])
    return out


def texts(frames: list[Line | Garbage]) -> list[str]:
    return [f.text if isinstance(f, Line) else f"<{f.reason}>" for f in frames]


FRAMING = [
    pytest.param(b"04A224B2C15E80\n", [UID], id="LF"),
    pytest.param(b"04A224B2C15E80\r", [UID], id="CR"),
    pytest.param(b"04A224B2C15E80\r\n", [UID], id="CRLF"),
    pytest.param(b"04A224B2C15E80\n\r", [UID], id="LFCR"),
    pytest.param(b"a\rb\nc\r\nd\r\r\ne\n", ["a", "b", "c", "d", "e"], id="mixed-ends-and-blank-lines"),
    pytest.param(b"\r\n\r\n  \t \r\n", [], id="only-blank-lines"),
    pytest.param(b"  04:a2:24:b2:c1:5e:80 \t\r\n", ["04:a2:24:b2:c1:5e:80"], id="blanks-stripped"),
    pytest.param(b"04A224B2C15E80", [], id="no-line-end-yet"),
    pytest.param(b"\x00\x00\xff04A224B2C15E80\r\n", ["<garbage>", UID], id="noise-before-a-line"),
    pytest.param(b"\x00\x00\r\n", ["<garbage>"], id="only-noise"),
    pytest.param(b"\x1b[2J\r\n" + UID.encode() + b"\r\n", ["<garbage>", UID], id="escape-sequence"),
    pytest.param(b"04A2\x0024B2\r\n", ["<garbage>"], id="NUL-inside-a-line"),
    pytest.param(b"\x7f\x7f\n", ["<garbage>"], id="DEL"),
    pytest.param(b"\xc3\x28\xa0\xa1\n", ["<garbage>"], id="invalid-UTF-8"),
    pytest.param(b"\xfe\xfe\xfe\n", ["<garbage>"], id="0xFE-not-noise-not-text"),
    pytest.param("读卡器 v1.2\n".encode(), ["读卡器 v1.2"], id="UTF-8-text"),
    pytest.param(b"a\tb\n", ["a\tb"], id="TAB-inside"),
]


@pytest.mark.parametrize(("data", "expected"), FRAMING)
def test_framing(data: bytes, expected: list[str]) -> None:
    assert texts(frames_of(data)) == expected
    assert byte_at_a_time(data) == frames_of(data)


def test_garbage_says_why_and_keeps_the_bytes() -> None:
    noise, line = frames_of(b"\x00\xff04A224B2C15E80\n")
    assert noise == Garbage("garbage", "2 noise bytes (NUL or 0xFF) before a line", b"\x00\xff")
    assert line == Line(UID, b"04A224B2C15E80")
    (bad,) = frames_of(b"04A2\x0024\n")
    assert bad.raw == b"04A2\x0024" and "control byte 0x00 at offset 4" in bad.detail
    (utf,) = frames_of(b"ab\xc3\x28\n")
    assert utf.reason == "garbage" and "offset 2" in utf.detail and utf.raw == b"ab\xc3\x28"


def test_partial_line_is_carried_over() -> None:
    framer = LineFramer()
    assert framer.feed(b"04A224") == []
    assert framer.pending == 6
    assert framer.feed(b"B2C15E") == []
    assert framer.feed(b"80\r") == [Line(UID, UID.encode())]
    assert framer.feed(b"\n") == []  # the LF of a CRLF split across reads is no line
    assert framer.pending == 0


def test_flush_refuses_the_partial_line() -> None:
    framer = LineFramer()
    framer.feed(b"04A2")
    assert framer.flush("the port closed") == [
        Garbage("garbage", "partial line without a line end: the port closed", b"04A2")]
    assert framer.feed(UID.encode() + b"\n") == [Line(UID, UID.encode())]
    framer.feed(b"  \t")
    assert framer.flush("idle") == []  # blanks are nothing to refuse


def test_over_long_line_refused_once_and_resynchronised() -> None:
    framer = LineFramer(max_line=16)
    out = framer.feed(b"X" * 40)
    assert out == [Garbage("too_large", "line longer than 16 bytes; skipped up to its line end", b"X" * 16)]
    assert framer.pending == 0  # never holds more than max_line
    assert framer.feed(b"Y" * 1000) == []  # still the same line: not refused again
    assert framer.feed(b"ZZ\r\n" + UID.encode() + b"\r\n") == [Line(UID, UID.encode())]


def test_over_long_line_is_the_same_frame_whether_or_not_its_end_came_with_it() -> None:
    data = b"A" * 20 + b"\n" + b"B" * 16 + b"\n" + b"C" * 17 + b"\r\nok\n"
    expected = frames_of(data, 16)
    assert texts(expected) == ["<too_large>", "B" * 16, "<too_large>", "ok"]
    assert byte_at_a_time(data, 16) == expected
    framer = LineFramer(16)
    assert framer.feed(data[:18]) + framer.feed(data[18:]) == expected


def test_over_long_line_flushed_is_not_refused_twice() -> None:
    framer = LineFramer(max_line=8)
    assert [f.reason for f in framer.feed(b"X" * 20)] == ["too_large"]  # type: ignore[union-attr]
    assert framer.flush("the port closed") == []
    assert framer.feed(b"ok\n") == [Line("ok", b"ok")]


def test_framer_buffer_stays_bounded_on_an_endless_line() -> None:
    framer = LineFramer(max_line=64)
    refused = 0
    for _ in range(1000):
        refused += len(framer.feed(b"\x55" * 100))
        assert framer.pending <= 64
    assert refused == 1


def test_garbage_and_partial_lines_between_uids_leave_exactly_the_taps() -> None:
    uids = ["04A224B2C15E80", "04:11:22:33:44:55:66", "DEADBEEF", "e0-04-01-50-12-34-56-78"]
    stream = (b"\x00\xff\xfeboot\x07\r\n" + uids[0].encode() + b"\r\n04A2\n" + b"\xff" * 9 + b"\r\n"
              + uids[1].encode() + b"\n" + b"Z" * 5000 + b"\r\n" + uids[2].encode() + b"\r"
              + "读卡器 就绪\r\n".encode() + uids[3].encode() + b"\r\n")
    taps = [t for f in frames_of(stream) if isinstance(f, Line) and isinstance(t := nfc_line(f.text), str)]
    assert taps == ["04A224B2C15E80", "04112233445566", "DEADBEEF", "E004015012345678"]
    assert byte_at_a_time(stream) == frames_of(stream)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


_PIECES = st.sampled_from([
    b"04A224B2C15E80", b"04:a2:24", b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b"\xc3", b"\x28", b"\x1b",
    b" ", b"\t", b"{\"kind\": \"fire_hydrant\"}", "读".encode(), b"X" * 30,
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map(b"".join), st.lists(st.integers(0, 10_000), max_size=30),
       st.sampled_from([16, 32, 4096]))
def test_any_chunking_gives_the_same_frames(data: bytes, cuts: list[int], max_line: int) -> None:
    whole = LineFramer(max_line).feed(data)
    framer = LineFramer(max_line)
    chunked: list[Line | Garbage] = []
    for chunk in _split(data, cuts):
        chunked += framer.feed(chunk)
    assert chunked == whole
    assert framer.pending <= max_line


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 10_000), max_size=20))
def test_arbitrary_bytes_frame_alike_however_chunked(data: bytes, cuts: list[int]) -> None:
    whole = LineFramer(64).feed(data)
    framer = LineFramer(64)
    chunked: list[Line | Garbage] = []
    for chunk in _split(data, cuts):
        chunked += framer.feed(chunk)
    assert chunked == whole
    for f in whole:
        if isinstance(f, Line):
            assert f.text and f.text == f.text.strip(" \t") and "\r" not in f.text and "\n" not in f.text


# -- nfc-lines ----------------------------------------------------------------------------------

NFC = [
    ("04A224B2C15E80", "04A224B2C15E80"),
    ("04a224b2c15e80", "04A224B2C15E80"),
    ("04:a2:24:b2:c1:5e:80", "04A224B2C15E80"),
    ("04-A2-24-B2-C1-5E-80", "04A224B2C15E80"),
    ("04 A2 24 B2 C1 5E 80", "04A224B2C15E80"),
    ("DEADBEEF", "DEADBEEF"),  # 4 bytes: MIFARE Classic
    ("0102030405", "0102030405"),  # 5 bytes: EM4100
    ("E004015012345678", "E004015012345678"),  # 8 bytes: ISO 15693
    ("04112233445566778899", "04112233445566778899"),  # 10 bytes
]


@pytest.mark.parametrize(("text", "tag"), NFC)
def test_nfc_line_accepts(text: str, tag: str) -> None:
    assert nfc_line(text) == tag


NFC_REFUSED = [
    "04A2",  # a line cut short
    "04A224",
    "0102030405060708090A0B",  # 11 bytes
    "04A224B2C15E8",  # odd number of digits
    "04:A2:24:B2:C1:5E:8",
    "0:4A2:24B2C15E80",
    "04::A2:24:B2:C1:5E:80",
    ":04A224B2C15E80",
    "04A224B2C15E80:",
    "UID: 04A224B2C15E80",
    "04A224B2C15G80",
    "hello",
    '{"tag": "04A224B2C15E80"}',
]


@pytest.mark.parametrize("text", NFC_REFUSED)
def test_nfc_line_refuses(text: str) -> None:
    why = nfc_line(text)
    assert isinstance(why, Rejection) and why.reason == "schema" and why.detail


# -- json-lines ---------------------------------------------------------------------------------

JSON_OK = [
    ('{"kind": "fire_hydrant", "device": "hyd-1", "pressure_mpa": 0.3}',
     ("fire_hydrant", "hyd-1", "reading", {"pressure_mpa": 0.3})),
    ('{"device": "well-7", "kind": "drain_level", "ts": 1763712000.5, "seq": 4, "level_m": 0.35}',
     ("drain_level", "well-7", "reading", {"ts": 1763712000.5, "seq": 4, "level_m": 0.35})),
    ('{"tap": true, "device": "rd-2", "tag": "04:a2:24:b2:c1:5e:80", "badge": "G017"}',
     ("checkpoint", "rd-2", "tap", {"tag": "04:a2:24:b2:c1:5e:80", "badge": "G017"})),
    ('{"tap": true, "kind": "checkpoint", "device": "rd-2", "tag": "DEADBEEF"}',
     ("checkpoint", "rd-2", "tap", {"tag": "DEADBEEF"})),
    ('{"kind": "checkpoint", "device": "rd-2", "tag": "DEADBEEF"}',
     ("checkpoint", "rd-2", "tap", {"tag": "DEADBEEF"})),
    ('{"kind": "smoke_detector", "device": "smk.3", "tap": false, "alarm": false, "note": "楼道"}',
     ("smoke_detector", "smk.3", "reading", {"alarm": False, "note": "楼道"})),
    # The payload is validated later, by the ingestor, as an MQTT payload is: not here.
    ('{"kind": "streetlight", "device": "lamp-1", "on": "yes"}', ("streetlight", "lamp-1", "reading", {"on": "yes"})),
]


@pytest.mark.parametrize(("text", "expected"), JSON_OK)
def test_json_line_accepts(text: str, expected: tuple[str, str, str, dict]) -> None:
    result = json_line(text)
    assert not isinstance(result, Rejection), result
    kind, device, leaf, payload = result
    assert (kind, device, leaf, json.loads(payload)) == expected


JSON_REFUSED = [
    ("{not json", "bad_json"),
    ('{"kind": "fire_hydrant", "device": "h", "pressure_mpa": NaN}', "bad_json"),
    ("[1, 2]", "schema"),
    ('"just a string"', "schema"),
    ('{"device": "hyd-1", "pressure_mpa": 0.3}', "schema"),
    ('{"kind": "fire_hydrant", "pressure_mpa": 0.3}', "schema"),
    ('{"kind": "toaster", "device": "t-1"}', "unknown_kind"),
    ('{"kind": 7, "device": "t-1"}', "unknown_kind"),
    ('{"kind": "fire_hydrant", "device": "hyd 1!", "pressure_mpa": 0.3}', "schema"),
    ('{"kind": "fire_hydrant", "device": "", "pressure_mpa": 0.3}', "schema"),
    ('{"kind": "fire_hydrant", "device": 12, "pressure_mpa": 0.3}', "schema"),
    ('{"kind": "fire_hydrant", "device": "' + "d" * 65 + '", "pressure_mpa": 0.3}', "schema"),
    ('{"tap": true, "kind": "streetlight", "device": "rd-1", "tag": "DEADBEEF"}', "schema"),
    ('{"tap": "yes", "device": "rd-1", "tag": "DEADBEEF"}', "schema"),
    ('{"tap": true, "tag": "DEADBEEF"}', "schema"),
]


@pytest.mark.parametrize(("text", "reason"), JSON_REFUSED)
def test_json_line_refuses(text: str, reason: str) -> None:
    why = json_line(text)
    assert isinstance(why, Rejection), why
    assert why.reason == reason and why.detail
