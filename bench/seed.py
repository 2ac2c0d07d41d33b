"""A big site and its history for the benchmarks (``commitments.py``, ``api.py``).

The site: ``n`` assets over the five sensor kinds (lighting 60 %, fire 25 %, drainage 15 %), and
optionally patrol checkpoints, guards, two routes and their schedules. The history goes into a
gateway database through the real stores (:class:`gateway.tickets.TicketStore` and its neighbours
create their own schemas): the asset state ledger, tickets with deadlines, timelines and callbacks,
patrol taps and visits, inspections, devices and dead letters. Every table is filled with one
``executemany`` in one transaction, so a year of a 10,000-asset site takes seconds.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import sla  # noqa: E402
from gateway.devices import SCHEMA as DEVICES_SCHEMA  # noqa: E402
from gateway.inspections.field import SCHEMA as VISITS_SCHEMA  # noqa: E402
from gateway.inspections.patrol import due_rounds  # noqa: E402
from gateway.inspections.plans import DEFAULT_PLANS  # noqa: E402
from gateway.inspections.records import InspectionStore  # noqa: E402
from gateway.inspections.taps import TapLog  # noqa: E402
from gateway.outbox import DeadLetter, Outbox, connect  # noqa: E402
from gateway.sensors import KINDS  # noqa: E402
from gateway.site import AssetModel, Site, SiteModel  # noqa: E402
from gateway.tickets import TicketStore  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
#: (category, kind, share of the assets, name prefix)
MIX = (("lighting", "streetlight", 0.60, "路灯"), ("fire", "fire_extinguisher", 0.15, "灭火器"),
       ("fire", "fire_hydrant", 0.05, "消火栓"), ("fire", "smoke_detector", 0.05, "烟感"),
       ("drainage", "drain_level", 0.15, "雨水井"))
WORKERS = tuple(f"维修{i}" for i in range(1, 9))
INSPECTORS = tuple(f"巡检{i}" for i in range(1, 5))
LIVE_STATUSES = (("open", 0.4), ("acknowledged", 0.25), ("on_site", 0.2), ("resolved", 0.15))


def _counted_faults(kind: str) -> list[str]:
    return [code for code, spec in KINDS[kind].faults.items() if spec.counts]


def site_dict(n: int, seed: int = 1, checkpoints: int = 0, name: str = "bench") -> dict[str, Any]:
    """A site file's contents (as a dict): ``n`` assets, each with its device; with ``checkpoints``,
    that many places, 6 guards with badges and handhelds, route R1 over the first half (hourly, all
    day) and R2 over the rest (three rounds a day)."""
    rng = random.Random(seed)
    assets = []
    for i in range(n):
        x, pick = rng.random(), MIX[-1]
        for m in MIX:
            if x < m[2]:
                pick = m
                break
            x -= m[2]
        category, kind, _, prefix = pick
        if kind == "drain_level" and i % 10 == 0:
            prefix = "化粪池"  # septic tanks: the half-yearly cleanout plan applies
        a: dict[str, Any] = {"id": f"A{i:05d}", "name": f"{prefix}{i:05d}", "category": category, "kind": kind,
                             "device": f"d{i:05d}", "building": str(i % 20), "zone": f"{i % 8 + 1}区",
                             "location": f"{i % 20}号楼 {i % 7 + 1}单元"}
        if kind == "streetlight":
            a["circuit"] = f"C{i // 40:03d}"
        assets.append(a)
    site: dict[str, Any] = {"site": {"name": f"{name} 花园", "timezone": str(TZ), "latitude": 31.23,
                                     "longitude": 121.47}, "assets": assets}
    if checkpoints:
        cps = [{"id": f"CP-{i:03d}", "name": f"巡更点{i}", "tag": f"04{i:012X}",
                "x_m": float(i % 10 * 40), "y_m": float(i // 10 * 40)} for i in range(checkpoints)]
        half = max(1, checkpoints // 2)
        site |= {
            "checkpoints": cps,
            "guards": [{"id": f"G{i}", "name": f"保安{i}", "badge": f"B{i:04d}"} for i in range(1, 7)],
            "readers": [{"id": f"hh-{i}", "guard": f"G{i}"} for i in range(1, 7)],
            "routes": [{"id": "R1", "name": "夜巡", "checkpoints": [c["id"] for c in cps[:half]],
                        "duration_min": 40.0},
                       {"id": "R2", "name": "日巡", "checkpoints": [c["id"] for c in cps[half:] or cps[:1]],
                        "duration_min": 40.0}],
            "schedules": [{"route": "R1", "start": "00:00", "end": "23:59", "every_min": 60},
                          {"route": "R2", "at": ["09:00", "13:00", "17:00"]}],
        }
    return site


def make_site(n: int, seed: int = 1, checkpoints: int = 0) -> Site:
    return Site.from_model(SiteModel.model_validate(site_dict(n, seed, checkpoints)))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's escapes are TOML's basic string escapes
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {type(v).__name__}")


def to_toml(site: Mapping[str, Any]) -> str:
    """A site dict as a site file: tables for dicts, arrays of tables for lists of dicts."""
    out = []
    for key, value in site.items():
        if isinstance(value, dict):
            out.append(f"[{key}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in value.items()))
        else:
            for item in value:
                out.append(f"[[{key}]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in item.items()))
    return "\n".join(out)


# -- tickets and the ledger ----------------------------------------------------------------------
def _ticket(tid: int, a: AssetModel, rng: random.Random, opened: float, status: str, now: float,
            callback_rate: float) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """One ticket row (explicit id), its timeline and its callback, as a sensor-opened ticket would have them."""
    fault = rng.choice(_counted_faults(a.kind or ""))
    spec = KINDS[a.kind or ""].faults[fault]
    d = sla.deadlines(spec.priority, opened, TZ)
    who = rng.choice(WORKERS)
    log = [(tid, opened, "open", "sensor", "", json.dumps({"reading_ts": opened, "seq": tid}))]
    ack = on_site = resolved = closed = cancelled = due = None
    if status == "cancelled":
        cancelled = opened + rng.uniform(60, 3600)
        log.append((tid, cancelled, "cancel", who, "误报", "{}"))
    elif status != "open":
        last = now if status != "closed" else float("inf")
        ack = min(opened + rng.expovariate(1 / 1200), last)
        log.append((tid, ack, "acknowledge", who, "", "{}"))
        if status in ("on_site", "resolved", "closed"):
            on_site = min(ack + rng.expovariate(1 / 900), last)
            log.append((tid, on_site, "arrive", who, "", "{}"))
        if status in ("resolved", "closed"):
            resolved = min(on_site + rng.expovariate(1 / 20000), last)  # type: ignore[operator]
            log.append((tid, resolved, "resolve", who, "更换灯具" if a.kind == "streetlight" else "已处理", "{}"))
        if status == "closed":
            closed = resolved + rng.uniform(600, 86400)  # type: ignore[operator]
            due = sla.callback_due(spec.priority, closed)
            log.append((tid, closed, "close", "sensor", "the sensor confirmed the repair", "{}"))
    callbacks = []
    if closed is not None and rng.random() < callback_rate:
        at = closed + rng.uniform(0, 86400)
        score = rng.choices((5, 4, 3, 2, 1), (0.6, 0.25, 0.1, 0.03, 0.02))[0]
        callbacks.append((tid, at, rng.choice(WORKERS), "phone", score))
        log.append((tid, at, "callback", callbacks[0][2], "", json.dumps({"channel": "phone", "score": score})))
    overdue = int(due is not None and not callbacks and due < now)
    row = (tid, f"asset:{a.id}", a.id, a.device, a.category, fault, spec.priority, status,
           f"{a.name} {spec.zh}", "sensor", opened, "sensor", opened, d.respond_by, d.arrive_by, d.resolve_by,
           ack, who if ack else None, on_site, who if on_site else None, resolved, who if resolved else None,
           closed, "sensor" if closed else None, cancelled, who if cancelled else None, who,
           1 + int(rng.random() < 0.1), opened, int(rng.random() < 0.02), due, overdue)
    return row, log, callbacks


TICKET_COLUMNS = ("id, subject, asset, device, category, fault, priority, status, title, source, opened_at, "
                  "opened_by, clocks_from, respond_by, arrive_by, resolve_by, acknowledged_at, acknowledged_by, "
                  "on_site_at, on_site_by, resolved_at, resolved_by, closed_at, closed_by, cancelled_at, "
                  "cancelled_by, assignee, occurrences, last_occurrence_at, reworks, callback_due, callback_overdue")


def seed_tickets(store: TicketStore, assets: Sequence[AssetModel], start: float, end: float, n: int,
                 rng: random.Random, *, live: int = 0, cancelled: float = 0.0, callback_rate: float = 0.6,
                 timeline: bool = True) -> dict[str, str]:
    """``n`` tickets opened over ``[start, end)``: ``live`` of them still live (opened in the last two days,
    on distinct assets), a ``cancelled`` share cancelled, the rest closed, ``callback_rate`` of those called
    back. Ids follow the opening time. Returns each live ticket's asset and fault."""
    live = min(live, n, len(assets))
    specs: list[tuple[float, AssetModel, str]] = []
    for _ in range(n - live):
        opened = rng.uniform(start, max(start, end - 3 * 86400))
        specs.append((opened, rng.choice(assets), "cancelled" if rng.random() < cancelled else "closed"))
    for a in rng.sample(list(assets), live):
        status = rng.choices([s for s, _ in LIVE_STATUSES], [w for _, w in LIVE_STATUSES])[0]
        specs.append((rng.uniform(max(start, end - 2 * 86400), end), a, status))
    specs.sort(key=lambda s: s[0])
    rows, logs, callbacks, faults = [], [], [], {}
    for tid, (opened, a, status) in enumerate(specs, 1):
        row, log, cb = _ticket(tid, a, rng, opened, status, end, callback_rate)
        rows.append(row)
        logs += log
        callbacks += cb
        if status not in ("closed", "cancelled"):
            faults[a.id] = row[5]
    with store.transaction() as db:
        if rows:
            db.executemany(f"INSERT INTO tickets ({TICKET_COLUMNS}) VALUES ({', '.join('?' * len(rows[0]))})", rows)
        if timeline:
            db.executemany("INSERT INTO ticket_log (ticket, at, action, by, note, data) VALUES (?, ?, ?, ?, ?, ?)",
                           logs)
        db.executemany("INSERT INTO callbacks (ticket, at, by, channel, score) VALUES (?, ?, ?, ?, ?)", callbacks)
    return faults


def seed_ledger(store: TicketStore, assets: Sequence[AssetModel], start: float, end: float, changes: int,
                rng: random.Random, final: Mapping[str, str] | None = None) -> int:
    """About ``changes`` state transitions over ``[start, end)``, spread evenly over the assets: each entered
    service the day before ``start`` (unknown), then alternates intact and faulty (or unknown). With
    ``final`` (asset -> its live fault), every asset ends intact except those, which end faulty."""
    per_asset = max(1, changes // max(1, len(assets)))
    rows = []
    for a in assets:
        faults = _counted_faults(a.kind or "")
        rows.append((a.id, start - 86400, "unknown", "", "in_service"))
        state, fault, t = "intact", "", start
        for t in sorted(rng.uniform(start, end) for _ in range(per_asset - 1)):
            rows.append((a.id, t, state, fault, "reading"))
            if state == "intact":
                state = rng.choices(("faulty", "unknown"), (0.8, 0.2))[0]
                fault = rng.choice(faults) if state == "faulty" else ""
            else:
                state, fault = "intact", ""
        if final is not None:
            want = ("faulty", final[a.id]) if a.id in final else ("intact", "")
            last = rows[-1]
            if (last[2], last[3]) != want:
                rows.append((a.id, rng.uniform(max(t, end - 86400), end), *want, "reading"))
    with store.transaction() as db:
        db.executemany("INSERT INTO asset_states (asset, at, state, faults, cause) VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def build(db: Path, site: Site, start: float, end: float, changes: int, tickets: int, seed: int, *,
          live: int = 0, cancelled: float = 0.0, callback_rate: float = 0.6, timeline: bool = False
          ) -> dict[str, int]:
    """The ledger and the tickets of ``site`` over ``[start, end)`` into the gateway database ``db``."""
    rng = random.Random(seed)
    store = TicketStore(db, TZ)
    try:
        assets = [a for a in site.assets if a.kind]
        faults = seed_tickets(store, assets, start, end, tickets, rng, live=live, cancelled=cancelled,
                              callback_rate=callback_rate, timeline=timeline)
        entries = seed_ledger(store, assets, start, end, changes, rng, faults if live else None)
    finally:
        store.close()
    return {"tickets": tickets, "live tickets": len(faults), "ledger entries": entries}


# -- patrols, inspections, devices, dead letters ------------------------------------------------------
def seed_patrols(db: Path, site: Site, start: float, end: float, seed: int) -> dict[str, int]:
    """Every scheduled round over ``[start, end)``: 97 % of the visits tapped near their expected time by
    the round's guard (handheld), the rest missed; the taps and the recorded visits."""
    rng = random.Random(seed)
    routes = {r.id: r for r in site.routes}
    tags = {c.id: c.tag for c in site.checkpoints}
    guards = [g.id for g in site.guards] or ["G1"]
    taps, visits = [], []
    for r in due_rounds(site.routes, site.schedules, start, end, TZ):
        route = routes[r.route]
        guard = rng.choice(guards)
        step = route.duration_min * 60 / len(route.checkpoints)
        for seq, cp in enumerate(route.checkpoints):
            expected = r.due_at + seq * step
            if rng.random() < 0.97:
                at = expected + rng.gauss(0, 90)
                taps.append((at, f"hh-{guard[1:]}", tags[cp], cp, guard, None, "mqtt"))
                visits.append((r.id, r.route, r.due_at, cp, seq, expected, at,
                               "on_time" if abs(at - expected) <= r.tolerance_s else "late", guard, None))
            else:
                visits.append((r.id, r.route, r.due_at, cp, seq, expected, None, "missed", guard, None))
    log = TapLog(db)
    try:
        log.db.executescript(VISITS_SCHEMA)  # the patrol's table, as gateway.inspections.field creates it
        log.db.execute("BEGIN")
        log.db.executemany("INSERT INTO taps (at, reader, tag, checkpoint, guard, badge, source) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", sorted(taps))
        log.db.executemany("INSERT OR IGNORE INTO patrol_visits (round, route, due_at, checkpoint, seq, expected_at, "
                           "at, status, guard, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", visits)
        log.db.execute("COMMIT")
    finally:
        log.close()
    return {"taps": len(taps), "patrol visits": len(visits)}


def seed_inspections(db: Path, site: Site, start: float, end: float, seed: int) -> int:
    """Each default plan done on time over ``[start, end)``: the ``k``-th of a month's ``times`` inside its
    part of the month, in working hours; 1 % of the items failed. All applied (their effects are history)."""
    rng = random.Random(seed)
    rows = []
    month = datetime.fromtimestamp(start, TZ).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while month.timestamp() < end:
        for p in DEFAULT_PLANS.values():
            if p.every == "half_year" and month.month not in (3, 9):
                continue
            for a in site.assets:
                if not p.applies_to(a):
                    continue
                items = [i.id for i in p.checklist_for(a.kind)]
                for k in range(p.times):
                    day = rng.randint(k * 28 // p.times + 1, (k + 1) * 28 // p.times)
                    at = (month + timedelta(days=day - 1, hours=rng.uniform(8, 17))).timestamp()
                    if not start <= at < end:
                        continue
                    results = {i: "fail" if rng.random() < 0.01 else "pass" for i in items}
                    failed = ",".join(sorted(i for i, v in results.items() if v == "fail"))
                    rows.append((a.id, p.id, at, rng.choice(INSPECTORS), at - 30, json.dumps(results), failed))
        month = (month + timedelta(days=32)).replace(day=1)
    store = InspectionStore(db)
    try:
        with store.transaction() as conn:
            conn.executemany("INSERT INTO inspections (asset, plan, at, by, tag_at, results, failed, applied) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, 1)", sorted(rows, key=lambda r: r[2]))
    finally:
        store.close()
    return len(rows)


def seed_devices(db: Path, site: Site, now: float, seed: int) -> int:
    """Every bound device seen for a year and online, its last reading a moment ago."""
    rng = random.Random(seed)
    rows = []
    for a in site.assets:
        if a.device and a.kind:
            fields = {n: (True if s.type is bool else round(rng.uniform(0.3, 1.2), 3))
                      for n, s in KINDS[a.kind].fields.items() if s.required}
            seen = now - rng.uniform(0, 30)
            rows.append((a.device, a.kind, now - 365 * 86400, seen, seen, json.dumps(fields), 1, None,
                         now - 365 * 86400, rng.randint(10_000, 500_000), rng.randint(0, 5)))
    conn = connect(db)  # the registry's table, as gateway.devices creates it
    try:
        conn.executescript(DEVICES_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return len(rows)


def seed_dead_letters(path: Path, n: int, now: float, seed: int) -> int:
    """``n`` refused messages of the last week, through the outbox's own commit."""
    rng = random.Random(seed)
    reasons = (("schema", "current_a: Input should be a valid number"), ("bad_json", "Expecting value: line 1"),
               ("unknown_kind", "no sensor kind 'thermo'"), ("too_old", "reading older than 7 days"))
    dead = []
    for i in range(n):
        reason, detail = rng.choice(reasons)
        payload = json.dumps({"ts": now - rng.uniform(0, 7 * 86400), "seq": i, "current_a": "n/a"}).encode()
        dead.append(DeadLetter(now - rng.uniform(0, 7 * 86400), f"fm/bench/streetlight/d{i % 10_000:05d}/reading",
                               f"d{i % 10_000:05d}", reason, detail, len(payload), payload))
    dead.sort(key=lambda d: d.at)
    outbox = Outbox(path, 100_000_000)
    try:
        outbox.commit([], [], dead)
    finally:
        outbox.close()
    return n
