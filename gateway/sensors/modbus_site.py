"""The site file's Modbus devices (``[[modbus]]``): which bus, which slave, how often, and the register map.

Validated with the rest of the site file, so a map that cannot make a reading of its
kind (a field the kind does not have, a required field left out, two fields on the same
registers) stops the gateway at start-up, or a reload, with the field named, instead of
dead-lettering every poll.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.config import Segment
from gateway.sensors import KINDS, check_asset_kind
from gateway.sensors.modbus_bus import DevicePlan
from gateway.sensors.modbus_map import DATA_TYPES, WIDTH, DataType, Order, Register, plan_requests
from gateway.sensors.modbus_rtu import BIT_FUNCTIONS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterModel(_Model):
    """One field of the reading: ``{address = 0, function = 4, type = "uint16", scale = 0.001, field = "level_m"}``."""

    field: str
    address: int = Field(ge=0, le=65535)
    function: Literal[1, 2, 3, 4] = 3
    type: DataType = "uint16"
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = Field(None, ge=0, le=15)
    #: Registers (or bits) it takes, as device manuals list it; it must agree with ``type``.
    count: int | None = None

    @field_validator("scale", "offset")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RegisterModel:
        where = f"field {self.field!r}"
        if self.function in BIT_FUNCTIONS:
            if self.type != "bool":
                raise ValueError(f"{where}: function {self.function} reads bits: type must be bool, not {self.type}")
            if self.bit is not None:
                raise ValueError(f"{where}: bit is for a bool in a register (functions 3, 4); function "
                                 f"{self.function} reads the bit at the address itself")
        elif self.type == "bool" and self.bit is None:
            raise ValueError(f"{where}: a bool from register {self.address} needs bit (0-15)")
        elif self.type != "bool" and self.bit is not None:
            raise ValueError(f"{where}: bit is only for type bool")
        if self.type == "bool" and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError(f"{where}: a bool has no scale or offset")
        if self.count is not None and self.count != WIDTH[self.type]:
            raise ValueError(f"{where}: a {self.type} takes {WIDTH[self.type]} "
                             f"{'bit' if self.function in BIT_FUNCTIONS else 'register'}"
                             f"{'s' if WIDTH[self.type] > 1 else ''}, not count = {self.count}")
        if self.address + WIDTH[self.type] > 65536:
            raise ValueError(f"{where}: a {self.type} at {self.address} runs past address 65535")
        return self

    def register(self) -> Register:
        return Register(self.field, self.address, self.function, self.type, self.byte_order, self.word_order,
                        self.scale, self.offset, self.bit)


class ModbusDeviceModel(_Model):
    """A slave on a Modbus RTU bus (a level or pressure transmitter) and its register map."""

    device: Segment
    bus: Segment  # the ``bus`` of a [[serial]] port with mode "modbus-rtu" in the settings file
    kind: str
    unit: int = Field(ge=1, le=247)
    poll_s: float = Field(10.0, ge=0.05, le=86400)
    timeout_s: float = Field(0.5, gt=0, le=10)
    retries: int = Field(2, ge=0, le=5)
    registers: list[RegisterModel] = Field(min_length=1)

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, v: str) -> str:
        check_asset_kind(v)
        return v

    @model_validator(mode="after")
    def _check_map(self) -> ModbusDeviceModel:
        kind = KINDS[self.kind]
        specs = {**kind.fields}
        known = sorted(kind.known)
        problems = []
        seen: set[str] = set()
        for i, r in enumerate(self.registers):
            if r.field not in kind.known:
                problems.append(f"registers.{i}.field: {r.field!r} is not a {self.kind} field "
                                f"(known: {', '.join(known)})")
                continue
            if r.field in seen:
                problems.append(f"registers.{i}.field: {r.field!r} is mapped twice")
            seen.add(r.field)
            spec = specs.get(r.field)
            if spec is not None and (spec.type is bool) != (r.type == "bool"):
                problems.append(f"registers.{i}.type: {r.field} is a {'bool' if spec.type is bool else 'number'}, "
                                f"not {r.type}")
        missing = [n for n, s in kind.fields.items() if s.required and n not in seen]
        if missing:
            problems.append(f"registers: a {self.kind} reading needs {', '.join(missing)}: map "
                            f"{'it' if len(missing) == 1 else 'them'} to a register")
        problems += _overlaps(self.registers)
        if problems:
            raise ValueError(f"device {self.device}: " + "; ".join(problems))
        return self

    @property
    def tries_s(self) -> float:
        """The longest one of its requests takes when every try times out."""
        return (self.retries + 1) * self.timeout_s

    def plan(self) -> DevicePlan:
        regs = [r.register() for r in self.registers]
        return DevicePlan(self.device, plan_requests(self.unit, regs), self.poll_s, self.timeout_s, self.retries)

    def register_map(self) -> tuple[Register, ...]:
        return tuple(r.register() for r in self.registers)


def _overlaps(registers: list[RegisterModel]) -> list[str]:
    """Two numbers on the same registers are a copy-paste slip; bools may share a register (bit by bit)."""
    problems = []
    numbers = sorted((r.function, r.address, r.address + WIDTH[r.type], i) for i, r in enumerate(registers)
                     if r.type != "bool")
    reach: dict[int, tuple[int, int]] = {}  # function -> (end of the furthest register so far, its index)
    for f, a, e, i in numbers:
        end, j = reach.get(f, (-1, -1))
        if a < end:
            r = registers[j]
            problems.append(f"registers.{i}: {registers[i].field} (function {f}, address {a}) overlaps "
                            f"{r.field} (address {r.address}, {WIDTH[r.type]} registers)")
        if e > end:
            reach[f] = (e, i)
    bits = [(r.function, r.address, r.bit) for r in registers if r.type == "bool"]
    for i, r in enumerate(registers):
        if r.type == "bool" and bits.count((r.function, r.address, r.bit)) > 1:
            problems.append(f"registers.{i}: {r.field} reads the same bit as another field")
    return problems


__all__ = ["DATA_TYPES", "ModbusDeviceModel", "RegisterModel"]
