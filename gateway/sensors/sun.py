"""Whether a lamp should be lit (COMMITMENTS.md ``lighting_intact``).

A lamp counts as failed only when it should be lit: inside its schedule (a corridor lamp
on a timer, 定时) if it has one, otherwise while the sun is below the horizon at the site
(between civil dusk 黄昏 and the next civil dawn 黎明, sun 6° below the horizon, when
street lighting is needed). Pure apart from a small cache; the time is always passed in.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from astral import Depression, Observer
from astral import sun as astral_sun

CIVIL_DEG = float(Depression.CIVIL.value)  # 6°
_SCHEDULE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_CACHE_DAYS = 4


def _clock(hours: str, minutes: str, text: str) -> time:
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError(f"schedule {text!r}: {hours}:{minutes} is not a time of day (00:00 to 23:59)")
    return time(h, m)


def parse_schedule(text: str) -> tuple[time, time]:
    """``"HH:MM-HH:MM"`` in site local time, as (start, end); may cross midnight ("18:30-06:00")."""
    if not isinstance(text, str):
        raise ValueError(f"schedule must be text like '18:30-06:00', got {type(text).__name__}")
    match = _SCHEDULE.fullmatch(text)
    if match is None:
        raise ValueError(f"schedule {text[:40]!r} is not HH:MM-HH:MM (e.g. '18:30-06:00')")
    start, end = _clock(*match.group(1, 2), text), _clock(*match.group(3, 4), text)
    if start == end:
        raise ValueError(f"schedule {text!r} starts and ends at the same time, so its length is unclear")
    return start, end


def in_schedule(local: time, schedule: tuple[time, time]) -> bool:
    """Start inclusive, end exclusive; a schedule whose end is before its start crosses midnight."""
    start, end = schedule
    if start < end:
        return start <= local < end
    return local >= start or local < end


class SunClock:
    """A site's answer to "should a lamp be lit now?" (``lit_expected``)."""

    def __init__(self, latitude: float | None, longitude: float | None, tz: ZoneInfo) -> None:
        if (latitude is None) != (longitude is None):
            raise ValueError("latitude and longitude must be given together")
        if latitude is not None and not -90.0 <= latitude <= 90.0:
            raise ValueError(f"latitude {latitude} is outside -90..90")
        if longitude is not None and not -180.0 <= longitude <= 180.0:
            raise ValueError(f"longitude {longitude} is outside -180..180")
        self.tz = tz
        self.observer = None if latitude is None else Observer(latitude, longitude)
        # local date -> (civil dawn, civil dusk) as epoch seconds, or None when one of them
        # does not happen that day (polar day or night, white nights)
        self._twilight: dict[date, tuple[float, float] | None] = {}

    def lit_expected(self, when: float, schedule: tuple[time, time] | None = None) -> bool | None:
        """True if a lamp should be lit at epoch seconds ``when``; None if nothing says (no
        schedule and no coordinates), in which case a dark lamp is not judged."""
        if schedule is None and self.observer is None:
            return None
        local = datetime.fromtimestamp(when, self.tz)
        if schedule is not None:
            return in_schedule(local.time(), schedule)
        twilight = self._twilight_on(local.date())
        if twilight is None:
            return astral_sun.elevation(self.observer, local) < -CIVIL_DEG
        dawn, dusk = twilight
        return when < dawn or when >= dusk

    def _twilight_on(self, day: date) -> tuple[float, float] | None:
        try:
            return self._twilight[day]
        except KeyError:
            pass
        try:
            dawn = astral_sun.dawn(self.observer, day, CIVIL_DEG, self.tz).timestamp()
            dusk = astral_sun.dusk(self.observer, day, CIVIL_DEG, self.tz).timestamp()
            twilight: tuple[float, float] | None = (dawn, dusk)
        except ValueError:  # the sun never crosses -6° that day
            twilight = None
        if len(self._twilight) >= _CACHE_DAYS:
            del self._twilight[next(iter(self._twilight))]
        self._twilight[day] = twilight
        return twilight
