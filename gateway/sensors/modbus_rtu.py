"""Modbus RTU without any I/O: CRC-16/MODBUS, read requests, and a response framer.

The gateway is the bus master: it sends one request and waits for one response. So
the framer always knows what it expects (the unit, the function and the number of
data bytes of the outstanding :class:`Request`) and finds the response by its shape
and CRC instead of by the 3.5-character silence, which a USB adapter and a Linux tty
blur. Like :class:`~gateway.sensors.serial_lines.LineFramer` it is fed whatever a read
brought, a byte at a time or all at once, and gives the same frames and rejections
however the bytes were cut:

- bytes that cannot start the expected response are garbage (noise in front, a
  transceiver turning around, bytes after the response, bytes nobody asked for);
  consecutive garbage bytes are refused as one :class:`Rejected` run;
- a candidate of the expected unit and function whose CRC is wrong is skipped a byte at
  a time (the real response may start inside it); if no good response follows before
  :meth:`ResponseFramer.flush` (the transaction's timeout), the run is refused as
  ``crc``;
- a well-formed response (good CRC) from another unit is ``wrong_unit``; one with another
  number of data bytes than asked (an over-long or short frame) is ``bad_length``;
- an exception response (function | 0x80, code) is a frame of its own
  (:class:`ExceptionResponse`, with the code's name).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

READ_COILS = 1
READ_DISCRETE_INPUTS = 2
READ_HOLDING_REGISTERS = 3
READ_INPUT_REGISTERS = 4
BIT_FUNCTIONS = frozenset((READ_COILS, READ_DISCRETE_INPUTS))
REGISTER_FUNCTIONS = frozenset((READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS))
#: The most one read may ask for (Modbus Application Protocol v1.1b3, 6.1-6.4).
MAX_REGISTERS = 125
MAX_BITS = 2000
UNITS = range(1, 248)  # 0 is broadcast (never answered), 248-255 reserved
EXCEPTION_CODES = {
    1: "illegal_function",
    2: "illegal_data_address",
    3: "illegal_data_value",
    4: "server_device_failure",
    5: "acknowledge",
    6: "server_device_busy",
    8: "memory_parity_error",
    10: "gateway_path_unavailable",
    11: "gateway_target_failed_to_respond",
}
_RAW_KEPT = 256  # a rejection keeps at most this many of its bytes (a babbling device must not fill memory)


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/MODBUS (reflected 0x8005, initial 0xFFFF) of ``data``; sent low byte first."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def with_crc(pdu: bytes) -> bytes:
    """An address + PDU with its CRC appended, as it goes on the wire."""
    return pdu + crc16(pdu).to_bytes(2, "little")


def crc_ok(frame: bytes | bytearray) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


@dataclass(frozen=True, slots=True)
class Request:
    """A read of ``count`` registers (functions 3, 4) or bits (1, 2) from ``address`` of slave ``unit``."""

    unit: int
    function: int
    address: int
    count: int

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit {self.unit} is not a slave address (1-247)")
        if self.function not in BIT_FUNCTIONS | REGISTER_FUNCTIONS:
            raise ValueError(f"function {self.function} is not a read (1, 2, 3 or 4)")
        most = MAX_BITS if self.function in BIT_FUNCTIONS else MAX_REGISTERS
        if not 1 <= self.count <= most:
            raise ValueError(f"function {self.function} reads 1 to {most} at a time, not {self.count}")
        if self.address < 0 or self.address + self.count > 0x10000:
            raise ValueError(f"addresses {self.address}..{self.address + self.count - 1} are not within 0-65535")

    @property
    def data_size(self) -> int:
        """Data bytes of a normal response (its byte count)."""
        return 2 * self.count if self.function in REGISTER_FUNCTIONS else (self.count + 7) // 8

    @property
    def response_size(self) -> int:
        return 5 + self.data_size

    def encode(self) -> bytes:
        return with_crc(struct.pack(">BBHH", self.unit, self.function, self.address, self.count))

    def __str__(self) -> str:
        return f"unit {self.unit} function {self.function} at {self.address} x{self.count}"


@dataclass(frozen=True, slots=True)
class Response:
    """The slave's answer to ``request``: its ``data`` bytes (registers big-endian, or packed bits)."""

    request: Request
    data: bytes
    raw: bytes


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    """The slave refused ``request`` (a register map that does not match the device, a busy device)."""

    request: Request
    code: int
    raw: bytes

    @property
    def name(self) -> str:
        return EXCEPTION_CODES.get(self.code, f"exception_{self.code}")


Reason = Literal["garbage", "crc", "wrong_unit", "bad_length"]


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bytes that are not the expected response: ``size`` of them, the first ``len(raw)`` kept."""

    reason: Reason
    detail: str
    raw: bytes
    size: int


Frame = Response | ExceptionResponse


class ResponseFramer:
    """Finds the response to the outstanding request in a byte stream (see the module's docstring)."""

    def __init__(self) -> None:
        self._request: Request | None = None
        self._buf = bytearray()
        self._run = bytearray()  # garbage held until its end is known (chunking must not split a run)
        self._run_size = 0
        self._run_crc: Request | None = None  # the run starts at a bad-CRC candidate of this request

    @property
    def request(self) -> Request | None:
        """The request whose response is awaited (None once it came)."""
        return self._request

    @property
    def pending(self) -> int:
        """Bytes held: a partial candidate and garbage not refused yet."""
        return len(self._buf) + self._run_size

    def expect(self, request: Request) -> list[Rejected]:
        """A request was sent: what is held from before cannot be its response and is refused."""
        if self._request is not None:
            raise RuntimeError(f"the response to {self._request} is still awaited: flush() first")
        out = self.flush("before the next request")[1]
        self._request = request
        return out

    def feed(self, data: bytes) -> tuple[list[Frame], list[Rejected]]:
        """The frames and rejections ``data`` completes; a partial candidate is kept for later."""
        self._buf += data
        return self._scan(final=False)

    def flush(self, why: str = "no more bytes") -> tuple[list[Frame], list[Rejected]]:
        """No more bytes are coming for this request (its timeout): decide what is held, forget the request."""
        frames, rejected = self._scan(final=True)
        rejected += self._end_run(why)
        self._request = None
        return frames, rejected

    # -- scanning -------------------------------------------------------------------------------
    def _scan(self, final: bool) -> tuple[list[Frame], list[Rejected]]:
        frames: list[Frame] = []
        rejected: list[Rejected] = []
        buf = self._buf
        while buf:
            req = self._request
            if req is None:  # nothing asked: bytes after a response, or unsolicited
                self._skip(len(buf))
                break
            step, size = _candidate(buf, req, final)
            if step == "wait":
                break
            if step == "crc":  # the expected shape with a bad CRC: corrupted on the wire, unless a good one follows
                if self._run_crc is None:
                    rejected += self._end_run("before a response with a bad CRC")
                    self._run_crc = req
                self._skip(1)
                continue
            if step == "skip":
                self._skip(1)
                continue
            raw = bytes(buf[:size])
            del buf[:size]
            if raw[0] != req.unit:
                rejected += self._end_run("before a response from another unit")
                rejected.append(Rejected("wrong_unit", f"a response from unit {raw[0]} while unit {req.unit} was "
                                         f"asked ({req})", raw[:_RAW_KEPT], size))
            elif raw[1] == req.function | 0x80:
                rejected += self._end_run("before the response", crc=False)
                frames.append(ExceptionResponse(req, raw[2], raw))
                self._request = None
            elif raw[2] != req.data_size:
                rejected += self._end_run("before a response of the wrong length")
                rejected.append(Rejected("bad_length", f"{raw[2]} data bytes where {req.data_size} were asked "
                                         f"({req})", raw[:_RAW_KEPT], size))
            else:
                rejected += self._end_run("before the response", crc=False)
                frames.append(Response(req, raw[3:-2], raw))
                self._request = None
        return frames, rejected

    def _skip(self, n: int) -> None:
        taken = self._buf[:n]
        del self._buf[:n]
        room = _RAW_KEPT - len(self._run)
        if room > 0:
            self._run += taken[:room]
        self._run_size += len(taken)

    def _end_run(self, why: str, crc: bool = True) -> list[Rejected]:
        """Refuse the held garbage run; a run that began at a bad-CRC candidate is ``crc`` unless a good
        response followed it (``crc=False``: then it was noise that looked like a header)."""
        if not self._run_size:
            return []
        req, size, raw = self._run_crc, self._run_size, bytes(self._run)
        self._run.clear()
        self._run_size = 0
        self._run_crc = None
        if req is not None and crc:
            return [Rejected("crc", f"a response of {req} with a bad CRC ({size} bytes)", raw, size)]
        return [Rejected("garbage", f"{size} byte{'s' if size > 1 else ''} that are no response ({why})", raw, size)]


Step = Literal["wait", "skip", "crc", "frame"]


def _candidate(buf: bytearray, req: Request, final: bool) -> tuple[Step, int]:
    """What starts the buffer: a well-formed frame of ``size`` (good CRC; maybe another unit's or the wrong
    length), a byte to skip, a bad-CRC frame of the expected shape, or the start of one still missing bytes
    (``final``: none are coming, skip it)."""
    n = len(buf)
    wait: tuple[Step, int] = ("skip", 0) if final else ("wait", 0)
    if buf[0] not in UNITS:
        return "skip", 0
    if n < 2:
        return wait
    if buf[1] == req.function | 0x80:
        size = 5
    elif buf[1] == req.function:
        if n < 3:
            return wait
        size = 5 + buf[2]
    else:
        return "skip", 0
    if n < size:
        return wait
    if crc_ok(buf[:size]):
        return "frame", size
    if buf[0] == req.unit and (size == 5 or buf[2] == req.data_size):
        return "crc", size
    return "skip", 0
