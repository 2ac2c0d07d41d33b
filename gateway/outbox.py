"""The durable outbox: readings waiting for InfluxDB, dead letters, and the keys of seen messages.

One SQLite file in WAL mode. The ingest thread commits a batch (outbox lines, seen
keys, dead letters) in one transaction and only then acknowledges the messages to
the broker; the forwarder thread reads the oldest lines, writes them to InfluxDB and
deletes them. Each thread has its own connection.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway import schema

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message, kept where a person can look at it."""

    at: float
    source: str
    device: str | None
    reason: str
    detail: str
    size: int
    payload: bytes


def connect(path: Path, synchronous: str = "full") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=30000")
    schema.tune(conn)  # the WAL's checkpoints and size: gateway/schema.py
    return conn


class Transactions:
    """``with store.transaction() as db``: one commit for everything inside, however deeply nested, under
    the store's lock; BEGIN IMMEDIATE, so a second writer waits for the lock instead of failing later."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db, self.lock, self.depth = db, lock, 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            if self.depth == 0:
                self.db.execute("BEGIN IMMEDIATE")
            self.depth += 1
            try:
                yield self.db
            except BaseException:
                self.depth -= 1
                if self.depth == 0:
                    self.db.execute("ROLLBACK")
                raise
            self.depth -= 1
            if self.depth == 0:
                self.db.execute("COMMIT")


class Outbox:
    def __init__(self, path: Path, max_bytes: int, synchronous: str = "full", dead_letter_keep: int = 100_000):
        self.path = path
        self.max_bytes = max_bytes
        self.dead_letter_keep = dead_letter_keep
        self._w = connect(path, synchronous)  # ingest thread
        self._r = connect(path, synchronous)  # forwarder thread
        self._q = connect(path, synchronous)  # readers (API, health)
        self._q_lock = threading.Lock()
        schema.migrate(self._w, schema.OUTBOX)  # its tables: gateway/schema.py
        count, size, oldest = self._w.execute(
            "SELECT count(*), coalesce(sum(length(line)), 0), min(at) FROM outbox"
        ).fetchone()
        self._lock = threading.Lock()
        self._count, self._bytes, self._oldest = count, size, oldest
        row = self._w.execute("SELECT count FROM outbox_drops").fetchone()
        self.dropped = row[0] if row else 0
        self.changed = threading.Condition()
        # (last rowid, receive time) of each committed batch of keys: pruning by rowid needs no index.
        self._seen_marks: deque[tuple[int, float]] = deque()
        self._seen_pruned = False

    # -- ingest side ---------------------------------------------------------------------------
    def commit(
        self,
        lines: Sequence[tuple[float, str]],
        seen: Sequence[tuple[str, int, float, float]],
        dead: Sequence[DeadLetter],
    ) -> None:
        """Make a batch durable in one transaction; returns only once it is on disk."""
        w = self._w
        w.execute("BEGIN IMMEDIATE")
        try:
            if lines:
                w.executemany("INSERT INTO outbox (at, line) VALUES (?, ?)", lines)
            if seen:
                w.executemany("INSERT INTO seen (device, seq, k, at) VALUES (?, ?, ?, ?)", seen)
                self._seen_marks.append((w.execute("SELECT max(rowid) FROM seen").fetchone()[0], seen[-1][3]))
            if dead:
                w.executemany(
                    "INSERT INTO dead_letters (at, source, device, reason, detail, size, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(d.at, d.source, d.device, d.reason, d.detail, d.size, d.payload) for d in dead],
                )
                counts: dict[str, int] = {}
                for d in dead:
                    counts[d.reason] = counts.get(d.reason, 0) + 1
                w.executemany(
                    "INSERT INTO dead_letter_counts (reason, count) VALUES (?, ?)"
                    " ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count",
                    counts.items(),
                )
            w.execute("COMMIT")
        except BaseException:
            w.execute("ROLLBACK")
            raise
        if lines:
            added = sum(len(line) for _, line in lines)
            with self._lock:
                self._count += len(lines)
                self._bytes += added
                if self._oldest is None:
                    self._oldest = lines[0][0]
                over = self._bytes > self.max_bytes
            if over:
                self._drop_oldest()
            with self.changed:
                self.changed.notify_all()

    def _drop_oldest(self) -> None:
        """Past the bound, the oldest readings go (counted, logged), never the gateway."""
        target = int(self.max_bytes * 0.9)
        w = self._w
        freed = 0
        last_id = None
        with self._lock:
            excess = self._bytes - target
        for row_id, size in w.execute("SELECT id, length(line) FROM outbox ORDER BY id"):
            if freed >= excess:
                break
            freed += size
            last_id = row_id
        if last_id is None:
            return
        w.execute("BEGIN IMMEDIATE")
        deleted = w.execute("DELETE FROM outbox WHERE id <= ?", (last_id,)).rowcount
        w.execute(
            "INSERT INTO outbox_drops (id, count) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET count = count + ?",
            (deleted, deleted),
        )
        w.execute("COMMIT")
        self.dropped += deleted
        self._recount()
        _LOGGER.warning(
            "outbox over its bound of %.1f MB: dropped the %d oldest readings (%d dropped since start of records)",
            self.max_bytes / 1e6, deleted, self.dropped,
        )

    def load_seen(self, since: float) -> Iterable[tuple[str, int, float, float]]:
        return self._w.execute("SELECT device, seq, k, at FROM seen WHERE at >= ? ORDER BY rowid", (since,))

    def prune(self, seen_before: float) -> None:
        """Forget expired message keys and the oldest dead letters beyond the kept number."""
        w = self._w
        if not self._seen_pruned:  # once per start: a full scan for what expired while stopped
            w.execute("DELETE FROM seen WHERE at < ?", (seen_before,))
            self._seen_pruned = True
        last = None
        marks = self._seen_marks
        while marks and marks[0][1] < seen_before:
            last = marks.popleft()[0]
        if last is not None:
            w.execute("DELETE FROM seen WHERE rowid <= ?", (last,))
        w.execute(
            "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?",
            (self.dead_letter_keep,),
        )

    # -- forwarder side ------------------------------------------------------------------------
    def peek(self, limit: int) -> list[tuple[int, float, str]]:
        """The oldest lines, in order."""
        return self._r.execute("SELECT id, at, line FROM outbox ORDER BY id LIMIT ?", (limit,)).fetchall()

    def delete_upto(self, last_id: int, count: int, size: int) -> None:
        """Forget lines InfluxDB has taken; ``count`` and ``size`` are what was peeked."""
        r = self._r
        deleted = r.execute("DELETE FROM outbox WHERE id <= ?", (last_id,)).rowcount
        if deleted != count:  # the bound dropped some of them meanwhile: count afresh
            self._recount(r)
            return
        row = r.execute("SELECT at FROM outbox ORDER BY id LIMIT 1").fetchone()
        with self._lock:
            self._count -= count
            self._bytes -= size
            self._oldest = row[0] if row else None

    def reject_batch(self, last_id: int, dead: DeadLetter) -> None:
        """InfluxDB refused these lines for good: keep the reason, stop retrying them."""
        r = self._r
        r.execute("BEGIN IMMEDIATE")
        r.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
        r.execute(
            "INSERT INTO dead_letters (at, source, device, reason, detail, size, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (dead.at, dead.source, dead.device, dead.reason, dead.detail, dead.size, dead.payload),
        )
        r.execute(
            "INSERT INTO dead_letter_counts (reason, count) VALUES (?, 1)"
            " ON CONFLICT (reason) DO UPDATE SET count = count + 1",
            (dead.reason,),
        )
        r.execute("COMMIT")
        self._recount(r)

    def _recount(self, conn: sqlite3.Connection | None = None) -> None:
        conn = conn or self._w
        count, size, oldest = conn.execute(
            "SELECT count(*), coalesce(sum(length(line)), 0), min(at) FROM outbox"
        ).fetchone()
        with self._lock:
            self._count, self._bytes, self._oldest = count, size, oldest

    def wait(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)

    # -- readers -------------------------------------------------------------------------------
    def depth(self) -> tuple[int, int, float | None]:
        """(readings waiting, their bytes, receive time of the oldest)."""
        with self._lock:
            return self._count, self._bytes, self._oldest

    def dead_letter_counts(self) -> dict[str, int]:
        with self._q_lock:
            return dict(self._q.execute("SELECT reason, count FROM dead_letter_counts ORDER BY reason"))

    def dead_letters(
        self, reason: str | None = None, device: str | None = None, limit: int = 50, before_id: int | None = None
    ) -> list[dict[str, object]]:
        sql = "SELECT id, at, source, device, reason, detail, size, payload FROM dead_letters WHERE 1=1"
        args: list[object] = []
        if reason:
            sql += " AND reason = ?"
            args.append(reason)
        if device:
            sql += " AND device = ?"
            args.append(device)
        if before_id:
            sql += " AND id < ?"
            args.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._q_lock:
            rows = self._q.execute(sql, args).fetchall()
        keys = ("id", "at", "source", "device", "reason", "detail", "size", "payload")
        out = []
        for row in rows:
            d = dict(zip(keys, row, strict=True))
            d["payload"] = bytes(d["payload"]).decode("utf-8", errors="replace")
            out.append(d)
        return out

    def close(self) -> None:
        for conn in (self._w, self._r, self._q):
            conn.close()

