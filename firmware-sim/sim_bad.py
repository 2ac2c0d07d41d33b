"""Bad messages a gateway must dead-letter instead of dropping or storing.

Each case is derived from a real reading of the device so that everything else about
the message (topic, ``seq``, ``ts``) looks plausible and only the injected defect is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from sim_values import REQUIRED_FIELD, DeviceState, encode, reading, reading_topic

BAD_CASES: tuple[str, ...] = (
    "invalid_json",
    "json_array",
    "missing_field",
    "wrong_type",
    "negative",
    "oversized",
    "bad_segment",
    "unknown_kind",
)
"""Cycled in this order by ``--bad-ratio``."""

OVERSIZE_BYTES = 64 * 1024 + 1024
"""Padding that pushes a payload over the contract's 64 KiB default limit."""


@dataclass(frozen=True)
class BadMessage:
    """A message to publish, and why the gateway should reject it."""

    topic: str
    payload: bytes
    case: str


def bad_message(
    case: str,
    state: DeviceState,
    now: float,
    *,
    prefix: str,
    site: str,
    ts_format: str = "epoch",
    tz: tzinfo | None = None,
) -> BadMessage:
    """Build bad message ``case`` in place of the device's next reading.

    The device's ``seq`` advances as for a good reading: a device that sends garbage
    still counts its messages.
    """
    kind = state.kind
    if kind not in REQUIRED_FIELD:
        raise ValueError(f"bad messages are built from readings; {kind} devices send none")
    payload = reading(kind, state, now)
    topic = reading_topic(prefix, site, kind, state.device)
    required = REQUIRED_FIELD[kind]
    if case == "invalid_json":
        raw = encode(payload, ts_format, tz)
        return BadMessage(topic, raw[: max(1, len(raw) // 2)], case)
    if case == "json_array":
        return BadMessage(topic, b"[" + encode(payload, ts_format, tz) + b"]", case)
    if case == "missing_field":
        del payload[required]
    elif case == "wrong_type":
        payload[required] = "high"
    elif case == "negative":
        field_name = "battery_pct" if kind == "smoke_detector" else required
        payload[field_name] = -abs(payload.get(field_name, 0.0)) - 5.0
    elif case == "oversized":
        payload["firmware_dump"] = "A" * OVERSIZE_BYTES
    elif case == "bad_segment":
        topic = reading_topic(prefix, site, kind, state.device.replace("-", " ") + "!")
    elif case == "unknown_kind":
        topic = reading_topic(prefix, site, "toaster", state.device)
    else:
        raise ValueError(f"unknown bad case {case!r}; expected one of {', '.join(BAD_CASES)}")
    return BadMessage(topic, encode(payload, ts_format, tz), case)
