"""gateway backup / restore: a data folder made by the real stores comes back row by row; damaged
archives, occupied folders and running gateways are refused; a backup taken under writes is whole."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import backup, schema
from gateway.auth import AuthStore
from gateway.cli import main
from gateway.inspections.records import InspectionStore
from gateway.outbox import DeadLetter, Outbox
from gateway.tickets import TicketStore

SH = ZoneInfo("Asia/Shanghai")
T0 = 1_790_000_000.0
H = 3600.0
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def make_data_dir(data: Path) -> None:
    """Tickets through their lifecycle (a rework, callbacks, photos), the ledger, users, an inspection
    with photos, readings waiting in the outbox: written by the gateway's own stores."""
    tickets = TicketStore(data / "gateway.db", SH)
    try:
        t1, _ = tickets.open(subject="asset:L-0001", fault="lamp_out", priority="general", title="1号路灯不亮",
                             at=T0, by="sensor", source="sensor", asset="L-0001", category="lighting")
        tickets.attach_photos(t1["id"], [JPEG, PNG], "G001", T0 + 60)
        for i, action in enumerate(("acknowledge", "arrive", "resolve")):
            tickets.act(t1["id"], action, "李师傅", T0 + (i + 1) * H)
        tickets.fault_cleared("asset:L-0001", "lamp_out", T0 + 4 * H)
        tickets.add_callback(t1["id"], "客服", "phone", 5, "满意", T0 + 30 * H)
        t2, _ = tickets.open(subject="asset:W-0003", fault="level_high", priority="emergency", title="3号井水位高",
                             at=T0 + H, by="sensor", source="sensor", asset="W-0003", category="drainage")
        tickets.act(t2["id"], "resolve", "张师傅", T0 + 2 * H)
        tickets.fault_persists("asset:W-0003", "level_high", T0 + 2.5 * H)
        tickets.open(subject=None, fault="manual", priority="urgent", title="北门道闸", at=T0 + 3 * H, by="manager",
                     source="api", note="业主报修")
        for asset, at, state in (("L-0001", T0, "faulty"), ("L-0001", T0 + 4 * H, "intact"),
                                 ("W-0003", T0 + H, "faulty")):
            tickets.record_state(asset, at, state, ["lamp_out"] if state == "faulty" else [], "reading")
    finally:
        tickets.close()
    auth = AuthStore(data / "gateway.db", lambda: T0)
    auth.create_user("王师傅", "maintenance", "a-long-password", "admin")
    auth.create_user("G001", "guard", "another-password", "admin")
    auth.close()
    inspections = InspectionStore(data / "gateway.db", data / "photos")
    inspections.add(asset="F-0001", plan="extinguisher_monthly", at=T0 + 5 * H, by="G001", tag_at=None,
                    results={"pressure": "pass", "seal": "fail"}, note="铅封断了", photos=[PNG])
    inspections.close()
    outbox = Outbox(data / "outbox.db", 10**8)
    outbox.commit([(T0, "streetlight,site=s,device=lamp-0001 lit=false 1790000000000000000")],
                  [("lamp-0001", 1, T0, T0)], [DeadLetter(T0, "mqtt:x", None, "bad_json", "oops", 1, b"{")])
    outbox.close()
    (data / "api-token").write_text("an installer secret\n")
    (data / "admin-password").write_text("a one-time password\n")


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in rowid order."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}
    finally:
        db.close()


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(data folder with data, settings file, site file)."""
    data = tmp_path / "data"
    data.mkdir()
    make_data_dir(data)
    site_file = tmp_path / "etc" / "site.toml"
    site_file.parent.mkdir()
    site_file.write_text('[site]\nname = "阳光花园"\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    config = tmp_path / "etc" / "gateway.toml"
    config.write_text(f'site = "yangguang"\ndata_dir = "{data}"\nsite_file = "{site_file}"\n'
                      f'[influx]\npassword = "influx-secret"\n', encoding="utf-8")
    return data, config, site_file


def test_backup_then_restore_gives_back_every_row_photo_and_file(tmp_path: Path, site: tuple[Path, Path, Path],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data, config, site_file = site
    usb = tmp_path / "usb"
    usb.mkdir()
    assert main(["backup", "--config", str(config), "--to", str(usb)]) == 0
    out = capsys.readouterr().out
    [archive] = list(usb.iterdir())
    assert archive.name.startswith("fm-gateway-yangguang-") and archive.name.endswith("Z.tar.gz")
    assert f"backup written: {archive}" in out and "influxd backup -portable -db facility" in out
    assert archive.stat().st_mode & 0o077 == 0  # it holds the settings file's secrets: the owner's only

    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["site"] == "yangguang" and manifest["schema"] == {"gateway.db": 7, "outbox.db": 2}
    assert set(manifest["members"]) == set(names) - {"manifest.json"}
    assert {"db/gateway.db", "db/outbox.db", "config/gateway.toml", "site/site.toml"} <= set(names)
    assert not any("api-token" in n or "admin-password" in n for n in names)
    assert len([n for n in names if n.startswith("photos/")]) == 3

    new, etc = tmp_path / "new", tmp_path / "restored-etc"
    assert main(["restore", str(archive), "--data-dir", str(new), "--config-to", str(etc)]) == 0
    out = capsys.readouterr().out
    assert "3 photos" in out and f"written to {etc / 'gateway.toml'}" in out
    for db in ("gateway.db", "outbox.db"):
        assert dump(new / db) == dump(data / db)
    assert files(new / "photos") == files(data / "photos")
    assert (etc / "gateway.toml").read_bytes() == config.read_bytes()
    assert (etc / "site.toml").read_bytes() == site_file.read_bytes()
    assert not (new / "api-token").exists()

    store = TicketStore(new / "gateway.db", SH)
    try:
        old = TicketStore(data / "gateway.db", SH)
        assert store.list() == old.list() and store.list()[1] == 3
        assert [store.get(i) for i in (1, 2, 3)] == [old.get(i) for i in (1, 2, 3)]
        assert store.state_history("L-0001") == old.state_history("L-0001")
        entry = next(e for e in store.get(1)["timeline"] if e["action"] == "photos")
        assert store.photo_path(1, entry["data"]["entry"], "1.jpg").read_bytes() == JPEG  # type: ignore[union-attr]
        old.close()
    finally:
        store.close()
    auth = AuthStore(new / "gateway.db")
    assert auth.login("王师傅", "a-long-password")[0].name == "王师傅"
    auth.close()


def test_a_damaged_archive_is_refused_and_nothing_is_written(tmp_path: Path, site: tuple[Path, Path, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    data, config, _ = site
    archive = tmp_path / "good.tar.gz"
    backup.backup(backup.Sources(data, "yangguang", config), archive, T0)

    tampered = tmp_path / "tampered.tar.gz"  # a valid gzip and tar: one member's bytes changed
    with tarfile.open(archive) as src, tarfile.open(tampered, "w:gz") as dst:
        for info in src:
            body = src.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "db/gateway.db":
                body = body[:-1] + bytes([body[-1] ^ 1])
            dst.addfile(info, io.BytesIO(body))
    new = tmp_path / "new"
    assert main(["restore", str(tampered), "--data-dir", str(new)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"restore error: {tampered}: db/gateway.db: checksum does not match the manifest "
                   f"(the archive is damaged)"]
    assert list(new.iterdir()) == []  # the unpacked members are gone again

    flipped = tmp_path / "flipped.tar.gz"  # bytes damaged on the stick
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    flipped.write_bytes(bytes(raw))
    with pytest.raises(backup.BackupError, match="damaged"):  # by gzip, or by a member's checksum:
        # tarfile stops at the archive's end marker, before gzip's own CRC at the very end is read
        backup.restore(flipped, new)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: len(raw) // 2])
    with pytest.raises(backup.BackupError, match="damaged or not a gateway backup"):
        backup.restore(cut, new)
    assert list(new.iterdir()) == []


def test_restore_into_a_folder_with_data_needs_force_and_keeps_what_it_replaces(
        tmp_path: Path, site: tuple[Path, Path, Path]) -> None:
    data, config, _ = site
    archive = tmp_path / "b.tar.gz"
    backup.backup(backup.Sources(data, "yangguang", config), archive, T0)
    target = tmp_path / "target"
    target.mkdir()
    TicketStore(target / "gateway.db", SH).close()  # another site's data
    before = dump(target / "gateway.db")
    with pytest.raises(backup.BackupError, match=r"target: not empty \(gateway.db.*give --force"):
        backup.restore(archive, target)
    assert dump(target / "gateway.db") == before

    lines = backup.restore(archive, target, force=True, now=T0)
    assert dump(target / "gateway.db") == dump(data / "gateway.db")
    [aside] = [p for p in target.iterdir() if p.name.startswith("replaced-")]
    assert dump(aside / "gateway.db") == before
    assert any(str(aside) in line for line in lines)


def test_restore_refuses_a_data_folder_a_running_gateway_has_open(tmp_path: Path,
                                                                  site: tuple[Path, Path, Path]) -> None:
    data, config, _ = site
    archive = tmp_path / "b.tar.gz"
    backup.backup(backup.Sources(data, "yangguang", config), archive, T0)
    live = tmp_path / "live"
    live.mkdir()
    schema.migrate_data_dir(live)
    holder = subprocess.Popen(  # another process with the database open, as the gateway keeps it
        [sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('SELECT count(*) FROM tickets').fetchone(); print('open', flush=True); time.sleep(60)",
         str(live / "gateway.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        assert backup.in_use(live / "gateway.db")
        with pytest.raises(backup.BackupError, match=r"gateway\.db is open in another process"):
            backup.restore(archive, live, force=True)
    finally:
        holder.kill()
        holder.wait()
    assert not backup.in_use(live / "gateway.db")
    backup.restore(archive, live, force=True)
    assert dump(live / "gateway.db") == dump(data / "gateway.db")


def test_an_archive_from_a_newer_gateway_is_refused(tmp_path: Path, site: tuple[Path, Path, Path]) -> None:
    data, config, _ = site
    with sqlite3.connect(data / "gateway.db") as db:
        db.execute(f"PRAGMA user_version = {schema.GATEWAY.version + 1}")
    archive = tmp_path / "b.tar.gz"
    backup.backup(backup.Sources(data, "yangguang", config), archive, T0)
    with pytest.raises(backup.BackupError, match=r"gateway\.db is schema version 8, newer than this gateway knows"):
        backup.restore(archive, tmp_path / "new")
    assert list((tmp_path / "new").iterdir()) == []


def test_a_backup_is_never_written_over_nor_left_half_made(tmp_path: Path, site: tuple[Path, Path, Path]) -> None:
    data, config, _ = site
    dest = backup.destination(tmp_path, "yangguang", T0)
    assert dest == tmp_path / "fm-gateway-yangguang-20260921T141320Z.tar.gz"
    backup.backup(backup.Sources(data, "yangguang", config), dest, T0)
    with pytest.raises(backup.BackupError, match="exists already"):
        backup.destination(tmp_path, "yangguang", T0)
    with pytest.raises(backup.BackupError, match="no such database"):
        backup.backup(backup.Sources(tmp_path / "empty", "yangguang"), tmp_path / "x.tar.gz", T0)
    assert not (tmp_path / "x.tar.gz").exists() and not (tmp_path / "x.tar.gz.partial").exists()


def test_a_backup_taken_while_the_stores_write_is_one_consistent_moment(tmp_path: Path,
                                                                        site: tuple[Path, Path, Path]) -> None:
    """Tickets open (each with its log line and event, in one transaction) and readings commit all
    along; every archive restores to a whole database: as many opening events as tickets."""
    data, config, _ = site
    stop = threading.Event()
    written = [0]

    def write() -> None:
        tickets = TicketStore(data / "gateway.db", SH)
        outbox = Outbox(data / "outbox.db", 10**8)
        try:
            i = 0
            while not stop.is_set():
                i += 1
                tickets.open(subject=f"asset:L-{i:04d}", fault="lamp_out", priority="general", title="路灯不亮",
                             at=T0 + i, by="sensor", source="sensor", asset=f"L-{i:04d}")
                outbox.commit([(T0 + i, f"streetlight,device=lamp-{i} lit=false {i}")], [], [])
                written[0] = i
        finally:
            tickets.close()
            outbox.close()

    writer = threading.Thread(target=write)
    writer.start()
    counts = []
    try:
        deadline = time.monotonic() + 20
        while written[0] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        for n in range(3):
            archive = tmp_path / f"b{n}.tar.gz"
            backup.backup(backup.Sources(data, "yangguang", config), archive, T0 + n)
            restored = tmp_path / f"r{n}"
            backup.restore(archive, restored)
            db = sqlite3.connect(restored / "gateway.db")
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            tickets, opened, logged = db.execute(
                "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM events WHERE type = 'ticket.opened'), "
                "(SELECT count(*) FROM ticket_log WHERE action = 'open')").fetchone()
            db.close()
            assert tickets == opened == logged
            counts.append(tickets)
            time.sleep(0.05)
    finally:
        stop.set()
        writer.join()
    assert written[0] > 20 and counts == sorted(counts) and counts[-1] > counts[0]
    assert counts[-1] <= 3 + written[0]  # the three of make_data_dir, and what was written by then
