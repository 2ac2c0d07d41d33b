"""Inspection plans (巡检计划): what is checked on which assets, how often, and when it is due.

Three plans ship as defaults (COMMITMENTS.md, inspection indicators):

- ``fire``: every fire asset twice a month (消防设施每月定检二次), with a checklist per kind of
  equipment (extinguisher, hydrant, smoke detector);
- ``wells``: every drainage asset (rain and sewage wells, septic tanks) once a month;
- ``septic_cleanout``: septic tanks cleaned out every six months (化粪池每半年清掏).

The site file has no flag for septic tanks yet, so the cleanout plan applies to the drainage
assets whose ``name`` or ``zone`` contains ``化粪池`` or ``septic`` (any case). A site may change a
plan's ``times``, ``every`` and ``checklist`` with a :class:`PlanOverride` per plan id; every
problem of every override is listed at once (:func:`load_plans`).

When an inspection is due (:func:`due`, pure): a monthly plan needs ``times`` inspections in each
local calendar month, counted on distinct local days (a second tap the same day repeats the
first, it is not a second inspection). The ``k``-th of ``n`` is due by the end of day
``k * 30 // n`` (the last one by the month's end): twice a month, the first by the 15th 24:00 and
the second by the month's end, so an asset nobody looked at in the first half is overdue from
the 16th 00:00. A half-year plan needs one within 183 days of the last.
"""

from __future__ import annotations

import calendar
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.config import ConfigError, format_validation_errors
from gateway.sensors import KINDS

Every = Literal["month", "half_year"]
EVERY: tuple[str, ...] = ("month", "half_year")
HALF_YEAR_S = 183 * 86400.0
ITEM_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ITEM_ID_RULE = "must be 1-40 of a-z 0-9 _, starting with a letter (it names the ticket's fault inspection.<id>)"
#: What names a septic tank until the site file has a flag of its own (name or zone, any case).
SEPTIC_NAMES = ("化粪池", "septic")


class AssetLike(Protocol):
    """What a plan reads of an asset: the site file's AssetModel and the commitments' AssetInfo both fit."""

    @property
    def id(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def zone(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One line of a checklist; ``kinds``: the asset kinds it is asked for (empty: every asset of the plan)."""

    id: str
    zh: str
    en: str
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    id: str
    zh: str
    en: str
    category: str
    kinds: tuple[str, ...]  # asset kinds covered; an asset without a kind is covered by its category
    every: str  # "month" or "half_year"
    times: int  # inspections needed each period
    checklist: tuple[ChecklistItem, ...]
    cleanout: bool = False  # a maintenance job (清掏), not a check: only a fully passed record counts as done
    name_contains: tuple[str, ...] = ()  # only assets whose name or zone contains one of these (any case)

    def applies_to(self, asset: AssetLike) -> bool:
        if asset.category != self.category:
            return False
        if self.kinds and asset.kind is not None and asset.kind not in self.kinds:
            return False
        if self.name_contains:
            text = f"{asset.name} {asset.zone}".casefold()
            return any(s.casefold() in text for s in self.name_contains)
        return True

    def checklist_for(self, kind: str | None) -> tuple[ChecklistItem, ...]:
        """The items asked of an asset of ``kind``; without a kind, only the items asked of every kind."""
        return tuple(i for i in self.checklist if not i.kinds or kind in i.kinds)

    @property
    def per_kind(self) -> bool:
        """Whether some items are asked of some kinds only (an asset then needs its kind to be inspected)."""
        return any(i.kinds for i in self.checklist)


_EXT, _HYD, _SMOKE, _DRAIN = "fire_extinguisher", "fire_hydrant", "smoke_detector", "drain_level"

DEFAULT_PLANS: dict[str, Plan] = {p.id: p for p in (
    Plan("fire", "消防设施定检", "Fire equipment inspection", "fire", (_EXT, _HYD, _SMOKE), "month", 2, (
        ChecklistItem("pressure_green", "压力在绿区", "pressure gauge in the green zone", (_EXT,)),
        ChecklistItem("seal_intact", "铅封完好", "seal intact", (_EXT,)),
        ChecklistItem("in_service_life", "在有效期内", "within its service life", (_EXT,)),
        ChecklistItem("water_pressure", "水压正常", "water pressure normal", (_HYD,)),
        ChecklistItem("valve_turns", "阀门开关灵活", "valve turns freely", (_HYD,)),
        ChecklistItem("hose_nozzle", "水带、水枪齐全", "hose and nozzle present", (_HYD,)),
        ChecklistItem("unobstructed", "无遮挡", "not obstructed", (_EXT, _HYD)),
        ChecklistItem("alarm_test", "按测试键能报警", "test button sounds the alarm", (_SMOKE,)),
        ChecklistItem("no_dust_cover", "无积尘、无遮盖", "no dust, not covered", (_SMOKE,)),
    )),
    Plan("wells", "雨污水井、化粪池检查", "Wells and septic tanks inspection", "drainage", (_DRAIN,), "month", 1, (
        ChecklistItem("cover_seated", "井盖完好归位", "cover intact and seated"),
        ChecklistItem("no_debris", "无杂物堵塞", "no debris or blockage"),
        ChecklistItem("level_normal", "水位正常", "water level normal"),
        ChecklistItem("no_odour_overflow", "无异味、无外溢", "no odour, no overflow"),
    )),
    Plan("septic_cleanout", "化粪池清掏", "Septic tank cleanout", "drainage", (_DRAIN,), "half_year", 1, (
        ChecklistItem("cleaned_out", "已清掏", "cleaned out"),
        ChecklistItem("hauler_receipt", "清运单据", "hauler's receipt"),
    ), cleanout=True, name_contains=SEPTIC_NAMES),
)}


# -- overrides (the site's own numbers) -------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChecklistItemModel(_Model):
    id: str
    zh: str = Field(min_length=1)
    en: str = ""
    kinds: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not ITEM_ID.fullmatch(v):
            raise ValueError(ITEM_ID_RULE)
        return v

    @field_validator("kinds")
    @classmethod
    def _check_kinds(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [k for k in v if k not in KINDS or KINDS[k].category is None]
        if bad:
            known = ", ".join(k for k in KINDS if KINDS[k].category)
            raise ValueError(f"unknown kind {', '.join(map(repr, bad))} (known: {known})")
        return v


class PlanOverride(_Model):
    """A site's own numbers for a plan; what is not given keeps the default."""

    times: int | None = Field(None, ge=1, le=31)
    every: Every | None = None
    checklist: tuple[ChecklistItemModel, ...] | None = None

    @field_validator("checklist")
    @classmethod
    def _check_checklist(cls, v: tuple[ChecklistItemModel, ...] | None) -> tuple[ChecklistItemModel, ...] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("a checklist needs at least one item")
        twice = sorted(i for i, n in Counter(item.id for item in v).items() if n > 1)
        if twice:
            raise ValueError(f"item id {', '.join(map(repr, twice))} appears more than once (must be unique)")
        return v


def override_problems(raw: Mapping[str, Any], source: str = "site file", where: str = "plans") -> list[str]:
    """Every problem of every override (raw, as read from a file), one line each."""
    problems: list[str] = []
    for plan_id, entry in raw.items():
        if plan_id not in DEFAULT_PLANS:
            problems.append(f"{source}: {where}.{plan_id}: unknown plan (known: {', '.join(DEFAULT_PLANS)})")
            continue
        try:
            o = entry if isinstance(entry, PlanOverride) else PlanOverride.model_validate(entry)
        except ValidationError as exc:
            problems += [_prefixed(line, source, f"{where}.{plan_id}") for line in
                         format_validation_errors(exc, {}, source)]
            continue
        problems += [f"{source}: {where}.{plan_id}.{p}" for p in _fit_problems(DEFAULT_PLANS[plan_id], o)]
    return problems


def _prefixed(line: str, source: str, prefix: str) -> str:
    """``source: loc: msg`` from pydantic, with the override's place in front of ``loc``."""
    rest = line[len(source) + 2:] if line.startswith(f"{source}: ") else line
    loc, sep, msg = rest.partition(": ")
    loc = prefix if loc == "(top)" else f"{prefix}.{loc}"
    return f"{source}: {loc}{sep}{msg}"


def _fit_problems(default: Plan, o: PlanOverride) -> list[str]:
    """What is wrong with an override once merged with its plan (each problem: ``field: message``)."""
    plan = _merge(default, o)
    problems = []
    if plan.every == "half_year" and plan.times != 1:
        problems.append(f"times: a half-year plan needs times = 1 (got {plan.times})")
    if o.checklist is not None:
        for i, item in enumerate(o.checklist):
            for k in item.kinds:
                if k in KINDS and KINDS[k].category != default.category:
                    problems.append(f"checklist.{i}.kinds: a {k} is not a {default.category} asset")
    return problems


def _merge(default: Plan, o: PlanOverride) -> Plan:
    checklist = default.checklist if o.checklist is None else tuple(
        ChecklistItem(i.id, i.zh, i.en or i.id, i.kinds) for i in o.checklist)
    return replace(default, times=default.times if o.times is None else o.times,
                   every=default.every if o.every is None else o.every, checklist=checklist)


def load_plans(raw: Mapping[str, Any] | None = None, source: str = "site file", where: str = "plans"
               ) -> dict[str, Plan]:
    """The default plans with a site's overrides (raw dicts or PlanOverride); ConfigError listing every problem."""
    raw = raw or {}
    problems = override_problems(raw, source, where)
    if problems:
        raise ConfigError(problems)
    plans = dict(DEFAULT_PLANS)
    for plan_id, entry in raw.items():
        o = entry if isinstance(entry, PlanOverride) else PlanOverride.model_validate(entry)
        plans[plan_id] = _merge(DEFAULT_PLANS[plan_id], o)
    return plans


def plans_for(plans: Mapping[str, Plan], asset: AssetLike) -> list[Plan]:
    return [p for p in plans.values() if p.applies_to(asset)]


# -- when it is due (pure) ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DueState:
    """Where an asset stands with a plan at ``now``.

    ``done_this_period``: inspections counted this period (distinct local days this month, or
    within the last 183 days for a half-year plan); ``needed``: the plan's ``times``;
    ``next_due_at``: while overdue, the deadline that was missed (in the past), else the next
    deadline not yet met (``None``: a half-year job never done); ``overdue_since``: the missed
    deadline (``None`` when not overdue, or never done at all).
    """

    done_this_period: int
    needed: int
    next_due_at: float | None
    overdue: bool
    overdue_since: float | None = None


def _midnight(d: date, tz: ZoneInfo) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()


def _next_month(y: int, m: int) -> tuple[int, int]:
    return (y + 1, 1) if m == 12 else (y, m + 1)


def month_deadlines(times: int, year: int, month: int, tz: ZoneInfo) -> list[float]:
    """The ``k``-th of ``times`` inspections is due by the end of day ``k * 30 // times`` (the last: month end)."""
    days = calendar.monthrange(year, month)[1]
    out = []
    for k in range(1, times + 1):
        day = days if k == times else min(k * 30 // times, days)
        out.append(_midnight(date(year, month, day) + timedelta(days=1), tz))
    return out


def _days(times: Iterable[float], tz: ZoneInfo) -> list[float]:
    """The first instant of each distinct local day with an inspection, in order."""
    first: dict[date, float] = {}
    for t in sorted(times):
        first.setdefault(datetime.fromtimestamp(t, tz).date(), t)
    return sorted(first.values())


def count_days(times: Iterable[float], start: float, end: float, tz: ZoneInfo) -> int:
    """Inspections in ``[start, end)`` counted on distinct local days."""
    return len(_days((t for t in times if start <= t < end), tz))


def due(plan: Plan, asset: AssetLike, last_done: Sequence[float], now: float, tz: ZoneInfo) -> DueState:
    """Where ``asset`` stands with ``plan`` at ``now``, given the times its inspections were done
    (for a cleanout plan, the times of the cleanouts that fully passed). Times after ``now`` are ignored."""
    if not plan.applies_to(asset):
        raise ValueError(f"plan {plan.id} does not apply to asset {asset.id}")
    done = [t for t in last_done if t <= now]
    if plan.every == "half_year":
        recent = [t for t in done if t > now - HALF_YEAR_S]
        if not done:
            return DueState(0, plan.times, None, True, None)
        deadline = max(done) + HALF_YEAR_S
        overdue = deadline <= now
        return DueState(len(recent), plan.times, deadline, overdue, deadline if overdue else None)
    local = datetime.fromtimestamp(now, tz)
    y, m = local.year, local.month
    start = _midnight(date(y, m, 1), tz)
    current = month_deadlines(plan.times, y, m, tz)
    # The latest deadline passed: one of this month's, or the end of last month (needing all of them).
    passed = [(k, d) for k, d in enumerate(current, 1) if d <= now]
    if passed:
        k, deadline = passed[-1]
        period_start = start
    else:
        k, deadline = plan.times, start
        py, pm = (y - 1, 12) if m == 1 else (y, m - 1)
        period_start = _midnight(date(py, pm, 1), tz)
    missed = count_days(done, period_start, deadline, tz) < k
    caught_up = any(deadline <= t for t in done)  # inspected since the missed deadline: verified again
    done_now = count_days(done, start, _midnight(date(*_next_month(y, m), 1), tz), tz)
    if missed and not caught_up:
        return DueState(done_now, plan.times, deadline, True, deadline)
    for k, d in enumerate(current, 1):
        if d > now and count_days(done, start, d, tz) < k:
            return DueState(done_now, plan.times, d, False)
    ny, nm = _next_month(y, m)
    return DueState(done_now, plan.times, month_deadlines(plan.times, ny, nm, tz)[0], False)
