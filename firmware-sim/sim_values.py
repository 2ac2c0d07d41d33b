"""Pure value generation for simulated facility devices.

Nothing here touches a clock, a socket or a global random generator: every function
takes the device's state and the simulated time, so tests can replay any device at
any instant without a broker, and a given ``--seed`` always yields the same values.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

KINDS: tuple[str, ...] = (
    "streetlight",
    "fire_extinguisher",
    "fire_hydrant",
    "smoke_detector",
    "drain_level",
    "checkpoint",
)
READING_KINDS: tuple[str, ...] = KINDS[:-1]
"""Kinds that send readings; ``checkpoint`` readers send taps instead."""

CATEGORY: dict[str, str] = {
    "streetlight": "lighting",
    "fire_extinguisher": "fire",
    "fire_hydrant": "fire",
    "smoke_detector": "fire",
    "drain_level": "drainage",
}
DEVICE_PREFIX: dict[str, str] = {
    "streetlight": "lamp-",
    "fire_extinguisher": "ext-",
    "fire_hydrant": "hyd-",
    "smoke_detector": "smoke-",
    "drain_level": "well-",
    "checkpoint": "reader-",
}
REQUIRED_FIELD: dict[str, str] = {
    "streetlight": "current_a",
    "fire_extinguisher": "pressure_mpa",
    "fire_hydrant": "pressure_mpa",
    "smoke_detector": "alarm",
    "drain_level": "level_m",
}
"""The field each kind cannot do without (CONTRACT.md); bad payloads break it."""

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_LATITUDE = 31.23
DEFAULT_LONGITUDE = 121.47
BATTERY_DRAIN_PCT_PER_DAY = 0.1
"""Smoke detector battery loss: ~3 %/month, so a long ``--speed`` run shows a trend."""
TS_FORMATS: tuple[str, ...] = ("epoch", "rfc3339", "none")


def device_id(kind: str, index: int) -> str:
    """Device id of the ``index``-th (1-based) device of ``kind``, e.g. ``lamp-0001``."""
    return f"{DEVICE_PREFIX[kind]}{index:04d}"


def reading_topic(prefix: str, site: str, kind: str, device: str) -> str:
    """Topic a device of ``kind`` publishes its readings (or taps) on."""
    leaf = "tap" if kind == "checkpoint" else "reading"
    return f"{prefix}/{site}/{kind}/{device}/{leaf}"


def status_topic(prefix: str, site: str, kind: str, device: str) -> str:
    """Retained ``online``/``offline`` topic of a device, also its last will."""
    return f"{prefix}/{site}/{kind}/{device}/status"


def sun_elevation_deg(latitude: float, longitude: float, ts: float) -> float:
    """Approximate solar elevation (USNO low-precision formulas, error well under 1°).

    Enough for a photocell-like lamp schedule; avoids a dependency on an almanac library.
    """
    d = ts / 86400.0 + 2440587.5 - 2451545.0  # days since J2000.0
    g = math.radians((357.529 + 0.98560028 * d) % 360.0)
    q = (280.459 + 0.98564736 * d) % 360.0
    ecl_lon = math.radians(q + 1.915 * math.sin(g) + 0.020 * math.sin(2 * g))
    obliquity = math.radians(23.439 - 0.00000036 * d)
    ra = math.atan2(math.cos(obliquity) * math.sin(ecl_lon), math.cos(ecl_lon))
    dec = math.asin(math.sin(obliquity) * math.sin(ecl_lon))
    gmst_h = (18.697374558 + 24.06570982441908 * d) % 24.0
    hour_angle = math.radians(gmst_h * 15.0 + longitude) - ra
    lat = math.radians(latitude)
    sin_elev = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(hour_angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_elev))))


@dataclass(frozen=True)
class LampSchedule:
    """When a lamp controller switches its lamp on.

    Either a fixed local-time window (``on``..``off``, crossing midnight when ``on > off``)
    or, with ``sun=True``, a photocell that lights while the sun is below ``sun_on_deg``
    (a few degrees above the horizon, so the lamp is lit whenever the sun has set).
    """

    on: dtime = dtime(18, 0)
    off: dtime = dtime(6, 0)
    tz: tzinfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    sun: bool = False
    latitude: float = DEFAULT_LATITUDE
    longitude: float = DEFAULT_LONGITUDE
    sun_on_deg: float = 3.0

    @classmethod
    def parse(cls, text: str, tz: tzinfo, latitude: float, longitude: float) -> LampSchedule:
        """Parse ``HH:MM-HH:MM`` or ``sun``; raises ValueError naming the problem."""
        if text.strip().lower() == "sun":
            return cls(tz=tz, sun=True, latitude=latitude, longitude=longitude)
        try:
            on_text, off_text = text.split("-")
            on, off = dtime.fromisoformat(on_text.strip()), dtime.fromisoformat(off_text.strip())
        except ValueError as err:
            raise ValueError(f"lamp schedule {text!r}: expected HH:MM-HH:MM or 'sun'") from err
        return cls(on=on, off=off, tz=tz, latitude=latitude, longitude=longitude)

    def lit(self, now: float) -> bool:
        """Whether the lamp should be on at epoch ``now``."""
        if self.sun:
            return sun_elevation_deg(self.latitude, self.longitude, now) < self.sun_on_deg
        local = datetime.fromtimestamp(now, self.tz).time()
        if self.on <= self.off:
            return self.on <= local < self.off
        return local >= self.on or local < self.off


@dataclass
class Condition:
    """What has happened to a device's hardware, set by scenario events (``sim_scenario``).

    Times (``*_since``) are on the scenario clock, which may run faster than the ``ts`` the
    device stamps; a default Condition is a healthy device and changes no value.
    """

    lamp_failed: bool = False
    day_burning: bool = False
    ballast_loss_per_day: float = 0.0
    ballast_since: float = 0.0
    leak_mpa_per_hour: float = 0.0
    leak_since: float = 0.0
    main_drop_mpa: float = 0.0
    battery_pct_per_hour: float = 0.0
    battery_since: float = 0.0
    tamper: bool = False
    cover_knocked: bool = False
    rain: tuple[tuple[float, float], ...] = ()
    silent: bool = False
    away_until: float = 0.0


RAIN_RISE_M_PER_HOUR = 1.0
"""How fast a well fills in heavy rain (0.9-1.2 times this per well); it drains at half that. Two hours
of rain take every well over its 1.8 m alarm level and none to its 3 m depth."""
RAIN_MAX_LEVEL_M = 2.6
"""The highest rain takes a well: over its alarm level (``level_high``), short of overflowing."""


@dataclass
class DeviceState:
    """Everything a device remembers between readings.

    Per-device set points (``nominal``, ``tilt0``, ``battery0``...) make devices differ
    from each other the way real ones do; ``drift`` wanders slowly so consecutive
    readings of one device are correlated instead of independent noise.
    """

    device: str
    kind: str
    rng: random.Random
    born: float
    index: int = 1
    seq: int = 0
    nominal: float = 0.0
    drift: float = 0.0
    battery0: float = 95.0
    tilt0: float = 0.0
    rssi0: float = -70.0
    schedule: LampSchedule = field(default_factory=LampSchedule)
    route: tuple[str, ...] = ()
    badge: str = ""
    cond: Condition = field(default_factory=Condition)
    buffer: list[dict[str, Any]] = field(default_factory=list)
    """Readings taken while the broker was away, oldest first (sent late, in order)."""


def new_device(
    kind: str,
    index: int,
    *,
    born: float,
    seed: int | str = 0,
    schedule: LampSchedule | None = None,
    route: tuple[str, ...] = (),
) -> DeviceState:
    """Create device ``index`` (1-based) of ``kind`` with its own seeded generator.

    Seeding per device (not one shared generator) keeps a device's values independent of
    how many other devices run and of the order the scheduler visits them.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    dev = device_id(kind, index)
    rng = random.Random(f"{seed}/{dev}")
    state = DeviceState(device=dev, kind=kind, rng=rng, born=born, index=index, schedule=schedule or LampSchedule())
    if kind == "streetlight":
        state.nominal = rng.uniform(0.405, 0.445)
    elif kind == "fire_extinguisher":
        state.nominal = rng.uniform(1.17, 1.23)
    elif kind == "fire_hydrant":
        state.nominal = rng.uniform(0.27, 0.33)
    elif kind == "smoke_detector":
        state.battery0 = rng.uniform(93.0, 97.0)
    elif kind == "drain_level":
        state.nominal = rng.uniform(0.25, 0.45)
        state.tilt0 = rng.uniform(0.2, 1.5)
    elif kind == "checkpoint":
        state.route = route
        state.badge = f"G{index:03d}"
    state.rssi0 = rng.uniform(-85.0, -60.0)
    return state


def _clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


def _walk(state: DeviceState, step: float, lo: float, hi: float) -> float:
    """Advance the device's bounded random walk and return it."""
    state.drift = _clamp(state.drift + state.rng.gauss(0.0, step), lo, hi)
    return state.drift


def _rssi(state: DeviceState) -> int:
    return round(state.rssi0 + state.rng.gauss(0.0, 1.5))


def _streetlight(state: DeviceState, now: float, scene: float, fault: bool) -> dict[str, Any]:
    rng, cond = state.rng, state.cond
    lit = state.schedule.lit(now) or cond.day_burning  # a day-burning controller ignores its schedule
    voltage = _clamp(221.0 + _walk(state, 0.3, -5.0, 8.0) + rng.gauss(0.0, 0.4), 215.0, 230.0)
    if fault and not lit:
        # Daytime failure: a supply fault (brown-out) is what a lamp can show by day.
        voltage, on, current = round(rng.uniform(160.0, 175.0), 1), False, 0.0
    elif fault:
        on = rng.random() < 0.5  # lamp failed (draws nothing) vs controller left it dark
        current = 0.02 if on else 0.0
    elif lit and cond.lamp_failed:
        on, current = True, rng.uniform(0.0, 0.02)  # switched on, but a dead lamp draws ~nothing
    elif lit:
        on = True
        current = _clamp(state.nominal * voltage / 221.0 + rng.gauss(0.0, 0.002), 0.40, 0.45)
        if cond.ballast_loss_per_day:  # an ageing ballast delivers less and less current
            days = max(0.0, scene - cond.ballast_since) / 86400.0
            current *= max(0.0, 1.0 - cond.ballast_loss_per_day * days)
    else:
        on, current = False, 0.0
    return {
        "on": on,
        "voltage_v": round(voltage, 1),
        "current_a": round(current, 3),
        "power_w": round(voltage * current * 0.95, 1),
    }


def _fire_extinguisher(state: DeviceState, now: float, scene: float, fault: bool) -> dict[str, Any]:
    del now  # a sealed cylinder does not care about the time of day
    pressure = 0.6 if fault else state.nominal + state.rng.gauss(0.0, 0.003)
    if state.cond.leak_mpa_per_hour:  # a slow leak through the valve seal
        pressure -= state.cond.leak_mpa_per_hour * max(0.0, scene - state.cond.leak_since) / 3600.0
        pressure = max(0.0, pressure)
    return {"pressure_mpa": round(pressure, 3), "present": True}


def _fire_hydrant(state: DeviceState, now: float, scene: float, fault: bool) -> dict[str, Any]:
    if fault:
        return {"pressure_mpa": 0.03}
    # Mains pressure sags a little at the morning and evening demand peaks.
    hour = datetime.fromtimestamp(now, state.schedule.tz).hour
    sag = 0.012 if hour in (7, 8, 18, 19, 20) else 0.0
    pressure = _clamp(state.nominal - sag + state.rng.gauss(0.0, 0.004), 0.25, 0.35)
    pressure = max(0.0, pressure - state.cond.main_drop_mpa)  # the main feeding it lost pressure
    return {"pressure_mpa": round(pressure, 3)}


def _smoke_detector(state: DeviceState, now: float, scene: float, fault: bool) -> dict[str, Any]:
    days = max(0.0, now - state.born) / 86400.0
    cond = state.cond
    drained = cond.battery_pct_per_hour * max(0.0, scene - cond.battery_since) / 3600.0  # a failing cell
    battery = _clamp(state.battery0 - days * BATTERY_DRAIN_PCT_PER_DAY - drained, 0.0, 100.0)
    tamper = cond.tamper
    if fault and state.rng.random() < 0.5:
        tamper = True
    elif fault:
        battery = 10.0
    return {
        "alarm": False,
        "battery_pct": math.floor(battery),
        "tamper": tamper,
        "rssi_dbm": _rssi(state),
    }


def _drain_level(state: DeviceState, now: float, scene: float, fault: bool) -> dict[str, Any]:
    del now
    rng, cond = state.rng, state.cond
    level = _clamp(state.nominal + _walk(state, 0.004, -0.05, 0.05) + rng.gauss(0.0, 0.003), 0.2, 0.5)
    rise = _rain_rise(state, scene)
    if rise:  # the water backs up, but stays below the 3 m depth the site file rates wells at
        level = min(level + rise, RAIN_MAX_LEVEL_M)
    tilt = _clamp(state.tilt0 + rng.gauss(0.0, 0.1), 0.0, 2.0)
    cover_open = False
    if cond.cover_knocked:  # a vehicle knocked the cover off its seat
        cover_open, tilt = True, 40.0 + state.tilt0
    if fault and rng.random() < 0.5:
        level = rng.uniform(1.6, 1.9)  # blocked well backing up
    elif fault:
        cover_open, tilt = True, rng.uniform(35.0, 80.0)  # cover displaced
    return {
        "level_m": round(level, 3),
        "cover_tilt_deg": round(tilt, 1),
        "cover_open": cover_open,
        "rssi_dbm": _rssi(state),
    }


def _rain_rise(state: DeviceState, scene: float) -> float:
    """Water above the dry-weather level: it rises while it rains and drains at half that rate after."""
    rise = RAIN_RISE_M_PER_HOUR * (0.9 + 1.5 * (state.nominal - 0.25))  # a bigger catchment fills faster
    extra = 0.0
    for start, end in state.cond.rain:
        if scene <= start:
            continue
        wet_h = (min(scene, end) - start) / 3600.0
        dry_h = max(0.0, scene - end) / 3600.0
        extra += max(0.0, rise * wet_h - rise / 2 * dry_h)
    return extra


_GENERATORS = {
    "streetlight": _streetlight,
    "fire_extinguisher": _fire_extinguisher,
    "fire_hydrant": _fire_hydrant,
    "smoke_detector": _smoke_detector,
    "drain_level": _drain_level,
}


def reading(
    kind: str, device_state: DeviceState, now: float, *, fault: bool = False, scene: float | None = None
) -> dict[str, Any]:
    """Next payload of a device at simulated epoch ``now``.

    Returns ``{"ts": now, "seq": n, ...kind fields}`` and advances ``seq``. ``fault=True``
    yields a reading the gateway must judge as not intact (see README). For
    ``checkpoint`` it returns a tap (``tap()``), which carries no ``seq``. ``scene`` is the
    scenario clock that leaks, drains and rain follow (default ``now``): a scenario may run it
    faster than the ``ts`` the device stamps (see README "Scenarios").
    """
    if kind != device_state.kind:
        raise ValueError(f"device {device_state.device} is a {device_state.kind}, not a {kind}")
    if kind == "checkpoint":
        return tap(device_state, now)
    try:
        generate = _GENERATORS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}") from None
    payload: dict[str, Any] = {"ts": round(now, 3), "seq": device_state.seq}
    payload.update(generate(device_state, now, now if scene is None else scene, fault))
    device_state.seq += 1
    return payload


def tap(device_state: DeviceState, now: float) -> dict[str, Any]:
    """Next tap of a checkpoint reader: the guard walks the reader's route in order."""
    if not device_state.route:
        raise ValueError(f"reader {device_state.device} has no checkpoint tags on its route")
    tag = device_state.route[device_state.seq % len(device_state.route)]
    device_state.seq += 1
    return {"ts": round(now, 3), "tag": tag, "badge": device_state.badge}


def format_ts(ts: float, ts_format: str, tz: tzinfo) -> float | str:
    """Render an epoch time as the device would send it (epoch float or RFC 3339)."""
    if ts_format == "rfc3339":
        return datetime.fromtimestamp(ts, tz).isoformat(timespec="milliseconds")
    return ts


def encode(payload: dict[str, Any], ts_format: str = "epoch", tz: tzinfo | None = None) -> bytes:
    """Serialise a payload, applying ``--ts-format`` (``none`` drops ``ts``)."""
    if ts_format not in TS_FORMATS:
        raise ValueError(f"ts format {ts_format!r}: expected one of {', '.join(TS_FORMATS)}")
    if "ts" in payload and ts_format != "epoch":
        payload = dict(payload)
        if ts_format == "none":
            del payload["ts"]
        else:
            payload["ts"] = format_ts(payload["ts"], ts_format, tz or ZoneInfo(DEFAULT_TIMEZONE))
    return json.dumps(payload, ensure_ascii=False).encode()
