"""decode_reading / decode_tap against CONTRACT.md "Reading payload" and "Tap payload"."""

from __future__ import annotations

import json
import re
import zlib

import pytest

from gateway.sensors import KINDS
from gateway.sensors.base import Policy, Reading, Rejection, decode_reading
from gateway.sensors.checkpoint import Tap, decode_tap

NOW = 1_763_712_000.0  # 2025-11-21T08:00:00Z, the gateway's receive time in these tests
DAY = 86_400.0
READING_KINDS = [name for name, kind in KINDS.items() if kind.category is not None]


def decode(kind: str, payload: dict | bytes, newest: float | None = None, policy: Policy | None = None):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if policy is None:
        return decode_reading(KINDS[kind], "dev-1", raw, NOW, newest)
    return decode_reading(KINDS[kind], "dev-1", raw, NOW, newest, policy)


def accepted(result: Reading | Rejection) -> Reading:
    assert isinstance(result, Reading), f"expected a reading, got {result!r}"
    return result


def rejected(result: Reading | Rejection, reason: str) -> Rejection:
    assert isinstance(result, Rejection), f"expected a rejection ({reason}), got {result!r}"
    assert result.reason == reason, result
    return result


# -- valid payloads ---------------------------------------------------------------------------------

VALID = [
    pytest.param("streetlight", {"on": True, "current_a": 0.41}, {"on": True, "current_a": 0.41},
                 id="streetlight-minimal"),
    pytest.param("streetlight",
                 {"on": False, "current_a": 0, "voltage_v": 221.4, "power_w": 0, "lux": 12.5,
                  "battery_pct": 88, "rssi_dbm": -71},
                 {"on": False, "current_a": 0.0, "voltage_v": 221.4, "power_w": 0.0, "lux": 12.5,
                  "battery_pct": 88.0, "rssi_dbm": -71.0},
                 id="streetlight-full"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 1.18}, {"pressure_mpa": 1.18}, id="extinguisher-minimal"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 1.18, "present": True, "battery_pct": 100},
                 {"pressure_mpa": 1.18, "present": True, "battery_pct": 100.0}, id="extinguisher-full"),
    pytest.param("fire_hydrant", {"pressure_mpa": 0.32}, {"pressure_mpa": 0.32}, id="hydrant-minimal"),
    pytest.param("fire_hydrant", {"pressure_mpa": 0, "battery_pct": 0, "rssi_dbm": -103.5},
                 {"pressure_mpa": 0.0, "battery_pct": 0.0, "rssi_dbm": -103.5}, id="hydrant-full"),
    pytest.param("smoke_detector", {"alarm": False}, {"alarm": False}, id="smoke-minimal"),
    pytest.param("smoke_detector", {"alarm": True, "battery_pct": 57.5, "tamper": False},
                 {"alarm": True, "battery_pct": 57.5, "tamper": False}, id="smoke-full"),
    pytest.param("drain_level", {"level_m": 0.35}, {"level_m": 0.35}, id="drain-minimal"),
    pytest.param("drain_level", {"level_m": 0, "cover_tilt_deg": 180, "cover_open": True},
                 {"level_m": 0.0, "cover_tilt_deg": 180.0, "cover_open": True}, id="drain-full-tilt-at-max"),
    pytest.param("drain_level", {"level_m": 1.2, "cover_tilt_deg": 0}, {"level_m": 1.2, "cover_tilt_deg": 0.0},
                 id="drain-tilt-at-min"),
    pytest.param("streetlight", {"on": True, "current_a": 0.4, "voltage_v": None},
                 {"on": True, "current_a": 0.4}, id="optional-null-ignored"),
]


@pytest.mark.parametrize(("kind", "payload", "fields"), VALID)
def test_valid_payloads(kind: str, payload: dict, fields: dict) -> None:
    r = accepted(decode(kind, payload))
    assert r.kind == kind
    assert r.device == "dev-1"
    assert dict(r.fields) == fields
    for name, value in r.fields.items():  # numbers become floats, booleans stay booleans
        assert type(value) is type(fields[name]), name
    assert r.ts == NOW
    assert r.received_at == NOW
    assert r.seq is None
    assert r.key is None


# -- rejected payloads ------------------------------------------------------------------------------

MISSING = [
    pytest.param(kind, name, id=f"{kind}-without-{name}")
    for kind in READING_KINDS
    for name, spec in KINDS[kind].fields.items()
    if spec.required
]
MINIMAL = {
    "streetlight": {"on": True, "current_a": 0.41},
    "fire_extinguisher": {"pressure_mpa": 1.18},
    "fire_hydrant": {"pressure_mpa": 0.32},
    "smoke_detector": {"alarm": False},
    "drain_level": {"level_m": 0.35},
}


def test_minimal_payloads_cover_every_reading_kind() -> None:
    assert sorted(MINIMAL) == sorted(READING_KINDS)


@pytest.mark.parametrize(("kind", "missing"), MISSING)
def test_each_required_field_missing(kind: str, missing: str) -> None:
    payload = {k: v for k, v in MINIMAL[kind].items() if k != missing}
    rej = rejected(decode(kind, payload), "schema")
    assert missing in rej.detail
    assert re.search("missing|required", rej.detail, re.IGNORECASE), rej.detail


BAD_FIELDS = [
    # wrong types
    pytest.param("streetlight", {"on": "true", "current_a": 0.4}, "on", id="string-for-bool"),
    pytest.param("streetlight", {"on": 1, "current_a": 0.4}, "on", id="number-for-bool"),
    pytest.param("streetlight", {"on": True, "current_a": "0.4"}, "current_a", id="string-for-number"),
    pytest.param("streetlight", {"on": True, "current_a": True}, "current_a", id="bool-for-number"),
    pytest.param("streetlight", {"on": True, "current_a": [0.4]}, "current_a", id="list-for-number"),
    pytest.param("streetlight", {"on": True, "current_a": {"v": 0.4}}, "current_a", id="object-for-number"),
    pytest.param("streetlight", {"on": None, "current_a": 0.4}, "on", id="null-for-required-bool"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 1.1, "present": 1}, "present", id="number-for-optional-bool"),
    pytest.param("fire_hydrant", {"pressure_mpa": False}, "pressure_mpa", id="hydrant-bool-for-number"),
    pytest.param("smoke_detector", {"alarm": "no"}, "alarm", id="smoke-string-for-bool"),
    pytest.param("smoke_detector", {"alarm": False, "tamper": 0}, "tamper", id="smoke-number-for-tamper"),
    pytest.param("drain_level", {"level_m": False}, "level_m", id="drain-bool-for-number"),
    pytest.param("drain_level", {"level_m": 0.3, "cover_open": "yes"}, "cover_open", id="drain-string-for-bool"),
    pytest.param("smoke_detector", {"alarm": False, "battery_pct": "90"}, "battery_pct", id="common-string"),
    pytest.param("streetlight", {"on": True, "current_a": 1, "rssi_dbm": True}, "rssi_dbm", id="common-bool"),
    # bounds
    pytest.param("streetlight", {"on": True, "current_a": -0.01}, "current_a", id="negative-current"),
    pytest.param("streetlight", {"on": True, "current_a": 0.4, "voltage_v": -1}, "voltage_v", id="negative-voltage"),
    pytest.param("fire_extinguisher", {"pressure_mpa": -0.1}, "pressure_mpa", id="negative-pressure"),
    pytest.param("drain_level", {"level_m": -0.2}, "level_m", id="negative-level"),
    pytest.param("drain_level", {"level_m": 0.3, "cover_tilt_deg": 180.5}, "cover_tilt_deg", id="tilt-over-180"),
    pytest.param("drain_level", {"level_m": 0.3, "cover_tilt_deg": -1}, "cover_tilt_deg", id="tilt-negative"),
    pytest.param("smoke_detector", {"alarm": False, "battery_pct": 101}, "battery_pct", id="battery-101"),
    pytest.param("smoke_detector", {"alarm": False, "battery_pct": -1}, "battery_pct", id="battery-negative"),
]


@pytest.mark.parametrize(("kind", "payload", "field"), BAD_FIELDS)
def test_bad_field_values(kind: str, payload: dict, field: str) -> None:
    rej = rejected(decode(kind, payload), "schema")
    assert field in rej.detail


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"on": true, "current_a": NaN}', id="NaN"),
        pytest.param(b'{"on": true, "current_a": Infinity}', id="Infinity"),
        pytest.param(b'{"on": true, "current_a": -Infinity}', id="minus-Infinity"),
        pytest.param(b'{"on": true, "current_a": 0.4, "extra": NaN}', id="NaN-in-extra-field"),
    ],
)
def test_nan_and_infinity_literals_rejected(payload: bytes) -> None:
    """Not JSON (RFC 8259), and not a value InfluxDB can store: the payload is refused."""
    result = decode("streetlight", payload)
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    assert result.reason in ("bad_json", "schema"), result


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"on": true, "current_a": 1e400}', id="float-overflow"),
        pytest.param(b'{"on": true, "current_a": 1' + b"0" * 400 + b"}", id="huge-integer"),
        pytest.param(b'{"on": true, "current_a": 0.4, "extra": 1' + b"0" * 400 + b"}", id="huge-integer-extra"),
        pytest.param(b'{"on": true, "current_a": 0.4, "ts": 1' + b"0" * 400 + b"}", id="huge-integer-ts"),
    ],
)
def test_numbers_beyond_float_range_are_refused_not_raised(payload: bytes) -> None:
    """A number JSON can spell but a double cannot hold is a bad payload, never an exception or ``inf``."""
    result = decode("streetlight", payload)
    if isinstance(result, Reading):  # an overflowing extra may be dropped, but nothing infinite is kept
        assert "current_a" in result.fields
        assert all(v in (True, False) or abs(v) < float("inf") for v in result.fields.values()), result.fields
        assert "extra" not in result.fields
    else:
        assert result.reason in ("schema", "bad_json"), result


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b'[{"on": true, "current_a": 0.4}]', id="array-of-object"),
        pytest.param(b'"on"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b"true", id="bool"),
    ],
)
def test_payload_not_an_object(payload: bytes) -> None:
    rej = rejected(decode("streetlight", payload), "schema")
    assert "object" in rej.detail


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"on": tru', id="truncated"),
        pytest.param(b'{"on": true, "current_a": 0.4,}', id="trailing-comma"),
        pytest.param(b"{'on': true}", id="single-quotes"),
        pytest.param(b"online", id="plain-text"),
        pytest.param(b'{"on": true, "current_a": 0.4, "note": "\xff\xfe\xfa"}', id="bad-utf8"),
        pytest.param(b'{"on": true, "current_a": 0.4, "note": "\xc3"}', id="truncated-utf8"),
    ],
)
def test_bad_json_and_bad_utf8(payload: bytes) -> None:
    rejected(decode("streetlight", payload), "bad_json")


# -- device time -----------------------------------------------------------------------------------

TIMES = [
    pytest.param(NOW - 10.5, NOW - 10.5, id="epoch-float"),
    pytest.param(int(NOW) - 10, NOW - 10, id="epoch-int"),
    pytest.param("2025-11-21T07:59:50Z", NOW - 10, id="rfc3339-Z"),
    pytest.param("2025-11-21T15:59:50+08:00", NOW - 10, id="rfc3339-plus-0800"),
    pytest.param("2025-11-21T02:59:50-05:00", NOW - 10, id="rfc3339-minus-0500"),
    pytest.param("2025-11-21T07:59:50.250Z", NOW - 9.75, id="rfc3339-fraction"),
    pytest.param(NOW + 299, NOW + 299, id="ahead-within-skew"),
    pytest.param(NOW - 7 * DAY, NOW - 7 * DAY, id="exactly-max-age"),
]


@pytest.mark.parametrize(("ts", "stored"), TIMES)
def test_device_time_is_stored(ts: float | str, stored: float) -> None:
    r = accepted(decode("fire_hydrant", {"ts": ts, "seq": 3, "pressure_mpa": 0.3}))
    assert r.ts == pytest.approx(stored, abs=1e-6)
    assert r.flags == frozenset()
    assert r.received_at == NOW
    assert r.key == (3, r.ts)


@pytest.mark.parametrize(
    "ts",
    [
        pytest.param("2025-11-21T07:59:50", id="no-offset"),
        pytest.param("2025-11-21", id="date-only"),
        pytest.param("yesterday", id="not-a-time"),
        pytest.param("", id="empty-string"),
        pytest.param(True, id="bool"),
        pytest.param(-1, id="negative-epoch"),
        pytest.param([NOW], id="list"),
        pytest.param({"s": NOW}, id="object"),
    ],
)
def test_bad_ts_rejected(ts: object) -> None:
    rej = rejected(decode("fire_hydrant", {"ts": ts, "pressure_mpa": 0.3}), "schema")
    assert "ts" in rej.detail


def test_ts_without_offset_says_so() -> None:
    rej = rejected(decode("fire_hydrant", {"ts": "2025-11-21T07:59:50", "pressure_mpa": 0.3}), "schema")
    assert "offset" in rej.detail


def test_ts_absent_uses_receive_time() -> None:
    r = accepted(decode("fire_hydrant", {"pressure_mpa": 0.3}))
    assert r.ts == NOW
    assert "late" not in r.flags


@pytest.mark.parametrize(
    "ts",
    [
        pytest.param(NOW + 301, id="epoch"),
        pytest.param("2025-11-21T16:10:00+08:00", id="rfc3339"),
        pytest.param(NOW + 365 * DAY, id="a-year-ahead"),
    ],
)
def test_ts_ahead_beyond_skew_uses_receive_time_and_flags_clock_skew(ts: float | str) -> None:
    r = accepted(decode("fire_hydrant", {"ts": ts, "pressure_mpa": 0.3}))
    assert r.ts == NOW
    assert r.flags == frozenset({"clock_skew"})


def test_ts_older_than_max_age_is_too_old() -> None:
    rej = rejected(decode("fire_hydrant", {"ts": NOW - 7 * DAY - 1, "pressure_mpa": 0.3}), "too_old")
    assert "old" in rej.detail


def test_ts_older_than_newest_is_kept_and_flagged_late() -> None:
    r = accepted(decode("fire_hydrant", {"ts": NOW - 3600, "pressure_mpa": 0.3}, newest=NOW - 60))
    assert r.ts == NOW - 3600
    assert r.flags == frozenset({"late"})


def test_ts_equal_to_newest_is_not_late() -> None:
    r = accepted(decode("fire_hydrant", {"ts": NOW - 60, "pressure_mpa": 0.3}, newest=NOW - 60))
    assert r.flags == frozenset()


def test_ts_newer_than_newest_is_not_late() -> None:
    r = accepted(decode("fire_hydrant", {"ts": NOW - 10, "pressure_mpa": 0.3}, newest=NOW - 60))
    assert r.flags == frozenset()


def test_policy_limits_are_used() -> None:
    policy = Policy(max_skew_s=10, max_age_s=60)
    assert accepted(decode("fire_hydrant", {"ts": NOW + 11, "pressure_mpa": 0}, policy=policy)).flags == {"clock_skew"}
    assert accepted(decode("fire_hydrant", {"ts": NOW + 9, "pressure_mpa": 0}, policy=policy)).ts == NOW + 9
    rejected(decode("fire_hydrant", {"ts": NOW - 61, "pressure_mpa": 0}, policy=policy), "too_old")


# -- seq ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seq",
    [
        pytest.param(-1, id="negative"),
        pytest.param(True, id="bool"),
        pytest.param(1.0, id="float"),
        pytest.param(2.5, id="fraction"),
        pytest.param("3", id="string"),
        pytest.param([3], id="list"),
        pytest.param(2**63, id="beyond-int64"),
    ],
)
def test_bad_seq_rejected(seq: object) -> None:
    """seq is stored as an InfluxDB integer and a SQLite INTEGER: both are signed 64-bit."""
    rej = rejected(decode("fire_hydrant", {"seq": seq, "pressure_mpa": 0.3}), "schema")
    assert "seq" in rej.detail


@pytest.mark.parametrize("seq", [0, 1, 4711, 2**63 - 1])
def test_good_seq_kept(seq: int) -> None:
    r = accepted(decode("fire_hydrant", {"seq": seq, "pressure_mpa": 0.3}))
    assert r.seq == seq
    assert "seq" not in r.fields


# -- extra fields ------------------------------------------------------------------------------------


def test_unknown_numeric_and_bool_extras_kept_others_dropped() -> None:
    payload = {
        "on": True, "current_a": 0.4,
        "temp_c": 21, "driver_ok": False, "dim_pct": 37.5,
        "note": "replaced driver", "meta": {"fw": 3}, "history": [1, 2], "nothing": None,
    }
    r = accepted(decode("streetlight", payload))
    assert dict(r.fields) == {"on": True, "current_a": 0.4, "temp_c": 21.0, "driver_ok": False, "dim_pct": 37.5}
    assert type(r.fields["temp_c"]) is float
    assert r.fields["driver_ok"] is False


def test_ts_and_seq_are_not_fields() -> None:
    r = accepted(decode("fire_hydrant", {"ts": NOW - 1, "seq": 9, "pressure_mpa": 0.3}))
    assert set(r.fields) == {"pressure_mpa"}


# -- dedupe keys -------------------------------------------------------------------------------------


def test_key_with_ts_is_seq_and_ts() -> None:
    r = accepted(decode("streetlight", {"ts": "2025-11-21T07:59:00Z", "seq": 4711, "on": True, "current_a": 0.41}))
    assert r.key == (4711, NOW - 60)


def test_key_without_ts_is_seq_and_crc_of_the_bytes() -> None:
    raw = b'{"seq": 12, "level_m": 0.35}'
    r = accepted(decode("drain_level", raw))
    assert r.key == (12, float(zlib.crc32(raw)))


def test_key_when_ts_is_replaced_by_receive_time_uses_crc() -> None:
    raw = json.dumps({"ts": NOW + 3600, "seq": 5, "level_m": 0.35}).encode()
    r = accepted(decode("drain_level", raw))
    assert r.flags == frozenset({"clock_skew"})
    assert r.key == (5, float(zlib.crc32(raw)))


def test_no_seq_no_key() -> None:
    assert accepted(decode("drain_level", {"ts": NOW - 5, "level_m": 0.35})).key is None
    assert accepted(decode("drain_level", {"level_m": 0.35})).key is None


def test_reboot_same_seq_other_time_other_key() -> None:
    before = accepted(decode("drain_level", {"ts": NOW - 600, "seq": 0, "level_m": 0.35}))
    after = accepted(decode("drain_level", {"ts": NOW - 5, "seq": 0, "level_m": 0.35}))
    assert before.key != after.key


def test_same_bytes_same_key_other_bytes_other_key() -> None:
    a = accepted(decode("drain_level", b'{"seq": 1, "level_m": 0.35}'))
    again = accepted(decode("drain_level", b'{"seq": 1, "level_m": 0.35}'))
    other = accepted(decode("drain_level", b'{"seq": 1, "level_m": 0.36}'))
    assert a.key == again.key
    assert a.key != other.key


# -- taps ---------------------------------------------------------------------------------------------


def tap(payload: dict | bytes, newest: float | None = None) -> Tap | Rejection:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode_tap("phone-7", raw, NOW, newest)


def tap_ok(result: Tap | Rejection) -> Tap:
    assert isinstance(result, Tap), f"expected a tap, got {result!r}"
    return result


def test_contract_tap_example() -> None:
    t = tap_ok(tap({"ts": "2025-11-21T15:59:09+08:00", "tag": "04A224B2C15E80", "badge": "G017"}))
    assert (t.reader, t.tag, t.badge, t.ts, t.received_at) == ("phone-7", "04A224B2C15E80", "G017", NOW - 51, NOW)
    assert t.flags == frozenset()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("04a224b2c15e80", id="lowercase"),
        pytest.param("04:A2:24:B2:C1:5E:80", id="colons"),
        pytest.param("04:a2:24:b2:c1:5e:80", id="lowercase-colons"),
        pytest.param("  04A224B2C15E80\r\n", id="surrounding-whitespace"),
    ],
)
def test_tag_normalized(raw: str) -> None:
    assert tap_ok(tap({"tag": raw})).tag == "04A224B2C15E80"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({}, id="missing"),
        pytest.param({"tag": None}, id="null"),
        pytest.param({"tag": 4711}, id="number"),
        pytest.param({"tag": ""}, id="empty"),
        pytest.param({"tag": "04A"}, id="odd-length"),
        pytest.param({"tag": "04G224"}, id="not-hex"),
        pytest.param({"tag": "04-A2-24"}, id="dash-separators"),
        pytest.param({"tag": "04 A2 24"}, id="space-separators"),
        pytest.param({"tag": "AB" * 33}, id="too-long"),
    ],
)
def test_bad_tags_rejected(payload: dict) -> None:
    rej = tap({"badge": "G017", **payload})
    assert isinstance(rej, Rejection)
    assert rej.reason == "schema"
    assert "tag" in rej.detail


@pytest.mark.parametrize("badge", ["G017", "guard.li@park-1", "a", "x" * 64, "team_2"])
def test_good_badges(badge: str) -> None:
    assert tap_ok(tap({"tag": "04A2", "badge": badge})).badge == badge


@pytest.mark.parametrize(
    "badge",
    [
        pytest.param("", id="empty"),
        pytest.param("G 017", id="space"),
        pytest.param("x" * 65, id="too-long"),
        pytest.param(17, id="number"),
        pytest.param(True, id="bool"),
        pytest.param('G"017', id="quote"),
        pytest.param("G017\n", id="newline"),
    ],
)
def test_bad_badges_rejected(badge: object) -> None:
    rej = tap({"tag": "04A2", "badge": badge})
    assert isinstance(rej, Rejection)
    assert rej.reason == "schema"
    assert "badge" in rej.detail


def test_badge_optional() -> None:
    assert tap_ok(tap({"tag": "04A2"})).badge is None
    assert tap_ok(tap({"tag": "04A2", "badge": None})).badge is None


def test_tap_bad_json_and_not_object() -> None:
    assert tap(b'{"tag": ').reason == "bad_json"  # type: ignore[union-attr]
    assert tap(b'["04A2"]').reason == "schema"  # type: ignore[union-attr]


def test_tap_time_rules() -> None:
    assert tap_ok(tap({"tag": "04A2", "ts": NOW + 3600})).flags == frozenset({"clock_skew"})
    assert tap_ok(tap({"tag": "04A2", "ts": NOW - 600}, newest=NOW - 60)).flags == frozenset({"late"})
    too_old = tap({"tag": "04A2", "ts": NOW - 8 * DAY})
    assert isinstance(too_old, Rejection)
    assert too_old.reason == "too_old"
    bad_seq = tap({"tag": "04A2", "seq": -3})
    assert isinstance(bad_seq, Rejection)
    assert "seq" in bad_seq.detail


def test_tap_key_with_seq() -> None:
    t = tap_ok(tap({"tag": "04A2", "seq": 8, "ts": NOW - 2}))
    assert (t.seq, t.key) == (8, (8, NOW - 2))


def test_tap_key_for_reader_without_seq() -> None:
    """A reader without a counter: the same tag at the same instant is a repeat."""
    first = tap_ok(tap({"tag": "04A2", "ts": NOW - 2}))
    again = tap_ok(tap({"tag": "04:a2", "ts": NOW - 2}))
    later = tap_ok(tap({"tag": "04A2", "ts": NOW - 1}))
    assert first.key is not None
    assert first.key == again.key
    assert later.key != first.key


def test_tap_key_without_seq_tells_different_tags_apart() -> None:
    """Two different tags read in the same second are two taps, not a repeat of one."""
    a = tap_ok(tap({"tag": "04A224B2C15E80", "ts": "2025-11-21T15:59:09+08:00"}))
    b = tap_ok(tap({"tag": "04A224B2C15E81", "ts": "2025-11-21T15:59:09+08:00"}))
    assert a.key is not None
    assert b.key is not None
    assert a.key != b.key


def test_tap_without_seq_or_ts_has_no_key() -> None:
    t = tap_ok(tap({"tag": "04A2"}))
    assert t.ts == NOW
    assert t.key is None


# -- JSON schema -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KINDS))
def test_json_schema_matches_field_table(name: str) -> None:
    kind = KINDS[name]
    schema = kind.json_schema()
    json.dumps(schema)  # serializable as served by the API
    assert schema["title"] == name
    assert schema["type"] == "object"
    required = {n for n, s in kind.fields.items() if s.required} | set(kind.json_required)
    assert set(schema["required"]) == required
    assert len(schema["required"]) == len(required)
    props = schema["properties"]
    assert props["seq"]["type"] == "integer"
    assert props["seq"]["minimum"] == 0
    assert "string" in props["ts"]["type"]
    assert "number" in props["ts"]["type"]
    for field_name, spec in kind.fields.items():
        assert props[field_name]["type"] == ("boolean" if spec.type is bool else "number")
        if spec.min is not None:
            assert props[field_name]["minimum"] == spec.min
        if spec.max is not None:
            assert props[field_name]["maximum"] == spec.max


def test_json_schema_bounds_of_drain_level() -> None:
    props = KINDS["drain_level"].json_schema()["properties"]
    assert (props["cover_tilt_deg"]["minimum"], props["cover_tilt_deg"]["maximum"]) == (0, 180)
    assert (props["battery_pct"]["minimum"], props["battery_pct"]["maximum"]) == (0, 100)
    assert props["cover_open"]["type"] == "boolean"


def test_json_schema_of_checkpoint_describes_a_tap() -> None:
    """The API serves this schema to reader makers: a tap needs ``tag``, may carry ``badge``."""
    schema = KINDS["checkpoint"].json_schema()
    assert schema["required"] == ["tag"]
    assert schema["properties"]["tag"]["type"] == "string"
    assert schema["properties"]["badge"]["type"] == "string"
