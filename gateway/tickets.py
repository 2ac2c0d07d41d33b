"""Repair tickets (维修工单) and the asset state ledger, in the gateway's SQLite database.

A ticket is opened by a confirmed fault or by a person; at most one is open per
(subject, fault), enforced by a partial unique index, so repeats become occurrences of
the open one. Deadlines come from :mod:`gateway.sla` at opening, in site local time.
Lifecycle ``open → acknowledged → on_site → resolved → closed`` (or ``cancelled``), each
step logged with who and when. A resolved ticket closes when the sensor confirms the
fault is gone; a fault that persists after the repair, or returns within 30 days of the
close, reopens it as rework (二次返修). Every change records its event in the same
transaction (:mod:`gateway.events`).
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway import events, schema, sla
from gateway.outbox import Transactions, connect
from gateway.photos import check_photos, save_photos

_LOGGER = logging.getLogger(__name__)

REWORK_WINDOW_S = 30 * 86400.0  # a fault returning within 30 days of the close is rework
LIVE = ("open", "acknowledged", "on_site", "resolved")
FINAL = ("closed", "cancelled")
STATUSES = LIVE + FINAL
PRIORITY_ZH = {"emergency": "急修", "urgent": "紧急", "general": "零修"}


#: The earliest deadline a live ticket has still to meet (SQLite's scalar min; none sorts last).
_NEXT_DEADLINE = ("min(coalesce(CASE WHEN acknowledged_at IS NULL THEN respond_by END, 9e18), "
                  "coalesce(CASE WHEN on_site_at IS NULL THEN arrive_by END, 9e18), "
                  "coalesce(CASE WHEN resolved_at IS NULL THEN resolve_by END, 9e18))")

#: action -> (statuses it applies to, status after it); ``None`` keeps the status.
ACTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "acknowledge": (("open",), "acknowledged"),
    "arrive": (("open", "acknowledged"), "on_site"),
    "resolve": (("open", "acknowledged", "on_site"), "resolved"),
    "close": (("resolved", "open"), "closed"),  # from open only when the fault cleared by itself
    "cancel": (LIVE, "cancelled"),
    "reopen": (("resolved", "closed"), "open"),
    "assign": (LIVE, None),
}


class TicketError(ValueError):
    """A request about a ticket that cannot be done; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _row(cur: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cur.description, row, strict=True)}


class TicketStore:
    """Thread-safe: the ingest thread opens and closes tickets, API threads act on them."""

    def __init__(self, path: Path, tz: ZoneInfo, sla_table: Mapping[str, sla.SlaRule] = sla.DEFAULT_SLA,
                 callbacks: Mapping[str, float] = sla.DEFAULT_CALLBACKS, self_cleared: str = "confirm",
                 synchronous: str = "full") -> None:
        # "normal" only where the database can be recomputed (a replay): it skips the fsync per commit.
        self.db = connect(path, synchronous)
        schema.migrate(self.db, schema.GATEWAY)  # its tables: gateway/schema.py
        self.db.row_factory = _row
        self.tz = tz
        self.sla_table = sla_table
        self.callbacks = callbacks
        self.self_cleared = self_cleared
        self.photos_dir = Path(path).parent / "photos" / "tickets"
        self._lock = threading.RLock()
        self.transaction = Transactions(self.db, self._lock)

    # -- reading --------------------------------------------------------------------------------
    def get(self, ticket_id: int) -> dict[str, Any]:
        with self._lock:
            t = self.db.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            if t is None:
                raise TicketError("not_found", f"no ticket {ticket_id}")
            t["timeline"] = [
                {**r, "data": json.loads(r["data"])} for r in self.db.execute(
                    "SELECT at, action, by, note, data FROM ticket_log WHERE ticket = ? ORDER BY id", (ticket_id,))]
            t["callbacks"] = self.db.execute(
                "SELECT at, by, channel, score, note FROM callbacks WHERE ticket = ? ORDER BY id", (ticket_id,)
            ).fetchall()
        return self._public(t)

    def _public(self, t: dict[str, Any]) -> dict[str, Any]:
        t["self_cleared"] = bool(t["self_cleared"])
        t["escalations"] = json.loads(t["escalations"])
        t.pop("callback_overdue", None)
        t.pop("called_back", None)
        return t

    def live(self, subject: str, fault: str) -> dict[str, Any] | None:
        with self._lock:
            return self.db.execute("SELECT * FROM tickets WHERE subject = ? AND fault = ? AND status NOT IN "
                                   "('closed', 'cancelled')", (subject, fault)).fetchone()

    def list(self, *, status: Sequence[str] = (), priority: str | None = None, category: str | None = None,
             asset: str | None = None, assignee: str | None = None, unassigned: bool = False,
             overdue_at: float | None = None,
             callback_due: bool = False, sort: str = "newest", limit: int = 100, offset: int = 0
             ) -> tuple[list[dict[str, Any]], int]:
        """Newest first, or by the next deadline still to meet (``sort="deadline"``, none last);
        ``overdue_at`` keeps live tickets with a deadline passed at that time; ``callback_due`` keeps
        closed tickets whose owner has not been called back yet, the longest waiting first."""
        where, args = [], []
        if status:
            where.append(f"status IN ({','.join('?' * len(status))})")
            args += list(status)
        for column, value in (("priority", priority), ("category", category), ("asset", asset),
                              ("assignee", assignee)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if unassigned:
            where.append("assignee IS NULL")
        if overdue_at is not None:
            where.append("status IN ('open', 'acknowledged', 'on_site') AND ("
                         "(acknowledged_at IS NULL AND respond_by < ?) OR "
                         "(on_site_at IS NULL AND arrive_by < ?) OR (resolved_at IS NULL AND resolve_by < ?))")
            args += [overdue_at] * 3
        if callback_due:  # the partial index callbacks_waiting, named: SQLite may not pick it by itself
            where.append("status = 'closed' AND callback_due IS NOT NULL AND called_back = 0")
        sql = " WHERE " + " AND ".join(where) if where else ""
        order = {"newest": "id DESC", "deadline": f"{_NEXT_DEADLINE}, id",
                 "callback": "callback_due, id"}["callback" if callback_due and sort == "newest" else sort]
        with self._lock:
            table = "tickets INDEXED BY callbacks_waiting" if callback_due else "tickets"
            total = self.db.execute(f"SELECT count(*) AS n FROM {table}{sql}", args).fetchone()["n"]
            rows = self.db.execute(f"SELECT * FROM {table}{sql} ORDER BY {order} LIMIT ? OFFSET ?",
                                   [*args, limit, offset]).fetchall()
        return [self._public(r) for r in rows], total

    def attach_photos(self, ticket_id: int, photos: Sequence[bytes], by: str, at: float) -> dict[str, Any]:
        """Photos of the problem (a guard's report), checked like an inspection's and kept under
        ``photos/tickets/<log entry>/``; the timeline's ``photos`` entry names them."""
        problems = check_photos(photos)
        if problems:
            raise TicketError("invalid", "; ".join(problems))
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket_id,)).fetchone() is None:
                raise TicketError("not_found", f"no ticket {ticket_id}")
            entry = self._log(db, ticket_id, at, "photos", by)
            folder = self.photos_dir / str(entry)
            stored = save_photos(folder, photos)
            try:
                db.execute("UPDATE ticket_log SET data = ? WHERE id = ?",
                           (json.dumps({"entry": entry, "photos": stored}), entry))
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return self.get(ticket_id)

    def photo_path(self, ticket_id: int, entry: int, name: str) -> Path | None:
        """One stored photo, by the timeline entry that names it (nothing outside its folder)."""
        with self._lock:
            row = self.db.execute("SELECT data FROM ticket_log WHERE id = ? AND ticket = ? AND action = 'photos'",
                                  (entry, ticket_id)).fetchone()
        if row is None or name not in {p["name"] for p in json.loads(row["data"]).get("photos", [])}:
            return None
        return self.photos_dir / str(entry) / name

    # -- opening --------------------------------------------------------------------------------
    def open(self, *, subject: str | None, fault: str, priority: str, title: str, at: float, by: str,
             source: str, asset: str | None = None, device: str | None = None, category: str | None = None,
             note: str = "", data: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], str]:
        """Open a ticket, or add an occurrence to the live one, or reopen a recent one as rework.

        Returns the ticket and what happened: ``opened``, ``occurrence`` or ``reopened``.
        """
        if priority not in sla.PRIORITIES:
            raise TicketError("invalid", f"unknown priority {priority!r} (known: {', '.join(sla.PRIORITIES)})")
        with self.transaction() as db:
            if subject is not None:
                live = self.live(subject, fault)
                if live is not None:
                    return self._occurrence(db, live, at, by, data), "occurrence"
                recent = db.execute(
                    "SELECT * FROM tickets WHERE subject = ? AND fault = ? AND status = 'closed' AND closed_at >= ? "
                    "ORDER BY closed_at DESC LIMIT 1", (subject, fault, at - REWORK_WINDOW_S)).fetchone()
                if recent is not None:
                    return self._reopen(db, recent, at, by, "the fault returned within 30 days", data), "reopened"
            d = sla.deadlines(priority, at, self.tz, self.sla_table)
            cur = db.execute(
                "INSERT INTO tickets (subject, asset, device, category, fault, priority, status, title, note, source, "
                "opened_at, opened_by, clocks_from, respond_by, arrive_by, resolve_by, last_occurrence_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (subject, asset, device, category, fault, priority, title, note, source, at, by, at,
                 d.respond_by, d.arrive_by, d.resolve_by, at))
            ticket_id = int(cur.lastrowid or 0)
            self._log(db, ticket_id, at, "open", by, note, data)
            t = self.get(ticket_id)
            self._event(db, "ticket.opened", t, at)
            return t, "opened"

    def _occurrence(self, db: sqlite3.Connection, t: dict[str, Any], at: float, by: str,
                    data: Mapping[str, Any] | None) -> dict[str, Any]:
        db.execute("UPDATE tickets SET occurrences = occurrences + 1, last_occurrence_at = ?, fault_cleared_at = NULL,"
                   " self_cleared = 0 WHERE id = ?", (at, t["id"]))
        self._log(db, t["id"], at, "occurrence", by, "", data)
        return self.get(t["id"])

    def _reopen(self, db: sqlite3.Connection, t: dict[str, Any], at: float, by: str, why: str,
                data: Mapping[str, Any] | None) -> dict[str, Any]:
        """Rework: the SLA clocks start again from now."""
        d = sla.deadlines(t["priority"], at, self.tz, self.sla_table)
        db.execute(
            "UPDATE tickets SET status = 'open', reworks = reworks + 1, clocks_from = ?, respond_by = ?, arrive_by = ?,"
            " resolve_by = ?, callback_overdue = 0,"
            " acknowledged_at = NULL, acknowledged_by = NULL, on_site_at = NULL, on_site_by = NULL,"
            " resolved_at = NULL, resolved_by = NULL, closed_at = NULL, closed_by = NULL, fault_cleared_at = NULL,"
            " self_cleared = 0, callback_due = NULL, escalations = '[]', occurrences = occurrences + 1,"
            " last_occurrence_at = ? WHERE id = ?",
            (at, d.respond_by, d.arrive_by, d.resolve_by, at, t["id"]))
        self._log(db, t["id"], at, "reopen", by, why, data)
        ticket = self.get(t["id"])
        self._event(db, "ticket.reopened", ticket, at, why)
        return ticket

    # -- the sensor's word ----------------------------------------------------------------------
    def fault_cleared(self, subject: str, fault: str, at: float) -> dict[str, Any] | None:
        """The fault is gone: close a resolved ticket (verified), or mark one nobody acted on as self-cleared."""
        with self.transaction() as db:
            t = self.live(subject, fault)
            if t is None:
                return None
            db.execute("UPDATE tickets SET fault_cleared_at = ? WHERE id = ?", (at, t["id"]))
            if t["status"] == "resolved":
                return self._close(db, t, at, "sensor", "the sensor confirmed the repair")
            if t["status"] == "open":
                db.execute("UPDATE tickets SET self_cleared = 1 WHERE id = ?", (t["id"],))
                self._log(db, t["id"], at, "self_cleared", "sensor", "the fault cleared before anyone acted")
                if self.self_cleared == "auto":
                    return self._close(db, self.get(t["id"]), at, "sensor", "cleared by itself")
                ticket = self.get(t["id"])
                self._event(db, "ticket.self_cleared", ticket, at)
                return ticket
            self._log(db, t["id"], at, "fault_cleared", "sensor")
            return self.get(t["id"])

    def fault_persists(self, subject: str, fault: str, at: float) -> dict[str, Any] | None:
        """A resolved ticket whose fault is still read after the repair: reopened, counted as rework."""
        with self.transaction() as db:
            t = self.live(subject, fault)
            if t is None or t["status"] != "resolved":
                return None
            return self._reopen(db, t, at, "sensor", "the fault is still there after the repair", None)

    # -- people ---------------------------------------------------------------------------------
    def act(self, ticket_id: int, action: str, by: str, at: float, note: str = "",
            assignee: str | None = None) -> dict[str, Any]:
        if action not in ACTIONS:
            raise TicketError("invalid", f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
        allowed, to = ACTIONS[action]
        with self.transaction() as db:
            t = self.get(ticket_id)
            if t["status"] not in allowed or (action == "close" and t["status"] == "open" and not t["self_cleared"]):
                raise TicketError("conflict", f"ticket {ticket_id} is {t['status']}: cannot {action} it")
            other = self.live(t["subject"], t["fault"]) if action == "reopen" and t["subject"] else None
            if other is not None and other["id"] != ticket_id:
                raise TicketError("conflict", f"ticket {ticket_id}: a newer ticket for this fault is already open")
            if action == "close":
                return self._close(db, t, at, by, note or "closed")
            if action == "reopen":
                return self._reopen(db, t, at, by, note or "reopened by hand", None)
            if action == "assign":
                if not assignee:
                    raise TicketError("invalid", "assign needs an assignee")
                db.execute("UPDATE tickets SET assignee = ? WHERE id = ?", (assignee, ticket_id))
            else:
                column = {"acknowledged": "acknowledged", "on_site": "on_site", "resolved": "resolved",
                          "cancelled": "cancelled"}[to or ""]
                db.execute(f"UPDATE tickets SET status = ?, {column}_at = ?, {column}_by = ? WHERE id = ?",
                           (to, at, by, ticket_id))
                if action in ("arrive", "resolve") and t["acknowledged_at"] is None:  # acting answers the call
                    db.execute("UPDATE tickets SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
                               (at, by, ticket_id))
                if action in ("acknowledge", "arrive", "resolve") and t["assignee"] is None:  # 接单: it is his now
                    db.execute("UPDATE tickets SET assignee = ? WHERE id = ?", (by, ticket_id))
            self._log(db, ticket_id, at, action, by, note, {"assignee": assignee} if assignee else None)
            ticket = self.get(ticket_id)
            self._event(db, f"ticket.{action}", ticket, at, note)
            if action == "resolve" and t["fault_cleared_at"] is not None and t["subject"] is not None:
                return self._close(db, ticket, at, "sensor", "the sensor already reads healthy")
            return ticket

    def _close(self, db: sqlite3.Connection, t: dict[str, Any], at: float, by: str, note: str) -> dict[str, Any]:
        due = sla.callback_due(t["priority"], at, self.callbacks)
        db.execute("UPDATE tickets SET status = 'closed', closed_at = ?, closed_by = ?, callback_due = ? WHERE id = ?",
                   (at, by, due, t["id"]))
        self._log(db, t["id"], at, "close", by, note)
        ticket = self.get(t["id"])
        self._event(db, "ticket.closed", ticket, at, note)
        return ticket

    def add_callback(self, ticket_id: int, by: str, channel: str, score: int, note: str, at: float
                     ) -> dict[str, Any]:
        """A callback (回访) to the owner after the repair: channel, score 1-5 (5 很满意), note."""
        if not 1 <= score <= 5:
            raise TicketError("invalid", "score must be 1 (很不满意) to 5 (很满意)")
        with self.transaction() as db:
            t = self.get(ticket_id)
            if t["status"] != "closed":
                raise TicketError("conflict", f"ticket {ticket_id} is {t['status']}: callbacks follow a closed ticket")
            db.execute("INSERT INTO callbacks (ticket, at, by, channel, score, note) VALUES (?, ?, ?, ?, ?, ?)",
                       (ticket_id, at, by, channel, score, note))
            db.execute("UPDATE tickets SET called_back = 1 WHERE id = ?", (ticket_id,))
            self._log(db, ticket_id, at, "callback", by, note, {"channel": channel, "score": score})
            ticket = self.get(ticket_id)
            self._event(db, "callback.recorded", ticket, at, note)
            return ticket

    # -- clocks ---------------------------------------------------------------------------------
    def watch(self, now: float, at_risk: float = 0.8) -> int:
        """Escalate deadlines about to pass and passed, and overdue callbacks; returns events recorded."""
        n = 0
        with self.transaction() as db:
            for t in db.execute("SELECT * FROM tickets WHERE status IN ('open', 'acknowledged', 'on_site') AND "
                                "(respond_by IS NOT NULL OR arrive_by IS NOT NULL OR resolve_by IS NOT NULL)"
                                ).fetchall():
                clocks = {"respond": (t["clocks_from"], t["respond_by"], t["acknowledged_at"]),
                          "arrive": (t["clocks_from"], t["arrive_by"], t["on_site_at"]),
                          "resolve": (t["clocks_from"], t["resolve_by"], t["resolved_at"])}
                done = json.loads(t["escalations"])
                due = sla.due_escalations(clocks, frozenset((c, lv) for c, lv in done), now, at_risk)
                if not due:
                    continue
                done += [[e.clock, e.level] for e in due]
                db.execute("UPDATE tickets SET escalations = ? WHERE id = ?", (json.dumps(done), t["id"]))
                ticket = self._public({**t, "escalations": json.dumps(done)})
                for e in due:
                    self._log(db, t["id"], now, "escalate", "sla", f"{e.clock} {e.reason}",
                              {"clock": e.clock, "level": e.level})
                    self._event(db, "ticket.escalated", ticket, now, f"{e.clock} {e.reason}",
                                {"clock": e.clock, "level": e.level, "reason": e.reason,
                                 "to": "assignee" if e.level == 1 else "duty_manager"})
                    n += 1
            for t in db.execute("SELECT * FROM tickets INDEXED BY callbacks_waiting WHERE status = 'closed' AND "
                                "callback_due IS NOT NULL AND called_back = 0 AND callback_due < ? AND "
                                "callback_overdue = 0", (now,)).fetchall():
                db.execute("UPDATE tickets SET callback_overdue = 1 WHERE id = ?", (t["id"],))
                self._event(db, "callback.overdue", self._public(t), now)
                n += 1
        return n

    # -- the ledger -----------------------------------------------------------------------------
    def record_state(self, asset: str, at: float, state: str, faults: Sequence[str], cause: str,
                     device: str | None = None, reading_ts: float | None = None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO asset_states (asset, at, state, faults, cause, device, reading_ts) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (asset, at, state, ",".join(faults), cause, device, reading_ts))

    def current_states(self) -> dict[str, dict[str, Any]]:
        """Each asset's latest ledger entry."""
        with self._lock:
            rows = self.db.execute(
                "SELECT s.* FROM asset_states s JOIN (SELECT asset, max(id) AS id FROM asset_states GROUP BY asset) m "
                "ON s.id = m.id").fetchall()
        return {r["asset"]: r for r in rows}

    def state_history(self, asset: str, since: float | None = None, until: float | None = None,
                      limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            return self.db.execute(
                "SELECT at, state, faults, cause, device, reading_ts FROM asset_states WHERE asset = ? AND at >= ? "
                "AND at <= ? ORDER BY at, id LIMIT ?",
                (asset, since if since is not None else float("-inf"), until if until is not None else float("inf"),
                 limit)).fetchall()

    # -- events ---------------------------------------------------------------------------------
    def events_after(self, last_id: int, limit: int = 500) -> list[events.Event]:
        with self._lock:
            return events.after(self.db, last_id, limit)

    def newest_event_id(self) -> int:
        with self._lock:
            return events.newest_id(self.db)

    def event_cursor(self, relay: str) -> int | None:
        with self._lock:
            return events.cursor(self.db, relay)

    def save_event_cursor(self, relay: str, last_id: int) -> None:
        with self.transaction() as db:
            events.save_cursor(db, relay, last_id)

    # -- helpers --------------------------------------------------------------------------------
    def _log(self, db: sqlite3.Connection, ticket_id: int, at: float, action: str, by: str, note: str = "",
             data: Mapping[str, Any] | None = None) -> int:
        return db.execute("INSERT INTO ticket_log (ticket, at, action, by, note, data) VALUES (?, ?, ?, ?, ?, ?)",
                   (ticket_id, at, action, by, note, json.dumps(data or {}, ensure_ascii=False, default=str))
                          ).lastrowid or 0

    def _event(self, db: sqlite3.Connection, type_: str, t: Mapping[str, Any], at: float, note: str = "",
               extra: Mapping[str, Any] | None = None) -> None:
        title, text = describe(type_, t, note)
        data = {"ticket": {k: v for k, v in t.items() if k not in ("timeline", "callbacks")}, **(extra or {})}
        events.record(db, type_, at, title, text, data)

    def close(self) -> None:
        with self._lock:
            self.db.close()


_VERB_ZH = {"ticket.opened": "新工单", "ticket.reopened": "工单返修", "ticket.acknowledge": "工单已响应",
            "ticket.arrive": "维修人员已到场", "ticket.resolve": "工单已处理", "ticket.closed": "工单已关闭",
            "ticket.cancel": "工单已取消", "ticket.assign": "工单已指派", "ticket.escalated": "工单超时预警",
            "ticket.self_cleared": "故障已自行恢复", "callback.recorded": "回访已记录", "callback.overdue": "回访逾期"}


def describe(type_: str, t: Mapping[str, Any], note: str = "") -> tuple[str, str]:
    """A one-line title and a few lines of text, in Chinese (what the maintenance group reads)."""
    verb = _VERB_ZH.get(type_, type_)
    where = t.get("asset") or t.get("device") or ""
    title = f"{verb} #{t['id']}【{PRIORITY_ZH.get(t['priority'], t['priority'])}】{t['title']}"
    lines = [f"设施：{where}" if where else "", f"状态：{t['status']}", note]
    return title, "\n".join(line for line in lines if line)
