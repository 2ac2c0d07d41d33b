"""Every tap, kept: who tapped which tag where and when, and the tags nobody knows.

An unknown tag is never dropped: it is recorded and listed, so a manager can add the
checkpoint it belongs to (a new sticker on a wall, a replaced extinguisher).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import schema
from gateway.inspections.model import GuardModel, ReaderModel
from gateway.outbox import connect


@dataclass(frozen=True, slots=True)
class TapRecord:
    """A tap as the patrol engine sees it: resolved to a checkpoint (or not) and to a guard (or not)."""

    id: int
    at: float
    reader: str
    tag: str
    checkpoint: str | None
    guard: str | None
    badge: str | None


def guard_of(badge: str | None, reader: str, guards: Mapping[str, GuardModel],
             readers: Mapping[str, ReaderModel], user: str | None = None) -> str | None:
    """Who tapped: the badge's guard, else the guard carrying the reader, else the phone's logged-in user."""
    if badge:
        for g in guards.values():
            if g.badge and g.badge.upper() == badge.upper():
                return g.id
    r = readers.get(reader)
    if r is not None and r.guard:
        return r.guard
    return user


class TapLog:
    """Its own connection to the gateway's database: written by the ingest thread, read by the API."""

    def __init__(self, path: Path, synchronous: str = "full") -> None:
        self.db = connect(path, synchronous)
        schema.migrate(self.db, schema.GATEWAY)  # its tables: gateway/schema.py
        self._lock = threading.Lock()

    def record(self, at: float, reader: str, tag: str, checkpoint: str | None, guard: str | None,
               badge: str | None, source: str) -> TapRecord:
        with self._lock:
            self.db.execute("BEGIN")
            cur = self.db.execute(
                "INSERT INTO taps (at, reader, tag, checkpoint, guard, badge, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at, reader, tag, checkpoint, guard, badge, source))
            if checkpoint is None:
                self.db.execute(
                    "INSERT INTO unknown_tags (tag, first_at, last_at, taps, last_reader) VALUES (?, ?, ?, 1, ?) "
                    "ON CONFLICT (tag) DO UPDATE SET last_at = max(last_at, excluded.last_at), taps = taps + 1, "
                    "last_reader = excluded.last_reader", (tag, at, at, reader))
            self.db.execute("COMMIT")
        return TapRecord(int(cur.lastrowid or 0), at, reader, tag, checkpoint, guard, badge)

    def flag(self, tap_id: int, reason: str) -> None:
        with self._lock:
            self.db.execute("UPDATE taps SET flagged = ? WHERE id = ?", (reason, tap_id))

    def accept(self, tap_id: int, by: str) -> dict[str, Any] | None:
        """A manager accepts a flagged tap: it counts as a visit from now on."""
        with self._lock:
            cur = self.db.execute("UPDATE taps SET accepted_by = ? WHERE id = ? AND flagged IS NOT NULL", (by, tap_id))
            if not cur.rowcount:
                return None
        return self.get(tap_id)

    def get(self, tap_id: int) -> dict[str, Any] | None:
        rows = self._select("WHERE id = ?", (tap_id,), 1, 0)
        return rows[0] if rows else None

    def list(self, *, since: float | None = None, until: float | None = None, guard: str | None = None,
             checkpoint: str | None = None, flagged: bool | None = None, limit: int = 100,
             offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        where, args = ["at >= ?", "at < ?"], [float("-inf") if since is None else since,
                                               float("inf") if until is None else until]
        for column, value in (("guard", guard), ("checkpoint", checkpoint)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if flagged is not None:
            where.append("flagged IS NOT NULL" if flagged else "flagged IS NULL")
        sql = "WHERE " + " AND ".join(where)
        with self._lock:
            total = self.db.execute(f"SELECT count(*) FROM taps {sql}", args).fetchone()[0]
        return self._select(sql + " ORDER BY at DESC, id DESC", args, limit, offset), total

    def _select(self, sql: str, args: Any, limit: int, offset: int) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(f"SELECT id, at, reader, tag, checkpoint, guard, badge, source, flagged, accepted_by "
                                  f"FROM taps {sql} LIMIT ? OFFSET ?", (*args, limit, offset))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def unknown_tags(self, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            total = self.db.execute("SELECT count(*) FROM unknown_tags").fetchone()[0]
            cur = self.db.execute("SELECT tag, first_at, last_at, taps, last_reader FROM unknown_tags "
                                  "ORDER BY last_at DESC LIMIT ? OFFSET ?", (limit, offset))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()], total

    def forget_unknown(self, tag: str) -> None:
        """The tag now belongs to a checkpoint."""
        with self._lock:
            self.db.execute("DELETE FROM unknown_tags WHERE tag = ?", (tag,))

    def close(self) -> None:
        with self._lock:
            self.db.close()
