"""What a site file says about patrols (巡更): guards and their badges, readers, routes,
schedules, and the walking limits behind the plausibility checks. Validated at the boundary;
the patrol engine works on the frozen values below.
"""

from __future__ import annotations

import re
from datetime import time

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.config import Segment

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(v: str) -> time:
    m = _HHMM.match(v)
    if not m:
        raise ValueError(f"{v!r} is not a time of day HH:MM (00:00-23:59)")
    return time(int(m[1]), int(m[2]))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Ident(_Model):
    id: Segment
    name: str = ""


class GuardModel(_Ident):
    """A patrol guard (保安); ``badge`` is what a reader sends in a tap's ``badge`` field."""

    badge: str | None = None


class ReaderModel(_Ident):
    """A reader: a guard's handheld (``guard``: taps without a badge are theirs) or a wall reader."""

    guard: str | None = None


class RouteModel(_Ident):
    """A patrol route (巡更路线): its checkpoints, in order when ``ordered``, walked in ``duration_min``."""

    checkpoints: tuple[str, ...] = Field(min_length=1)
    ordered: bool = True
    duration_min: float = Field(30.0, gt=0, le=24 * 60)


class ScheduleModel(_Model):
    """When rounds of a route are due, in site local time: every ``every_min`` from ``start`` to ``end``
    (crossing midnight allowed; ``end`` excluded), and/or at the times of ``at``."""

    route: str
    start: str | None = None
    end: str | None = None
    every_min: int | None = Field(None, ge=5, le=24 * 60)
    at: tuple[str, ...] = ()
    tolerance_min: float = Field(10.0, gt=0, le=120)  # each visit's window: expected time ± this

    @field_validator("start", "end")
    @classmethod
    def _check_time(cls, v: str | None) -> str | None:
        if v is not None:
            parse_hhmm(v)
        return v

    @field_validator("at")
    @classmethod
    def _check_times(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for t in v:
            parse_hhmm(t)
        return v

    @model_validator(mode="after")
    def _check_when(self) -> ScheduleModel:
        span = (self.start, self.end, self.every_min)
        if any(x is not None for x in span) and not all(x is not None for x in span):
            raise ValueError("start, end and every_min go together")
        if self.every_min is None and not self.at:
            raise ValueError("give start, end and every_min, or at = [\"HH:MM\", ...]")
        return self


class PatrolSettings(_Model):
    """The plausibility limits: nobody walks faster than ``walk_m_s``; without positions two
    checkpoints are at least ``min_gap_s`` apart; the same tag again within ``repeat_s`` is a copy."""

    walk_m_s: float = Field(2.0, gt=0, le=10)
    min_gap_s: float = Field(20.0, ge=0)
    repeat_s: float = Field(10.0, ge=0)


#: The defaults when a site has checkpoints but no schedules (安全巡逻每小时一次: hourly by night,
#: three rounds by day), over a route of all its place checkpoints.
DEFAULT_SCHEDULES = (
    ScheduleModel(route="all", start="22:00", end="06:00", every_min=60),
    ScheduleModel(route="all", at=("09:00", "13:00", "17:00")),
)
