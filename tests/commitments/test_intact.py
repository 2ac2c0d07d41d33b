"""Intact rates (完好率) from the asset state ledger: hand-computed cases and properties.

Every instant is built in the site's zone and is a whole second, so asset-second sums are
exact in floats and the figures are checked as fractions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.commitments.intact import (
    DayFigure,
    LedgerIndex,
    daily,
    forecast,
    intervals,
    lowest_daily,
    period_rate,
    ranking,
    snapshot,
)
from gateway.commitments.model import Change, Period, Ratio
from gateway.rules import STATES

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0
DAY = 24 * HOUR


def at(*args: int, tz: ZoneInfo = SH) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def frac(r: Ratio) -> Fraction | None:
    """The exact value of a ratio (its parts are whole numbers of seconds or assets)."""
    return Fraction(r.num) / Fraction(r.den) if r.den > 0 else None


APRIL = Period(at(2026, 4, 1), at(2026, 5, 1))  # 30 days = 720 h = 2,592,000 s
SINCE = at(2026, 1, 1)  # every lamp in service since before the month


# --- the example: 100 lamps, one month ----------------------------------------------
#
# 100 lamps, in service all of April 2026 (30 days, 2,592,000 s; nights 19:00–05:00 = 10 h,
# so 300 night hours). Lamp A (L007) is dark one night, 10 h: faulty 10 Apr 19:00 → 11 Apr
# 05:00. Lamp B (L042) loses its controller for 24 h: unknown 10 Apr 12:00 → 11 Apr 12:00.
# Every other lamp, and A and B the rest of the month, is intact.

A, B = "L007", "L042"
LAMPS = [f"L{k:03d}" for k in range(100)]


def lamps_ledger() -> dict[str, list[Change]]:
    ledger = {lamp: [Change(SINCE, "intact")] for lamp in LAMPS}
    ledger[A] += [Change(at(2026, 4, 10, 19), "faulty"), Change(at(2026, 4, 11, 5), "intact")]
    ledger[B] += [Change(at(2026, 4, 10, 12), "unknown"), Change(at(2026, 4, 11, 12), "intact")]
    return ledger


@pytest.mark.parametrize(
    ("instant", "counts", "strict", "known"),
    [
        # a quiet day: all 100 intact
        pytest.param(at(2026, 4, 5, 12), (100, 0, 0), Fraction(100, 100), Fraction(100, 100), id="quiet-noon"),
        # B goes offline at 12:00 sharp (a change at the instant counts): 99 intact of 100 in
        # service; known-only leaves B out: 99 / (99 + 0)
        pytest.param(at(2026, 4, 10, 12), (99, 0, 1), Fraction(99, 100), Fraction(99, 99), id="B-offline"),
        # 22:00: A dark and B offline: 98 / 100 strict; 98 / (98 + 1) known-only
        pytest.param(at(2026, 4, 10, 22), (98, 1, 1), Fraction(98, 100), Fraction(98, 99), id="A-dark-B-offline"),
        # 05:00 sharp: A relit at that instant; B still offline
        pytest.param(at(2026, 4, 11, 5), (99, 0, 1), Fraction(99, 100), Fraction(1), id="A-relit"),
        pytest.param(at(2026, 4, 11, 12), (100, 0, 0), Fraction(1), Fraction(1), id="B-back"),
    ],
)
def test_lamps_snapshot(instant: float, counts: tuple[int, int, int], strict: Fraction, known: Fraction) -> None:
    snap = snapshot(LAMPS, lamps_ledger(), instant)
    assert (snap.intact, snap.faulty, snap.unknown) == counts
    assert snap.in_service == 100
    assert snap.at == instant
    assert frac(snap.strict) == strict
    assert frac(snap.known) == known


def test_lamps_month_time_weighted() -> None:
    rate = period_rate(LAMPS, lamps_ledger(), APRIL)
    # in service: 100 lamps x 2,592,000 s = 259,200,000 lamp-seconds (all of it, day and night)
    # faulty:  A 10 h = 36,000 s;  unknown: B 24 h = 86,400 s
    # intact:  259,200,000 - 36,000 - 86,400 = 259,077,600
    assert (rate.intact_s, rate.faulty_s, rate.unknown_s) == (259_077_600, 36_000, 86_400)
    assert rate.in_service_s == 259_200_000
    assert rate.not_intact_s == 122_400
    # strict: 259,077,600 / 259,200,000 = 1 - 122,400/259,200,000 = 1 - 17/36,000 = 35,983/36,000 ≈ 99.953%
    assert rate.strict == Ratio(259_077_600, 259_200_000)
    assert frac(rate.strict) == Fraction(35_983, 36_000)
    # known-only: B's 86,400 unknown lamp-seconds leave the denominator:
    # 259,077,600 / (259,200,000 - 86,400) = 259,077,600 / 259,113,600 = 1 - 36,000/259,113,600
    # = 1 - 5/35,988 = 35,983/35,988 ≈ 99.986%
    assert rate.known == Ratio(259_077_600, 259_113_600)
    assert frac(rate.known) == Fraction(35_983, 35_988)
    assert frac(rate.known) > frac(rate.strict)
    # A "night hours only" reading (a lamp is only judged while it should be lit) would weigh
    # 100 x 300 = 30,000 night lamp-hours; A loses 10 of them and B's 24 h contain one night
    # (19:00–05:00), another 10: (30,000 - 20) / 30,000 = 1,499/1,500 ≈ 99.933%, a lower
    # figure because the day hours, when a lamp is intact by definition, drop out. The formula
    # here weights all in-service time, as COMMITMENTS.md defines the period reading; a lamp's
    # night-only failure simply lasts only its night hours in the ledger.
    night_only = Fraction(30_000 - 10 - 10, 30_000)
    assert night_only == Fraction(1_499, 1_500)
    assert night_only < frac(rate.strict)


def test_lamps_daily_and_lowest_day() -> None:
    days = daily(LAMPS, lamps_ledger(), APRIL, SH)
    assert [d.day for d in days] == [date(2026, 4, k) for k in range(1, 31)]
    # Shanghai days run 16:00 UTC to 16:00 UTC
    assert days[0].start == datetime(2026, 3, 31, 16, tzinfo=UTC).timestamp() == APRIL.start
    assert all(d.end - d.start == DAY for d in days)
    quiet = days[4]
    assert frac(quiet.strict) == 1
    assert quiet.lowest is not None and frac(quiet.lowest.strict) == 1 and quiet.lowest.at == quiet.start
    # 10 Apr: 100 x 86,400 = 8,640,000 lamp-seconds; B unknown 12:00–24:00 = 43,200; A faulty
    # 19:00–24:00 = 18,000; intact 8,578,800; worst instant 19:00 (A dark while B offline): 98/100
    d10 = days[9]
    assert (d10.intact_s, d10.faulty_s, d10.unknown_s) == (8_578_800, 18_000, 43_200)
    assert frac(d10.strict) == Fraction(8_578_800, 8_640_000)
    assert frac(d10.known) == Fraction(8_578_800, 8_640_000 - 43_200)
    assert d10.lowest is not None
    assert (d10.lowest.at, d10.lowest.intact, d10.lowest.faulty, d10.lowest.unknown) == (at(2026, 4, 10, 19), 98, 1, 1)
    # 11 Apr: B unknown 00:00–12:00 = 43,200; A faulty 00:00–05:00 = 18,000; the same sums,
    # and the same worst figure 98/100, now at the day's start
    d11 = days[10]
    assert (d11.intact_s, d11.faulty_s, d11.unknown_s) == (8_578_800, 18_000, 43_200)
    assert d11.lowest is not None and d11.lowest.at == at(2026, 4, 11) and frac(d11.lowest.strict) == Fraction(98, 100)
    # the lowest day: 10 and 11 Apr tie at 98/100, the earliest wins
    low = lowest_daily(LAMPS, lamps_ledger(), APRIL, SH)
    assert low == d10
    # the days add up to the month
    rate = period_rate(LAMPS, lamps_ledger(), APRIL)
    assert sum(d.intact_s for d in days) == rate.intact_s
    assert sum(d.faulty_s for d in days) == rate.faulty_s
    assert sum(d.unknown_s for d in days) == rate.unknown_s


def test_lamps_ranking() -> None:
    # B 86,400 s unknown, A 36,000 s faulty; the 98 others lost nothing and are left out
    assert ranking(LAMPS, lamps_ledger(), APRIL) == [(B, 86_400), (A, 36_000)]
    assert ranking(LAMPS, lamps_ledger(), APRIL, n=1) == [(B, 86_400)]
    assert ranking(LAMPS, lamps_ledger(), APRIL, n=0) == []


def test_index_and_raw_mapping_agree() -> None:
    ledger = lamps_ledger()
    idx = LedgerIndex(ledger)
    assert period_rate(LAMPS, idx, APRIL) == period_rate(LAMPS, ledger, APRIL)
    assert daily(LAMPS, idx, APRIL, SH) == daily(LAMPS, ledger, APRIL, SH)
    assert ranking(LAMPS, idx, APRIL) == ranking(LAMPS, ledger, APRIL)
    assert snapshot(LAMPS, idx, at(2026, 4, 10, 22)) == snapshot(LAMPS, ledger, at(2026, 4, 10, 22))
    assert idx.state_at(A, at(2026, 4, 10, 22)) == "faulty"
    assert idx.state_at(A, at(2025, 1, 1)) is None
    assert idx.state_at("nobody", at(2026, 4, 10)) is None
    # an asset listed twice counts once
    assert period_rate([*LAMPS, A], idx, APRIL) == period_rate(LAMPS, idx, APRIL)


# --- entering service, changes on the boundaries, no data -----------------------------------


def test_assets_entering_service_mid_period() -> None:
    ledger = {
        "old": [Change(SINCE, "intact")],
        "new": [Change(at(2026, 4, 16), "intact")],  # 15 days in service
        "late": [Change(at(2026, 4, 20), "faulty"), Change(at(2026, 4, 21), "intact")],  # 11 days, 1 faulty
    }
    assets = list(ledger)
    assert snapshot(assets, ledger, at(2026, 4, 10)).in_service == 1
    snap = snapshot(assets, ledger, at(2026, 4, 20))
    assert (snap.intact, snap.faulty, snap.unknown) == (2, 1, 0)
    rate = period_rate(assets, ledger, APRIL)
    # in service 30 + 15 + 11 = 56 asset-days, intact 30 + 15 + 10 = 55
    assert frac(rate.strict) == Fraction(55, 56) == frac(rate.known)
    assert rate.in_service_s == 56 * DAY
    assert intervals(ledger["late"], APRIL) == [
        (at(2026, 4, 20), at(2026, 4, 21), "faulty"),
        (at(2026, 4, 21), APRIL.end, "intact"),
    ]
    assert intervals(ledger["new"], Period(at(2026, 3, 1), at(2026, 4, 1))) == []
    days = daily(assets, ledger, APRIL, SH)
    assert days[0].lowest is not None and days[0].lowest.in_service == 1
    # 20 Apr: "late" enters faulty at the day's start: 2/3 is that day's worst instant
    assert days[19].lowest is not None and frac(days[19].lowest.strict) == Fraction(2, 3)
    assert days[19].lowest.at == at(2026, 4, 20)


def test_change_exactly_at_period_start_and_end() -> None:
    ledger = {
        "x": [Change(SINCE, "intact"), Change(APRIL.start, "faulty"), Change(APRIL.end, "intact")],
        "y": [Change(APRIL.start, "unknown")],  # enters service at the period's first instant
    }
    # a change at the start sets the state at the start; one at the end belongs to the next period
    assert intervals(ledger["x"], APRIL) == [(APRIL.start, APRIL.end, "faulty")]
    assert intervals(ledger["x"], Period(APRIL.end, APRIL.end + DAY)) == [(APRIL.end, APRIL.end + DAY, "intact")]
    assert intervals(ledger["x"], Period(APRIL.start - DAY, APRIL.start)) == [
        (APRIL.start - DAY, APRIL.start, "intact")
    ]
    rate = period_rate(["x", "y"], ledger, APRIL)
    assert (rate.intact_s, rate.faulty_s, rate.unknown_s) == (0, 30 * DAY, 30 * DAY)
    assert frac(rate.strict) == 0 and frac(rate.known) == 0
    snap = snapshot(["x", "y"], ledger, APRIL.start)
    assert (snap.intact, snap.faulty, snap.unknown) == (0, 1, 1)
    assert snapshot(["x", "y"], ledger, APRIL.end).intact == 1
    # a change at a local midnight belongs to the day it starts
    ledger2 = {"z": [Change(SINCE, "intact"), Change(at(2026, 4, 3), "faulty"), Change(at(2026, 4, 3, 6), "intact")]}
    days = daily(["z"], ledger2, APRIL, SH)
    assert days[1].faulty_s == 0 and days[1].lowest is not None and frac(days[1].lowest.strict) == 1
    assert days[2].faulty_s == 6 * HOUR
    assert days[2].lowest is not None and days[2].lowest.at == at(2026, 4, 3) and frac(days[2].lowest.strict) == 0


def test_several_changes_at_one_instant_last_wins() -> None:
    t = at(2026, 4, 10)
    changes = [Change(SINCE, "intact"), Change(t, "faulty"), Change(t, "unknown"), Change(t, "intact")]
    assert intervals(changes, APRIL) == [(APRIL.start, APRIL.end, "intact")]
    assert snapshot(["q"], {"q": changes}, t).intact == 1
    assert ranking(["q"], {"q": changes}, APRIL) == []
    days = daily(["q"], {"q": changes}, APRIL, SH)
    assert all(d.lowest is not None and frac(d.lowest.strict) == 1 for d in days)


def test_period_without_data() -> None:
    empty = period_rate([], {}, APRIL)
    assert empty.strict == Ratio(0, 0) and empty.strict.value is None and empty.known.value is None
    # listed assets without a ledger, or only entering service after the period: not counted
    ledger = {"later": [Change(APRIL.end, "intact")]}
    for assets in (["ghost"], ["later"]):
        rate = period_rate(assets, ledger, APRIL)
        assert rate.strict.value is None and rate.in_service_s == 0
        snap = snapshot(assets, ledger, at(2026, 4, 10))
        assert snap.in_service == 0 and snap.strict.value is None and snap.known.value is None
        days = daily(assets, ledger, APRIL, SH)
        assert len(days) == 30
        assert all(d.lowest is None and d.strict.value is None for d in days)
        assert lowest_daily(assets, ledger, APRIL, SH) is None
        assert ranking(assets, ledger, APRIL) == []
    # only unknown assets: a strict figure (0) but no known-only figure
    rate = period_rate(["u"], {"u": [Change(SINCE, "unknown")]}, APRIL)
    assert frac(rate.strict) == 0 and rate.known.value is None


def test_ledger_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown state 'broken'"):
        period_rate(["a"], {"a": [Change(SINCE, "broken")]}, APRIL)
    with pytest.raises(ValueError, match="not sorted"):
        period_rate(["a"], {"a": [Change(APRIL.end, "intact"), Change(APRIL.start, "faulty")]}, APRIL)


# --- ranking ---------------------------------------------------------------------------------


def test_ranking_order() -> None:
    ledger = {
        "d": [Change(SINCE, "faulty"), Change(APRIL.start + 5 * HOUR, "intact")],  # 5 h
        "b": [Change(SINCE, "intact"), Change(at(2026, 4, 2), "unknown"), Change(at(2026, 4, 2, 5), "intact")],  # 5 h
        "c": [Change(at(2026, 4, 30, 14), "faulty")],  # enters faulty 10 h before the end: 10 h
        "a": [Change(SINCE, "intact")],  # 0: left out
        "e": [Change(SINCE, "faulty"), Change(at(2026, 4, 3), "unknown"), Change(at(2026, 4, 3, 1), "faulty")],
    }
    assert ranking(list(ledger), ledger, APRIL) == [("e", 30 * DAY), ("c", 10 * HOUR), ("b", 5 * HOUR), ("d", 5 * HOUR)]
    assert ranking(list(ledger), ledger, APRIL, n=2) == [("e", 30 * DAY), ("c", 10 * HOUR)]
    assert ranking(["a", "b"], ledger, APRIL) == [("b", 5 * HOUR)]


# --- day boundaries --------------------------------------------------------------------------


def test_lowest_day_follows_shanghai_midnight_not_utc() -> None:
    # a lamp dark 10 Apr 17:00–19:00 UTC, i.e. 11 Apr 01:00–03:00 in Shanghai (UTC+8)
    ledger = {
        "dark": [
            Change(SINCE, "intact"),
            Change(datetime(2026, 4, 10, 17, tzinfo=UTC).timestamp(), "faulty"),
            Change(datetime(2026, 4, 10, 19, tzinfo=UTC).timestamp(), "intact"),
        ],
        "lit": [Change(SINCE, "intact")],
    }
    low = lowest_daily(["dark", "lit"], ledger, APRIL, SH)
    assert isinstance(low, DayFigure)
    assert low.day == date(2026, 4, 11)
    assert low.start == datetime(2026, 4, 10, 16, tzinfo=UTC).timestamp()
    assert low.end == datetime(2026, 4, 11, 16, tzinfo=UTC).timestamp()
    assert low.lowest is not None and low.lowest.at == at(2026, 4, 11, 1) and frac(low.lowest.strict) == Fraction(1, 2)
    assert low.faulty_s == 2 * HOUR
    utc_low = lowest_daily(["dark", "lit"], ledger, APRIL, ZoneInfo("UTC"))
    assert utc_low is not None and utc_low.day == date(2026, 4, 10)


def test_days_clipped_to_the_period_and_dst() -> None:
    ledger = {"a": [Change(SINCE, "intact")]}
    period = Period(at(2026, 4, 10, 10), at(2026, 4, 12, 6))
    days = daily(["a"], ledger, period, SH)
    assert [(d.day, d.start, d.end) for d in days] == [
        (date(2026, 4, 10), at(2026, 4, 10, 10), at(2026, 4, 11)),
        (date(2026, 4, 11), at(2026, 4, 11), at(2026, 4, 12)),
        (date(2026, 4, 12), at(2026, 4, 12), at(2026, 4, 12, 6)),
    ]
    assert days[0].lowest is not None and days[0].lowest.at == period.start
    # Berlin springs forward on 29 Mar 2026: a 23-hour local day
    march = Period(at(2026, 3, 28, tz=BERLIN), at(2026, 3, 31, tz=BERLIN))
    lengths = [(d.end - d.start) / HOUR for d in daily(["a"], ledger, march, BERLIN)]
    assert lengths == [24, 23, 24]


# --- forecast --------------------------------------------------------------------------------


def fleet(n: int, lost: dict[str, tuple[float, float, str]] | None = None) -> dict[str, list[Change]]:
    ledger = {f"L{k:03d}": [Change(SINCE, "intact")] for k in range(n)}
    for asset, (since, until, state) in (lost or {}).items():
        ledger[asset] += [Change(since, state), Change(until, "intact")]
    return ledger


def test_forecast_by_hand() -> None:
    # 200 lamps, target 98%, April (30 days = 720 h), 10 days in; 50 lamp-hours lost so far:
    # five lamps out 10 h each (one of them offline, unknown: it counts the same)
    lost = {f"L{k:03d}": (at(2026, 4, 2 + k, 19), at(2026, 4, 3 + k, 5), "faulty") for k in range(4)}
    lost["L100"] = (at(2026, 4, 8, 8), at(2026, 4, 8, 18), "unknown")
    now = at(2026, 4, 11)
    f = forecast(list(fleet(200, lost)), fleet(200, lost), APRIL, now, 0.98)
    assert not f.over
    assert f.lost_s == 50 * HOUR
    assert f.in_service_s == 200 * 240 * HOUR  # 48,000 lamp-hours so far
    assert frac(f.so_far) == Fraction(48_000 - 50, 48_000)
    assert f.in_service_now == 200 and f.remaining_s == 480 * HOUR
    # total if all 200 stay to the end: 200 x 720 h = 144,000 lamp-hours
    assert f.total_s == 144_000 * HOUR
    # budget: 0.02 x 200 x 720 h = 2,880 lamp-hours; left: 2,880 - 50 = 2,830 lamp-hours
    assert f.budget_s / HOUR == pytest.approx(2_880)
    assert f.left_s / HOUR == pytest.approx(2_830)
    assert f.can_meet
    # best case: nothing else fails: (144,000 - 50) / 144,000 = 2,879/2,880 ≈ 99.965%
    assert frac(f.best_case) == Fraction(2_879, 2_880)


def test_forecast_already_lost() -> None:
    # 3,000 lamp-hours lost in 10 days (15 lamps dark 200 h each): left 2,880 - 3,000 = -120
    lost = {f"L{k:03d}": (APRIL.start, APRIL.start + 200 * HOUR, "faulty") for k in range(15)}
    f = forecast(list(fleet(200)), fleet(200, lost), APRIL, at(2026, 4, 11), 0.98)
    assert f.lost_s == 3_000 * HOUR
    assert f.left_s / HOUR == pytest.approx(-120)
    assert not f.can_meet
    assert frac(f.best_case) == Fraction(144_000 - 3_000, 144_000) < Fraction(98, 100)


def test_forecast_with_assets_entering_service() -> None:
    # 190 lamps all month; 10 enter service on 5 Apr (96 h in); one more only on 20 Apr, after now
    ledger = fleet(190, {"L000": (at(2026, 4, 2, 19), at(2026, 4, 4, 21), "faulty")})  # 50 h lost
    for k in range(10):
        ledger[f"N{k}"] = [Change(at(2026, 4, 5), "intact")]
    ledger["future"] = [Change(at(2026, 4, 20), "intact")]
    f = forecast(list(ledger), ledger, APRIL, at(2026, 4, 11), 0.98)
    # so far: 190 x 240 h + 10 x 144 h = 45,600 + 1,440 = 47,040 lamp-hours
    assert f.in_service_s == 47_040 * HOUR
    assert f.in_service_now == 200
    # to the end: 47,040 + 200 x 480 h = 143,040; budget 0.02 x 143,040 = 2,860.8; left 2,810.8
    assert f.total_s == 143_040 * HOUR
    assert f.budget_s / HOUR == pytest.approx(2_860.8)
    assert f.left_s / HOUR == pytest.approx(2_810.8)
    assert f.can_meet


def test_forecast_period_over_and_boundaries() -> None:
    ledger = lamps_ledger()
    f = forecast(LAMPS, ledger, APRIL, APRIL.end + DAY, 0.98)
    rate = period_rate(LAMPS, ledger, APRIL)
    assert f.over and f.remaining_s == 0
    assert f.best_case == rate.strict == f.so_far
    # slack: 0.02 x 259,200,000 - 122,400 = 5,184,000 - 122,400 = 5,061,600 lamp-seconds
    assert f.left_s == pytest.approx(5_061_600)
    assert f.can_meet
    assert not forecast(LAMPS, ledger, APRIL, APRIL.end, 0.9999).can_meet  # 99.953% < 99.99%
    # exactly on target is met: 100 assets, 2 of them faulty all month, 98%
    exact = fleet(100, {"L000": (SINCE, APRIL.end, "faulty"), "L001": (SINCE, APRIL.end, "unknown")})
    f = forecast(list(exact), exact, APRIL, APRIL.end, 0.98)
    assert f.can_meet and f.left_s >= 0 and f.best_case.value == 0.98
    # before the period: nothing lost, the whole period ahead
    f = forecast(LAMPS, ledger, APRIL, APRIL.start - DAY, 0.98)
    assert f.lost_s == 0 and f.remaining_s == APRIL.seconds and f.total_s == 100 * APRIL.seconds and f.can_meet
    # nothing in service at all: nothing to miss
    f = forecast(["ghost"], {}, APRIL, at(2026, 4, 11), 0.98)
    assert f.total_s == 0 and f.left_s == 0 and f.can_meet and f.best_case.value is None
    with pytest.raises(ValueError, match="target"):
        forecast(LAMPS, ledger, APRIL, at(2026, 4, 11), 98)


# --- properties ------------------------------------------------------------------------------

T0 = APRIL.start
HOURS = 96  # ledgers span four Shanghai days, in whole hours: every sum is exact


@st.composite
def ledgers(draw: st.DrawFn) -> dict[str, list[Change]]:
    ledger = {}
    for k in range(draw(st.integers(0, 5))):
        hours = sorted(draw(st.lists(st.integers(-6, HOURS + 6), max_size=8)))
        ledger[f"a{k}"] = [Change(T0 + h * HOUR, draw(st.sampled_from(STATES))) for h in hours]
    return ledger


@st.composite
def periods(draw: st.DrawFn) -> Period:
    start = draw(st.integers(-12, HOURS + 6))
    end = draw(st.integers(start + 1, HOURS + 12))
    return Period(T0 + start * HOUR, T0 + end * HOUR)


def _ordered(strict: Ratio, known: Ratio) -> None:
    for r in (strict, known):
        assert r.value is None or 0 <= r.value <= 1
    if known.value is not None:
        assert strict.value is not None and known.value >= strict.value
        assert frac(known) >= frac(strict)


@settings(max_examples=200, deadline=None)
@given(ledgers(), periods(), st.integers(-12, HOURS + 12))
def test_rates_in_unit_interval_and_known_at_least_strict(
    ledger: dict[str, list[Change]], period: Period, h: int
) -> None:
    assets = [*ledger, "ghost"]
    snap = snapshot(assets, ledger, T0 + h * HOUR)
    _ordered(snap.strict, snap.known)
    rate = period_rate(assets, ledger, period)
    _ordered(rate.strict, rate.known)
    for d in daily(assets, ledger, period, SH):
        _ordered(d.strict, d.known)
        if d.lowest is not None:
            _ordered(d.lowest.strict, d.lowest.known)
    f = forecast(assets, ledger, period, T0 + h * HOUR, 0.9)
    for r in (f.so_far, f.best_case):
        assert r.value is None or 0 <= r.value <= 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(STATES), st.integers(0, 3)), max_size=6),
    periods(),
    st.data(),
)
def test_constant_state_snapshot_equals_period(
    assets: list[tuple[str, int]], period: Period, data: st.DataObject
) -> None:
    # each asset in service from before the period in one state (repeated entries allowed)
    ledger = {
        f"a{k}": [Change(period.start - (1 + r) * HOUR, state) for r in range(repeats, -1, -1)]
        for k, (state, repeats) in enumerate(assets)
    }
    instant = data.draw(st.floats(period.start, period.end, exclude_max=True))
    snap = snapshot(ledger, ledger, instant)
    rate = period_rate(ledger, ledger, period)
    assert frac(snap.strict) == frac(rate.strict)
    assert frac(snap.known) == frac(rate.known)
    for d in daily(ledger, ledger, period, SH):
        assert frac(d.strict) == frac(snap.strict)
        assert d.lowest is None if not ledger else d.lowest == snapshot(ledger, ledger, d.start)


@settings(max_examples=200, deadline=None)
@given(ledgers(), periods(), st.data())
def test_splitting_a_period_keeps_the_sums(
    ledger: dict[str, list[Change]], period: Period, data: st.DataObject
) -> None:
    hours = int(period.seconds // HOUR)
    if hours < 2:
        return
    cut = period.start + data.draw(st.integers(1, hours - 1)) * HOUR
    whole = period_rate(ledger, ledger, period)
    first = period_rate(ledger, ledger, Period(period.start, cut))
    second = period_rate(ledger, ledger, Period(cut, period.end))
    for part in ("intact_s", "faulty_s", "unknown_s"):
        assert getattr(first, part) + getattr(second, part) == getattr(whole, part)
    for r in ("strict", "known"):
        assert getattr(first, r).num + getattr(second, r).num == getattr(whole, r).num
        assert getattr(first, r).den + getattr(second, r).den == getattr(whole, r).den
    # the days of a period split it too
    days = daily(ledger, ledger, period, SH)
    assert days[0].start == period.start and days[-1].end == period.end
    assert all(a.end == b.start for a, b in pairwise(days))
    for part in ("intact_s", "faulty_s", "unknown_s"):
        assert sum(getattr(d, part) for d in days) == getattr(whole, part)
    # and so do the assets: ranking's seconds are the not-intact ones
    assert sum(s for _, s in ranking(ledger, ledger, period, n=len(ledger))) == whole.not_intact_s


@settings(max_examples=200, deadline=None)
@given(ledgers(), periods())
def test_daily_lowest_is_the_worst_instant(ledger: dict[str, list[Change]], period: Period) -> None:
    # brute force: a snapshot at the day's start and at every change inside the day
    for d in daily(ledger, ledger, period, SH):
        instants = sorted({d.start} | {c.at for cs in ledger.values() for c in cs if d.start < c.at < d.end})
        snaps = [s for s in (snapshot(ledger, ledger, t) for t in instants) if s.in_service]
        if not snaps:
            assert d.lowest is None
            continue
        worst = min(frac(s.strict) for s in snaps)
        assert d.lowest == next(s for s in snaps if frac(s.strict) == worst)
    low = lowest_daily(ledger, ledger, period, SH)
    figures = [d for d in daily(ledger, ledger, period, SH) if d.lowest is not None]
    if not figures:
        assert low is None
    else:
        worst = min(frac(d.lowest.strict) for d in figures)  # type: ignore[union-attr]
        assert low == next(d for d in figures if frac(d.lowest.strict) == worst)  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(ledgers(), periods())
def test_intervals_cover_the_in_service_time(ledger: dict[str, list[Change]], period: Period) -> None:
    idx = LedgerIndex(ledger)
    for asset, changes in ledger.items():
        segs = intervals(changes, period)
        assert segs == idx.intervals(asset, period)
        rate = period_rate([asset], idx, period)
        assert sum(e - s for s, e, _ in segs) == rate.in_service_s
        for s, e, state in segs:
            assert period.start <= s < e <= period.end
            assert idx.state_at(asset, s) == state == idx.state_at(asset, (s + e) / 2)
        for (_, e, state), (s, _, nxt) in pairwise(segs):
            assert s == e and nxt != state
        if segs:
            assert segs[-1][1] == period.end


@settings(max_examples=200, deadline=None)
@given(ledgers(), periods(), st.integers(-12, HOURS + 12), st.sampled_from([0.0, 0.5, 0.9, 0.98, 1.0]))
def test_forecast_decision_is_consistent(
    ledger: dict[str, list[Change]], period: Period, h: int, target: float
) -> None:
    f = forecast(ledger, ledger, period, T0 + h * HOUR, target)
    assert f.can_meet == (f.left_s >= 0)
    if f.best_case.den > 0:
        assert f.can_meet == (frac(f.best_case) >= Fraction(target))
    assert f.total_s == f.in_service_s + f.in_service_now * f.remaining_s
    if f.over:
        rate = period_rate(ledger, ledger, period)
        assert f.best_case == rate.strict and f.lost_s == rate.not_intact_s
