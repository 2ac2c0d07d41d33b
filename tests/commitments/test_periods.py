"""Periods in site local time (Asia/Shanghai, UTC+8 all year): a local midnight is 16:00 UTC
the day before."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.commitments.model import Period
from gateway.commitments.periods import is_month, month_of, parse_period, previous_month

SH = ZoneInfo("Asia/Shanghai")
FORMS = ("2026-11", "2026-Q4", "2026", "2026-11-21", "2026-11-01..2026-11-15")


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2026-11", utc(2026, 10, 31, 16), utc(2026, 11, 30, 16)),
    ("2026-02", utc(2026, 1, 31, 16), utc(2026, 2, 28, 16)),
    ("2028-02", utc(2028, 1, 31, 16), utc(2028, 2, 29, 16)),  # a leap year
    ("2026-12", utc(2026, 11, 30, 16), utc(2026, 12, 31, 16)),  # December ends at next January's start
    ("2026-Q1", utc(2025, 12, 31, 16), utc(2026, 3, 31, 16)),
    ("2026-Q4", utc(2026, 9, 30, 16), utc(2026, 12, 31, 16)),
    ("2026", utc(2025, 12, 31, 16), utc(2026, 12, 31, 16)),
    ("2026-11-21", utc(2026, 11, 20, 16), utc(2026, 11, 21, 16)),
    ("2026-12-31", utc(2026, 12, 30, 16), utc(2026, 12, 31, 16)),
    ("2026-11-01..2026-11-15", utc(2026, 10, 31, 16), utc(2026, 11, 15, 16)),  # both days included
    ("2026-11-01..2026-11-01", utc(2026, 10, 31, 16), utc(2026, 11, 1, 16)),
    ("2026-11..2026-12", utc(2026, 10, 31, 16), utc(2026, 12, 31, 16)),
])
def test_parse_period_in_site_local_time(text, start, end):
    assert parse_period(text, SH) == Period(start, end)


def test_a_month_starts_at_local_midnight():
    p = parse_period("2026-11", SH)
    assert datetime.fromtimestamp(p.start, SH) == datetime(2026, 11, 1, tzinfo=SH)
    assert datetime.fromtimestamp(p.start, UTC) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert p.seconds == 30 * 86400
    dec = parse_period("2026-12", SH)
    assert datetime.fromtimestamp(dec.end, SH) == datetime(2027, 1, 1, tzinfo=SH)
    assert dec.end == parse_period("2027-01", SH).start


@pytest.mark.parametrize("text", [
    "", "2026-13", "2026-00", "2026-1", "26-11", "2026-Q5", "2026-Q0", "2026/11", "November",
    "2026-11-31", "2026-02-29", "2026-11-00",
    "2026-11-15..2026-11-01", "2026-11-01..", "..2026-11-01", "2026-11-01..2026-11-02..2026-11-03",
    "2026-11-01..later", "0000", "9999-12",
])
def test_a_bad_period_is_a_value_error_naming_the_accepted_forms(text):
    with pytest.raises(ValueError) as caught:
        parse_period(text, SH)
    message = str(caught.value)
    assert repr(text) in message
    for form in FORMS:
        assert form in message


def test_previous_month_across_a_year_and_month_of():
    assert previous_month("2026-11") == "2026-10"
    assert previous_month("2026-01") == "2025-12"
    assert previous_month("2027-01") == "2026-12"
    assert previous_month("2026-10") == "2026-09"
    # 2026-11-30 17:00 UTC is already December 1st in Shanghai.
    assert month_of(utc(2026, 11, 30, 17), SH) == "2026-12"
    assert month_of(utc(2026, 11, 30, 15, 59), SH) == "2026-11"
    assert month_of(parse_period("2027-01", SH).start, SH) == "2027-01"


def test_is_month():
    assert is_month("2026-11") and is_month("2026-01")
    for text in ("2026-Q4", "2026-13", "2026", "2026-11-21", "2026-11\n", " 2026-11"):
        assert not is_month(text), text
