"""The gateway's two SQLite files and their schema: one version each, raised by ordered migrations.

Each file carries its schema version in ``PRAGMA user_version``. :func:`migrate` brings a
database up to the version this code knows, in one transaction (SQLite DDL is
transactional, so a failed or interrupted migration leaves the file as it was), and
refuses a database a newer gateway wrote: running older code on it would misread it,
and an upgrade is never undone by a downgrade.

Version 0 is a database made before versions existed (every commit up to the one that
added this module): its stores made their tables with ``CREATE TABLE IF NOT EXISTS``
as they opened. The first migrations (gateway.db 1–7, outbox.db 1–2) are those earlier
schemas, reconstructed from git (``tests/schema_versions/README.md``); they are written
to be no-ops on what a database already has (``IF NOT EXISTS``, a column added only when
missing), so an unversioned database runs them all and keeps every row. Migrations after
them run only on versioned databases and need no such care.

Every store calls :func:`migrate` on the connection it opens (a no-op once the version
is current); :func:`migrate_data_dir` does it for both files at start-up, before any
store opens, and logs what it did.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.problems import Problems

_LOGGER = logging.getLogger(__name__)

#: SQLite's default (1000 pages of 4 KiB: about 4 MB of WAL between two checkpoints), set explicitly so
#: the policy is visible. Checkpoints copy each page changed since the last one once into the database,
#: so larger intervals would save little on an SD card: the WAL writes of every commit dominate, and
#: those are already batched (the outbox commits a batch of readings at a time).
WAL_AUTOCHECKPOINT_PAGES = 1000
#: After a checkpoint that empties the WAL, SQLite cuts the file back to this size. The WAL is reused
#: from its start (no file growth, no extra metadata writes) while it stays under it; one that grew
#: during an InfluxDB outage or under a long reader does not keep its size on the card forever.
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024

Step = str | Callable[[sqlite3.Connection], None]


class SchemaError(Problems):
    """A database this code cannot use as it is."""


@dataclass(frozen=True)
class Migration:
    version: int
    why: str  # what it brings, and the commit that first made it
    steps: tuple[Step, ...]
    #: Tables (``name``) and columns (``table.column``) a database has once at this version: how an
    #: unversioned database is recognised (for the log; it runs every migration anyway).
    marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Database:
    name: str  # its file name in the data folder
    migrations: tuple[Migration, ...]

    @property
    def version(self) -> int:
        return len(self.migrations)


def tune(conn: sqlite3.Connection) -> None:
    """Per-connection settings that spare an SD card (see :data:`JOURNAL_SIZE_LIMIT`); WAL mode and
    ``synchronous`` are set by the callers, which know how durable their writes must be."""
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")


# -- helpers of the migrations ---------------------------------------------------------------------


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def _objects(db: sqlite3.Connection) -> set[str]:
    """Tables and indexes, and ``table.column`` for every column: what :class:`Migration` marks name."""
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return names | {f"{t}.{c}" for t in tables for c in _columns(db, t)}


def _rebuild(db: sqlite3.Connection, table: str, create: str, fill: Mapping[str, str],
             derived: frozenset[str] = frozenset(), indexes: tuple[str, ...] = ()) -> None:
    """SQLite's way to add a ``NOT NULL`` column without a constant default: a new table made by
    ``create`` (``CREATE TABLE <table> ...``), every row copied with the new columns computed by ``fill``
    (SQL over the old row), the old one dropped and the new renamed; then its ``indexes`` again. A
    column of the old table the new one lacks would be lost: refused, unless it is ``derived`` (a
    later migration computes it again)."""
    old = _columns(db, table)
    new = _columns_of(create)
    lost = [c for c in old if c not in new and c not in derived]
    if lost:
        raise SchemaError([f"table {table}: migrating would lose column(s) {', '.join(lost)}"])
    kept = [c for c in new if c in old]
    added = [c for c in new if c not in old]
    db.execute(create.replace(f"CREATE TABLE {table} ", f"CREATE TABLE {table}_new ", 1))
    db.execute(f"INSERT INTO {table}_new ({', '.join(kept + added)}) "
               f"SELECT {', '.join(kept + [fill[c] for c in added])} FROM {table}")
    db.execute(f"DROP TABLE {table}")
    db.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
    for sql in indexes:
        db.execute(sql)


def _columns_of(create: str) -> list[str]:
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute(create)
        table = create.split()[2]
        return _columns(probe, table)
    finally:
        probe.close()


# -- gateway.db ------------------------------------------------------------------------------------

_ONE_LIVE_TICKET = ("CREATE UNIQUE INDEX IF NOT EXISTS one_live_ticket ON tickets (subject, fault) "
                    "WHERE subject IS NOT NULL AND status NOT IN ('closed', 'cancelled')")
_TICKETS_STATUS = "CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status, opened_at)"

_TICKETS_V3 = """CREATE TABLE tickets (
    id INTEGER PRIMARY KEY, subject TEXT, asset TEXT, device TEXT, category TEXT, fault TEXT NOT NULL,
    priority TEXT NOT NULL, status TEXT NOT NULL, title TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL, opened_at REAL NOT NULL, opened_by TEXT NOT NULL, clocks_from REAL NOT NULL,
    respond_by REAL, arrive_by REAL, resolve_by REAL,
    acknowledged_at REAL, acknowledged_by TEXT, on_site_at REAL, on_site_by TEXT,
    resolved_at REAL, resolved_by TEXT, closed_at REAL, closed_by TEXT, cancelled_at REAL, cancelled_by TEXT,
    assignee TEXT, occurrences INTEGER NOT NULL DEFAULT 1, last_occurrence_at REAL NOT NULL,
    fault_cleared_at REAL, self_cleared INTEGER NOT NULL DEFAULT 0, reworks INTEGER NOT NULL DEFAULT 0,
    callback_due REAL, escalations TEXT NOT NULL DEFAULT '[]', callback_overdue INTEGER NOT NULL DEFAULT 0)"""


def _tickets_clocks_from(db: sqlite3.Connection) -> None:
    """9047ee5 added ``clocks_from`` (when the SLA clocks last started) to the table's DDL only, so a
    database from before it could not open tickets. Its value: the last reopening (rework restarted the
    clocks then), else the opening. ``called_back`` (a database of 39d8217 opened by 61f1b34's code) is
    dropped here and computed again from the callbacks by migration 7."""
    if "clocks_from" in _columns(db, "tickets"):
        return
    _rebuild(db, "tickets", _TICKETS_V3,
             {"clocks_from": "coalesce((SELECT max(l.at) FROM ticket_log l WHERE l.ticket = tickets.id "
                             "AND l.action = 'reopen'), opened_at)"},
             derived=frozenset({"called_back"}), indexes=(_ONE_LIVE_TICKET, _TICKETS_STATUS))


def _tickets_called_back(db: sqlite3.Connection) -> None:
    """61f1b34's flag of a ticket whose callback was made, set from the callbacks already recorded (what
    ``TicketStore._upgrade`` did at each open until this module replaced it)."""
    if "called_back" in _columns(db, "tickets"):
        return
    db.execute("ALTER TABLE tickets ADD COLUMN called_back INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE tickets SET called_back = 1 WHERE EXISTS "
               "(SELECT 1 FROM callbacks c WHERE c.ticket = tickets.id)")


GATEWAY = Database("gateway.db", (
    Migration(1, "the device registry (aad0b54)", (
        """CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, kind TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    last_ts REAL, last_fields TEXT, online INTEGER NOT NULL, offline_reason TEXT, status_at REAL NOT NULL,
    readings INTEGER NOT NULL, rejected INTEGER NOT NULL)""",
    ), ("devices",)),
    Migration(2, "tickets, the asset ledger and events (39d8217)", (
        """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, type TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    data TEXT NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS event_cursors (relay TEXT PRIMARY KEY, last_id INTEGER NOT NULL)",
        _TICKETS_V3.replace("CREATE TABLE tickets", "CREATE TABLE IF NOT EXISTS tickets")
                   .replace(" clocks_from REAL NOT NULL,", ""),
        _ONE_LIVE_TICKET,
        _TICKETS_STATUS,
        """CREATE TABLE IF NOT EXISTS ticket_log (
    id INTEGER PRIMARY KEY, ticket INTEGER NOT NULL, at REAL NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX IF NOT EXISTS ticket_log_ticket ON ticket_log (ticket, id)",
        """CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY, ticket INTEGER NOT NULL, at REAL NOT NULL, by TEXT NOT NULL, channel TEXT NOT NULL,
    score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5), note TEXT NOT NULL DEFAULT '')""",
        """CREATE TABLE IF NOT EXISTS asset_states (
    id INTEGER PRIMARY KEY, asset TEXT NOT NULL, at REAL NOT NULL, state TEXT NOT NULL, faults TEXT NOT NULL,
    cause TEXT NOT NULL, device TEXT, reading_ts REAL)""",
        "CREATE INDEX IF NOT EXISTS asset_states_asset ON asset_states (asset, at)",
    ), ("events", "event_cursors", "tickets", "ticket_log", "callbacks", "asset_states")),
    Migration(3, "webhook cursors and deliveries, tickets' clocks_from (9047ee5)", (
        "CREATE TABLE IF NOT EXISTS webhook_cursors (hook TEXT PRIMARY KEY, last_id INTEGER NOT NULL)",
        """CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY, hook TEXT NOT NULL, event_id INTEGER NOT NULL, at REAL NOT NULL,
    attempt INTEGER NOT NULL, ok INTEGER NOT NULL, status INTEGER, reason TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS webhook_deliveries_hook ON webhook_deliveries (hook, id)",
        _tickets_clocks_from,
    ), ("webhook_cursors", "webhook_deliveries", "tickets.clocks_from")),
    Migration(4, "frozen monthly commitment figures (539a0d4)", (
        "CREATE TABLE IF NOT EXISTS commitment_months "
        "(month TEXT PRIMARY KEY, frozen_at REAL NOT NULL, report TEXT NOT NULL)",
    ), ("commitment_months",)),
    Migration(5, "taps, patrol visits, inspections, checkpoint edits (eabd1e2)", (
        """CREATE TABLE IF NOT EXISTS checkpoint_edits (
    id TEXT PRIMARY KEY, doc TEXT, deleted INTEGER NOT NULL DEFAULT 0, at REAL NOT NULL, by TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS patrol_visits (
    round TEXT NOT NULL, route TEXT NOT NULL, due_at REAL NOT NULL, checkpoint TEXT NOT NULL, seq INTEGER NOT NULL,
    expected_at REAL NOT NULL, at REAL, status TEXT NOT NULL, guard TEXT, flag TEXT,
    PRIMARY KEY (round, seq))""",
        "CREATE INDEX IF NOT EXISTS patrol_visits_due ON patrol_visits (due_at)",
        """CREATE TABLE IF NOT EXISTS inspections (
    id INTEGER PRIMARY KEY, asset TEXT NOT NULL, plan TEXT NOT NULL, at REAL NOT NULL, by TEXT NOT NULL,
    tag_at REAL, results TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', photos TEXT NOT NULL DEFAULT '[]',
    failed TEXT NOT NULL DEFAULT '', applied INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX IF NOT EXISTS inspections_asset ON inspections (asset, plan, at)",
        "CREATE INDEX IF NOT EXISTS inspections_at ON inspections (at)",
        "CREATE INDEX IF NOT EXISTS inspections_pending ON inspections (applied) WHERE applied = 0",
        """CREATE TABLE IF NOT EXISTS inspection_overdue (
    asset TEXT NOT NULL, plan TEXT NOT NULL, due_at REAL NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (asset, plan, due_at))""",
        """CREATE TABLE IF NOT EXISTS taps (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, reader TEXT NOT NULL, tag TEXT NOT NULL, checkpoint TEXT,
    guard TEXT, badge TEXT, source TEXT NOT NULL, flagged TEXT, accepted_by TEXT)""",
        "CREATE INDEX IF NOT EXISTS taps_at ON taps (at)",
        """CREATE TABLE IF NOT EXISTS unknown_tags (
    tag TEXT PRIMARY KEY, first_at REAL NOT NULL, last_at REAL NOT NULL, taps INTEGER NOT NULL,
    last_reader TEXT NOT NULL)""",
    ), ("checkpoint_edits", "patrol_visits", "inspections", "inspection_overdue", "taps", "unknown_tags")),
    Migration(6, "users and tokens (42712a3)", (
        """CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE COLLATE NOCASE, role TEXT NOT NULL,
    password TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, must_change INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, lockouts INTEGER NOT NULL DEFAULT 0, locked_until REAL,
    created_at REAL NOT NULL, created_by TEXT NOT NULL, last_login REAL, password_changed_at REAL)""",
        """CREATE TABLE IF NOT EXISTS auth_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, name TEXT NOT NULL,
    user_id INTEGER, device TEXT, created_at REAL NOT NULL, created_by TEXT NOT NULL, last_used REAL,
    expires_at REAL, revoked_at REAL, revoked_by TEXT)""",
        "CREATE INDEX IF NOT EXISTS auth_tokens_user ON auth_tokens (user_id)",
    ), ("users", "auth_tokens")),
    Migration(7, "tickets' called_back and the callbacks indexes (61f1b34)", (
        _tickets_called_back,
        "CREATE INDEX IF NOT EXISTS callbacks_ticket ON callbacks (ticket)",
        "CREATE INDEX IF NOT EXISTS callbacks_waiting ON tickets (callback_due, id) "
        "WHERE status = 'closed' AND callback_due IS NOT NULL AND called_back = 0",
    ), ("tickets.called_back", "callbacks_ticket", "callbacks_waiting")),
))

# -- outbox.db -------------------------------------------------------------------------------------

OUTBOX = Database("outbox.db", (
    Migration(1, "outbox, seen keys, dead letters (aad0b54, which also indexed seen by time)", (
        "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, at REAL NOT NULL, line TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS seen (device TEXT NOT NULL, seq INTEGER NOT NULL, k REAL NOT NULL, "
        "at REAL NOT NULL)",
        """CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, device TEXT,
    reason TEXT NOT NULL, detail TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason, id)",
        "CREATE TABLE IF NOT EXISTS dead_letter_counts (reason TEXT PRIMARY KEY, count INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS outbox_drops (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL)",
    ), ("outbox", "seen", "dead_letters", "dead_letter_counts", "outbox_drops")),
    # 600e0b0 prunes seen keys by rowid and stopped making the index, but never dropped it: every
    # seen key of an older outbox still cost an index write.
    Migration(2, "no seen_at index (600e0b0)", ("DROP INDEX IF EXISTS seen_at",)),
))

DATABASES = (GATEWAY, OUTBOX)


# -- running them ----------------------------------------------------------------------------------


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def detect(conn: sqlite3.Connection, db: Database) -> int:
    """The version an unversioned database looks like: the last of an unbroken run of migrations whose
    marks it has (a migration without marks ends the run). Only said in the log: it runs them all."""
    have = _objects(conn)
    found = 0
    for m in db.migrations:
        if not m.marks or not all(mark in have for mark in m.marks):
            break
        found = m.version
    return found


def migrate(conn: sqlite3.Connection, db: Database, where: str = "") -> tuple[int, int]:
    """Bring ``conn``'s database to ``db.version`` in one transaction; (version before, after).

    Raises :class:`SchemaError` for a database newer than this code. ``conn`` must be in autocommit
    mode (``isolation_level=None``, as :func:`gateway.outbox.connect` opens them) and outside a
    transaction; the version is read again inside the write lock, so stores opening at once migrate once.
    """
    where = where or db.name
    if conn.in_transaction:
        raise ValueError("migrate() needs a connection outside a transaction")
    factory, conn.row_factory = conn.row_factory, None  # whatever the store set: plain tuples here
    try:
        before = version(conn)
        if before == db.version:
            return before, before
        conn.execute("BEGIN IMMEDIATE")
        try:
            before, empty, looks = _run(conn, db, where)
            conn.execute("COMMIT")
        except (sqlite3.Error, SchemaError) as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, SchemaError):
                raise
            raise SchemaError([f"{where}: migrating from version {before} failed, nothing was changed: {exc}"]
                              ) from exc
    finally:
        conn.row_factory = factory
    if before == db.version:  # another connection migrated it while this one waited for the lock
        return before, before
    if empty:
        _LOGGER.info("%s: new database, schema version %d", where, db.version)
    elif before == 0:
        _LOGGER.warning("%s: had no schema version (made before versions; its tables are those of version %d); "
                        "migrated to %d: %s", where, looks, db.version,
                        "; ".join(f"{m.version} {m.why}" for m in db.migrations[looks:]) or "nothing to change")
    else:
        _LOGGER.warning("%s: migrated from schema version %d to %d: %s", where, before, db.version,
                        "; ".join(f"{m.version} {m.why}" for m in db.migrations[before:]))
    return before, db.version


def _run(conn: sqlite3.Connection, db: Database, where: str) -> tuple[int, bool, int]:
    """The migrations still to run, inside the caller's transaction: (version before, was it empty, the
    version it looked like)."""
    before = version(conn)  # again, now under the write lock: another connection may have migrated it
    if before > db.version:
        raise SchemaError([
            f"{where}: schema version {before} is newer than this gateway knows ({db.version}): a newer "
            f"gateway wrote it. Run that version again, or restore a backup made before the upgrade; the "
            f"database was left as it is"])
    empty = before == 0 and not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
    looks = detect(conn, db) if before == 0 and not empty else before
    for m in db.migrations[before:]:
        for step in m.steps:
            if isinstance(step, str):
                conn.execute(step)
            else:
                step(conn)
    conn.execute(f"PRAGMA user_version = {db.version}")
    return before, empty, looks


def connect(path: Path) -> sqlite3.Connection:
    """A short-lived connection for migrating or reading a version (the stores open their own)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    tune(conn)
    return conn


def migrate_file(path: Path, db: Database) -> tuple[int, int]:
    """Migrate one file (made if missing), then checkpoint its WAL into it and cut the WAL to nothing:
    at start-up nothing else has it open, so this costs a few writes once and leaves a clean file. The
    checkpoint waits for nobody (``busy_timeout=0``): another process reading it only means it stays."""
    conn = connect(path)
    try:
        result = migrate(conn, db, str(path))
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return result
    finally:
        conn.close()


def migrate_data_dir(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Both databases of a data folder, before any store opens them; {file name: (before, after)}."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return {db.name: migrate_file(data_dir / db.name, db) for db in DATABASES}


def file_version(path: Path) -> int:
    """The schema version of a database file, read without changing it (no WAL, no migration)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return version(conn)
    finally:
        conn.close()
