"""Guards walking their routes, in real local time, as the gateway's patrol schedule expects them.

Rounds are due every ``every_min`` from local midnight (the site file written by
``sim_site.patrol_toml`` says the same); guard i walks route i, starting ``lag_s`` after the
round is due and tapping its checkpoints evenly over ``duration_min``. Taps carry real time:
the gateway judges rounds against its own clock, so a patrol cannot be accelerated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from sim_scenario import Patrol


@dataclass(frozen=True)
class PlannedTap:
    """A tap the guard will make at real epoch ``at``."""

    at: float
    guard: str
    reader: str
    checkpoint: str


@dataclass
class Guard:
    """One guard, his reader and his route; scenario events make him skip a checkpoint or doze off."""

    id: str
    reader: str
    route: tuple[str, ...]
    skip: set[str] = field(default_factory=set)
    asleep_until: float = 0.0
    """Scenario-clock time until which he starts no round."""


def routes(checkpoints: int, guards: int) -> list[tuple[str, ...]]:
    """Split CP-0001..CP-n into ``guards`` routes of consecutive checkpoints."""
    ids = [f"CP-{i:04d}" for i in range(1, checkpoints + 1)]
    size = math.ceil(checkpoints / guards) if guards else 0
    return [tuple(ids[k * size:(k + 1) * size]) for k in range(guards)]


def make_guards(checkpoints: int, guards: int) -> list[Guard]:
    """Guards G001.. with readers reader-0001..; each walks his own route."""
    return [Guard(f"G{i:03d}", f"reader-{i:04d}", r) for i, r in enumerate(routes(checkpoints, guards), 1)]


def next_due(after: float, every_min: int, tz: tzinfo) -> float:
    """The first round due strictly after real epoch ``after`` (rounds from local midnight)."""
    local = datetime.fromtimestamp(after, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    step = every_min * 60.0
    return midnight + (math.floor((after - midnight) / step) + 1) * step


def walk(guard: Guard, due: float, patrol: Patrol, lag_s: float = 10.0) -> list[PlannedTap]:
    """The taps of one round, consuming the guard's pending skips."""
    n = len(guard.route)
    gap = patrol.duration_min * 60.0 / max(1, n - 1)
    taps = [PlannedTap(due + lag_s + i * gap, guard.id, guard.reader, cp)
            for i, cp in enumerate(guard.route) if cp not in guard.skip]
    guard.skip.clear()
    return taps
