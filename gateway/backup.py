"""``gateway backup`` and ``gateway restore``: the gateway's own state in one archive, and back.

An archive (``fm-gateway-<site>-<UTC time>.tar.gz``) holds:

- ``db/gateway.db`` and ``db/outbox.db``: SQLite online backups (the backup API copies one consistent
  snapshot while the gateway keeps writing: WAL lets readers and a writer go on together). Tickets,
  the asset ledger, events, callbacks, users and tokens (hashed), taps, inspections, frozen monthly
  figures; the readings not yet in InfluxDB and the dead letters.
- ``config/<name>`` and ``site/<name>``: the settings file and the site file, as they were.
- ``photos/...``: the data folder's photos (tickets' and inspections'), copied after the databases,
  so every photo a backed-up record names is there (a photo is written before its record commits).
- ``manifest.json``: gateway version, schema versions, site, time, and each member's SHA-256.

Not in it, on purpose:

- ``api-token`` and ``admin-password``: the installer's bootstrap token and the first admin's
  one-time password are bearer secrets with admin rights, and an archive goes onto USB sticks that
  get lost. The databases keep only their hashes; users' passwords come back with the database, and
  ``gateway token --new`` makes a new installer token. (The settings file is in it, and may hold the
  broker's or InfluxDB's password: the archive is written readable by its owner only.)
- readings: InfluxDB's own tools back them up (:data:`INFLUX_HELP`).
- settings given only as ``GATEWAY_*`` environment variables (a systemd unit's): keep that unit.

Restoring verifies every checksum before it writes anything, refuses a folder with data in it
unless forced (then the files it replaces are moved aside, never deleted), refuses a data folder a
running gateway has open, and migrates the restored databases if they are older than this code.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from gateway import __version__, schema
from gateway.problems import Problems

_LOGGER = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
PHOTOS = "photos"
_CHUNK = 1 << 20
_PREFIXES = ("db/", "config/", "site/", "photos/")

INFLUX_HELP = """\
InfluxDB's readings are not in the archive; back them up with InfluxDB's own tools, e.g. to the same stick:
  InfluxDB 1.x:  influxd backup -portable -db {db} /media/usb/influx-$(date +%F)
                 (restore: influxd restore -portable -db {db} DIR; needs influxd's bind-address, 127.0.0.1:8088)
  InfluxDB 2.x:  influx backup /media/usb/influx-$(date +%F) -t <operator token>   (restore: influx restore DIR)
"""


class BackupError(Problems):
    """A backup or restore that cannot be done."""


@dataclass(frozen=True)
class Sources:
    """What a backup is made of: the data folder, and the files the settings came from."""

    data_dir: Path
    site: str
    config: Path | None = None
    site_file: Path | None = None


# -- backup ----------------------------------------------------------------------------------------


def archive_name(site: str, now: float) -> str:
    return f"fm-gateway-{site}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}.tar.gz"


def destination(to: Path | None, site: str, now: float) -> Path:
    """``--to``: a folder (a mounted USB stick) gets the default name; a ``.tar.gz`` path is used as is."""
    if to is None or to.is_dir():
        path = (to or Path.cwd()) / archive_name(site, now)
    elif to.name.endswith(".tar.gz") and to.parent.is_dir():
        path = to
    else:
        raise BackupError([f"--to {to}: not a folder, nor a .tar.gz file in an existing folder"])
    if path.exists():
        raise BackupError([f"{path}: exists already (a backup is never overwritten)"])
    return path


def copy_database(src: Path, dst: Path) -> int:
    """An online backup of ``src`` into the new file ``dst``, checked; its schema version.

    The backup API copies every page in one step under one read transaction, so the copy is one
    consistent moment even while the gateway commits (a WAL reader never blocks the writer)."""
    source = sqlite3.connect(src, timeout=30.0)
    try:
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
            check = target.execute("PRAGMA quick_check").fetchone()[0]
            version = int(target.execute("PRAGMA user_version").fetchone()[0])
        finally:
            target.close()
    finally:
        source.close()
    if check != "ok":
        raise BackupError([f"{src}: the copy fails SQLite's check ({check}): the database may be damaged"])
    return version


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _photos(data_dir: Path) -> Iterator[tuple[str, bytes]]:
    """(archive name, bytes) of every photo, read once (what is hashed is what is stored). A photo that
    vanishes meanwhile belonged to a record that never committed: skipped."""
    root = data_dir / PHOTOS
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                _LOGGER.info("photo %s went away during the backup (its record never committed)", path)
                continue
            yield f"{PHOTOS}/{path.relative_to(root).as_posix()}", data


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o600
    tar.addfile(info, data)


def backup(src: Sources, dest: Path, now: float) -> dict[str, Any]:
    """Write the archive to ``dest`` (made as ``dest.partial``, synced, then renamed: a stick pulled out
    half-way never holds something that looks like a backup); the manifest."""
    missing = [f"{src.data_dir / db.name}: no such database (has the gateway run with this data_dir?)"
               for db in schema.DATABASES if not (src.data_dir / db.name).is_file()]
    if missing:
        raise BackupError(missing)
    members: dict[str, dict[str, Any]] = {}
    manifest: dict[str, Any] = {
        "format": FORMAT, "gateway_version": __version__, "site": src.site,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "data_dir": str(src.data_dir),
        "schema": {}, "config": None, "site_file": None, "members": members}
    partial = dest.with_name(dest.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BackupError([f"{dest.parent}: cannot write the archive there: {exc.strerror}"]) from None
    try:
        with os.fdopen(fd, "wb") as raw, tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fm-backup-") as tmp:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for db in schema.DATABASES:
                    copy = Path(tmp) / db.name
                    manifest["schema"][db.name] = copy_database(src.data_dir / db.name, copy)
                    name = f"db/{db.name}"
                    members[name] = {"sha256": _sha256_file(copy), "bytes": copy.stat().st_size}
                    tar.add(copy, name)
                for key, folder, path in (("config", "config", src.config), ("site_file", "site", src.site_file)):
                    if path is None:
                        continue
                    data = path.read_bytes()
                    name = f"{folder}/{path.name}"
                    members[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                    manifest[key] = {"member": name, "path": str(path.resolve())}
                    _add(tar, name, io.BytesIO(data), len(data), now)
                for name, data in _photos(src.data_dir):
                    members[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                    _add(tar, name, io.BytesIO(data), len(data), now)
                text = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
                _add(tar, MANIFEST, io.BytesIO(text), len(text), now)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _LOGGER.info("backup of %s written to %s", src.data_dir, dest)
    return manifest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- restore ---------------------------------------------------------------------------------------


def in_use(db_path: Path) -> bool:
    """Whether another process has this SQLite database open (a running gateway).

    Every connection to a WAL database holds a read lock on byte 128 of its ``-shm`` file for as long
    as it is open (SQLite's "DMS" lock, os_unix.c); a write lock there is refused while one does. The
    probe takes that write lock for an instant and releases it. POSIX locks belong to a process, and
    closing a file drops all of them: call this only where this process has no connection to it."""
    shm = db_path.with_name(db_path.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        return False
    except PermissionError as exc:
        raise BackupError([f"{shm}: cannot check whether a gateway has it open: {exc.strerror}"]) from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 128)
        return False
    finally:
        os.close(fd)


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return (name == MANIFEST or name.startswith(_PREFIXES)) and not p.is_absolute() and ".." not in p.parts


def _unpack(archive: Path, into: Path) -> dict[str, Any]:
    """Every member into ``into`` (hashed on the way), then checked against the manifest; the manifest.
    Only regular files under the known folders are taken, by their checked names: never extractall."""
    seen: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                if not info.isfile() or not _safe_name(info.name) or info.name in seen:
                    raise BackupError([f"{archive}: unexpected member {info.name!r}: not a gateway backup"])
                f = tar.extractfile(info)
                if f is None:
                    raise BackupError([f"{archive}: member {info.name!r} has no contents"])
                target = into / info.name
                target.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with open(target, "wb") as out:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                seen[info.name] = h.hexdigest()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BackupError([f"{archive}: damaged or not a gateway backup (nothing was restored): {exc}"]) from None
    except OSError as exc:
        raise BackupError([f"{into}: cannot unpack the archive there (nothing was restored): {exc}"]) from None
    if MANIFEST not in seen:
        raise BackupError([f"{archive}: no {MANIFEST}: not a gateway backup, or cut short"])
    try:
        manifest = json.loads((into / MANIFEST).read_text(encoding="utf-8"))
        members = manifest["members"]
        versions = manifest["schema"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError([f"{archive}: {MANIFEST} is not readable: {exc}"]) from None
    problems = [f"{archive}: {name}: checksum does not match the manifest (the archive is damaged)"
                for name, m in members.items() if name in seen and seen[name] != m.get("sha256")]
    problems += [f"{archive}: {name}: in the manifest, missing from the archive" for name in members
                 if name not in seen]
    problems += [f"{archive}: {name}: in the archive, not in the manifest" for name in seen
                 if name != MANIFEST and name not in members]
    for db in schema.DATABASES:
        if f"db/{db.name}" not in members:
            problems.append(f"{archive}: no db/{db.name} in it")
        elif int(versions.get(db.name, 0)) > db.version:
            problems.append(f"{archive}: {db.name} is schema version {versions[db.name]}, newer than this gateway "
                            f"knows ({db.version}): restore it with gateway {manifest.get('gateway_version')} or later")
    if problems:
        raise BackupError(problems)
    return dict(manifest)


def _config_targets(manifest: dict[str, Any], config_to: Path) -> list[tuple[str, Path]]:
    """(member, where it goes) for the settings and site files; refused if any is there already."""
    out = [(m["member"], config_to / PurePosixPath(m["member"]).name)
           for m in (manifest.get("config"), manifest.get("site_file")) if m]
    if len({t for _, t in out}) < len(out):  # same file name: keep them apart
        out = [(m, config_to / m) for m, _ in out]
    there = [f"--config-to: {t} exists already (a configuration file is never overwritten; move it or choose "
             f"another folder)" for _, t in out if t.exists()]
    if there:
        raise BackupError(there)
    return out


def restore(archive: Path, data_dir: Path, *, force: bool = False, config_to: Path | None = None,
            now: float | None = None) -> list[str]:
    """Restore an archive into ``data_dir``; one line per thing done, for the person at the console."""
    now = time.time() if now is None else now
    if not archive.is_file():
        raise BackupError([f"{archive}: no such file"])
    if data_dir.exists() and not data_dir.is_dir():
        raise BackupError([f"--data-dir {data_dir}: exists and is not a folder"])
    running = [db.name for db in schema.DATABASES if in_use(data_dir / db.name)]
    if running:
        raise BackupError([f"{data_dir}: {', '.join(running)} is open in another process (a running gateway): "
                           f"stop it first (systemctl stop fm-gateway)"])
    old = sorted(p.name for p in data_dir.iterdir()) if data_dir.is_dir() else []
    if old and not force:
        raise BackupError([f"{data_dir}: not empty ({', '.join(old[:5])}{', ...' if len(old) > 5 else ''}); "
                           f"restore into a new or empty folder, or give --force (what it replaces is kept in "
                           f"{data_dir}/replaced-<time>/)"])
    data_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    staging = Path(tempfile.mkdtemp(dir=data_dir, prefix=".restore-"))
    try:
        manifest = _unpack(archive, staging)
        targets = _config_targets(manifest, config_to) if config_to is not None else []
        lines += _put_aside(data_dir, now)
        for db in schema.DATABASES:
            os.replace(staging / "db" / db.name, data_dir / db.name)
        if (staging / PHOTOS).is_dir():
            os.replace(staging / PHOTOS, data_dir / PHOTOS)
        _fsync_dir(data_dir)
        migrated = schema.migrate_data_dir(data_dir)
        photos = sum(1 for m in manifest["members"] if m.startswith(f"{PHOTOS}/"))
        lines.append(f"restored {archive.name} (site {manifest.get('site')}, made {manifest.get('created_at')} by "
                     f"gateway {manifest.get('gateway_version')}) into {data_dir}: "
                     + ", ".join(f"{name} (schema {a}" + (f", migrated from {b})" if a != b else ")")
                                 for name, (b, a) in migrated.items())
                     + f", {photos} photos")
        for member, target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staging / member, target)
            target.chmod(0o600)  # it may hold the broker's or InfluxDB's password
            lines.append(f"{member} written to {target}")
        if not targets:
            for key in ("config", "site_file"):
                if m := manifest.get(key):
                    lines.append(f"{key.replace('_', ' ')}: {m['member']} in the archive (it was {m['path']}); "
                                 f"extract it with: tar -xzf {archive} {m['member']}  (or give --config-to DIR)")
        lines.append("not restored: the installer token and one-time admin password (never backed up): "
                     "`gateway token --new` makes a new installer token")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _LOGGER.info("restored %s into %s", archive, data_dir)
    return lines


def _put_aside(data_dir: Path, now: float) -> list[str]:
    """What a forced restore replaces, moved (same file system: a rename) to ``replaced-<time>/``. The
    databases' ``-wal`` and ``-shm`` go too: a stale WAL next to a restored file would be replayed into it."""
    names = [f"{db.name}{suffix}" for db in schema.DATABASES for suffix in ("", "-wal", "-shm", "-journal")]
    there = [n for n in [*names, PHOTOS] if (data_dir / n).exists()]
    if not there:
        return []
    aside = data_dir / f"replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}"
    aside.mkdir()
    for n in there:
        os.replace(data_dir / n, aside / n)
    return [f"replaced files kept in {aside}: {', '.join(there)}"]


# -- command line ----------------------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace) -> int:
    from gateway.config import load_settings

    settings = load_settings(args.config)
    now = time.time()
    try:
        dest = destination(args.to, settings.site, now)
        manifest = backup(Sources(settings.data_dir, settings.site, args.config, settings.site_file), dest, now)
    except BackupError as exc:
        for line in exc.problems:
            sys.stderr.write(f"backup error: {line}\n")
        return 2
    photos = sum(1 for m in manifest["members"] if m.startswith(f"{PHOTOS}/"))
    sys.stdout.write(
        f"backup written: {dest} ({dest.stat().st_size} bytes): "
        + ", ".join(f"{n} (schema {v})" for n, v in manifest["schema"].items())
        + "".join(f", {k.replace('_', ' ')} {manifest[k]['member']}" for k in ("config", "site_file") if manifest[k])
        + f", {photos} photos\n" + INFLUX_HELP.format(db=settings.influx.db))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    if args.data_dir is not None:
        data_dir = args.data_dir
    else:
        from gateway.config import load_settings

        data_dir = load_settings(args.config).data_dir
    try:
        lines = restore(args.archive, data_dir, force=args.force, config_to=args.config_to)
    except (BackupError, schema.SchemaError) as exc:
        for line in exc.problems:
            sys.stderr.write(f"restore error: {line}\n")
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


def add_commands(sub: Any) -> None:
    """``gateway backup`` and ``gateway restore``, added to the CLI's subcommands."""
    p = sub.add_parser("backup", help="back up tickets, ledger, users, config, site file and photos to one archive",
                       description=__doc__.split("\n\n")[0] + "\n\n" + INFLUX_HELP.format(db="facility"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="TOML settings file (GATEWAY_* variables override it)")
    p.add_argument("--to", type=Path, help="a folder (e.g. a mounted USB stick) or a .tar.gz path "
                                           "(default: fm-gateway-<site>-<UTC time>.tar.gz here)")
    p.set_defaults(fn=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup archive into an empty data folder (checksums verified)",
                       description="Restore a `gateway backup` archive: checksums verified first, databases "
                                   "migrated if older. Stop the gateway first.\n\n"
                                   + INFLUX_HELP.format(db="facility"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive", type=Path, help="fm-gateway-<site>-<time>.tar.gz")
    p.add_argument("--config", type=Path, help="TOML settings file: its data_dir is where to restore")
    p.add_argument("--data-dir", type=Path, help="where to restore (default: the settings' data_dir)")
    p.add_argument("--force", action="store_true",
                   help="restore into a folder with data in it (what it replaces is moved to replaced-<time>/)")
    p.add_argument("--config-to", type=Path,
                   help="write the archive's settings and site files into this folder (never over existing files)")
    p.set_defaults(fn=cmd_restore)
