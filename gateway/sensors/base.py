"""What every sensor kind declares, and the pure decoding of a payload into a reading.

A kind module declares its payload schema as a table of :class:`FieldSpec`; decoding
walks that table, so adding a kind is adding a module with a table, and every
rejection says which field was wrong and why.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Value = float | bool


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One payload field: ``bool`` or a finite number within optional bounds."""

    type: type  # bool or float
    required: bool = False
    min: float | None = None
    max: float | None = None
    doc: str = ""


@dataclass(frozen=True, slots=True)
class SensorKind:
    """A kind of device (CONTRACT.md "kind"): its schema, category and reporting interval."""

    name: str
    category: str | None
    fields: Mapping[str, FieldSpec]
    heartbeat_s: float
    doc: str = ""

    def json_schema(self) -> dict[str, Any]:
        """The payload schema as JSON Schema, for the API and device makers."""
        props: dict[str, Any] = {
            "ts": {"description": "device time: RFC 3339 or epoch seconds", "type": ["string", "number"]},
            "seq": {"type": "integer", "minimum": 0, "description": "per-device counter"},
        }
        for name, spec in {**COMMON_FIELDS, **self.fields}.items():
            p: dict[str, Any] = {"type": "boolean" if spec.type is bool else "number", "description": spec.doc}
            if spec.min is not None:
                p["minimum"] = spec.min
            if spec.max is not None:
                p["maximum"] = spec.max
            props[name] = p
        required = [n for n, s in self.fields.items() if s.required]
        return {"title": self.name, "type": "object", "properties": props, "required": required}


COMMON_FIELDS: Mapping[str, FieldSpec] = {
    "battery_pct": FieldSpec(float, min=0, max=100, doc="device battery, %"),
    "rssi_dbm": FieldSpec(float, doc="radio signal strength, dBm"),
}
RESERVED = frozenset(("ts", "seq"))


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused: a stable ``reason`` code for counters and a ``detail`` for people."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Policy:
    """Timestamp and dedupe rules of CONTRACT.md, in seconds."""

    max_skew_s: float = 300.0
    max_age_s: float = 7 * 86400.0


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Reading:
    """A validated reading. ``ts`` is what gets stored; ``key`` identifies repeats of the same message."""

    kind: str
    device: str
    ts: float
    received_at: float
    seq: int | None
    fields: Mapping[str, Value]
    flags: frozenset[str] = field(default_factory=frozenset)
    key: tuple[int, float] | None = None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_object(payload: bytes) -> dict[str, Any] | Rejection:
    """JSON object from bytes, or the reason it is not one."""
    try:
        obj = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        return Rejection("bad_json", f"not valid JSON: {exc}")
    if not isinstance(obj, dict):
        return Rejection("schema", f"payload must be a JSON object, got {type(obj).__name__}")
    return obj


def parse_ts(raw: Any) -> float | str:
    """Epoch seconds from an RFC 3339 string or a number; a string explains a bad one."""
    if isinstance(raw, bool):
        return "ts must be RFC 3339 text or epoch seconds, not a boolean"
    if isinstance(raw, int | float):
        if not math.isfinite(raw) or raw < 0:
            return "ts must be a finite, non-negative number of epoch seconds"
        return float(raw)
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            return f"ts {raw[:40]!r} is not RFC 3339 (e.g. 2026-11-21T12:00:00+08:00)"
        if dt.tzinfo is None:
            return f"ts {raw[:40]!r} has no UTC offset (add Z or +08:00)"
        return dt.timestamp()
    return f"ts must be RFC 3339 text or epoch seconds, got {type(raw).__name__}"


def resolve_time(
    obj: dict[str, Any], received_at: float, newest: float | None, policy: Policy
) -> tuple[float, frozenset[str], bool] | Rejection:
    """Apply CONTRACT.md's clock rules: (time to store, flags, whether the device gave the time)."""
    raw = obj.get("ts")
    if raw is None:
        return received_at, frozenset(), False
    ts = parse_ts(raw)
    if isinstance(ts, str):
        return Rejection("schema", ts)
    if ts > received_at + policy.max_skew_s:
        return received_at, frozenset(("clock_skew",)), False
    if ts < received_at - policy.max_age_s:
        age_h = (received_at - ts) / 3600
        limit_h = policy.max_age_s / 3600
        return Rejection("too_old", f"ts is {age_h:.1f} h old, beyond the maximum age of {limit_h:.0f} h")
    if newest is not None and ts < newest:
        return ts, frozenset(("late",)), True
    return ts, frozenset(), True


def parse_seq(obj: dict[str, Any]) -> int | Rejection | None:
    seq = obj.get("seq")
    if seq is None:
        return None
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return Rejection("schema", f"seq must be an integer >= 0, got {seq!r}")
    return seq


def dedupe_key(seq: int | None, ts: float, device_time: bool, payload: bytes) -> tuple[int, float] | None:
    """What makes a message "the same again" (CONTRACT.md "seq").

    With a device time: (seq, ts). Without one: (seq, checksum of the bytes), so a
    rebooted device whose counter restarted sends different bytes and is not a repeat.
    Without a seq nothing identifies a repeat, so every message counts.
    """
    if seq is None:
        return None
    return (seq, ts if device_time else float(zlib.crc32(payload)))


def check_fields(kind: SensorKind, obj: dict[str, Any]) -> dict[str, Value] | Rejection:
    """Validate the kind's fields; keep unknown numeric/boolean extras (CONTRACT.md), drop the rest."""
    out: dict[str, Value] = {}
    specs = kind.fields
    for name, spec in specs.items():
        if name not in obj and spec.required:
            return Rejection("schema", f"{kind.name}: required field {name!r} is missing")
    for name, value in obj.items():
        if name in RESERVED:
            continue
        spec = specs.get(name) or COMMON_FIELDS.get(name)
        if spec is None:
            if isinstance(value, bool):
                out[name] = value
            elif isinstance(value, int | float) and math.isfinite(value):
                out[name] = float(value)
            continue
        if value is None and not spec.required:
            continue
        if spec.type is bool:
            if not isinstance(value, bool):
                return Rejection("schema", f"{kind.name}: {name} must be true or false, got {value!r}"[:200])
            out[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Rejection("schema", f"{kind.name}: {name} must be a number, got {value!r}"[:200])
        if spec.min is not None and value < spec.min:
            return Rejection("schema", f"{kind.name}: {name} must be >= {spec.min:g}, got {value!r}")
        if spec.max is not None and value > spec.max:
            return Rejection("schema", f"{kind.name}: {name} must be <= {spec.max:g}, got {value!r}")
        out[name] = float(value)
    return out


def decode_reading(
    kind: SensorKind,
    device: str,
    payload: bytes,
    received_at: float,
    newest: float | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> Reading | Rejection:
    """Bytes from a device into a :class:`Reading`, or a :class:`Rejection` saying why not.

    ``newest`` is the device time of the newest reading already processed for this
    device; an older one is kept but flagged ``late``.
    """
    obj = parse_object(payload)
    if isinstance(obj, Rejection):
        return obj
    seq = parse_seq(obj)
    if isinstance(seq, Rejection):
        return seq
    when = resolve_time(obj, received_at, newest, policy)
    if isinstance(when, Rejection):
        return when
    fields = check_fields(kind, obj)
    if isinstance(fields, Rejection):
        return fields
    ts, flags, device_time = when
    return Reading(kind.name, device, ts, received_at, seq, fields, flags, dedupe_key(seq, ts, device_time, payload))
