"""The device registry: every device seen, its kind, last reading, and whether it is alive.

A device is ``online`` while it reports; ``offline`` when its status topic (or its last
will) says so, or when it has been silent past its kind's heartbeat times the allowed
misses. Records live in memory for the hot path and are flushed to SQLite every few
seconds, so a restart keeps first/last seen and counts.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gateway import schema
from gateway.outbox import connect

_LOGGER = logging.getLogger(__name__)


@dataclass
class DeviceRecord:
    device: str
    kind: str
    first_seen: float
    last_seen: float
    last_ts: float | None = None
    last_fields: dict[str, float | bool] = field(default_factory=dict)
    online: bool = True
    offline_reason: str | None = None  # "status" (it said so / last will) or "silent"
    status_at: float = 0.0
    readings: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class Transition:
    """A device went online or offline; the tickets issue turns these into asset states."""

    device: str
    kind: str
    online: bool
    reason: str | None
    at: float


class DeviceRegistry:
    def __init__(self, path: Path, heartbeat_s: Mapping[str, float], misses: int, synchronous: str = "full") -> None:
        # "normal" only where the database can be recomputed (a replay): it skips the fsync per commit.
        self._db: sqlite3.Connection = connect(path, synchronous)
        schema.migrate(self._db, schema.GATEWAY)  # its table: gateway/schema.py
        self.heartbeat_s = dict(heartbeat_s)
        #: Devices with a heartbeat of their own, over their kind's: a polled Modbus device reports every poll.
        self.device_heartbeat_s: dict[str, float] = {}
        self.misses = misses
        self.lock = threading.Lock()
        self._records: dict[str, DeviceRecord] = {}
        self._dirty: set[str] = set()
        for row in self._db.execute(
            "SELECT device, kind, first_seen, last_seen, last_ts, last_fields, online, offline_reason,"
            " status_at, readings, rejected FROM devices"
        ):
            rec = DeviceRecord(*row)
            rec.last_fields = json.loads(row[5]) if row[5] else {}
            rec.online = bool(row[6])
            self._records[rec.device] = rec

    def newest_ts(self) -> dict[str, float]:
        return {d: r.last_ts for d, r in self._records.items() if r.last_ts is not None}

    def _record(self, device: str, kind: str, now: float) -> DeviceRecord:
        rec = self._records.get(device)
        if rec is None:
            rec = self._records[device] = DeviceRecord(device, kind, now, now, status_at=now)
            _LOGGER.info("new device %s (%s)", device, kind)
        rec.kind = kind
        self._dirty.add(device)
        return rec

    # The three calls below are made by the ingest thread with ``lock`` held. ``last_seen`` only moves
    # forward: a batch is accounted readings first, then statuses, then rejections, so an earlier
    # rejected message must not make a device that reported since look silent to the sweep.
    def saw_reading(
        self, device: str, kind: str, ts: float, fields: Mapping[str, float | bool], late: bool, now: float
    ) -> Transition | None:
        rec = self._record(device, kind, now)
        rec.last_seen = max(rec.last_seen, now)
        rec.readings += 1
        if not late:
            rec.last_ts = ts
            rec.last_fields = fields  # type: ignore[assignment]  # readings' fields are never mutated
        if not rec.online:
            rec.online, rec.offline_reason, rec.status_at = True, None, now
            return Transition(device, kind, True, "reading", now)
        return None

    def saw_status(self, device: str, kind: str, online: bool, now: float) -> Transition | None:
        rec = self._record(device, kind, now)
        rec.last_seen = max(rec.last_seen, now)
        if rec.online == online and (online or rec.offline_reason == "status"):
            return None
        rec.online, rec.offline_reason, rec.status_at = online, None if online else "status", now
        return Transition(device, kind, online, "status", now)

    def saw_rejection(self, device: str, kind: str, now: float) -> None:
        rec = self._record(device, kind, now)
        rec.last_seen = max(rec.last_seen, now)
        rec.rejected += 1

    def sweep(self, now: float, since: float = 0.0) -> list[Transition]:
        """Devices silent past their heartbeat go offline (reason ``silent``). Silence is counted from
        ``since`` at most: after the clock was set right, a reading received on the wrong clock is not years old."""
        out = []
        with self.lock:
            for rec in self._records.values():
                if not rec.online:
                    continue
                beat = self.device_heartbeat_s.get(rec.device) or self.heartbeat_s.get(rec.kind, 3600.0)
                limit = beat * self.misses
                if now - max(rec.last_seen, since) > limit:
                    rec.online, rec.offline_reason, rec.status_at = False, "silent", now
                    self._dirty.add(rec.device)
                    out.append(Transition(rec.device, rec.kind, False, "silent", now))
                    _LOGGER.warning(
                        "device %s (%s) silent for %.0f s, past %d missed heartbeats: offline",
                        rec.device, rec.kind, now - rec.last_seen, self.misses, extra={"device": rec.device},
                    )
        return out

    def flush(self) -> None:
        with self.lock:
            rows = [
                (r.device, r.kind, r.first_seen, r.last_seen, r.last_ts, json.dumps(r.last_fields), int(r.online),
                 r.offline_reason, r.status_at, r.readings, r.rejected)
                for r in (self._records[d] for d in self._dirty)
            ]
            self._dirty.clear()
        if rows:  # one transaction: in autocommit mode each row would be a commit (and an fsync) of its own
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def online(self) -> dict[str, bool]:
        with self.lock:
            return {r.device: r.online for r in self._records.values()}

    def snapshot(self) -> list[dict[str, object]]:
        return self.select(lambda _r: True, 0, None)[0]

    def select(self, keep: Callable[[DeviceRecord], bool], offset: int, limit: int | None
               ) -> tuple[list[dict[str, object]], int]:
        """A page of the devices ``keep`` keeps, by id, and how many it keeps: only the page is copied
        (10,000 devices copied whole took a tenth of a second)."""
        with self.lock:
            found = [r for r in sorted(self._records.values(), key=lambda r: r.device) if keep(r)]
            page = found[offset:None if limit is None else offset + limit]
            return [asdict(r) for r in page], len(found)

    def get(self, device: str) -> dict[str, object] | None:
        with self.lock:
            rec = self._records.get(device)
            return asdict(rec) if rec else None

    def close(self) -> None:
        self.flush()
        self._db.close()
