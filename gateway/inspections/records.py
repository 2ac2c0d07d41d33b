"""Inspection records (巡检记录): a checklist result per asset, its photos, and what follows.

:class:`InspectionStore` keeps the records in the gateway's SQLite file (the same file as the
tickets, a connection of its own) and the photos under ``<data_dir>/photos/<inspection id>/``.
:class:`Inspections` is the service around it:

- a failed item opens a ticket exactly like a failed reading: subject ``asset:<id>``, fault
  ``inspection.<item>``, emergency for fire equipment and urgent otherwise, opened by the
  inspector; one per asset and item (a repeat is an occurrence of the live ticket, a failure
  after the repair was marked done reopens it as rework);
- a passed item clears the ticket of that item (``fault_cleared``, as a healthy reading does);
- an asset without a sensor (no device bound) gets its ledger state from the inspection
  (``faulty`` with the failed items, or ``intact``) through the ``set_state`` callback;
- :meth:`Inspections.overdue` announces each missed deadline once (``inspection.overdue``) and
  marks overdue assets without a sensor ``unknown`` (an unverified asset is not a kept promise);
- :meth:`Inspections.compliance` and :meth:`Inspections.cleanout` give the commitments' ratios.

The record commits first (with its ``inspection.recorded`` event), then its effects on tickets
and the ledger, then a flag saying they were applied: after a crash in between,
:meth:`Inspections.resume` applies what was left (opening a ticket is idempotent).
A cleanout plan's record changes no ledger state and counts as done only when every item passed.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway import events, schema
from gateway.commitments.model import Period, Ratio
from gateway.inspections.plans import DEFAULT_PLANS, HALF_YEAR_S, DueState, Plan, count_days, due
from gateway.outbox import Transactions, connect
from gateway.photos import check_photos, save_photos
from gateway.rules import FAULTY, INTACT, UNKNOWN
from gateway.site import AssetModel
from gateway.tickets import TicketStore

_LOGGER = logging.getLogger(__name__)

RESULTS = ("pass", "fail")
FAULT_PREFIX = "inspection."


#: ``set_state(asset, at, state, faults, cause)``: the monitor's way of writing the asset ledger.
SetState = Callable[[str, float, str, Sequence[str], str], None]

class InspectionError(ValueError):
    """A record that cannot be accepted; ``code`` is the API error code, ``problems`` one line each."""

    def __init__(self, code: str, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))
        self.code = code


def _row(cur: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cur.description, row, strict=True)}


class InspectionStore:
    """The records and their photos. Thread-safe; a connection of its own on the gateway's database.

    Never hold this store's transaction while holding the ticket store's (or the other way
    round): two connections of one thread waiting on each other's write lock would deadlock.
    """

    def __init__(self, path: Path, photos_dir: Path | None = None, synchronous: str = "full") -> None:
        self.db = connect(path, synchronous)
        schema.migrate(self.db, schema.GATEWAY)  # its tables: gateway/schema.py
        self.db.row_factory = _row
        self.photos_dir = photos_dir if photos_dir is not None else Path(path).parent / "photos"
        self._lock = threading.RLock()
        self.transaction = Transactions(self.db, self._lock)

    def add(self, *, asset: str, plan: str, at: float, by: str, tag_at: float | None, results: Mapping[str, str],
            note: str, photos: Sequence[bytes], event: Callable[[sqlite3.Connection, dict[str, Any]], None]
            | None = None) -> dict[str, Any]:
        """Store a record and its photos (checked first: :func:`check_photos`); ``event`` is called
        inside the transaction with the stored record."""
        problems = check_photos(photos)
        if problems:
            raise InspectionError("invalid", problems)
        failed = ",".join(sorted(k for k, v in results.items() if v == "fail"))
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO inspections (asset, plan, at, by, tag_at, results, note, failed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (asset, plan, at, by, tag_at, json.dumps(dict(results), ensure_ascii=False), note, failed))
            inspection_id = int(cur.lastrowid or 0)
            stored = self._save_photos(inspection_id, photos) if photos else []
            try:
                db.execute("UPDATE inspections SET photos = ? WHERE id = ?", (json.dumps(stored), inspection_id))
                record = self.get(inspection_id)
                if event is not None:
                    event(db, record)
            except BaseException:
                shutil.rmtree(self.photos_dir / str(inspection_id), ignore_errors=True)
                raise
        return record

    def _save_photos(self, inspection_id: int, photos: Sequence[bytes]) -> list[dict[str, Any]]:
        return save_photos(self.photos_dir / str(inspection_id), photos)

    def photo_path(self, inspection_id: int, name: str) -> Path | None:
        """The file of one stored photo (names are the record's own: nothing outside its folder)."""
        record = self.get(inspection_id)
        if record is None or name not in {p["name"] for p in record["photos"]}:
            return None
        return self.photos_dir / str(inspection_id) / name

    # -- reading --------------------------------------------------------------------------------
    def get(self, inspection_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM inspections WHERE id = ?", (inspection_id,)).fetchone()
        return None if row is None else _public(row)

    def list(self, *, asset: str | None = None, plan: str | None = None, since: float | None = None,
             until: float | None = None, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Newest first, with the total matching."""
        where, args = ["at >= ?", "at < ?"], [since if since is not None else -math.inf,
                                              until if until is not None else math.inf]
        for column, value in (("asset", asset), ("plan", plan)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = " WHERE " + " AND ".join(where)
        with self._lock:
            total = self.db.execute(f"SELECT count(*) AS n FROM inspections{sql}", args).fetchone()["n"]
            rows = self.db.execute(f"SELECT * FROM inspections{sql} ORDER BY at DESC, id DESC LIMIT ? OFFSET ?",
                                   [*args, limit, offset]).fetchall()
        return [_public(r) for r in rows], total

    def done_times(self, plan: str, *, assets: Iterable[str] | None = None, passed_only: bool = False,
                   since: float = -math.inf) -> dict[str, list[float]]:
        """Per asset, the times of its records of ``plan`` (``passed_only``: with no failed item)."""
        sql = "SELECT asset, at FROM inspections WHERE plan = ? AND at >= ?"
        if passed_only:
            sql += " AND failed = ''"
        with self._lock:
            rows = self.db.execute(sql + " ORDER BY at", (plan, since)).fetchall()
        wanted = None if assets is None else set(assets)
        out: dict[str, list[float]] = {}
        for r in rows:
            if wanted is None or r["asset"] in wanted:
                out.setdefault(r["asset"], []).append(r["at"])
        return out

    def pending(self) -> list[dict[str, Any]]:
        """Records whose effects (tickets, ledger) were not applied yet, oldest first."""
        with self._lock:
            rows = self.db.execute("SELECT * FROM inspections WHERE applied = 0 ORDER BY id").fetchall()
        return [_public(r) for r in rows]

    def mark_applied(self, inspection_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE inspections SET applied = 1 WHERE id = ?", (inspection_id,))

    def latest(self, asset: str, plan: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM inspections WHERE asset = ? AND plan = ? ORDER BY at DESC, id DESC "
                                  "LIMIT 1", (asset, plan)).fetchone()
        return None if row is None else _public(row)

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    r = dict(row)
    r["results"] = json.loads(r["results"])
    r["photos"] = json.loads(r["photos"])
    r["failed"] = [f for f in r["failed"].split(",") if f]
    r["applied"] = bool(r["applied"])
    return r


# -- the service --------------------------------------------------------------------------------
@dataclass
class Effects:
    """What a record did: tickets opened (or repeated, reopened), tickets cleared, the ledger state set."""

    opened: list[dict[str, Any]] = field(default_factory=list)  # {item, ticket, what}
    cleared: list[dict[str, Any]] = field(default_factory=list)  # {item, ticket, status}
    state: str | None = None  # the ledger state set (assets without a sensor), else None
    faults: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"opened": self.opened, "cleared": self.cleared, "state": self.state, "faults": self.faults}


@dataclass(frozen=True, slots=True)
class Overdue:
    """An asset newly overdue for a plan; ``unknown``: its ledger state was set ``unknown``."""

    asset: str
    plan: str
    due_at: float | None  # the deadline missed; None: a cleanout never done
    state: DueState
    unknown: bool


def fault_code(item: str) -> str:
    return f"{FAULT_PREFIX}{item}"


class Inspections:
    """Recording inspections and what follows from them. ``set_state`` writes the asset ledger
    (the monitor provides it); without it, no ledger state is written.

    :meth:`record`, :meth:`resume` and :meth:`overdue` write through both stores one after the
    other: never call them inside a ticket store transaction (the inspection store's connection
    would wait for the write lock that transaction holds).
    """

    def __init__(self, store: InspectionStore, tickets: TicketStore, assets: Iterable[AssetModel], tz: ZoneInfo,
                 plans: Mapping[str, Plan] | None = None, set_state: SetState | None = None) -> None:
        self.store = store
        self.tickets = tickets
        self.tz = tz
        self.set_state = set_state
        self._lock = threading.Lock()  # one record at a time: its effects follow it in order
        self.set_site(assets, plans)

    def set_site(self, assets: Iterable[AssetModel], plans: Mapping[str, Plan] | None = None) -> None:
        """(Re)load the assets and plans (a site file reload); swapped whole."""
        self.assets, self.plans = {a.id: a for a in assets}, dict(plans if plans is not None else DEFAULT_PLANS)

    # -- recording ------------------------------------------------------------------------------
    def check(self, asset: str, plan: str, results: Mapping[str, str]) -> tuple[AssetModel, Plan]:
        """The asset and plan of a record, or InspectionError listing every problem with it."""
        a, p = self.assets.get(asset), self.plans.get(plan)
        if a is None:
            raise InspectionError("not_found", f"no asset {asset!r} on this site")
        if p is None:
            raise InspectionError("not_found", f"no plan {plan!r} (known: {', '.join(self.plans)})")
        if not p.applies_to(a):
            applicable = ", ".join(q.id for q in self.plans.values() if q.applies_to(a)) or "none"
            raise InspectionError("invalid", f"plan {plan!r} does not apply to asset {asset!r} ({a.category}"
                                             f"{', ' + a.kind if a.kind else ''}; its plans: {applicable})")
        items = p.checklist_for(a.kind)
        if a.kind is None and p.per_kind:
            kinds = sorted({k for i in p.checklist for k in i.kinds})
            raise InspectionError("invalid", f"asset {asset!r} has no kind, and plan {plan!r} asks each kind its "
                                             f"own checklist: give the asset its kind in the site file "
                                             f"({', '.join(kinds)})")
        known = {i.id for i in items}
        problems = []
        for i in items:
            if i.id not in results:
                problems.append(f"checklist item {i.id!r} ({i.zh}) has no result")
            elif results[i.id] not in RESULTS:
                problems.append(f"checklist item {i.id!r}: result must be pass or fail (got {results[i.id]!r})")
        for name in results:
            if name not in known:
                problems.append(f"unknown checklist item {name!r} for plan {plan!r} on asset {asset!r} "
                                f"(its items: {', '.join(sorted(known))})")
        if problems:
            raise InspectionError("invalid", problems)
        return a, p

    def record(self, asset: str, plan: str, by: str, at: float, results: Mapping[str, str], note: str = "",
               photos: Sequence[bytes] = (), tag_at: float | None = None) -> tuple[dict[str, Any], Effects]:
        """Store one inspection and apply what follows from it; InspectionError when refused."""
        problems = []
        if not by:
            problems.append("by: who inspected is required")
        if not math.isfinite(at):
            problems.append("at: not a time")
        if tag_at is not None and not math.isfinite(tag_at):
            problems.append("tag_at: not a time")
        if problems:
            raise InspectionError("invalid", problems)
        a, p = self.check(asset, plan, results)
        problems = check_photos(photos)
        if problems:
            raise InspectionError("invalid", problems)
        with self._lock:
            inspection = self.store.add(asset=asset, plan=plan, at=at, by=by, tag_at=tag_at, results=results,
                                        note=note, photos=photos, event=lambda db, r: self._recorded(db, r, a, p))
            effects = self._apply(inspection, a, p)
            self.store.mark_applied(inspection["id"])
        return {**inspection, "applied": True}, effects

    def resume(self) -> int:
        """Apply the effects of records stored before a crash cut them short; returns how many."""
        n = 0
        with self._lock:
            for r in self.store.pending():
                a, p = self.assets.get(r["asset"]), self.plans.get(r["plan"])
                if a is not None and p is not None:
                    self._apply(r, a, p)
                else:
                    _LOGGER.warning("inspection %d: asset %s or plan %s no longer on the site: its tickets were "
                                    "not opened", r["id"], r["asset"], r["plan"])
                self.store.mark_applied(r["id"])
                n += 1
        return n

    def _recorded(self, db: sqlite3.Connection, r: Mapping[str, Any], a: AssetModel, p: Plan) -> None:
        failed = r["failed"]
        verdict = f"不合格 {len(failed)} 项" if failed else "合格"
        names = {i.id: i.zh for i in p.checklist}
        text = "\n".join(line for line in (
            f"巡检人：{r['by']}", "不合格项：" + "、".join(names.get(f, f) for f in failed) if failed else "",
            r["note"]) if line)
        events.record(db, "inspection.recorded", r["at"], f"巡检记录 {a.name or a.id}：{p.zh}（{verdict}）", text,
                      {"inspection": {k: v for k, v in r.items() if k != "applied"}, "asset": a.id,
                       "category": a.category, "plan": p.id})

    def _apply(self, r: Mapping[str, Any], a: AssetModel, p: Plan) -> Effects:
        """Tickets and ledger, in the ticket store's transaction (the ledger callback writes there too)."""
        effects = Effects()
        subject, at, by = f"asset:{a.id}", r["at"], r["by"]
        priority = "emergency" if a.category == "fire" else "urgent"
        names = {i.id: i for i in p.checklist}
        with self.tickets.transaction():
            for item, result in sorted(r["results"].items()):
                code = fault_code(item)
                if result == "fail":
                    live = self.tickets.live(subject, code)
                    if live is not None and live["status"] == "resolved" and at >= live["resolved_at"]:
                        t = self.tickets.fault_persists(subject, code, at)
                        what = "reopened"
                    else:
                        spec = names.get(item)
                        title = f"{a.name or a.id} 巡检不合格：{spec.zh if spec else item}"
                        t, what = self.tickets.open(
                            subject=subject, fault=code, priority=priority, title=title, at=at, by=by,
                            source="inspection", asset=a.id, device=a.device, category=a.category, note=r["note"],
                            data={"inspection": r["id"], "plan": p.id, "item": item})
                    if t is not None:
                        effects.opened.append({"item": item, "ticket": t["id"], "what": what})
                else:
                    t = self.tickets.fault_cleared(subject, code, at)
                    if t is not None:
                        effects.cleared.append({"item": item, "ticket": t["id"], "status": t["status"]})
            if a.device is None and not p.cleanout and self.set_state is not None:
                effects.faults = [fault_code(f) for f in r["failed"]]
                effects.state = FAULTY if effects.faults else INTACT
                self.set_state(a.id, at, effects.state, effects.faults, "inspection")
        return effects

    # -- deadlines ------------------------------------------------------------------------------
    def _done(self, p: Plan, now: float) -> dict[str, list[float]]:
        """What :func:`due` needs at ``now``: a monthly plan looks back to last month's start at most."""
        since = now - 62 * 86400.0 if p.every == "month" else -math.inf
        return self.store.done_times(p.id, passed_only=p.cleanout, since=since)

    def due_states(self, now: float, asset: str | None = None) -> list[dict[str, Any]]:
        """Every (asset, plan) with where it stands at ``now``."""
        out = []
        for p in self.plans.values():
            done = self._done(p, now)
            for a in self.assets.values():
                if (asset is None or a.id == asset) and p.applies_to(a):
                    s = due(p, a, done.get(a.id, []), now, self.tz)
                    out.append({"asset": a.id, "plan": p.id, "done": s.done_this_period, "needed": s.needed,
                                "next_due_at": s.next_due_at, "overdue": s.overdue, "overdue_since": s.overdue_since})
        return out

    def overdue(self, now: float) -> list[Overdue]:
        """Announce each (asset, plan) newly overdue, once per missed deadline: an ``inspection.overdue``
        event, and the asset marked ``unknown`` in the ledger when it has no sensor and the plan is an
        inspection (a sensor's asset follows its readings; an overdue cleanout is its own indicator)."""
        found: list[Overdue] = []
        for p in self.plans.values():
            done = self._done(p, now)
            for a in self.assets.values():
                if not p.applies_to(a):
                    continue
                s = due(p, a, done.get(a.id, []), now, self.tz)
                if s.overdue:
                    found.append(Overdue(a.id, p.id, s.overdue_since, s,
                                         a.device is None and not p.cleanout and self.set_state is not None))
        if not found:
            return []
        new: list[Overdue] = []
        with self.store.transaction() as db:
            for o in found:
                key = o.due_at if o.due_at is not None else 0.0  # 0: a cleanout never done, announced once
                cur = db.execute("INSERT OR IGNORE INTO inspection_overdue (asset, plan, due_at, at) "
                                 "VALUES (?, ?, ?, ?)", (o.asset, o.plan, key, now))
                if cur.rowcount:
                    self._overdue_event(db, o, now)
                    new.append(o)
        marked = [o for o in new if o.unknown]
        if marked and self.set_state is not None:
            with self.tickets.transaction():
                for o in marked:
                    latest = self.store.latest(o.asset, o.plan)
                    faults = [fault_code(f) for f in latest["failed"]] if latest else []
                    self.set_state(o.asset, now, UNKNOWN, faults, "inspection_overdue")
        return new

    def _overdue_event(self, db: sqlite3.Connection, o: Overdue, now: float) -> None:
        a, p = self.assets[o.asset], self.plans[o.plan]
        when = (datetime.fromtimestamp(o.due_at, self.tz).strftime("%Y-%m-%d %H:%M") if o.due_at is not None
                else "从未完成")
        text = f"应完成时间：{when}\n本期已完成：{o.state.done_this_period}/{o.state.needed}"
        events.record(db, "inspection.overdue", now, f"巡检逾期 {a.name or a.id}：{p.zh}", text,
                      {"asset": a.id, "category": a.category, "plan": p.id, "due_at": o.due_at,
                       "done": o.state.done_this_period, "needed": o.state.needed, "cleanout": p.cleanout,
                       "unknown": o.unknown})

    # -- the commitments' figures ---------------------------------------------------------------
    def compliance(self, plan: str, assets: Iterable[str], period: Period) -> Ratio:
        """Assets inspected at least ``times`` (distinct local days) in ``period`` / assets.
        For a half-year plan: :meth:`cleanout` at the period's end."""
        p = self.plans[plan]
        ids = list(dict.fromkeys(assets))
        if p.every == "half_year":
            return self.cleanout(ids, period.end, plan)
        done = self.store.done_times(p.id, assets=ids, passed_only=p.cleanout, since=period.start)
        ok = sum(1 for a in ids if count_days(done.get(a, []), period.start, period.end, self.tz) >= p.times)
        return Ratio(ok, len(ids))

    def cleanout(self, assets: Iterable[str], period_end: float, plan: str | None = None) -> Ratio:
        """Assets cleaned out (every item passed) within the 183 days before ``period_end`` / assets
        (``plan``: the cleanout plan, by default the first one; made monthly by an override, its month)."""
        p = self.plans[plan] if plan else next(q for q in self.plans.values() if q.cleanout)
        ids = list(dict.fromkeys(assets))
        if p.every == "month":
            last = datetime.fromtimestamp(period_end - 1, self.tz)
            start = datetime(last.year, last.month, 1, tzinfo=self.tz).timestamp()
            return self.compliance(p.id, ids, Period(start, period_end))
        done = self.store.done_times(p.id, assets=ids, passed_only=True, since=period_end - HALF_YEAR_S)
        ok = sum(1 for a in ids if any(period_end - HALF_YEAR_S < t < period_end for t in done.get(a, [])))
        return Ratio(ok, len(ids))
