"""gateway.sensors.sun: when a lamp should be lit (COMMITMENTS.md ``lighting_intact``).

Dawn and dusk expectations are computed here with astral directly (civil, 6°), for the
local date, so the tests pin the boundaries rather than repeat the clock's own arithmetic.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from astral import Observer
from astral import sun as astral_sun

from gateway.sensors.sun import SunClock, parse_schedule

SHANGHAI_TZ = ZoneInfo("Asia/Shanghai")
SHANGHAI = SunClock(31.23, 121.47, SHANGHAI_TZ)
OSLO_TZ = ZoneInfo("Europe/Oslo")
DATES = [date(2025, 3, 20), date(2025, 6, 21), date(2025, 12, 21), date(2026, 1, 1)]


def at(day: date, hh: int, mm: int = 0, ss: int = 0, tz: ZoneInfo = SHANGHAI_TZ) -> float:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=tz).timestamp()


# -- by the sun -------------------------------------------------------------------------------------

@pytest.mark.parametrize("day", DATES, ids=str)
@pytest.mark.parametrize(
    ("hh", "mm", "lit"),
    [
        pytest.param(3, 0, True, id="03:00"),
        pytest.param(12, 0, False, id="noon"),
        pytest.param(23, 0, True, id="23:00"),
        pytest.param(0, 0, True, id="midnight"),
        pytest.param(23, 59, True, id="23:59"),
    ],
)
def test_shanghai_by_hour(day: date, hh: int, mm: int, lit: bool) -> None:
    assert SHANGHAI.lit_expected(at(day, hh, mm)) is lit


TWILIGHT = [
    pytest.param(31.23, 121.47, "Asia/Shanghai", d, id=f"shanghai-{d}") for d in DATES
] + [
    pytest.param(52.52, 13.40, "Europe/Berlin", date(2025, 3, 30), id="berlin-dst-starts"),
    pytest.param(52.52, 13.40, "Europe/Berlin", date(2025, 10, 26), id="berlin-dst-ends"),
    pytest.param(45.75, 126.63, "Asia/Shanghai", date(2025, 12, 21), id="harbin-winter"),
    pytest.param(18.25, 109.50, "Asia/Shanghai", date(2025, 6, 21), id="sanya-summer"),
]


@pytest.mark.parametrize(("lat", "lon", "zone", "day"), TWILIGHT)
@pytest.mark.parametrize(
    ("edge", "offset", "lit"),
    [
        pytest.param("dawn", -1.0, True, id="just-before-dawn"),
        pytest.param("dawn", 0.0, False, id="at-dawn"),
        pytest.param("dawn", 1.0, False, id="just-after-dawn"),
        pytest.param("dusk", -1.0, False, id="just-before-dusk"),
        pytest.param("dusk", 0.0, True, id="at-dusk"),
        pytest.param("dusk", 1.0, True, id="just-after-dusk"),
    ],
)
def test_lit_between_civil_dusk_and_dawn(
    lat: float, lon: float, zone: str, day: date, edge: str, offset: float, lit: bool
) -> None:
    tz = ZoneInfo(zone)
    fn = astral_sun.dawn if edge == "dawn" else astral_sun.dusk
    moment = fn(Observer(lat, lon), day, 6.0, tz).timestamp() + offset
    assert SunClock(lat, lon, tz).lit_expected(moment) is lit


def test_one_clock_stays_right_across_many_days_and_keeps_a_small_cache() -> None:
    clock = SunClock(31.23, 121.47, SHANGHAI_TZ)
    observer = Observer(31.23, 121.47)
    for n in range(40):
        day = date.fromordinal(date(2025, 1, 1).toordinal() + n * 9)
        dawn = astral_sun.dawn(observer, day, 6.0, SHANGHAI_TZ).timestamp()
        dusk = astral_sun.dusk(observer, day, 6.0, SHANGHAI_TZ).timestamp()
        for moment, lit in ((dawn - 1, True), (dawn + 1, False), (dusk - 1, False), (dusk + 1, True)):
            assert clock.lit_expected(moment) is lit, (day, moment)
        assert len(clock._twilight) <= 4


POLAR = [
    pytest.param(69.65, 18.96, date(2025, 6, 21), 0, False, id="tromso-midsummer-midnight"),
    pytest.param(69.65, 18.96, date(2025, 6, 21), 12, False, id="tromso-midsummer-noon"),
    pytest.param(69.65, 18.96, date(2025, 6, 21), 23, False, id="tromso-midsummer-23h"),
    pytest.param(69.65, 18.96, date(2025, 5, 25), 1, False, id="tromso-white-night"),
    # Tromsø's polar night still has civil twilight at noon (sun about 3° below the horizon)
    pytest.param(69.65, 18.96, date(2025, 12, 21), 12, False, id="tromso-midwinter-noon-civil-twilight"),
    pytest.param(69.65, 18.96, date(2025, 12, 21), 8, True, id="tromso-midwinter-morning"),
    pytest.param(69.65, 18.96, date(2025, 12, 21), 20, True, id="tromso-midwinter-evening"),
    # Longyearbyen: the sun never rises above -6° in December, astral has no dawn
    pytest.param(78.22, 15.65, date(2025, 12, 21), 12, True, id="longyearbyen-midwinter-noon"),
    pytest.param(78.22, 15.65, date(2025, 12, 21), 0, True, id="longyearbyen-midwinter-midnight"),
    pytest.param(78.22, 15.65, date(2025, 6, 21), 0, False, id="longyearbyen-midsummer-midnight"),
]


@pytest.mark.parametrize(("lat", "lon", "day", "hh", "lit"), POLAR)
def test_polar_day_and_night(lat: float, lon: float, day: date, hh: int, lit: bool) -> None:
    assert SunClock(lat, lon, OSLO_TZ).lit_expected(at(day, hh, tz=OSLO_TZ)) is lit


def test_nothing_to_go_by_gives_none() -> None:
    assert SunClock(None, None, SHANGHAI_TZ).lit_expected(at(DATES[0], 23)) is None


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        pytest.param(31.23, None, id="latitude-only"),
        pytest.param(None, 121.47, id="longitude-only"),
        pytest.param(90.5, 0.0, id="latitude-out-of-range"),
        pytest.param(0.0, -180.5, id="longitude-out-of-range"),
    ],
)
def test_bad_coordinates_are_refused(lat: float | None, lon: float | None) -> None:
    with pytest.raises(ValueError, match=r"latitude|longitude"):
        SunClock(lat, lon, SHANGHAI_TZ)


# -- by schedule ------------------------------------------------------------------------------------

NIGHT = parse_schedule("18:30-06:00")
OFFICE = parse_schedule("08:00-17:30")
DAY = DATES[1]

SCHEDULED = [
    pytest.param(NIGHT, (18, 29, 59), False, id="night-just-before-start"),
    pytest.param(NIGHT, (18, 30, 0), True, id="night-at-start"),
    pytest.param(NIGHT, (23, 59, 59), True, id="night-before-midnight"),
    pytest.param(NIGHT, (0, 0, 0), True, id="night-at-midnight"),
    pytest.param(NIGHT, (5, 59, 59), True, id="night-just-before-end"),
    pytest.param(NIGHT, (6, 0, 0), False, id="night-at-end"),
    pytest.param(NIGHT, (12, 0, 0), False, id="night-noon"),
    pytest.param(OFFICE, (7, 59, 59), False, id="office-just-before-start"),
    pytest.param(OFFICE, (8, 0, 0), True, id="office-at-start"),
    pytest.param(OFFICE, (12, 0, 0), True, id="office-noon"),
    pytest.param(OFFICE, (17, 29, 59), True, id="office-just-before-end"),
    pytest.param(OFFICE, (17, 30, 0), False, id="office-at-end"),
    pytest.param(OFFICE, (23, 0, 0), False, id="office-night"),
]


@pytest.mark.parametrize("clock", [SHANGHAI, SunClock(None, None, SHANGHAI_TZ)], ids=["with-sun", "without-sun"])
@pytest.mark.parametrize(("schedule", "hms", "lit"), SCHEDULED)
def test_schedule_wins_over_the_sun(clock: SunClock, schedule: tuple[time, time], hms: tuple, lit: bool) -> None:
    assert clock.lit_expected(at(DAY, *hms), schedule) is lit


def test_schedule_is_in_site_local_time() -> None:
    utc_clock = SunClock(None, None, ZoneInfo("UTC"))
    moment = at(DAY, 19)  # 19:00 in Shanghai is 11:00 UTC
    assert SunClock(None, None, SHANGHAI_TZ).lit_expected(moment, NIGHT) is True
    assert utc_clock.lit_expected(moment, NIGHT) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("18:30-06:00", (time(18, 30), time(6, 0)), id="crossing-midnight"),
        pytest.param("08:00-17:30", (time(8, 0), time(17, 30)), id="same-day"),
        pytest.param("8:00-17:30", (time(8, 0), time(17, 30)), id="one-digit-hour"),
        pytest.param(" 18:30 - 06:00 ", (time(18, 30), time(6, 0)), id="spaces"),
        pytest.param("00:00-23:59", (time(0, 0), time(23, 59)), id="almost-all-day"),
    ],
)
def test_parse_schedule(text: str, expected: tuple[time, time]) -> None:
    assert parse_schedule(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("", "HH:MM-HH:MM", id="empty"),
        pytest.param("18:30", "HH:MM-HH:MM", id="no-end"),
        pytest.param("18:30-", "HH:MM-HH:MM", id="dangling-dash"),
        pytest.param("6pm-6am", "HH:MM-HH:MM", id="words"),
        pytest.param("18:30-06:00-07:00", "HH:MM-HH:MM", id="three-times"),
        pytest.param("1830-0600", "HH:MM-HH:MM", id="no-colons"),
        pytest.param("24:00-06:00", "not a time of day", id="hour-24"),
        pytest.param("18:60-06:00", "not a time of day", id="minute-60"),
        pytest.param("18:30-18:30", "same time", id="empty-span"),
        pytest.param(1830, "text", id="not-text"),
    ],
)
def test_parse_schedule_refuses_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_schedule(text)
