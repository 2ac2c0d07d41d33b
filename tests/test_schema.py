"""Migrations from every earlier schema (tests/schema_versions, frozen from git) to the current one:
same tables, columns and indexes as a new database, every row kept and readable by today's stores."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import schema
from gateway.auth import AuthStore
from gateway.cli import main
from gateway.devices import DeviceRegistry
from gateway.inspections.records import InspectionStore
from gateway.inspections.taps import TapLog
from gateway.outbox import Outbox
from gateway.tickets import TicketStore

VERSIONS = Path(__file__).parent / "schema_versions"
SH = ZoneInfo("Asia/Shanghai")
T0 = 1_790_000_000.0  # the fixtures' rows are around this time
GATEWAY_VERSIONS = range(1, schema.GATEWAY.version + 1)
OUTBOX_VERSIONS = range(1, schema.OUTBOX.version + 1)


def made_by(tmp_path: Path, which: str, version: int, name: str | None = None) -> Path:
    """A database file as the commit of ``version`` left it (no user_version)."""
    path = tmp_path / (name or f"{which}-v{version}.db")
    db = sqlite3.connect(path)
    db.executescript((VERSIONS / f"{which}-v{version}.sql").read_text(encoding="utf-8"))
    db.close()
    return path


def shape(path: Path) -> dict[str, Any]:
    """Tables with their columns (name, type, not null, default, key), indexes with their columns,
    uniqueness and definition (whitespace and IF NOT EXISTS aside), and the version."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out: dict[str, Any] = {"version": db.execute("PRAGMA user_version").fetchone()[0]}
        for t in tables:
            indexes = {}
            for _, name, unique, origin, partial in db.execute(f"PRAGMA index_list({t})"):
                sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
                sql = re.sub(r"\s+", " ", (sql or "").replace("IF NOT EXISTS ", ""))
                indexes[name] = (unique, origin, partial, [r[2] for r in db.execute(f"PRAGMA index_info({name})")],
                                 sql)
            out[t] = ([tuple(r[1:]) for r in db.execute(f"PRAGMA table_info({t})")], indexes)
        return out
    finally:
        db.close()


def rows(path: Path, tables: list[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(path)
    try:
        names = tables or [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out = {}
        for t in names:
            cols = [r[1] for r in db.execute(f"PRAGMA table_info({t})")]
            out[t] = db.execute(f"SELECT {', '.join(sorted(cols))} FROM {t} ORDER BY {', '.join(sorted(cols))}"
                                ).fetchall()
        return out
    finally:
        db.close()


def tables_of(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name != 'sqlite_sequence'")]
    finally:
        db.close()


@pytest.fixture
def fresh(tmp_path: Path) -> dict[str, Any]:
    """The shape of a new database, made by this code."""
    path = tmp_path / "fresh.db"
    assert schema.migrate_file(path, schema.GATEWAY) == (0, schema.GATEWAY.version)
    return shape(path)


@pytest.fixture
def current(tmp_path: Path) -> Path:
    """The newest frozen version, migrated: the rows every older version must come to."""
    path = made_by(tmp_path, "gateway", schema.GATEWAY.version, "current.db")
    schema.migrate_file(path, schema.GATEWAY)
    return path


def test_a_new_database_has_the_schema_the_stores_of_the_last_commit_made(tmp_path: Path,
                                                                          fresh: dict[str, Any]) -> None:
    frozen = shape(made_by(tmp_path, "gateway", schema.GATEWAY.version))
    assert frozen.pop("version") == 0 and fresh.pop("version") == schema.GATEWAY.version
    assert fresh == frozen
    assert "clocks_from" in [c[0] for c in fresh["tickets"][0]] and "callbacks_waiting" in fresh["tickets"][1]


@pytest.mark.parametrize("version", GATEWAY_VERSIONS)
def test_every_earlier_gateway_database_migrates_with_every_row(tmp_path: Path, version: int, fresh: dict[str, Any],
                                                                current: Path) -> None:
    path = made_by(tmp_path, "gateway", version)
    had = tables_of(path)
    counts = {t: len(r) for t, r in rows(path, had).items()}
    assert all(counts.values()), "every table of a fixture holds rows"
    with sqlite3.connect(path) as db:
        assert schema.detect(db, schema.GATEWAY) == version

    assert schema.migrate_file(path, schema.GATEWAY) == (0, schema.GATEWAY.version)

    assert shape(path) == fresh
    got, want = rows(path, had), rows(current, had)
    assert {t: len(r) for t, r in got.items()} == counts
    assert got == want  # every row as the current code would have it, added columns computed
    assert all(not r for t, r in rows(path).items() if t not in had and t != "sqlite_sequence")


@pytest.mark.parametrize("version", range(2, schema.GATEWAY.version + 1))
def test_migrated_tickets_are_read_and_written_by_todays_stores(tmp_path: Path, version: int) -> None:
    path = made_by(tmp_path, "gateway", version, "gateway.db")
    schema.migrate_data_dir(tmp_path)
    store = TicketStore(path, SH)
    try:
        assert store.list()[1] == 5
        reworked = store.get(2)
        assert reworked["reworks"] == 1 and reworked["clocks_from"] > reworked["opened_at"]
        assert [e["action"] for e in store.get(1)["timeline"]][-1] == "callback"
        assert store.get(1)["callbacks"][0]["score"] == 5
        assert store.current_states()["L-0001"]["state"] == "in_service"
        assert [t["id"] for t in store.list(callback_due=True)[0]] == [4]  # closed, never called back
        store.add_callback(4, "客服", "phone", 4, "", T0 + 30 * 3600)
        assert store.list(callback_due=True)[1] == 0
        t, how = store.open(subject="asset:L-0003", fault="lamp_out", priority="general", title="3号路灯不亮",
                            at=T0 + 40 * 3600, by="sensor", source="sensor", asset="L-0003")
        assert how == "opened" and t["clocks_from"] == T0 + 40 * 3600 and t["id"] == 6
    finally:
        store.close()
    registry = DeviceRegistry(path, {}, 3)
    assert {d["device"] for d in registry.snapshot()} == {"lamp-0001", "lamp-0002", "well-0003"}
    registry.close()
    if version >= 5:
        taps = TapLog(path)
        assert taps.list(limit=10)[1] == 2 and taps.unknown_tags()[1] == 1
        taps.close()
        inspections = InspectionStore(path)
        assert [r["failed"] for r in inspections.list()[0]] == [["seal"]]
        inspections.close()
    if version >= 6:
        auth = AuthStore(path)
        assert sorted(u["name"] for u in auth.list_users()[0]) == ["G001", "王师傅"]
        assert auth.installer_known()
        auth.close()


@pytest.mark.parametrize("version", GATEWAY_VERSIONS)
def test_a_database_stamped_at_an_earlier_version_runs_only_the_later_migrations(
        tmp_path: Path, version: int, fresh: dict[str, Any], current: Path) -> None:
    path = made_by(tmp_path, "gateway", version)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {version}")
    had = tables_of(path)
    assert schema.migrate_file(path, schema.GATEWAY) == (version, schema.GATEWAY.version)
    assert shape(path) == fresh
    assert rows(path, had) == rows(current, had)


def test_a_database_of_the_first_tickets_opened_by_later_code_loses_nothing(tmp_path: Path, fresh: dict[str, Any],
                                                                             current: Path) -> None:
    """39d8217's database opened by 61f1b34's stores: their IF NOT EXISTS made the new tables and
    ``_upgrade`` added called_back, but nothing added clocks_from (the tickets could not be opened)."""
    path = made_by(tmp_path, "gateway", 2)
    later = (VERSIONS / f"gateway-v{schema.GATEWAY.version}.sql").read_text(encoding="utf-8").split("-- rows")[0]
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE tickets ADD COLUMN called_back INTEGER NOT NULL DEFAULT 0")  # as _upgrade did
        db.execute("UPDATE tickets SET called_back = 1 WHERE id IN (SELECT ticket FROM callbacks)")
        db.executescript(later)
    assert "clocks_from" not in [c[0] for c in shape(path)["tickets"][0]]
    had = tables_of(made_by(tmp_path, "gateway", 2, "had.db"))
    assert schema.migrate_file(path, schema.GATEWAY) == (0, schema.GATEWAY.version)
    assert shape(path) == fresh
    assert rows(path, had) == rows(current, had)


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    path = made_by(tmp_path, "gateway", 2)
    schema.migrate_file(path, schema.GATEWAY)
    before_shape, before_rows = shape(path), rows(path)
    assert schema.migrate_file(path, schema.GATEWAY) == (schema.GATEWAY.version, schema.GATEWAY.version)
    conn = schema.connect(path)
    assert schema.migrate(conn, schema.GATEWAY) == (schema.GATEWAY.version, schema.GATEWAY.version)
    conn.close()
    assert shape(path) == before_shape and rows(path) == before_rows


def test_a_newer_database_is_refused_and_left_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = made_by(tmp_path, "gateway", schema.GATEWAY.version, "gateway.db")
    newer = schema.GATEWAY.version + 1
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {newer}")
        db.execute("CREATE TABLE from_the_future (x)")
    before = shape(path)
    with pytest.raises(schema.SchemaError, match=f"schema version {newer} is newer than this gateway knows "
                                                 f"\\({schema.GATEWAY.version}\\)"):
        schema.migrate_file(path, schema.GATEWAY)
    with pytest.raises(schema.SchemaError):
        TicketStore(path, SH)  # a store opened on its own refuses it too
    assert shape(path) == before

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    assert main(["token", "--revoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"database error: {path}: schema version {newer} is newer")
    assert shape(path) == before


def test_a_migration_that_fails_changes_nothing(tmp_path: Path) -> None:
    """A column the migration would have to drop: refused in its transaction, the file as it was."""
    path = made_by(tmp_path, "gateway", 2)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE tickets ADD COLUMN someones_notes TEXT")
    before, before_rows = shape(path), rows(path)
    with pytest.raises(schema.SchemaError, match=r"would lose column.* someones_notes"):
        schema.migrate_file(path, schema.GATEWAY)
    assert shape(path) == before and rows(path) == before_rows


@pytest.mark.parametrize("version", OUTBOX_VERSIONS)
def test_every_earlier_outbox_migrates_with_its_readings(tmp_path: Path, version: int) -> None:
    path = made_by(tmp_path, "outbox", version)
    had = rows(path)
    new = tmp_path / "new-outbox.db"
    schema.migrate_file(new, schema.OUTBOX)
    assert schema.migrate_file(path, schema.OUTBOX) == (0, schema.OUTBOX.version)
    assert shape(path) == shape(new)
    assert "seen_at" not in shape(path)["seen"][1]
    assert rows(path) == had
    outbox = Outbox(path, 10**8)
    try:
        assert outbox.depth()[0] == 2
        assert [line[:12] for _, _, line in outbox.peek(10)] == ["streetlight,", "drain_level,"]
    finally:
        outbox.close()


def test_a_store_connection_spares_the_sd_card(tmp_path: Path) -> None:
    """The WAL's checkpoint interval and size limit are set on every connection, and the start-up
    migration leaves the WAL empty."""
    path = tmp_path / "gateway.db"
    store = TicketStore(path, SH)
    try:
        assert store.db.execute("PRAGMA journal_size_limit").fetchone() == {"journal_size_limit":
                                                                           schema.JOURNAL_SIZE_LIMIT}
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone() == {"wal_autocheckpoint":
                                                                           schema.WAL_AUTOCHECKPOINT_PAGES}
        store.record_state("L-0001", T0, "faulty", ["lamp_out"], "reading")
    finally:
        store.close()
    made_by(tmp_path, "gateway", 7, "other.db")
    schema.migrate_file(tmp_path / "other.db", schema.GATEWAY)
    wal = tmp_path / "other.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
