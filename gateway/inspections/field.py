"""Patrols and inspections at the site (巡更与巡检), run by the ingest thread: every tap is kept,
resolved to a checkpoint and a guard, fed to the patrol rounds; the clock closes windows and
finds overdue inspections; every event goes into the events table like the tickets'.

Patrol rounds live in memory (the pure :class:`Patrols`); after a restart (or a new site) they are
rebuilt from the taps kept, the rounds still under way at the saved cursor included, and the events
their clock produced while the gateway was away are told then, each once (a saved cursor). Closed
rounds are written as visits: what patrol completion is computed from.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

from gateway import events
from gateway.inspections import patrol
from gateway.inspections.records import Inspections
from gateway.inspections.taps import TapLog, guard_of
from gateway.sensors.checkpoint import Tap
from gateway.site import Site
from gateway.tickets import TicketStore

_LOGGER = logging.getLogger(__name__)
HORIZON_S = 6 * 3600.0  # rounds are planned this far ahead
KEEP_S = 2 * 86400.0  # rounds and taps kept in memory this long after they close
RELAY = "patrol_clock"  # the events cursor: how far the patrol clock has been told
SINCE = "patrol_since"  # when this gateway first planned rounds (ms): none before is its to judge


#: How often inspection deadlines are looked at: they fall at local midnights, and working out every
#: (asset, plan) pair each second took a fifth of a core on a site of 10,000 assets.
OVERDUE_EVERY_S = 60.0


class Field:
    def __init__(self, site: Site, store: TicketStore, taps: TapLog, inspections: Inspections, now: float) -> None:
        self.store, self.taps, self.inspections = store, taps, inspections
        self.site = site
        self._build(site, now)

    def _build(self, site: Site, now: float) -> None:
        """Rounds from the schedules, and the taps of the last two days fed in again."""
        self.site = site
        self.overdue_checked = float("-inf")  # a new site's assets are looked at on the next tick
        self.guards = {g.id: g for g in site.guards}
        self.readers = {r.id: r for r in site.readers}
        self.patrols = patrol.Patrols(site.routes, site.schedules, site.checkpoints, site.patrol, site.tz)
        told = self.store.event_cursor(RELAY)
        self.told = now if told is None else told / 1000.0  # cursor stored in ms
        since = self.store.event_cursor(SINCE)
        if since is None:
            self.store.save_event_cursor(SINCE, int(now * 1000))
        first = self.told
        if told is not None:  # a restart or a new site: the rounds still under way at the cursor too
            first = max(self.told - _longest_round(site), -math.inf if since is None else since / 1000.0)
        self.patrols.plan(first, HORIZON_S + max(0.0, now - first))
        known = {c.id for c in site.checkpoints}
        rows, _ = self.taps.list(since=self.told - KEEP_S, until=now + 1, limit=100_000)
        for t in sorted(rows, key=lambda r: (r["at"], r["id"])):
            if t["checkpoint"] in known:
                self.patrols.tap(t["checkpoint"], t["at"], t["guard"], t["reader"])
        self.patrols.advance(self.told)  # told before: not again

    def set_site(self, site: Site, now: float) -> None:
        self._build(site, now)

    # -- the ingest thread -----------------------------------------------------------------------
    def on_tap(self, tap: Tap, source: str, user: str | None = None) -> dict[str, Any]:
        """Keep the tap, then let the rounds see it; what it was taken for, for the caller."""
        checkpoint = self.site.tags.get(tap.tag)
        guard = guard_of(tap.badge, tap.reader, self.guards, self.readers, user)
        record = self.taps.record(tap.ts, tap.reader, tap.tag, checkpoint, guard, tap.badge, source)
        told: list[patrol.Event] = []
        if checkpoint is None:
            _LOGGER.info("unknown tag %s tapped at reader %s (%s): listed for a manager", tap.tag, tap.reader, source)
        else:
            told = self.patrols.tap(checkpoint, tap.ts, guard, tap.reader)
            for e in told:
                if e.type == patrol.TAP_FLAGGED:
                    self.taps.flag(record.id, str(e.data.get("reason", "implausible")))
        self._tell(told)
        return {"tap": record.id, "checkpoint": checkpoint, "guard": guard,
                "flagged": next((str(e.data.get("reason")) for e in told if e.type == patrol.TAP_FLAGGED), None)}

    def accept(self, tap_id: int, by: str, now: float) -> dict[str, Any] | None:
        """A manager accepts a flagged tap: from now on it counts as the visit it claimed to be."""
        t = self.taps.accept(tap_id, by)
        if t is None or t["checkpoint"] is None:
            return t
        for r in self.patrols.rounds():
            if any(f.checkpoint == t["checkpoint"] and f.at == t["at"] for f in r.flagged):
                self.patrols.accept(r.due.id, t["checkpoint"], by)
                break
        self._tell(self.patrols.advance(now))
        return t

    def tick(self, now: float, set_unknown: Callable[[str, float], None] | None = None) -> None:
        """The clock: windows closing, rounds ending, inspections falling due."""
        self.patrols.plan(now, HORIZON_S)
        self._tell(self.patrols.advance(now))
        self._close_rounds(now)
        self.told = now
        self.store.save_event_cursor(RELAY, int(now * 1000))
        self.patrols.forget(now - KEEP_S)
        if now - self.overdue_checked >= OVERDUE_EVERY_S:
            self.overdue_checked = now
            for o in self.inspections.overdue(now):
                _LOGGER.warning("asset %s: %s inspection overdue", o.asset, o.plan)

    def rounds(self, now: float) -> list[dict[str, Any]]:
        names = {r.id: r.name or r.id for r in self.site.routes}
        return [{**_round_json(r), "route_name": names.get(r.route, r.route)} for r in self.patrols.rounds(now)]

    # -- internals --------------------------------------------------------------------------------
    def _tell(self, told: list[patrol.Event]) -> None:
        if not told:
            return
        with self.store.transaction() as db:
            for e in told:
                text = json.dumps(e.data, ensure_ascii=False, default=str)
                events.record(db, e.type, e.at, _title(e, self.site), text, dict(e.data))

    def _close_rounds(self, now: float) -> None:
        """Rounds whose final close has passed are written down as visits, once."""
        done = [r for r in self.patrols.rounds(now) if r.state in ("missed", "closed")]
        if not done:
            return
        with self.store.transaction() as db:
            for r in done:
                db.executemany(
                    "INSERT OR IGNORE INTO patrol_visits (round, route, due_at, checkpoint, seq, expected_at, at, "
                    "status, guard, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(r.due.id, r.route, r.due.due_at, v.checkpoint, i, v.expected_at, v.at,
                      patrol.MISSED if r.state == "missed" else v.status, v.guard or r.guard, v.flag)
                     for i, v in enumerate(r.visits)])


def _longest_round(site: Site) -> float:
    """How long after it is due a round can still be open: started at the end of its start window,
    walked in its route's duration, closed a tolerance later."""
    routes = {r.id: r for r in site.routes}
    return max((2 * s.tolerance_min * 60.0 + routes[s.route].duration_min * 60.0 for s in site.schedules
                if s.route in routes), default=0.0)


def _title(e: patrol.Event, site: Site) -> str:
    names = {c.id: c.name or c.id for c in site.checkpoints}
    route = {r.id: r.name or r.id for r in site.routes}.get(str(e.data.get("route")), e.data.get("route"))
    where = names.get(str(e.data.get("checkpoint")), "") if e.data.get("checkpoint") else ""
    place = " · ".join(str(x) for x in (route, where) if x)  # a flagged tap on no route has no route
    return f"{e.title}：{place}" if place else e.title


def _round_json(r: patrol.Round) -> dict[str, Any]:
    return {"id": r.due.id, "route": r.route, "due_at": r.due.due_at, "started_at": r.started_at, "guard": r.guard,
            "state": r.state, "visits": [{"checkpoint": v.checkpoint, "expected_at": v.expected_at, "at": v.at,
                                          "status": v.status, "guard": v.guard, "flag": v.flag} for v in r.visits]}
