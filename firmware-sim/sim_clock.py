"""The scenario clock, shared by every simulator of a run (README "Scenarios" explains the two clocks).

Readings carry real time; events and slow processes (rain, a leak) follow the scenario clock, which
reads the scenario's ``start`` at real epoch ``real0`` and runs ``speed`` times faster. The MQTT
simulator and the demo's serial devices build the same :class:`SceneClock` from the same origin, so
rain reaches the RS-485 wells when it reaches the MQTT ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sim_scenario import Event


@dataclass(frozen=True)
class SceneClock:
    """Scenario epoch ``scene0`` at real epoch ``real0``, running ``speed`` times real time."""

    real0: float
    scene0: float
    speed: float
    tz: ZoneInfo

    @classmethod
    def starting(cls, start: str, real0: float, speed: float, tz: ZoneInfo) -> SceneClock:
        """The clock reading today's ``start`` (HH:MM, site local) at real epoch ``real0``."""
        hh, mm = (int(x) for x in start.split(":")[:2])
        local = datetime.fromtimestamp(real0, tz).replace(hour=hh, minute=mm, second=0, microsecond=0)
        return cls(real0, local.timestamp(), speed, tz)

    def scene(self, real: float) -> float:
        """Scenario-clock epoch at real epoch ``real``."""
        return self.scene0 + (real - self.real0) * self.speed

    def local(self, scene: float) -> str:
        """``HH:MM`` of a scenario epoch, site local."""
        return datetime.fromtimestamp(scene, self.tz).strftime("%H:%M")

    def schedule(self, events: tuple[Event, ...]) -> list[tuple[float, int, Event]]:
        """Each event's scenario epoch, in time order. ``Event.at`` counts from the start day's midnight;
        an event earlier than the start happens the next day (a day from 07:00 ends with the night's)."""
        midnight = datetime.fromtimestamp(self.scene0, self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        out = []
        for i, e in enumerate(events):
            when = (midnight + timedelta(seconds=e.at)).timestamp()
            out.append((when + 86400.0 if when < self.scene0 else when, i, e))
        return sorted(out)
