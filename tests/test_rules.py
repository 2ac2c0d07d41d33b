"""Debounce and hysteresis of faults, and the asset state: pure functions, fed reading by reading."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.rules import FAULTY, INTACT, STATES, UNKNOWN, Run, Track, state_of, step
from gateway.sensors import KINDS
from gateway.sensors.base import Debounce, FaultSpec

DEFAULT = Debounce()  # n=2 readings spanning 60 s
THREE = Debounce(n=3, seconds=0.0)
ONE = Debounce(n=1, seconds=0.0)
BOTH = Debounce(n=3, seconds=60.0)

A, B = "lamp_out", "power_fault"


def codes(s: str) -> frozenset[str]:
    """``"a,b"`` -> the failing codes of one reading; ``""`` is a healthy reading."""
    return frozenset(c for c in s.split(",") if c)


def changes(opened: frozenset[str], cleared: frozenset[str]) -> str:
    """What one step did, as ``"+a -b"`` (sorted), ``""`` for nothing."""
    return " ".join([*(f"+{c}" for c in sorted(opened)), *(f"-{c}" for c in sorted(cleared))])


def run_all(debounce: Debounce, readings: Sequence[tuple[float, str]], track: Track | None = None
            ) -> tuple[list[str], Track]:
    track = track if track is not None else Track()
    seen = []
    for ts, failing in readings:
        s = step(track, codes(failing), ts, debounce)
        seen.append(changes(s.opened, s.cleared))
        track = s.track
    return seen, track


def alternate(n: int, interval: float, pattern: Sequence[str]) -> list[tuple[float, str]]:
    return [(i * interval, pattern[i % len(pattern)]) for i in range(n)]


CASES = [
    # --- the default: 2 consecutive failing readings spanning >= 60 s ----------------------------------
    pytest.param(DEFAULT, [(0, A), (60, A)], ["", "+lamp_out"], {A}, id="default-opens-at-2nd-reading-60s-later"),
    pytest.param(DEFAULT, [(0, A)], [""], set(), id="default-one-reading-never-opens"),
    pytest.param(DEFAULT, [(0, A), (30, A), (59, A), (60, A)], ["", "", "", "+lamp_out"], {A},
                 id="default-count-reached-but-span-short-waits-for-60s"),
    pytest.param(DEFAULT, [(0, A), (59.9, A), (120, A)], ["", "", "+lamp_out"], {A},
                 id="default-span-59.9s-is-not-enough"),
    pytest.param(DEFAULT, [(0, A), (600, A)], ["", "+lamp_out"], {A}, id="default-long-gap-still-needs-2-readings"),
    pytest.param(DEFAULT, [(0, A), (30, ""), (60, A), (100, A), (120, A)], ["", "", "", "", "+lamp_out"], {A},
                 id="default-healthy-reading-breaks-the-run-which-restarts"),
    pytest.param(DEFAULT, [(0, A), (60, A), (90, A), (120, A)], ["", "+lamp_out", "", ""], {A},
                 id="default-opens-once-then-stays-active"),
    pytest.param(DEFAULT, alternate(20, 30, [A, ""]), [""] * 20, set(), id="default-flapping-never-opens"),
    pytest.param(DEFAULT, alternate(20, 120, [A, ""]), [""] * 20, set(),
                 id="default-slow-flapping-never-opens"),
    pytest.param(DEFAULT, [(0, A), (60, A), (90, ""), (120, ""), (150, "")],
                 ["", "+lamp_out", "", "", "-lamp_out"], set(), id="default-clearing-needs-the-same-hysteresis"),
    pytest.param(DEFAULT, [(0, A), (60, A), (90, ""), (120, A), (150, ""), (180, ""), (210, "")],
                 ["", "+lamp_out", "", "", "", "", "-lamp_out"], set(),
                 id="default-failing-again-breaks-the-healing-run"),
    pytest.param(DEFAULT, [(0, A), (60, A), *[(90 + 30 * i, "" if i % 2 == 0 else A) for i in range(20)]],
                 ["", "+lamp_out", *[""] * 20], {A}, id="default-flapping-never-clears"),
    pytest.param(DEFAULT, [(0, A), (30, f"{A},{B}"), (60, f"{A},{B}"), (90, B), (120, B), (150, ""), (180, ""),
                           (210, "")],
                 ["", "", "+lamp_out", "+power_fault", "", "-lamp_out", "", "-power_fault"], set(),
                 id="default-several-codes-independently"),
    pytest.param(DEFAULT, [(0, f"{A},{B}"), (30, A), (60, f"{A},{B}"), (90, f"{A},{B}")],
                 ["", "", "+lamp_out", ""], {A}, id="default-a-reading-without-one-code-breaks-only-its-run"),
    pytest.param(DEFAULT, [(0, f"{A},{B}"), (60, f"{A},{B}")], ["", "+lamp_out +power_fault"], {A, B},
                 id="default-two-codes-open-in-the-same-step"),
    # --- both conditions: n=3 readings AND 60 s --------------------------------------------------------
    pytest.param(BOTH, [(0, A), (100, A), (101, A)], ["", "", "+lamp_out"], {A}, id="n3-60s-span-but-not-count"),
    pytest.param(BOTH, [(0, A), (10, A), (20, A), (59, A), (60, A)], ["", "", "", "", "+lamp_out"], {A},
                 id="n3-60s-count-but-not-span"),
    # --- n=3 / 0 s -------------------------------------------------------------------------------------
    pytest.param(THREE, [(0, A), (1, A), (2, A)], ["", "", "+lamp_out"], {A}, id="n3-0s-opens-at-3rd"),
    pytest.param(THREE, [(0, A), (0, A), (0, A)], ["", "", "+lamp_out"], {A}, id="n3-0s-same-instant-counts"),
    pytest.param(THREE, [(0, A), (1, A), (2, ""), (3, A), (4, A), (5, A)], ["", "", "", "", "", "+lamp_out"], {A},
                 id="n3-0s-healthy-breaks-the-run"),
    pytest.param(THREE, alternate(30, 1, [A, A, ""]), [""] * 30, set(), id="n3-0s-flapping-never-opens"),
    pytest.param(THREE, [(0, A), (1, A), (2, A), (3, ""), (4, ""), (5, A), (6, ""), (7, ""), (8, "")],
                 ["", "", "+lamp_out", "", "", "", "", "", "-lamp_out"], set(),
                 id="n3-0s-clears-after-3-healthy-broken-by-a-failing-one"),
    # --- n=1 / 0 s -------------------------------------------------------------------------------------
    pytest.param(ONE, [(0, A), (1, ""), (2, A), (3, "")], ["+lamp_out", "-lamp_out", "+lamp_out", "-lamp_out"],
                 set(), id="n1-0s-follows-every-reading"),
    pytest.param(ONE, [(0, f"{A},{B}"), (1, B), (2, "")], ["+lamp_out +power_fault", "-lamp_out", "-power_fault"],
                 set(), id="n1-0s-several-codes"),
]


@pytest.mark.parametrize(("debounce", "readings", "expected", "active"), CASES)
def test_step(debounce: Debounce, readings: list[tuple[float, str]], expected: list[str], active: set[str]) -> None:
    assert len(expected) == len(readings), "the case lists one expectation per reading"
    seen, track = run_all(debounce, readings)
    assert seen == expected
    assert track.active == frozenset(active)


def test_failing_and_healing_runs_are_tracked() -> None:
    s1 = step(Track(), codes(A), 10.0, DEFAULT)
    assert s1.track == Track(frozenset(), {A: Run(10.0, 1)}, {})
    s2 = step(s1.track, codes(A), 40.0, DEFAULT)
    assert s2.track.failing == {A: Run(10.0, 2)}
    s3 = step(s2.track, codes(A), 70.0, DEFAULT)
    assert s3.opened == {A} and s3.track.active == {A} and s3.track.failing == {} and s3.track.healing == {}
    s4 = step(s3.track, frozenset(), 80.0, DEFAULT)
    assert s4.track.healing == {A: Run(80.0, 1)} and s4.track.active == {A}
    s5 = step(s4.track, codes(A), 90.0, DEFAULT)  # failing again: the healing run is gone
    assert s5.track == Track(frozenset({A}), {}, {})


def test_input_track_is_not_mutated() -> None:
    t0 = Track(frozenset({A}), {B: Run(0.0, 1)}, {A: Run(0.0, 1)})
    before = (t0.active, dict(t0.failing), dict(t0.healing))
    step(t0, codes(B), 100.0, DEFAULT)
    step(t0, frozenset(), 100.0, DEFAULT)
    assert (t0.active, dict(t0.failing), dict(t0.healing)) == before


def test_a_fully_cleared_track_is_quiet_again() -> None:
    _, track = run_all(DEFAULT, [(0, A), (60, A), (90, ""), (150, "")])
    assert track == Track()
    assert track.quiet


@pytest.mark.parametrize(
    ("track", "quiet"),
    [
        pytest.param(Track(), True, id="empty"),
        pytest.param(Track(active=frozenset({A})), False, id="active"),
        pytest.param(Track(failing={A: Run(0.0, 1)}), False, id="failing-run"),
        pytest.param(Track(healing={A: Run(0.0, 1)}), False, id="healing-run"),
    ],
)
def test_quiet(track: Track, quiet: bool) -> None:
    assert track.quiet is quiet


def test_quiet_shortcut_leaves_the_track_identical() -> None:
    track = Track()
    s = step(track, frozenset(), 123.0, DEFAULT)
    assert s.track is track
    assert s.opened == frozenset() and s.cleared == frozenset()


def test_a_healthy_reading_on_a_failing_run_is_not_the_shortcut() -> None:
    track = Track(failing={A: Run(0.0, 1)})
    s = step(track, frozenset(), 30.0, DEFAULT)
    assert s.track == Track()
    assert s.opened == frozenset() and s.cleared == frozenset()


LAMP = KINDS["streetlight"].faults
SPEC = {
    "broken": FaultSpec("broken", "urgent", "故障", "broken"),
    "cosmetic": FaultSpec("cosmetic", "general", "外观", "cosmetic", counts=False),
}


@pytest.mark.parametrize(
    ("active", "faults", "monitored", "state"),
    [
        pytest.param(set(), LAMP, False, UNKNOWN, id="not-monitored-no-fault-is-unknown"),
        pytest.param({"lamp_out"}, LAMP, False, UNKNOWN, id="not-monitored-with-fault-is-unknown"),
        pytest.param({"lamp_out"}, LAMP, True, FAULTY, id="counting-fault-is-faulty"),
        pytest.param({"power_fault", "day_burning"}, LAMP, True, FAULTY, id="counting-and-non-counting-is-faulty"),
        pytest.param(set(), LAMP, True, INTACT, id="no-fault-is-intact"),
        pytest.param({"day_burning"}, LAMP, True, INTACT, id="day-burning-does-not-count-stays-intact"),
        pytest.param({"cosmetic"}, SPEC, True, INTACT, id="faultspec-counts-false-stays-intact"),
        pytest.param({"broken"}, SPEC, True, FAULTY, id="faultspec-counts-true-is-faulty"),
        pytest.param({"not_a_code"}, SPEC, True, INTACT, id="code-unknown-to-the-kind-is-ignored"),
    ],
)
def test_state_of(active: set[str], faults: dict[str, FaultSpec], monitored: bool, state: str) -> None:
    assert state_of(frozenset(active), faults, monitored) == state
    assert state in STATES


def test_day_burning_is_declared_as_not_counting() -> None:
    assert LAMP["day_burning"].counts is False
    assert LAMP["lamp_out"].counts is True


def test_debounced_day_burning_leaves_the_lamp_intact() -> None:
    _, track = run_all(DEFAULT, [(0, "day_burning"), (60, "day_burning")])
    assert track.active == {"day_burning"}
    assert state_of(track.active, LAMP, True) == INTACT
    _, track = run_all(DEFAULT, [(120, "day_burning,lamp_out"), (180, "day_burning,lamp_out")], track)
    assert state_of(track.active, LAMP, True) == FAULTY
