"""NFC patrol checkpoint readers (巡更点): each message is a tap of a tag, not a measurement."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from gateway.sensors.base import (
    DEFAULT_POLICY,
    Policy,
    Rejection,
    SensorKind,
    dedupe_key,
    parse_object,
    parse_seq,
    resolve_time,
)

KIND = SensorKind(
    name="checkpoint",
    category=None,
    heartbeat_s=3600.0,
    doc="NFC tag taps",
    fields={},
    json_properties={
        "tag": {"type": "string", "description": "NFC UID in hex; case-insensitive, ':' separators allowed"},
        "badge": {"type": "string", "description": "the guard's card or id, when the reader knows it"},
    },
    json_required=("tag",),
)

_HEX = re.compile(r"^[0-9A-F]{2,64}$")
_BADGE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Tap:
    """A tag tapped at a reader; ``badge`` is the guard when the reader knows it."""

    reader: str
    tag: str
    badge: str | None
    ts: float
    received_at: float
    seq: int | None = None
    flags: frozenset[str] = field(default_factory=frozenset)
    key: tuple[int, float] | None = None


def normalize_tag(raw: object) -> str | Rejection:
    """NFC UIDs are hex, case-insensitive, often printed with ``:`` separators."""
    if not isinstance(raw, str):
        return Rejection("schema", f"tag must be a hex string, got {raw!r}"[:200])
    tag = raw.strip().replace(":", "").upper()
    if not _HEX.fullmatch(tag) or len(tag) % 2:
        return Rejection("schema", f"tag {raw[:80]!r} is not a hex NFC UID (e.g. 04A224B2C15E80)")
    return tag


def decode_tap(
    reader: str,
    payload: bytes,
    received_at: float,
    newest: float | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> Tap | Rejection:
    """A tap payload (CONTRACT.md "Tap payload") into a :class:`Tap`, or why not."""
    obj = parse_object(payload)
    if isinstance(obj, Rejection):
        return obj
    tag = normalize_tag(obj.get("tag"))
    if isinstance(tag, Rejection):
        return tag
    badge = obj.get("badge")
    if badge is not None and (not isinstance(badge, str) or not _BADGE.fullmatch(badge)):
        return Rejection("schema", f"badge must be 1-64 of A-Z a-z 0-9 _ . @ -, got {badge!r}"[:200])
    seq = parse_seq(obj)
    if isinstance(seq, Rejection):
        return seq
    when = resolve_time(obj, received_at, newest, policy)
    if isinstance(when, Rejection):
        return when
    ts, flags, device_time = when
    key = dedupe_key(seq, ts, device_time, payload)
    if key is None and device_time:
        key = (-1 - zlib.crc32(tag.encode()), ts)  # no counter: the same tag at the same instant repeats
    return Tap(reader, tag, badge, ts, received_at, seq, flags, key)
