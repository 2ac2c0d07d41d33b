"""Modbus RTU without I/O: the CRC, requests, the response framer (every case whole, a byte at a time and
cut anywhere) and register maps (data types, byte and word orders, scale and offset)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.framer.rtu import FramerRTU

from gateway.sensors.modbus_map import Register, decode, plan_requests, scaled
from gateway.sensors.modbus_rtu import (
    ExceptionResponse,
    Request,
    Response,
    ResponseFramer,
    crc16,
    crc_ok,
    with_crc,
)

# -- CRC and requests -----------------------------------------------------------------------------


def test_crc_of_known_frames():
    assert crc16(b"123456789") == 0x4B37  # the CRC-16/MODBUS check value
    assert Request(1, 3, 0, 10).encode() == bytes.fromhex("01030000000AC5CD")  # the spec's example
    assert Request(17, 3, 0x006B, 3).encode() == bytes.fromhex("1103006B00037687")
    assert crc_ok(bytes.fromhex("01030000000AC5CD")) and not crc_ok(bytes.fromhex("01030000000AC5CE"))


@given(st.binary(max_size=300))
def test_crc_agrees_with_pymodbus(data):
    assert crc16(data).to_bytes(2, "little") == FramerRTU.compute_CRC(data).to_bytes(2, "big")


@pytest.mark.parametrize(("args", "why"), [
    ((0, 3, 0, 1), "unit 0 is not a slave address"),
    ((248, 3, 0, 1), "unit 248"),
    ((1, 5, 0, 1), "function 5 is not a read"),
    ((1, 3, 0, 126), "function 3 reads 1 to 125 at a time, not 126"),
    ((1, 1, 0, 2001), "function 1 reads 1 to 2000"),
    ((1, 4, 0, 0), "not 0"),
    ((1, 3, 65535, 2), "addresses 65535..65536 are not within 0-65535"),
])
def test_requests_outside_the_protocol_are_refused(args, why):
    with pytest.raises(ValueError, match=why):
        Request(*args)


def test_response_sizes():
    assert (Request(1, 3, 0, 2).data_size, Request(1, 3, 0, 2).response_size) == (4, 9)
    assert Request(1, 1, 0, 10).data_size == 2 and Request(1, 2, 0, 8).data_size == 1
    assert Request(1, 4, 0, 125).response_size == 255


# -- the framer --------------------------------------------------------------------------------------

READ = Request(1, 3, 0, 2)
RESP = with_crc(bytes([1, 3, 4, 0x00, 0x0A, 0x00, 0x14]))
BAD_CRC = RESP[:4] + bytes([RESP[4] ^ 0x01]) + RESP[5:]
EXC = with_crc(bytes([1, 0x83, 2]))
OTHER_UNIT = with_crc(bytes([2, 3, 4, 0, 1, 0, 2]))
SHORT = with_crc(bytes([1, 3, 2, 0, 1]))
LONG = with_crc(bytes([1, 3, 6, 0, 1, 0, 2, 0, 3]))
COILS = Request(1, 1, 0, 10)
COILS_RESP = with_crc(bytes([1, 1, 2, 0x0D, 0x01]))

CASES = [
    # name, request, stream, frames (raw), rejections (reason, raw) in order
    ("clean", READ, RESP, [RESP], []),
    ("noise in front", READ, b"\x00\xff\xfe" + RESP, [RESP], [("garbage", b"\x00\xff\xfe")]),
    ("a header-like start in the noise", READ, b"\x01\x03\x07\x00" + RESP, [RESP],
     [("garbage", b"\x01\x03\x07\x00")]),
    ("bytes after the response", READ, RESP + b"\x00\x00", [RESP], [("garbage", b"\x00\x00")]),
    ("bad CRC", READ, BAD_CRC, [], [("crc", BAD_CRC)]),
    ("noise, then a bad CRC", READ, b"\xff\xff" + BAD_CRC, [], [("garbage", b"\xff\xff"), ("crc", BAD_CRC)]),
    ("a bad CRC and then a good response: it was noise", READ, BAD_CRC + RESP, [RESP], [("garbage", BAD_CRC)]),
    ("exception", READ, EXC, [EXC], []),
    ("exception with a bad CRC", READ, EXC[:-1] + b"\x00", [], [("crc", EXC[:-1] + b"\x00")]),
    ("another unit's response, then ours", READ, OTHER_UNIT + RESP, [RESP], [("wrong_unit", OTHER_UNIT)]),
    ("a short frame", READ, SHORT, [], [("bad_length", SHORT)]),
    ("an over-long frame", READ, LONG, [], [("bad_length", LONG)]),
    ("cut off mid-frame", READ, RESP[:5], [], [("garbage", RESP[:5])]),
    ("a length byte claiming more than follows", READ, b"\x05\x03\xfa" + RESP, [RESP],
     [("garbage", b"\x05\x03\xfa")]),
    ("coils", COILS, COILS_RESP, [COILS_RESP], []),
    ("nothing asked", None, RESP, [], [("garbage", RESP)]),
]


def frame_all(request: Request | None, chunks: list[bytes]) -> tuple[list, list]:
    framer = ResponseFramer()
    rejected = framer.expect(request) if request else []
    frames = []
    for chunk in chunks:
        f, r = framer.feed(chunk)
        frames += f
        rejected += r
    f, r = framer.flush("the test ended")
    assert framer.pending == 0 and framer.request is None
    return frames + f, rejected + r


def summary(frames: list, rejected: list) -> tuple[list[bytes], list[tuple[str, bytes]]]:
    return [f.raw for f in frames], [(r.reason, r.raw) for r in rejected]


@pytest.mark.parametrize(("name", "request_", "stream", "frames", "rejected"), CASES, ids=[c[0] for c in CASES])
def test_framer_cases_whole_and_a_byte_at_a_time(name, request_, stream, frames, rejected):
    whole = summary(*frame_all(request_, [stream]))
    bytewise = summary(*frame_all(request_, [bytes([b]) for b in stream]))
    assert whole == bytewise == (frames, rejected), name


def test_framer_frames_carry_their_meaning():
    (resp,), _ = frame_all(READ, [RESP])
    assert isinstance(resp, Response) and resp.request == READ and resp.data == bytes.fromhex("000A0014")
    (exc,), _ = frame_all(READ, [EXC])
    assert isinstance(exc, ExceptionResponse) and (exc.code, exc.name) == (2, "illegal_data_address")
    (odd,), _ = frame_all(READ, [with_crc(bytes([1, 0x83, 9]))])
    assert odd.name == "exception_9"
    _, (crc,) = frame_all(READ, [BAD_CRC])
    assert crc.size == 9 and "unit 1 function 3 at 0 x2" in crc.detail and "bad CRC" in crc.detail
    _, (other,) = frame_all(READ, [OTHER_UNIT])
    assert other.reason == "wrong_unit" and "unit 2" in other.detail


def test_a_response_is_found_once_and_what_follows_is_not_one():
    framer = ResponseFramer()
    framer.expect(READ)
    frames, rejected = framer.feed(RESP + RESP)
    assert [f.raw for f in frames] == [RESP] and rejected == [] and framer.request is None
    assert framer.pending == len(RESP)  # held as garbage until the run ends
    left = framer.expect(READ)
    assert [(r.reason, r.size) for r in left] == [("garbage", len(RESP))] and framer.pending == 0


def test_a_babbling_device_is_counted_but_not_kept():
    _, (run,) = frame_all(READ, [b"\x00" * 100_000])
    assert run.size == 100_000 and len(run.raw) == 256


PIECES = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.sampled_from([RESP, BAD_CRC, EXC, OTHER_UNIT, SHORT, LONG, RESP[:4]]),
)


@st.composite
def streams_and_cuts(draw):
    stream = b"".join(draw(st.lists(PIECES, max_size=8)))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return stream, chunks


@settings(max_examples=300)
@given(streams_and_cuts())
def test_framer_gives_the_same_however_the_bytes_are_cut(case):
    stream, chunks = case
    frames, rejected = frame_all(READ, [stream])
    assert summary(*frame_all(READ, chunks)) == summary(frames, rejected)
    assert summary(*frame_all(READ, [bytes([b]) for b in stream])) == summary(frames, rejected)
    assert len(frames) <= 1  # one response per request
    assert sum(len(f.raw) for f in frames) + sum(r.size for r in rejected) == len(stream)  # every byte accounted


NOT_A_HEADER = st.binary(max_size=40).map(lambda b: bytes(x for x in b if x not in (3, 0x83)))


@given(NOT_A_HEADER, NOT_A_HEADER)
def test_garbage_around_a_response_never_hides_it(before, after):
    frames, rejected = frame_all(READ, [before + RESP + after])
    assert [f.raw for f in frames] == [RESP]
    assert [(r.reason, r.raw) for r in rejected] == [("garbage", x) for x in (before, after) if x]


# -- register maps -----------------------------------------------------------------------------------

F = 123.456  # 0x42F6E979
I32 = -100000  # 0xFFFE7960


def regs(hexdata: str, function: int = 3, address: int = 0) -> Response:
    data = bytes.fromhex(hexdata)
    count = len(data) // 2 if function in (3, 4) else len(data) * 8
    return Response(Request(1, function, address, count), data, b"")


@pytest.mark.parametrize(("register", "data", "value"), [
    (Register("x", 0, type="float32"), "42F6E979", F),  # ABCD
    (Register("x", 0, type="float32", word_order="little"), "E97942F6", F),  # CDAB
    (Register("x", 0, type="float32", byte_order="little"), "F64279E9", F),  # BADC
    (Register("x", 0, type="float32", byte_order="little", word_order="little"), "79E9F642", F),  # DCBA
    (Register("x", 0, type="int32"), "FFFE7960", I32),
    (Register("x", 0, type="int32", word_order="little"), "7960FFFE", I32),
    (Register("x", 0, type="int32", byte_order="little"), "FEFF6079", I32),
    (Register("x", 0, type="int32", byte_order="little", word_order="little"), "6079FEFF", I32),
    (Register("x", 0, type="uint32"), "AABBCCDD", 0xAABBCCDD),
    (Register("x", 0, type="uint32", word_order="little"), "CCDDAABB", 0xAABBCCDD),
    (Register("x", 0, type="int16"), "FFFE", -2),
    (Register("x", 0, type="uint16"), "FFFE", 65534),
    (Register("x", 0, type="uint16", byte_order="little"), "FEFF", 65534),
    (Register("x", 0, type="uint16", scale=0.001), "015E", 0.35),
    (Register("x", 0, type="int16", scale=0.1, offset=1.0), "FFFB", 0.5),
    (Register("x", 0, type="float32", scale=0.001, offset=-0.1), "447A0000", 0.9),  # 1000.0
    (Register("x", 1, type="uint16"), "0001" "0002", 2),  # at an offset within the read
    (Register("x", 0, type="bool", bit=2), "0004", True),
    (Register("x", 0, type="bool", bit=1), "0004", False),
    (Register("x", 0, type="bool", bit=10, byte_order="little"), "0004", True),
    (Register("x", 3, function=1, type="bool"), "0D01", True),
    (Register("x", 4, function=1, type="bool"), "0D01", False),
    (Register("x", 8, function=2, type="bool"), "0D01", True),
])
def test_register_decoding(register, data, value):
    fields = decode([register], [regs(data, register.function)])
    assert fields == {"x": value} and type(fields["x"]) is type(value if register.type == "bool" else 1.0)


def test_a_value_that_is_not_a_number_makes_no_reading():
    why = decode([Register("level_m", 0, type="float32")], [regs("7FC00000")])
    assert why == "level_m: float32 at 3:0 is nan (0x7fc00000), not a number"
    assert isinstance(decode([Register("p", 0, type="float32")], [regs("7F800000")]), str)


def test_scaling_drops_binary_noise():
    assert 350 * 0.001 != 0.35 and scaled(350, 0.001, 0.0) == 0.35
    assert scaled(123, 0.1, 0.0) == 12.3 and scaled(0, 1.0, -5.5) == -5.5



@given(st.floats(width=32, allow_nan=False, allow_infinity=False), st.sampled_from(["big", "little"]))
def test_float32_agrees_with_pymodbus(value, word_order):
    registers = list(struct.unpack(">HH", struct.pack(">f", value)))
    if word_order == "little":
        registers.reverse()
    data = b"".join(r.to_bytes(2, "big") for r in registers)
    ours = decode([Register("x", 0, type="float32", word_order=word_order)], [regs(data.hex())])
    theirs = ModbusClientMixin.convert_from_registers(registers, ModbusClientMixin.DATATYPE.FLOAT32, word_order)
    assert ours == {"x": float(f"{theirs:.7g}")}


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_int32_agrees_with_pymodbus(value, word_order):
    registers = list(struct.unpack(">HH", struct.pack(">i", value)))
    if word_order == "little":
        registers.reverse()
    data = b"".join(r.to_bytes(2, "big") for r in registers)
    ours = decode([Register("x", 0, type="int32", word_order=word_order)], [regs(data.hex())])
    assert ours == {"x": float(ModbusClientMixin.convert_from_registers(
        registers, ModbusClientMixin.DATATYPE.INT32, word_order))}


def test_one_request_per_contiguous_block():
    registers = [
        Register("a", 0), Register("b", 1, type="float32"), Register("c", 5),  # 0-2 together, 5 apart
        Register("d", 0, function=4), Register("e", 0, function=1, type="bool"),
        Register("f", 3, function=1, type="bool"), Register("g", 5, type="bool", bit=3),
    ]
    assert plan_requests(7, registers) == (
        Request(7, 1, 0, 1), Request(7, 1, 3, 1), Request(7, 3, 0, 3), Request(7, 3, 5, 1), Request(7, 4, 0, 1))


def test_a_block_longer_than_one_read_is_split():
    registers = [Register(f"r{i}", i) for i in range(130)]
    assert plan_requests(1, registers) == (Request(1, 3, 0, 125), Request(1, 3, 125, 5))
    fields = decode(registers, [Response(r, bytes(2 * r.count), b"") for r in plan_requests(1, registers)])
    assert isinstance(fields, dict) and len(fields) == 130
