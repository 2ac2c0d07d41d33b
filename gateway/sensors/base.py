"""What every sensor kind declares, and the pure decoding of a payload into a reading.

A kind module declares its payload schema as a table of :class:`FieldSpec`; decoding
walks that table, so adding a kind is adding a module with a table, and every
rejection says which field was wrong and why.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import (
    Annotated,
    Any,
    NamedTuple,
    Required,  # pydantic needs this TypedDict on Python < 3.12
)

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

Value = float | bool


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One payload field: ``bool`` or a finite number within optional bounds."""

    type: type  # bool or float
    required: bool = False
    min: float | None = None
    max: float | None = None
    doc: str = ""


PRIORITIES = ("emergency", "urgent", "general")  # 急修, urgent, 零修 (COMMITMENTS.md SLA table)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A way a facility fails (COMMITMENTS.md), with the ticket priority it gets by default.

    ``counts`` is False for a fault that is reported and ticketed but does not make the
    asset not intact (a lamp burning in daylight is a controller fault, 白天亮灯).
    """

    code: str
    priority: str
    zh: str
    en: str
    counts: bool = True


@dataclass(frozen=True, slots=True)
class Debounce:
    """A fault opens after ``n`` consecutive failing readings spanning ``seconds``, and clears
    after as many healthy ones (hysteresis): a flapping sensor never opens a stream of tickets."""

    n: int = 2
    seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a fault check may know besides the reading: the asset's limits (kind defaults,
    then the site file's rated values and overrides) and, for lamps, whether it should be lit."""

    limits: Mapping[str, float]
    lit_expected: bool | None = None


#: A kind's fault check: the codes failing in one reading (pure; debouncing is done elsewhere).
Check = Callable[[Mapping[str, "Value"], CheckContext], frozenset[str]]


@dataclass(frozen=True)
class SensorKind:
    """A kind of device (CONTRACT.md "kind"): its schema, category, reporting interval, and
    the faults it can reveal with their default limits and check."""

    name: str
    category: str | None
    fields: Mapping[str, FieldSpec]
    heartbeat_s: float
    doc: str = ""
    faults: Mapping[str, FaultSpec] = dataclasses.field(default_factory=dict)
    #: Default limits of the checks; the site file may override them per asset.
    limits: Mapping[str, float] = dataclasses.field(default_factory=dict)
    #: Rated values the site file may give per asset (no default: a check without one skips it).
    rated: tuple[str, ...] = ()
    check: Check | None = None
    debounce: Debounce = Debounce()
    #: A boolean field that is an emergency announced at once, not a fault (a smoke alarm).
    alarm_field: str | None = None
    #: JSON Schema of message fields outside the measurement table (a tap's tag and badge).
    json_properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    json_required: tuple[str, ...] = ()

    @cached_property
    def payload(self) -> TypeAdapter[dict[str, Any]]:
        """The payload schema as a pydantic validator: parses and checks in one pass (pydantic-core)."""
        return payload_adapter(self.name, {**COMMON_FIELDS, **self.fields})

    @cached_property
    def known(self) -> frozenset[str]:
        return frozenset(self.fields) | frozenset(COMMON_FIELDS)

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
        props.update(self.json_properties)
        required = [n for n, s in self.fields.items() if s.required] + list(self.json_required)
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
NO_FLAGS: frozenset[str] = frozenset()
LATE = frozenset(("late",))
CLOCK_SKEW = frozenset(("clock_skew",))


class Reading(NamedTuple):
    """A validated reading. ``ts`` is what gets stored; ``key`` identifies repeats of the same message.

    A NamedTuple rather than a frozen dataclass: just as immutable, and several times
    cheaper to create on the hot path (tens of thousands a second).
    """

    kind: str
    device: str
    ts: float
    received_at: float
    seq: int | None
    fields: Mapping[str, Value]
    flags: frozenset[str] = NO_FLAGS
    key: tuple[int, float] | None = None


def payload_adapter(name: str, specs: Mapping[str, FieldSpec]) -> TypeAdapter[dict[str, Any]]:
    """A strict TypedDict validator for a kind's payload; unknown extra fields pass through."""
    annotations: dict[str, Any] = {
        "ts": float | str | None,
        "seq": Annotated[int, Field(ge=0, le=2**63 - 1)] | None,
    }
    for fname, spec in specs.items():
        t: Any = bool if spec.type is bool else Annotated[float, Field(ge=spec.min, le=spec.max)]
        annotations[fname] = Required[t] if spec.required else t | None
    td = TypedDict(f"{name}_payload", annotations, total=False)  # type: ignore[misc]
    return TypeAdapter(with_config(ConfigDict(extra="allow", strict=True, allow_inf_nan=False))(td))


def explain(kind: str, exc: ValidationError) -> Rejection:
    """The first problem of a payload, in words a device maker can act on."""
    err = exc.errors(include_url=False)[0]
    if err["type"] == "json_invalid":
        return Rejection("bad_json", f"not valid JSON: {err['msg'].removeprefix('Invalid JSON: ')}")
    where = ".".join(str(p) for p in err["loc"])
    if not where:
        return Rejection("schema", f"payload must be a JSON object, got {type(err.get('input')).__name__}")
    shown = "" if err["type"] == "missing" else f", got {err.get('input')!r}"
    return Rejection("schema", f"{kind}: {where}: {err['msg']}{shown}"[:300])


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
        return received_at, NO_FLAGS, False
    ts = parse_ts(raw)
    if isinstance(ts, str):
        return Rejection("schema", ts)
    if ts > received_at + policy.max_skew_s:
        return received_at, CLOCK_SKEW, False
    if ts < received_at - policy.max_age_s:
        age_h = (received_at - ts) / 3600
        limit_h = policy.max_age_s / 3600
        return Rejection("too_old", f"ts is {age_h:.1f} h old, beyond the maximum age of {limit_h:.0f} h")
    if newest is not None and ts < newest:
        return ts, LATE, True
    return ts, NO_FLAGS, True


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


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: Names the gateway writes itself; a device's extra field of the same name would collide.
WRITTEN = frozenset(("late", "clock_skew", "time"))


def extra_field(name: str, value: Any) -> Value | Rejection | None:
    """An unknown field (CONTRACT.md: kept if numeric or boolean, ignored otherwise)."""
    if value is True or value is False:
        number: Value = value
    elif type(value) in (int, float):
        try:
            number = float(value)
        except OverflowError:
            return Rejection("schema", f"{name}: number out of range")
        if not math.isfinite(number):
            return Rejection("bad_json", f"{name}: NaN and Infinity are not JSON numbers")
    else:
        return None
    if name in WRITTEN or not _FIELD_NAME.fullmatch(name):
        return None  # not a name the gateway can store as a field
    return number


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
    try:
        obj = kind.payload.validate_json(payload)
    except ValidationError as exc:
        return explain(kind.name, exc)
    when = resolve_time(obj, received_at, newest, policy)
    if isinstance(when, Rejection):
        return when
    known = kind.known
    fields: dict[str, Value] = {}
    for name, value in obj.items():
        if name in known:
            if value is not None:
                fields[name] = value
        elif name not in RESERVED:
            extra = extra_field(name, value)
            if isinstance(extra, Rejection):
                return extra
            if extra is not None:
                fields[name] = extra
    ts, flags, device_time = when
    seq = obj.get("seq")
    return Reading(kind.name, device, ts, received_at, seq, fields, flags, dedupe_key(seq, ts, device_time, payload))
