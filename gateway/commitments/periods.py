"""Periods in site local time: a day, a month, a quarter, a year, or a custom range."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from gateway.commitments.model import Period

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def _local(y: int, m: int, d: int, tz: ZoneInfo) -> float:
    return datetime(y, m, d, tzinfo=tz).timestamp()


def _next_month(y: int, m: int) -> tuple[int, int]:
    return (y + 1, 1) if m == 12 else (y, m + 1)


FORMS = "use 2026-11, 2026-Q4, 2026, 2026-11-21 or 2026-11-01..2026-11-15"


def is_month(text: str) -> bool:
    """Whether ``text`` names a month (``2026-11``), the unit reports are frozen in."""
    return _MONTH.fullmatch(text) is not None


def parse_period(text: str, tz: ZoneInfo) -> Period:
    """``2026-11`` (a month), ``2026-Q4``, ``2026``, ``2026-11-21`` (a day) or ``2026-11-01..2026-11-15``
    (a custom range of local days, both included); ValueError with the accepted forms otherwise."""
    try:
        if text.count("..") == 1:
            first, _, last = text.partition("..")
            start, end = _parse(first, tz).start, _parse(last, tz).end
            if not end > start:
                raise ValueError("the range ends before it starts")
            return Period(start, end)
        return _parse(text, tz)
    except ValueError as exc:
        why = f" ({exc})" if str(exc) else ""
        raise ValueError(f"{text!r} is not a period{why}: {FORMS}") from None


def _parse(text: str, tz: ZoneInfo) -> Period:
    if m := _MONTH.match(text):
        y, mo = int(m[1]), int(m[2])
        return Period(_local(y, mo, 1, tz), _local(*_next_month(y, mo), 1, tz))
    if m := _QUARTER.match(text):
        y, q = int(m[1]), int(m[2])
        return Period(_local(y, 3 * q - 2, 1, tz), _local(*_next_month(y, 3 * q), 1, tz))
    if m := _YEAR.match(text):
        return Period(_local(int(m[1]), 1, 1, tz), _local(int(m[1]) + 1, 1, 1, tz))
    if m := _DAY.match(text):
        d = date(int(m[1]), int(m[2]), int(m[3]))
        return Period(_local(d.year, d.month, d.day, tz), _local(*_next_day(d), tz))
    raise ValueError("")


def _next_day(d: date) -> tuple[int, int, int]:
    n = date.fromordinal(d.toordinal() + 1)
    return n.year, n.month, n.day


def month_of(at: float, tz: ZoneInfo) -> str:
    d = datetime.fromtimestamp(at, tz)
    return f"{d.year:04d}-{d.month:02d}"


def previous_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y - 1:04d}-12" if m == 1 else f"{y:04d}-{m - 1:02d}"
