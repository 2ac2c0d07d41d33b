"""API routes that gather for a page: the manager's dashboard in one call, and an asset's readings
history from InfluxDB for its chart (included by :func:`gateway.api.create_app`)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from gateway.api_auth import require
from gateway.api_tickets import clocks
from gateway.history import HistoryError, readings_query, step_for
from gateway.sensors import CATEGORIES, KINDS
from gateway.tickets import LIVE

#: Kept from each commitment's figures for the tiles; the evidence and the rest stay in /commitments.
_TILE = ("id", "zh", "en", "kind", "target", "direction", "value", "num", "den", "met")
_SLA = ("on_time", "at_risk", "overdue")
LIVE_SHOWN = 5000  # live tickets counted by SLA state; a site with more has bigger problems than a tile


def _sla_state(t: dict[str, Any], now: float) -> str:
    """The worst of a live ticket's clocks still running: what the queue must look at first."""
    states = clocks(t, now).values()
    return next((s for s in reversed(_SLA) if s in states), "on_time")


DASHBOARD_EXAMPLE = {
    "at": 1795000000.0, "site": {"id": "demo", "name": "翠湖花园", "tz": "Asia/Shanghai"}, "month": "2026-11",
    "commitments_at": 1794999990.0,
    "commitments": [{"id": "streetlight_intact", "zh": "路灯完好率", "en": "Streetlight intact rate",
                     "kind": "intact_rate", "target": 0.98, "direction": ">=", "value": 0.991, "num": 5120.5,
                     "den": 5167.0, "met": True,
                     "forecast": {"can_meet": True, "left_h": 12.5, "budget_h": 96.0, "lost_h": 46.5,
                                  "best_case": {"value": 0.993, "num": 142000.0, "den": 143000.0}},
                     "daily": [["2026-11-01", 0.995], ["2026-11-02", 0.99]]}],
    "categories": {"lighting": {"intact": 198, "faulty": 2, "unknown": 0}},
    "tickets": {"live": 3, "sla": {"on_time": 2, "at_risk": 1, "overdue": 0},
                "by_priority": {"emergency": 1, "urgent": 0, "general": 2}},
    "patrols": {"rounds": [], "visits": {"on_time": 10, "late": 1, "missed": 0, "pending": 5}},
    "callbacks_due": 2,
}
READINGS_EXAMPLE = {
    "asset": "L-017", "kind": "streetlight", "every_s": 180, "since": 1794913600.0, "until": 1795000000.0,
    "fields": [{"name": "on", "type": "bool", "doc": "the controller drives the lamp"},
               {"name": "current_a", "type": "number", "doc": "lamp current, A"}],
    "points": [{"t": 1794913620, "on": True, "current_a": 0.41}],
}


def view_routes(sv: Any) -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    @r.get("/dashboard", dependencies=[require("manager")], tags=["dashboard"],
           responses={200: {"content": {"application/json": {"example": DASHBOARD_EXAMPLE}}}})
    def dashboard() -> dict[str, Any]:
        """The manager's page in one call: this month's commitments (value, target, met, forecast, each
        day's intact rate; as computed at ``commitments_at``, at most a minute ago), assets by category
        and state, live tickets by SLA state, today's patrols, callbacks due."""
        now, site = time.time(), sv.site
        report = sv.commitments.running(now)  # at most a minute old: recomputed every 30 s
        tiles = [{**{k: c[k] for k in _TILE}, "forecast": c["detail"].get("forecast"),
                  "daily": c["detail"].get("daily")} for c in report["results"]]
        categories = {c: {"intact": 0, "faulty": 0, "unknown": 0} for c in CATEGORIES}
        for w in list(sv.monitor.watch.values()):  # swapped whole on a reload: a list of it is consistent
            if w.asset.category in categories:
                categories[w.asset.category][w.state] += 1
        live, n_live = sv.tickets.list(status=LIVE, limit=LIVE_SHOWN)
        sla = Counter(_sla_state(t, now) for t in live)
        rounds = sv.call(lambda: sv.fieldwork.rounds(now)) if sv.fieldwork is not None else []
        visits = Counter(v["status"] or "pending" for rd in rounds for v in rd["visits"])
        return {
            "at": now, "site": {"id": sv.settings.site, "name": site.info.name, "tz": str(site.tz)},
            "month": report["month"], "commitments_at": report["computed_at"],
            "commitments": tiles, "categories": categories,
            "tickets": {"live": n_live, "sla": {s: sla[s] for s in _SLA},
                        "by_priority": {p: sum(t["priority"] == p for t in live)
                                        for p in ("emergency", "urgent", "general")}},
            "patrols": {"rounds": rounds, "visits": {s: visits[s] for s in ("on_time", "late", "missed", "pending")}},
            "callbacks_due": sv.tickets.list(callback_due=True, limit=1)[1],
        }

    @r.get("/assets/{asset}/readings", dependencies=[require("maintenance", "manager")], tags=["assets"],
           responses={200: {"content": {"application/json": {"example": READINGS_EXAMPLE}}},
                      503: {"description": "InfluxDB did not answer"}})
    def readings(asset: str, hours: Annotated[float, Query(gt=0, le=24 * 400)] = 24.0,
                 until: Annotated[float | None, Query(description="end (epoch seconds); default now")] = None,
                 field: Annotated[list[str] | None, Query(description="fields to chart (repeat); default all")]
                 = None) -> dict[str, Any]:
        """An asset's readings over the last ``hours`` from InfluxDB, grouped into at most 500 steps: the mean
        of each number, the last of each flag."""
        w = sv.monitor.watch.get(asset)
        if w is None:
            raise HTTPException(404, f"no asset {asset!r} on this site")
        kind = KINDS.get(w.kind or "")
        end = until if until is not None else time.time()
        start = end - hours * 3600
        if kind is None:  # an asset without a sensor (inspected by people): nothing to chart
            return {"asset": asset, "kind": None, "every_s": None, "since": start, "until": end, "fields": [],
                    "points": []}
        unknown = [f for f in field or () if f not in kind.fields]
        if unknown:
            raise HTTPException(422, f"field: {unknown[0]!r} is not a field of {kind.name} "
                                     f"(known: {', '.join(kind.fields)})")
        fields = {n: s for n, s in kind.fields.items() if not field or n in field}
        step = step_for(end - start)
        try:
            points = sv.history.query(readings_query(kind.name, asset, sv.settings.site, fields, start, end, step))
        except HistoryError as exc:
            raise HTTPException(503, str(exc)) from None
        return {"asset": asset, "kind": kind.name, "every_s": step, "since": start, "until": end,
                "fields": [{"name": n, "type": "bool" if s.type is bool else "number", "doc": s.doc}
                           for n, s in fields.items()],
                "points": points}

    return r
