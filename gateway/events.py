"""Events (事件): every ticket and asset-state change, recorded in the same SQLite
transaction as the change itself, then relayed to MQTT, webhooks and the live stream.

Recording them in the transaction (an outbox of events) means a crash can never leave
a ticket opened without its notification, nor a notification for a ticket that is not
there; each relay keeps its own cursor over the increasing ids.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    id: int  # increasing: what every relay's cursor tracks
    type: str  # ticket.opened, ticket.escalated, ticket.closed, asset.state, fire.alarm, ...
    at: float
    title: str  # one line in the site's language (Chinese by default)
    text: str
    data: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "at": self.at, "title": self.title, "text": self.text,
                "data": dict(self.data)}


def record(db: sqlite3.Connection, type_: str, at: float, title: str, text: str, data: Mapping[str, Any]) -> int:
    """Add an event inside the caller's transaction; its id once committed."""
    cur = db.execute("INSERT INTO events (at, type, title, text, data) VALUES (?, ?, ?, ?, ?)",
                     (at, type_, title, text, json.dumps(data, ensure_ascii=False, default=str)))
    return int(cur.lastrowid or 0)


def _plain(db: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor giving plain tuples, whatever the connection's row factory."""
    cur = db.cursor()
    cur.row_factory = None
    return cur


def after(db: sqlite3.Connection, last_id: int, limit: int = 500) -> list[Event]:
    rows = _plain(db).execute("SELECT id, type, at, title, text, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                      (last_id, limit)).fetchall()
    return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]


def newest_id(db: sqlite3.Connection) -> int:
    return int(_plain(db).execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


def cursor(db: sqlite3.Connection, relay: str) -> int | None:
    row = _plain(db).execute("SELECT last_id FROM event_cursors WHERE relay = ?", (relay,)).fetchone()
    return None if row is None else int(row[0])


def save_cursor(db: sqlite3.Connection, relay: str, last_id: int) -> None:
    db.execute("INSERT INTO event_cursors (relay, last_id) VALUES (?, ?) "
               "ON CONFLICT (relay) DO UPDATE SET last_id = excluded.last_id", (relay, last_id))
