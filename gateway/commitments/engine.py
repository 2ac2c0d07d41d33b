"""Every indicator of a catalogue for one period: value, target, met or not, numerator and
denominator, and the evidence behind a miss. Pure: data in, JSON-ready dicts out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.commitments import intact, repair
from gateway.commitments.catalogue import Commitment, Scope
from gateway.commitments.data import SiteData
from gateway.commitments.model import Period, Ratio, TicketFacts
from gateway.inspections import patrol, plans


def _ratio(r: Ratio) -> dict[str, Any]:
    return {"value": r.value, "num": r.num, "den": r.den}


def _assets(data: SiteData, scope: Scope) -> list[str]:
    return [a.id for a in data.assets if scope.matches(a.category, a.kind, a.building, a.zone, a.id)]


def _tickets(data: SiteData, scope: Scope) -> tuple[TicketFacts, ...]:
    by_asset = scope.kind is not None or scope.building is not None or scope.zone is not None or scope.assets
    assets = set(_assets(data, scope)) if by_asset else None
    return repair.filter_tickets(data.tickets, category=scope.category, assets=assets, priority=scope.priority)


def _result(c: Commitment, ratio: Ratio, evidence: Sequence[Any], detail: dict[str, Any]) -> dict[str, Any]:
    return {"id": c.id, "zh": c.zh, "en": c.en, "kind": c.kind, "target": c.target, "direction": c.direction,
            "value": ratio.value, "num": ratio.num, "den": ratio.den, "met": c.met(ratio.value),
            "evidence": list(evidence), "detail": detail}


def _intact(c: Commitment, data: SiteData, index: intact.LedgerIndex, period: Period, now: float,
            tz: ZoneInfo, at: float | None) -> dict[str, Any]:
    assets = _assets(data, c.scope)
    snap = intact.snapshot(assets, index, at if at is not None else min(now, period.end) - 1e-6)
    if now > period.start:  # what happened so far: the time after ``now`` of a running period is not counted
        seen = Period(period.start, min(now, period.end))
        rate = intact.period_rate(assets, index, seen)
        days = intact.daily(assets, index, seen, tz)
        low = intact.lowest_of(days)
        worst = intact.ranking(assets, index, seen, 10)
    else:  # a period still to come: no figure yet
        rate, low, worst = intact.PeriodRate(period, 0.0, 0.0, 0.0, Ratio(0, 0), Ratio(0, 0)), None, []
        days = []
    detail: dict[str, Any] = {
        "assets": len(assets), "known_only": _ratio(rate.known),
        "seconds": {"intact": rate.intact_s, "faulty": rate.faulty_s, "unknown": rate.unknown_s},
        "snapshot": {"at": snap.at, "strict": _ratio(snap.strict), "known_only": _ratio(snap.known),
                     "intact": snap.intact, "faulty": snap.faulty, "unknown": snap.unknown},
        "lowest_daily": None if low is None or low.lowest is None else {
            "day": low.day.isoformat(), "at": low.lowest.at, "strict": _ratio(low.lowest.strict)},
        "ranking": [[a, s] for a, s in worst],
        "daily": [[d.day.isoformat(), d.strict.value] for d in days],  # time-weighted, per local day: the chart
    }
    if period.start <= now < period.end:
        f = intact.forecast(assets, index, period, now, c.target)
        detail["forecast"] = {"can_meet": f.can_meet, "left_h": f.left_s / 3600, "budget_h": f.budget_s / 3600,
                              "lost_h": f.lost_s / 3600, "best_case": _ratio(f.best_case)}
    return _result(c, rate.strict, [a for a, _ in worst], detail)


def evaluate(catalogue: Sequence[Commitment], data: SiteData, period: Period, now: float,
             tz: ZoneInfo, at: float | None = None) -> list[dict[str, Any]]:
    """``at``: the instant of the intact rates' snapshot (default: now, or the period's last moment)."""
    index = data.ledger if isinstance(data.ledger, intact.LedgerIndex) else intact.LedgerIndex(data.ledger)
    out = []
    for c in catalogue:
        if c.kind == "intact_rate":
            out.append(_intact(c, data, index, period, now, tz, at))
            continue
        tickets = _tickets(data, c.scope)
        if c.kind == "repair_timeliness":
            t = repair.timeliness(tickets, period, now)
            out.append(_result(c, t.ratio, t.evidence, {
                "per_clock": {k: _ratio(r) for k, r in t.per_clock.items()},
                "per_clock_missed": {k: list(v) for k, v in t.per_clock_evidence.items()}}))
        elif c.kind in ("first_time_fix", "rework_rate"):
            r = (repair.first_time_fix if c.kind == "first_time_fix" else repair.rework_rate)(tickets, period)
            out.append(_result(c, r.ratio, r.evidence, {"counted": len(r.counted)}))
        elif c.kind == "callback_rate":
            r = repair.callback_rate(tickets, data.callbacks, period)
            out.append(_result(c, r.ratio, r.evidence, {"counted": len(r.counted)}))
        elif c.kind == "satisfaction":
            r = repair.satisfaction(repair.filter_callbacks(data.callbacks, tickets), period)
            out.append(_result(c, r.ratio, r.evidence, {"counted": len(r.counted)}))
        elif c.kind == "patrol_completion":
            out.append(_patrols(c, data, tz))
        else:
            out.append(_inspections(c, data, period, tz))
    return out


def _patrols(c: Commitment, data: SiteData, tz: ZoneInfo) -> dict[str, Any]:
    """Checkpoint visits made inside their window / visits scheduled (巡更完成率), per guard, route and night."""
    made = [v for v in data.visits if v.status == "on_time"]
    by: dict[str, dict[str, list[int]]] = {"guard": {}, "route": {}, "night": {}}
    for v in data.visits:
        night = patrol.night_of(v.due_at, tz)
        for key, value in (("guard", v.guard or ""), ("route", v.route),
                           ("night", night.isoformat() if night else "")):
            counts = by[key].setdefault(value, [0, 0])
            counts[0] += v.status == "on_time"
            counts[1] += 1
    missed = sorted({v.round for v in data.visits if v.status != "on_time"})
    detail = {f"per_{k}": {name: {"num": n, "den": d, "value": n / d} for name, (n, d) in groups.items()}
              for k, groups in by.items()}
    return _result(c, Ratio(len(made), len(data.visits)), missed, detail)


def _inspections(c: Commitment, data: SiteData, period: Period, tz: ZoneInfo) -> dict[str, Any]:
    """Assets inspected as often as their plan asks in the period (定检), or cleaned out in the half-year before
    its end (化粪池清掏)."""
    plan = plans.DEFAULT_PLANS["septic_cleanout" if c.kind == "septic_cleanout" else
                               "fire" if c.scope.category == "fire" else "wells"]
    assets = [a for a in data.assets if c.scope.matches(a.category, a.kind, a.building, a.zone, a.id)
              and plan.applies_to(a)]
    if c.kind == "septic_cleanout":
        done = {i.asset for i in data.inspections if i.plan == plan.id and i.passed}
        short = [a.id for a in assets if a.id not in done]
        return _result(c, Ratio(len(assets) - len(short), len(assets)), short, {"plan": plan.id})
    months = max(1, round(period.seconds / (30.44 * 86400)))
    needed = (c.per_month or plan.times) * months
    days: dict[str, set[date]] = {}
    for i in data.inspections:
        if i.plan == plan.id and period.start <= i.at < period.end:
            days.setdefault(i.asset, set()).add(datetime.fromtimestamp(i.at, tz).date())
    short = [a.id for a in assets if len(days.get(a.id, ())) < needed]
    return _result(c, Ratio(len(assets) - len(short), len(assets)), short, {"plan": plan.id, "needed": needed})
