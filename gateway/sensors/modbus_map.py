"""A Modbus device's register map, pure: which reads one poll makes, and the reading's fields from
the answers.

A map lists one :class:`Register` per field of the kind's payload: where it is (function
and address), how it is encoded (data type, byte and word order) and how it scales to
the field's unit (``value = raw * scale + offset``). Byte order is the order of the two
bytes within a register, word order that of the two registers of a 32-bit value, which
gives the four layouts device manuals name by the bytes of 0xAABBCCDD::

    ABCD  byte_order big,    word_order big     (the Modbus default)
    CDAB  byte_order big,    word_order little  ("word swap", many PLCs and meters)
    BADC  byte_order little, word_order big     ("byte swap")
    DCBA  byte_order little, word_order little

Contiguous registers of the same function are read in one request (at most 125
registers or 2000 bits); gaps are never read, since a device may refuse an address it
does not have.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.sensors.modbus_rtu import BIT_FUNCTIONS, MAX_BITS, MAX_REGISTERS, Request, Response

DataType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
Order = Literal["big", "little"]
DATA_TYPES: tuple[DataType, ...] = ("int16", "uint16", "int32", "uint32", "float32", "bool")
WIDTH: Mapping[str, int] = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "bool": 1}
_FORMAT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


@dataclass(frozen=True, slots=True)
class Register:
    """Where one field of a reading is, and how it is encoded (see the module's docstring)."""

    field: str
    address: int
    function: int = 3
    type: DataType = "uint16"
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = None  # a bool from this bit (0 = least significant) of a register (functions 3, 4)

    @property
    def width(self) -> int:
        """Registers (functions 3, 4) or bits (1, 2) it takes."""
        return WIDTH[self.type]

    @property
    def end(self) -> int:
        return self.address + self.width


def plan_requests(unit: int, registers: Sequence[Register]) -> tuple[Request, ...]:
    """The reads of one poll: per function, contiguous (or overlapping) registers merged into one request."""
    out: list[Request] = []
    for function in sorted({r.function for r in registers}):
        most = MAX_BITS if function in BIT_FUNCTIONS else MAX_REGISTERS
        spans = sorted((r.address, r.end) for r in registers if r.function == function)
        start, end = spans[0]
        for a, b in spans[1:]:
            if a <= end and max(end, b) - start <= most:
                end = max(end, b)
                continue
            out.append(Request(unit, function, start, end - start))
            start, end = a, b
        out.append(Request(unit, function, start, end - start))
    return tuple(out)


def decode(registers: Sequence[Register], responses: Sequence[Response]) -> dict[str, float | bool] | str:
    """The fields of one poll's answers, or why they make no reading (a value that is not a number)."""
    words: dict[tuple[int, int], bytes] = {}
    bits: dict[tuple[int, int], bool] = {}
    for resp in responses:
        req, data = resp.request, resp.data
        if req.function in BIT_FUNCTIONS:
            for i in range(req.count):
                bits[(req.function, req.address + i)] = bool(data[i // 8] >> (i % 8) & 1)
        else:
            for i in range(req.count):
                words[(req.function, req.address + i)] = data[2 * i: 2 * i + 2]
    fields: dict[str, float | bool] = {}
    for r in registers:
        if r.function in BIT_FUNCTIONS:
            fields[r.field] = bits[(r.function, r.address)]
            continue
        regs = [words[(r.function, a)] for a in range(r.address, r.end)]
        if r.byte_order == "little":
            regs = [w[::-1] for w in regs]
        if r.word_order == "little":
            regs.reverse()
        raw = b"".join(regs)
        if r.type == "bool":
            fields[r.field] = bool(int.from_bytes(raw, "big") >> (r.bit or 0) & 1)
            continue
        value = struct.unpack(_FORMAT[r.type], raw)[0]
        if r.type == "float32":
            if not math.isfinite(value):
                return f"{r.field}: float32 at {r.function}:{r.address} is {value} (0x{raw.hex()}), not a number"
            value = float(f"{value:.7g}")  # what the device meant: float32 carries about 7 digits
        fields[r.field] = scaled(value, r.scale, r.offset)
    return fields


def scaled(raw: float, scale: float, offset: float) -> float:
    """``raw * scale + offset`` without binary noise (350 * 0.001 is 0.35, not 0.35000000000000003)."""
    return float(f"{raw * scale + offset:.12g}")
