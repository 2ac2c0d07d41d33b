"""Repair SLA clocks (急修 / 零修), escalations and callbacks (回访): pure arithmetic.

Every figure here is a promise a property company posts for its owners, so each site may
override it (commitments are configuration, not code). Nothing here reads a clock or a
file: instants are epoch seconds passed in, the site's zone is a ``ZoneInfo`` passed in,
so the same ticket always yields the same deadlines, in tests and in replays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from types import MappingProxyType
from typing import Annotated, Literal, TypeAlias
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

PRIORITIES = ("emergency", "urgent", "general")
"""急修 (emergency), urgent, 零修 (general): the ticket priorities the SLA table is keyed by."""

CLOCKS = ("respond", "arrive", "resolve")
"""The SLA clocks of a ticket, in the order they run (and escalations are listed)."""

_MIN = 60.0
_HOUR = 3600.0
_DAY = 24 * _HOUR


@dataclass(frozen=True)
class SlaRule:
    """How long a priority may take to respond (ack), arrive on site and resolve.

    ``None`` means the commitment has no such clock (零修 has no arrive promise).
    ``same_day`` is 急修不过夜: resolve before 24:00 local of the opening day, or, when
    opened at or after ``cutoff`` local, within ``after_cutoff_s`` elapsed seconds
    (which may end after midnight: that is the rule as posted). If ``resolve_s`` is
    also set, both promises hold and the earlier deadline binds.
    """

    respond_s: float | None
    arrive_s: float | None
    resolve_s: float | None
    same_day: bool = False
    cutoff: time = time(16, 0)
    after_cutoff_s: float = 8 * _HOUR


DEFAULT_SLA: Mapping[str, SlaRule] = MappingProxyType(
    {
        "emergency": SlaRule(respond_s=15 * _MIN, arrive_s=30 * _MIN, resolve_s=None, same_day=True),
        "urgent": SlaRule(respond_s=30 * _MIN, arrive_s=2 * _HOUR, resolve_s=24 * _HOUR),
        "general": SlaRule(respond_s=24 * _HOUR, arrive_s=None, resolve_s=48 * _HOUR),
    }
)
"""Seeds 000/001/002: 急修 15 min / 30 min / same day, urgent 30 min / 2 h / 24 h, 零修 24 h / — / 48 h."""


@dataclass(frozen=True)
class Deadlines:
    """The instants (epoch seconds) each clock of one ticket must stop by; ``None``: no clock."""

    respond_by: float | None
    arrive_by: float | None
    resolve_by: float | None


def _rule(priority: str, table: Mapping[str, SlaRule]) -> SlaRule:
    try:
        return table[priority]
    except KeyError:
        raise ValueError(f"unknown priority {priority!r} (known: {', '.join(table)})") from None


def next_local_midnight(at: float, tz: ZoneInfo) -> float:
    """The start of the local day after ``at``: "before 24:00" in 急修不过夜.

    Built from the local calendar date, not ``at`` + fixed hours, so a 23 h or 25 h day
    (DST) still ends at local midnight. Where midnight itself is skipped by a DST jump,
    ``fold=0`` resolves it to the instant of the jump, i.e. still the start of that day.
    """
    local = datetime.fromtimestamp(at, tz)
    tomorrow = local.date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=tz).timestamp()


def deadlines(priority: str, opened_at: float, tz: ZoneInfo, table: Mapping[str, SlaRule] = DEFAULT_SLA) -> Deadlines:
    """Deadlines of a ticket of ``priority`` opened at ``opened_at``; unknown priority: ValueError."""
    rule = _rule(priority, table)

    def plus(s: float | None) -> float | None:
        return None if s is None else opened_at + s

    resolve_by = plus(rule.resolve_s)
    if rule.same_day:
        local_time = datetime.fromtimestamp(opened_at, tz).time()
        if local_time >= rule.cutoff:
            same_day_by = opened_at + rule.after_cutoff_s
        else:
            same_day_by = next_local_midnight(opened_at, tz)
        resolve_by = same_day_by if resolve_by is None else min(resolve_by, same_day_by)
    return Deadlines(respond_by=plus(rule.respond_s), arrive_by=plus(rule.arrive_s), resolve_by=resolve_by)


ClockState: TypeAlias = Literal["on_time", "at_risk", "overdue", "met", "missed"]


def clock_state(
    started: float, deadline: float | None, done_at: float | None, now: float, at_risk: float = 0.8
) -> ClockState | None:
    """Where one SLA clock stands at ``now``; ``None`` when the commitment has no such clock.

    A stopped clock is judged at its stop (``done_at <= deadline`` is met, so done exactly
    at the deadline counts as kept); a running clock is overdue only strictly after the
    deadline and at risk from ``at_risk`` of its span on, so someone is warned in time.
    """
    if not 0.0 <= at_risk <= 1.0:
        raise ValueError(f"at_risk must be within 0..1, got {at_risk}")
    if deadline is None:
        return None
    if done_at is not None:
        return "met" if done_at <= deadline else "missed"
    if now > deadline:
        return "overdue"
    if now >= started + at_risk * (deadline - started):
        return "at_risk"
    return "on_time"


@dataclass(frozen=True)
class Escalation:
    """One notice to send: level 1 to the assignee (at risk), level 2 to the duty manager (overdue)."""

    clock: str
    level: int
    reason: str


def due_escalations(
    clocks: Mapping[str, tuple[float, float | None, float | None]],
    done: frozenset[tuple[str, int]],
    now: float,
    at_risk: float = 0.8,
) -> list[Escalation]:
    """Escalations owed at ``now`` and not yet sent (``done`` holds the sent ``(clock, level)``).

    ``clocks`` maps a clock name to ``(started, deadline, done_at)``. An overdue clock
    whose level 1 never went out (the gateway was down, or the span was short) owes both
    levels, so the assignee is never skipped. Stopped clocks owe nothing. Ordered by
    clock (respond, arrive, resolve), then level, so repeated calls agree.
    """
    unknown = sorted(set(clocks) - set(CLOCKS))
    if unknown:
        raise ValueError(f"unknown clock(s) {', '.join(unknown)} (known: {', '.join(CLOCKS)})")
    out: list[Escalation] = []
    for name in CLOCKS:
        if name not in clocks:
            continue
        started, deadline, done_at = clocks[name]
        if done_at is not None:
            continue
        state = clock_state(started, deadline, None, now, at_risk)
        if state == "at_risk":
            owed = [(1, "at_risk")]
        elif state == "overdue":
            owed = [(1, "at_risk"), (2, "overdue")]
        else:
            continue
        out.extend(Escalation(name, level, reason) for level, reason in owed if (name, level) not in done)
    return out


CallbackRule: TypeAlias = float
"""A callback (回访) rule: seconds after closing by which the owner must be called back."""

DEFAULT_CALLBACKS: Mapping[str, CallbackRule] = MappingProxyType(
    {"emergency": 1 * _DAY, "urgent": 3 * _DAY, "general": 3 * _DAY}
)
"""Seeds 001/003: 急修 (water/electric) within 24 h of closing, other repairs within 3 days."""


def callback_due(priority: str, closed_at: float, table: Mapping[str, CallbackRule] = DEFAULT_CALLBACKS) -> float:
    """When the 回访 for a ticket closed at ``closed_at`` is due; a callback later than this is overdue."""
    try:
        return closed_at + table[priority]
    except KeyError:
        raise ValueError(f"unknown priority {priority!r} (known: {', '.join(table)})") from None


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class SlaRuleSettings(BaseModel):
    """One priority's overrides from the site file, in the units the posted commitments use.

    Only the fields given replace the default; a field given as ``None`` removes that clock.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    respond_min: _Positive | None = None
    arrive_min: _Positive | None = None
    resolve_h: _Positive | None = None
    same_day: bool = False
    cutoff: str = "16:00"
    after_cutoff_h: _Positive = 8

    @field_validator("cutoff")
    @classmethod
    def _check_cutoff(cls, v: str) -> str:
        if not _HHMM.fullmatch(v):
            raise ValueError("must be HH:MM, 00:00 to 23:59 (e.g. 16:00)")
        return v


def _parse_hhmm(v: str) -> time:
    hours, minutes = v.split(":")
    return time(int(hours), int(minutes))


def _check_priorities(keys: Mapping[str, object]) -> None:
    unknown = sorted(set(keys) - set(PRIORITIES))
    if unknown:
        raise ValueError(f"unknown priority {', '.join(map(repr, unknown))} (known: {', '.join(PRIORITIES)})")


def sla_table(overrides: Mapping[str, SlaRuleSettings]) -> dict[str, SlaRule]:
    """DEFAULT_SLA with a site's overrides merged in, field by field, per priority."""
    _check_priorities(overrides)
    table = dict(DEFAULT_SLA)
    for priority, settings in overrides.items():
        given = settings.model_fields_set
        changes: dict[str, object] = {}
        for field, key, scale in (
            ("respond_min", "respond_s", _MIN),
            ("arrive_min", "arrive_s", _MIN),
            ("resolve_h", "resolve_s", _HOUR),
            ("after_cutoff_h", "after_cutoff_s", _HOUR),
        ):
            if field in given:
                value = getattr(settings, field)
                changes[key] = None if value is None else value * scale
        if "same_day" in given:
            changes["same_day"] = settings.same_day
        if "cutoff" in given:
            changes["cutoff"] = _parse_hhmm(settings.cutoff)
        table[priority] = replace(table[priority], **changes)
    return table


def callback_table(overrides: Mapping[str, float]) -> dict[str, float]:
    """DEFAULT_CALLBACKS with a site's overrides (hours after closing) merged in, as seconds."""
    _check_priorities(overrides)
    table = dict(DEFAULT_CALLBACKS)
    for priority, hours in overrides.items():
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours) or hours <= 0:
            raise ValueError(f"callback for {priority!r}: hours must be a positive number, got {hours!r}")
        table[priority] = float(hours) * _HOUR
    return table
