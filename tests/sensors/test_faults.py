"""Each kind's fault declarations and pure check against COMMITMENTS.md "what makes an asset not intact".

A check judges one reading: boundaries are exact (a value at a limit is healthy, just
past it is a fault), and a missing optional field or an absent limit judges nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from gateway.sensors import KINDS
from gateway.sensors.base import PRIORITIES, CheckContext, Debounce, Reading, decode_reading

READING_KINDS = [name for name, kind in KINDS.items() if kind.category is not None]


def run(kind: str, fields: Mapping[str, float | bool], lit: bool | None = None, **limits: float) -> set[str]:
    """The check of ``kind`` with its default limits, overridden or extended by ``limits``."""
    k = KINDS[kind]
    assert k.check is not None
    result = k.check(fields, CheckContext({**k.limits, **limits}, lit))
    assert isinstance(result, frozenset)
    assert result <= set(k.faults), f"undeclared codes {result - set(k.faults)}"
    return set(result)


# -- declarations -----------------------------------------------------------------------------------

DECLARED = [
    pytest.param("streetlight", "lamp_out", "general", True, id="streetlight-lamp_out"),
    pytest.param("streetlight", "power_fault", "urgent", True, id="streetlight-power_fault"),
    pytest.param("streetlight", "day_burning", "general", False, id="streetlight-day_burning"),
    pytest.param("fire_extinguisher", "pressure_low", "emergency", True, id="extinguisher-pressure_low"),
    pytest.param("fire_extinguisher", "pressure_high", "emergency", True, id="extinguisher-pressure_high"),
    pytest.param("fire_extinguisher", "removed", "emergency", True, id="extinguisher-removed"),
    pytest.param("fire_hydrant", "pressure_low", "emergency", True, id="hydrant-pressure_low"),
    pytest.param("smoke_detector", "tamper", "emergency", True, id="smoke-tamper"),
    pytest.param("smoke_detector", "battery_low", "emergency", True, id="smoke-battery_low"),
    pytest.param("drain_level", "cover_displaced", "emergency", True, id="drain-cover_displaced"),
    pytest.param("drain_level", "overflow", "emergency", True, id="drain-overflow"),
    pytest.param("drain_level", "level_high", "urgent", True, id="drain-level_high"),
]


@pytest.mark.parametrize(("kind", "code", "priority", "counts"), DECLARED)
def test_fault_is_declared_with_its_priority(kind: str, code: str, priority: str, counts: bool) -> None:
    spec = KINDS[kind].faults[code]
    assert (spec.code, spec.priority, spec.counts) == (code, priority, counts)
    assert spec.zh and spec.en


@pytest.mark.parametrize("kind", READING_KINDS)
def test_kind_declares_exactly_the_listed_faults(kind: str) -> None:
    k = KINDS[kind]
    assert set(k.faults) == {p.values[1] for p in DECLARED if p.values[0] == kind}
    assert all(code == spec.code and spec.priority in PRIORITIES for code, spec in k.faults.items())
    assert k.check is not None
    assert k.debounce == Debounce()
    assert not set(k.rated) & set(k.limits), "a rated value has no default"


@pytest.mark.parametrize(
    ("kind", "limits", "rated", "alarm_field"),
    [
        pytest.param("streetlight", {"min_ratio": 0.8, "min_current_a": 0.05, "voltage_min_v": 180.0,
                                     "voltage_max_v": 265.0}, ("current_a", "power_w"), None, id="streetlight"),
        pytest.param("fire_extinguisher", {"green_min_mpa": 1.0, "green_max_mpa": 1.4}, (), None, id="extinguisher"),
        pytest.param("fire_hydrant", {"min_pressure_mpa": 0.10}, (), None, id="hydrant"),
        pytest.param("smoke_detector", {"battery_min_pct": 20.0}, (), "alarm", id="smoke"),
        pytest.param("drain_level", {"max_tilt_deg": 10.0, "tilt_baseline_deg": 0.0}, ("depth_m", "alarm_level_m"),
                     None, id="drain"),
    ],
)
def test_default_limits_and_rated_values(kind: str, limits: dict, rated: tuple, alarm_field: str | None) -> None:
    k = KINDS[kind]
    assert (dict(k.limits), k.rated, k.alarm_field) == (limits, rated, alarm_field)


# -- checks -----------------------------------------------------------------------------------------

ON, OFF = {"on": True}, {"on": False}

STREETLIGHT = [
    # (fields, lit_expected, limits, expected)
    pytest.param({**ON, "current_a": 0.41}, True, {"current_a": 0.5}, set(), id="lit-as-expected"),
    pytest.param({**ON, "current_a": 0.4}, True, {"current_a": 0.5}, set(), id="current-exactly-80pct-ok"),
    pytest.param({**ON, "current_a": 0.399}, True, {"current_a": 0.5}, {"lamp_out"}, id="current-just-under-80pct"),
    pytest.param({**OFF, "current_a": 0.0}, True, {}, {"lamp_out"}, id="dark-when-expected-lit"),
    pytest.param({**OFF, "current_a": 0.45}, True, {"current_a": 0.5}, {"lamp_out"}, id="off-flag-when-expected-lit"),
    pytest.param({**OFF, "current_a": 0.0}, None, {}, set(), id="dark-not-judged-without-sun"),
    pytest.param({**OFF, "current_a": 0.0}, False, {}, set(), id="dark-by-day-ok"),
    pytest.param({**ON, "current_a": 0.1}, None, {"current_a": 0.5}, {"lamp_out"}, id="on-but-dim-whenever"),
    pytest.param({**ON, "current_a": 0.45}, None, {"current_a": 0.5}, set(), id="on-unknown-sun-ok"),
    pytest.param({**ON, "current_a": 0.45}, False, {"current_a": 0.5}, {"day_burning"}, id="day-burning"),
    pytest.param({**ON, "current_a": 0.4}, False, {"current_a": 0.5}, {"day_burning"}, id="day-burning-at-80pct"),
    pytest.param({**ON, "current_a": 0.01}, False, {"current_a": 0.5}, {"lamp_out"}, id="on-by-day-but-dim-is-out"),
    pytest.param({**ON, "current_a": 0.05}, True, {}, set(), id="no-rating-floor-exact-ok"),
    pytest.param({**ON, "current_a": 0.049}, True, {}, {"lamp_out"}, id="no-rating-under-floor"),
    pytest.param({**ON, "current_a": 0.049}, True, {"min_current_a": 0.02}, set(), id="floor-overridden"),
    pytest.param({**ON, "current_a": 0.3}, True, {"current_a": 0.5, "min_ratio": 0.5}, set(), id="ratio-overridden"),
    pytest.param({**ON, "current_a": 0.45, "power_w": 80.0}, True, {"current_a": 0.5, "power_w": 100.0}, set(),
                 id="power-exactly-80pct-ok"),
    pytest.param({**ON, "current_a": 0.45, "power_w": 79.9}, True, {"current_a": 0.5, "power_w": 100.0},
                 {"lamp_out"}, id="power-just-under-80pct"),
    pytest.param({**ON, "current_a": 0.45, "power_w": 79.9}, False, {"current_a": 0.5, "power_w": 100.0},
                 {"lamp_out"}, id="power-low-by-day-is-out-not-burning"),
    pytest.param({**ON, "current_a": 0.45, "power_w": 1.0}, True, {"current_a": 0.5}, set(),
                 id="power-not-judged-without-rating"),
    pytest.param({**ON, "current_a": 0.45}, True, {"current_a": 0.5, "power_w": 100.0}, set(),
                 id="power-not-judged-without-field"),
    pytest.param({**ON, "current_a": 0.45, "voltage_v": 180.0}, True, {"current_a": 0.5}, set(), id="volts-at-min-ok"),
    pytest.param({**ON, "current_a": 0.45, "voltage_v": 179.9}, True, {"current_a": 0.5}, {"power_fault"},
                 id="volts-just-under-min"),
    pytest.param({**ON, "current_a": 0.45, "voltage_v": 265.0}, True, {"current_a": 0.5}, set(), id="volts-at-max-ok"),
    pytest.param({**ON, "current_a": 0.45, "voltage_v": 265.1}, True, {"current_a": 0.5}, {"power_fault"},
                 id="volts-just-over-max"),
    pytest.param({**OFF, "current_a": 0.0, "voltage_v": 0.0}, False, {}, {"power_fault"}, id="no-supply-by-day"),
    pytest.param({**OFF, "current_a": 0.0, "voltage_v": 0.0}, True, {}, {"power_fault", "lamp_out"},
                 id="no-supply-at-night"),
    pytest.param({**ON, "current_a": 0.45, "voltage_v": 170.0}, True, {"current_a": 0.5, "voltage_min_v": 160.0},
                 set(), id="volts-min-overridden"),
]


@pytest.mark.parametrize(("fields", "lit", "limits", "expected"), STREETLIGHT)
def test_streetlight(fields: dict, lit: bool | None, limits: dict, expected: set[str]) -> None:
    assert run("streetlight", fields, lit, **limits) == expected


CHECKS = [
    # fire_extinguisher: the gauge's green zone is inclusive at both ends
    pytest.param("fire_extinguisher", {"pressure_mpa": 1.18, "present": True}, {}, set(), id="ext-healthy"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 1.0}, {}, set(), id="ext-at-green-min-ok"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 0.99}, {}, {"pressure_low"}, id="ext-just-under-green"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 0.0}, {}, {"pressure_low"}, id="ext-empty"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 1.4}, {}, set(), id="ext-at-green-max-ok"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 1.41}, {}, {"pressure_high"}, id="ext-just-over-green"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 1.2, "present": False}, {}, {"removed"}, id="ext-removed"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 0.5, "present": False}, {}, {"removed", "pressure_low"},
                 id="ext-removed-and-low"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 0.9}, {"green_min_mpa": 0.8}, set(), id="ext-zone-overridden"),
    # fire_hydrant
    pytest.param("fire_hydrant", {"pressure_mpa": 0.32}, {}, set(), id="hydrant-healthy"),
    pytest.param("fire_hydrant", {"pressure_mpa": 0.10}, {}, set(), id="hydrant-at-min-ok"),
    pytest.param("fire_hydrant", {"pressure_mpa": 0.099}, {}, {"pressure_low"}, id="hydrant-just-under-min"),
    pytest.param("fire_hydrant", {"pressure_mpa": 0.0}, {}, {"pressure_low"}, id="hydrant-dry"),
    pytest.param("fire_hydrant", {"pressure_mpa": 0.12}, {"min_pressure_mpa": 0.14}, {"pressure_low"},
                 id="hydrant-municipal-minimum"),
    # smoke_detector: the alarm itself is not a fault
    pytest.param("smoke_detector", {"alarm": False}, {}, set(), id="smoke-quiet"),
    pytest.param("smoke_detector", {"alarm": True, "battery_pct": 90.0, "tamper": False}, {}, set(),
                 id="smoke-alarm-is-not-a-fault"),
    pytest.param("smoke_detector", {"alarm": False, "tamper": True}, {}, {"tamper"}, id="smoke-tamper"),
    pytest.param("smoke_detector", {"alarm": False, "battery_pct": 20.0}, {}, set(), id="smoke-battery-at-min-ok"),
    pytest.param("smoke_detector", {"alarm": False, "battery_pct": 19.9}, {}, {"battery_low"},
                 id="smoke-battery-just-under-min"),
    pytest.param("smoke_detector", {"alarm": True, "battery_pct": 5.0, "tamper": True}, {}, {"battery_low", "tamper"},
                 id="smoke-both-faults"),
    pytest.param("smoke_detector", {"alarm": False, "battery_pct": 25.0}, {"battery_min_pct": 30.0}, {"battery_low"},
                 id="smoke-battery-min-overridden"),
    # drain_level
    pytest.param("drain_level", {"level_m": 0.35}, {}, set(), id="drain-level-not-judged-without-rating"),
    pytest.param("drain_level", {"level_m": 0.35, "cover_open": True}, {}, {"cover_displaced"}, id="drain-cover-open"),
    pytest.param("drain_level", {"level_m": 0.35, "cover_open": False}, {}, set(), id="drain-cover-closed"),
    pytest.param("drain_level", {"level_m": 0.35, "cover_tilt_deg": 10.0}, {}, set(), id="drain-tilt-at-max-ok"),
    pytest.param("drain_level", {"level_m": 0.35, "cover_tilt_deg": 10.1}, {}, {"cover_displaced"},
                 id="drain-tilt-just-over-max"),
    pytest.param("drain_level", {"level_m": 0.35, "cover_tilt_deg": 15.0}, {"tilt_baseline_deg": 5.0}, set(),
                 id="drain-tilt-at-max-from-baseline-ok"),
    pytest.param("drain_level", {"level_m": 0.35, "cover_tilt_deg": 15.1}, {"tilt_baseline_deg": 5.0},
                 {"cover_displaced"}, id="drain-tilt-over-max-from-baseline"),
    pytest.param("drain_level", {"level_m": 0.35, "cover_tilt_deg": 1.9}, {"tilt_baseline_deg": 12.0},
                 {"cover_displaced"}, id="drain-tilt-below-baseline"),
    pytest.param("drain_level", {"level_m": 0.35, "cover_tilt_deg": 20.0}, {"max_tilt_deg": 25.0}, set(),
                 id="drain-max-tilt-overridden"),
    pytest.param("drain_level", {"level_m": 1.5}, {"alarm_level_m": 1.5, "depth_m": 2.0}, set(),
                 id="drain-level-at-alarm-ok"),
    pytest.param("drain_level", {"level_m": 1.51}, {"alarm_level_m": 1.5, "depth_m": 2.0}, {"level_high"},
                 id="drain-level-just-over-alarm"),
    pytest.param("drain_level", {"level_m": 1.99}, {"alarm_level_m": 1.5, "depth_m": 2.0}, {"level_high"},
                 id="drain-level-just-under-depth"),
    pytest.param("drain_level", {"level_m": 2.0}, {"alarm_level_m": 1.5, "depth_m": 2.0}, {"overflow"},
                 id="drain-level-at-depth-overflows"),
    pytest.param("drain_level", {"level_m": 2.0}, {"depth_m": 2.0}, {"overflow"}, id="drain-overflow-without-alarm"),
    pytest.param("drain_level", {"level_m": 1.9}, {"alarm_level_m": 1.5}, {"level_high"},
                 id="drain-high-without-depth"),
    pytest.param("drain_level", {"level_m": 2.5, "cover_open": True}, {"alarm_level_m": 1.5, "depth_m": 2.0},
                 {"overflow", "cover_displaced"}, id="drain-open-and-overflowing"),
]


@pytest.mark.parametrize(("kind", "fields", "limits", "expected"), CHECKS)
def test_check(kind: str, fields: dict, limits: dict, expected: set[str]) -> None:
    assert run(kind, fields, None, **limits) == expected


ABSENT_LIMITS = [
    pytest.param("streetlight", {"on": True, "current_a": 0.0, "voltage_v": 0.0}, None, set(),
                 id="streetlight-nothing-numeric"),
    pytest.param("streetlight", {"on": False, "current_a": 0.0}, True, {"lamp_out"}, id="streetlight-dark-still-out"),
    pytest.param("fire_extinguisher", {"pressure_mpa": 0.0, "present": False}, None, {"removed"},
                 id="extinguisher-only-removed"),
    pytest.param("fire_hydrant", {"pressure_mpa": 0.0}, None, set(), id="hydrant-nothing"),
    pytest.param("smoke_detector", {"alarm": True, "battery_pct": 0.0, "tamper": True}, None, {"tamper"},
                 id="smoke-only-tamper"),
    pytest.param("drain_level", {"level_m": 9.0, "cover_tilt_deg": 90.0}, None, set(), id="drain-nothing"),
]


@pytest.mark.parametrize(("kind", "fields", "lit", "expected"), ABSENT_LIMITS)
def test_an_absent_limit_judges_nothing(kind: str, fields: dict, lit: bool | None, expected: set[str]) -> None:
    check = KINDS[kind].check
    assert check is not None
    assert set(check(fields, CheckContext({}, lit))) == expected


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        pytest.param("streetlight", {"on": True, "current_a": 0.01, "voltage_v": 300}, {"lamp_out", "power_fault"},
                     id="streetlight"),
        pytest.param("fire_extinguisher", {"pressure_mpa": 2, "present": False}, {"pressure_high", "removed"},
                     id="extinguisher"),
        pytest.param("fire_hydrant", {"pressure_mpa": 0}, {"pressure_low"}, id="hydrant"),
        pytest.param("smoke_detector", {"alarm": True, "battery_pct": 3, "tamper": True}, {"battery_low", "tamper"},
                     id="smoke"),
        pytest.param("drain_level", {"level_m": 0.1, "cover_tilt_deg": 45}, {"cover_displaced"}, id="drain"),
    ],
)
def test_checks_read_the_fields_decoding_produces(kind: str, payload: dict, expected: set[str]) -> None:
    reading = decode_reading(KINDS[kind], "dev-1", json.dumps(payload).encode(), 1_763_712_000.0)
    assert isinstance(reading, Reading), reading
    assert run(kind, reading.fields) == expected
