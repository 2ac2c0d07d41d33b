"""Scenario files: a site and what happens to it over a day, as timed events.

A scenario is TOML (see ``scenarios/demo-day.toml`` and README "Scenarios"). Parsing is
strict: an unknown event, a device the fleet does not have or a missing field is a
``ScenarioError`` naming the file, the event's index and line, and the field, so a typo
never turns into a demo where nothing happens.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path
from typing import Any

from sim_values import DEVICE_PREFIX, KINDS, DeviceState

SPEC: dict[str, tuple[str | None, str, dict[str, float]]] = {
    # event: (kind of its device, "device"/"optional"/"none"/"guard", parameters and defaults)
    "lamp_fail": ("streetlight", "device", {}),
    "day_burning": ("streetlight", "device", {}),
    "ballast_ageing": ("streetlight", "device", {"pct_per_day": 10.0}),
    "leak": ("fire_extinguisher", "device", {"mpa_per_hour": 0.05}),
    "hydrant_main_drop": ("fire_hydrant", "optional", {"mpa": 0.25}),
    "battery_low": ("smoke_detector", "device", {"pct_per_hour": 30.0}),
    "tamper": ("smoke_detector", "device", {}),
    "cover_knocked": ("drain_level", "device", {}),
    "rain": (None, "none", {"hours": 2.0}),
    "silent": (None, "device", {}),
    "broker_away": (None, "device", {"minutes": 30.0}),
    "restore": (None, "optional", {}),
    "skip": (None, "guard", {}),
    "asleep": (None, "guard", {"hours": 1.0}),
}
ANNOUNCES: dict[str, str] = {
    "lamp_fail": "lamp_out",
    "ballast_ageing": "lamp_out",
    "day_burning": "day_burning",
    "leak": "pressure_low",
    "hydrant_main_drop": "pressure_low",
    "battery_low": "battery_low",
    "tamper": "tamper",
    "cover_knocked": "cover_displaced",
    "rain": "level_high",
    "silent": "device_lost",
    "skip": "patrol.missed",
    "asleep": "patrol.round_missed",
}
"""The fault (or patrol event) each event makes the gateway announce, by the gateway's own names."""

_SITE_KEYS = {"name", "timezone", "latitude", "longitude", "lamp_schedule", "start", "devices", "checkpoints",
              "guards"}
_PATROL_KEYS = {"every_min", "duration_min", "tolerance_min"}


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names where."""


@dataclass(frozen=True)
class Event:
    """One timed event; ``at`` is seconds after the scenario day's local midnight (``day`` × 86400 added)."""

    at: float
    event: str
    device: str | None = None
    guard: str | None = None
    checkpoint: str | None = None
    params: tuple[tuple[str, float], ...] = ()

    def param(self, name: str) -> float:
        """The event's parameter ``name``, or its default."""
        return dict(self.params).get(name, SPEC[self.event][2][name])


@dataclass(frozen=True)
class Patrol:
    """Rounds of every guard's route, all day: often enough that a demo sees one within minutes."""

    every_min: int = 5
    duration_min: float = 3.5
    tolerance_min: float = 1.0


@dataclass(frozen=True)
class Scenario:
    """A site (its fleet) and its day of events, in time order."""

    name: str
    devices: tuple[tuple[str, int], ...]
    timezone: str = "Asia/Shanghai"
    latitude: float = 31.23
    longitude: float = 121.47
    lamp_schedule: str = "18:00-06:00"
    start: str = "07:00"
    checkpoints: int = 0
    guards: int = 0
    patrol: Patrol = field(default_factory=Patrol)
    events: tuple[Event, ...] = ()

    def count(self, kind: str) -> int:
        return dict(self.devices).get(kind, 0)


def _hhmm(text: object, where: str) -> float:
    try:
        moment = dtime.fromisoformat(str(text))
    except ValueError:
        raise ScenarioError(f"{where}: {text!r} is not a time of day HH:MM") from None
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _event_lines(text: str) -> list[int]:
    """Line numbers of the ``event = ...`` keys, in file order: event i is (usually) on line i."""
    return [n for n, line in enumerate(text.splitlines(), 1) if re.search(r"(^|[{,\s])event\s*=", line)]


def _kind_of(device: str) -> str | None:
    return next((k for k, prefix in DEVICE_PREFIX.items() if device.startswith(prefix)), None)


def _event(raw: Any, where: str, sc: Scenario) -> Event:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table like {{ at = \"20:00\", event = \"lamp_fail\", ... }}")
    name = raw.get("event")
    if name not in SPEC:
        raise ScenarioError(f"{where}: event: {name!r} is not one of {', '.join(SPEC)}")
    kind, target, defaults = SPEC[name]
    if "at" not in raw:
        raise ScenarioError(f"{where}: at: missing (a local time HH:MM)")
    day = raw.get("day", 0)
    if not isinstance(day, int) or day < 0:
        raise ScenarioError(f"{where}: day: must be a whole number >= 0")
    at = _hhmm(raw["at"], f"{where}: at") + day * 86400
    allowed = {"at", "day", "event", *defaults, *({"device"} if target in ("device", "optional") else ()),
               *({"guard", "checkpoint"} if target == "guard" else ())}
    for key in raw:
        if key not in allowed:
            raise ScenarioError(f"{where}: {key}: not a field of {name} (fields: {', '.join(sorted(allowed))})")
    device = raw.get("device")
    if target == "device" and device is None:
        raise ScenarioError(f"{where}: device: missing ({name} happens to one device)")
    if device is not None:
        dev_kind = _kind_of(str(device))
        index = str(device).rpartition("-")[2]
        if dev_kind is None or (kind and dev_kind != kind) or not index.isdigit() or not (
                1 <= int(index) <= sc.count(dev_kind)):
            want = f"a {kind}" if kind else "a device"
            raise ScenarioError(f"{where}: device: {device!r} is not {want} of this site's fleet")
    guard, checkpoint = raw.get("guard"), raw.get("checkpoint")
    if target == "guard":
        if not (isinstance(guard, str) and guard[1:].isdigit() and 1 <= int(guard[1:]) <= sc.guards):
            raise ScenarioError(f"{where}: guard: {guard!r} is not one of G001..G{sc.guards:03d}")
        if name == "skip" and not (isinstance(checkpoint, str) and checkpoint[3:].isdigit()
                                   and 1 <= int(checkpoint[3:]) <= sc.checkpoints):
            raise ScenarioError(f"{where}: checkpoint: {checkpoint!r} is not one of CP-0001..CP-{sc.checkpoints:04d}")
    params = []
    for key in defaults:
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ScenarioError(f"{where}: {key}: must be a number >= 0")
            params.append((key, float(value)))
    return Event(at, name, device, guard, checkpoint, tuple(params))


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """Parse a scenario; ScenarioError names the file, line and field of the first problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{source}: {err}") from None
    site = doc.get("site", {})
    for key in set(doc) - {"site", "patrol", "events"}:
        raise ScenarioError(f"{source}: {key}: unknown table (expected site, patrol, events)")
    for key in set(site) - _SITE_KEYS:
        raise ScenarioError(f"{source}: site.{key}: unknown field (fields: {', '.join(sorted(_SITE_KEYS))})")
    devices = site.get("devices", {})
    for kind, n in devices.items():
        if kind not in KINDS[:-1] or not isinstance(n, int) or not 0 <= n <= 9999:
            raise ScenarioError(f"{source}: site.devices.{kind}: expected a reading kind = a count 0..9999")
    patrol = doc.get("patrol", {})
    for key in set(patrol) - _PATROL_KEYS:
        raise ScenarioError(f"{source}: patrol.{key}: unknown field (fields: {', '.join(sorted(_PATROL_KEYS))})")
    start = str(site.get("start", "07:00"))
    _hhmm(start, f"{source}: site.start")
    try:
        sc = Scenario(name=str(site.get("name", "demo")), devices=tuple(sorted(devices.items())),
                      timezone=str(site.get("timezone", "Asia/Shanghai")),
                      latitude=float(site.get("latitude", 31.23)), longitude=float(site.get("longitude", 121.47)),
                      lamp_schedule=str(site.get("lamp_schedule", "18:00-06:00")), start=start,
                      checkpoints=int(site.get("checkpoints", 0)), guards=int(site.get("guards", 0)),
                      patrol=Patrol(**patrol))
    except (TypeError, ValueError) as err:
        raise ScenarioError(f"{source}: site: {err}") from None
    if sc.guards > sc.checkpoints:
        raise ScenarioError(f"{source}: site.guards: {sc.guards} guards need at least as many checkpoints")
    raw_events = doc.get("events", [])
    lines = _event_lines(text)
    events = []
    for i, raw in enumerate(raw_events):
        line = f" (line {lines[i]})" if len(lines) == len(raw_events) else ""
        events.append(_event(raw, f"{source}: events[{i}]{line}", sc))
    return Scenario(**{**sc.__dict__, "events": tuple(sorted(events, key=lambda e: e.at))})


def load(path: str | Path) -> Scenario:
    """Read and parse a scenario file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError(f"{path}: {err.strerror}") from None
    return parse(text, str(path))


def apply(event: Event, fleet: dict[str, DeviceState], scene: float) -> list[str]:
    """Make ``event`` happen to the fleet at scenario time ``scene``; return the devices it touched.

    Guard events (``skip``, ``asleep``) are the patrol walker's (``sim_patrol``), not a device's.
    """
    name = event.event
    if name == "rain":
        hit = [d for d in fleet.values() if d.kind == "drain_level"]
        for d in hit:
            d.cond.rain += ((scene, scene + event.param("hours") * 3600.0),)
        return [d.device for d in hit]
    if name in ("hydrant_main_drop", "restore") and event.device is None:
        hit = [d for d in fleet.values() if d.kind == "fire_hydrant"]
        for d in hit:
            d.cond.main_drop_mpa = event.param("mpa") if name == "hydrant_main_drop" else 0.0
        return [d.device for d in hit]
    if event.device is None:
        return []
    c = fleet[event.device].cond
    if name == "lamp_fail":
        c.lamp_failed = True
    elif name == "day_burning":
        c.day_burning = True
    elif name == "ballast_ageing":
        c.ballast_loss_per_day, c.ballast_since = event.param("pct_per_day") / 100.0, scene
    elif name == "leak":
        c.leak_mpa_per_hour, c.leak_since = event.param("mpa_per_hour"), scene
    elif name == "hydrant_main_drop":
        c.main_drop_mpa = event.param("mpa")
    elif name == "battery_low":
        c.battery_pct_per_hour, c.battery_since = event.param("pct_per_hour"), scene
    elif name == "tamper":
        c.tamper = True
    elif name == "cover_knocked":
        c.cover_knocked = True
    elif name == "silent":
        c.silent = True
    elif name == "broker_away":
        c.away_until = scene + event.param("minutes") * 60.0
    elif name == "restore":  # repaired: back to healthy (the weather stays as it is)
        fleet[event.device].cond = type(c)(rain=c.rain)
    return [event.device]
