"""``gateway doctor``: is this machine ready to run the gateway for years? One line per check.

Each check is a pure function of what a small probe found, so the words an operator reads
(what is wrong, what to do) are tested without breaking a machine; the probes only look:
the broker gets a separate, clean session (never the gateway's persistent one), the
outbox is opened read-only, and the data folder gets a temporary file that is removed.
Run it as the gateway's user: permissions (the serial ports' ``dialout``) are that user's.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import pwd
import shutil
import socket
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import urllib3

from gateway.clock import ClockStatus, make_probe
from gateway.config import InfluxSettings, MqttSettings, Settings
from gateway.influx import http_to
from gateway.journal import redact
from gateway.sensors import mqtt_packets as mp
from gateway.sensors.mqtt import tls_context

_LOGGER = logging.getLogger(__name__)
OK, WARN, FAIL = "OK", "WARN", "FAIL"
TIMEOUT_S = 5.0
DISK_WARN_FRACTION, DISK_WARN_BYTES = 0.10, 1 << 30
DISK_FAIL_FRACTION, DISK_FAIL_BYTES = 0.01, 100 << 20
OUTBOX_STALE_S = 600.0  # the oldest unsent reading older than this: InfluxDB is not taking readings


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    status: str  # OK | WARN | FAIL
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:<4} {self.name}: {self.detail}" + (f" -> {self.fix}" if self.fix else "")


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed (warnings included), 1 otherwise."""
    return 1 if any(c.status == FAIL for c in checks) else 0


# -- the broker -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerAnswer:
    error: str | None = None  # no connection, or no CONNACK
    refused: str | None = None  # the broker's reason for refusing the login


def probe_broker(m: MqttSettings, client_id: str, timeout: float = TIMEOUT_S) -> BrokerAnswer:
    """CONNECT with the configured URL and credentials as ``<client id>-doctor``, a clean session with no
    will, so the gateway's own session and status are untouched; then DISCONNECT."""
    ep = m.endpoint()
    v5 = m.protocol == "5"
    packet = mp.connect(f"{client_id}-doctor", v5=v5, keepalive=10, clean_start=True, username=ep.username,
                        password=ep.password)
    try:
        sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
    except OSError as exc:
        return BrokerAnswer(error=str(exc) or type(exc).__name__)
    try:
        if ep.tls:
            sock = tls_context(m).wrap_socket(sock, server_hostname=ep.host)
        sock.sendall(packet)
        framer, packets = mp.Framer(v5), []
        while not packets:
            data = sock.recv(4096)
            if not data:
                return BrokerAnswer(error="the broker closed the connection before its CONNACK")
            packets = framer.feed(data)
        first = packets[0]
        if not (isinstance(first, mp.Control) and first.type == mp.CONNACK):
            return BrokerAnswer(error="the broker's first packet is not a CONNACK")
        _, code, _ = mp.connack(first.body, v5)
        if code:
            return BrokerAnswer(refused=(mp.CONNACK_V5 if v5 else mp.CONNACK_V3).get(code, f"reason 0x{code:02x}"))
        with contextlib.suppress(OSError):
            sock.sendall(mp.DISCONNECT_PACKET)
    except (OSError, mp.ProtocolError) as exc:
        return BrokerAnswer(error=str(exc) or type(exc).__name__)
    finally:
        sock.close()
    return BrokerAnswer()


def check_broker(url: str, a: BrokerAnswer) -> Check:
    shown = redact(url)
    if a.refused:
        fix = ("check the user and password in mqtt.url against the broker's password file"
               if "user name or password" in a.refused or "authoriz" in a.refused
               else "see the broker's log")
        return Check("mqtt", FAIL, f"broker {shown} refused the login: {a.refused}", fix)
    if a.error:
        return Check("mqtt", FAIL, f"broker {shown} not reachable: {a.error}",
                     "start the broker (systemctl start mosquitto) or correct mqtt.url")
    return Check("mqtt", OK, f"broker {shown} accepted the login")


# -- InfluxDB -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InfluxAnswer:
    error: str | None = None  # /ping failed
    auth_error: str | None = None  # the credentials were refused
    databases: tuple[str, ...] | None = None  # None: not asked (v2)
    retention: tuple[tuple[str, str, bool], ...] = ()  # (name, duration, default) of the database's policies


def probe_influx(s: InfluxSettings, timeout: float = TIMEOUT_S) -> InfluxAnswer:
    """``/ping``; for v1 also ``SHOW DATABASES`` and the database's retention policies."""
    http, headers = http_to(s)
    try:
        r = http.request("GET", s.url + "/ping", headers=headers, timeout=timeout)
        if r.status != 204:
            return InfluxAnswer(error=f"/ping answered HTTP {r.status}")
        if s.api != "v1":
            return InfluxAnswer()
        dbs = _query(http, headers, s.url, "SHOW DATABASES", timeout)
        if isinstance(dbs, str):
            return InfluxAnswer(auth_error=dbs)
        names = tuple(str(v[0]) for series in dbs for v in series.get("values", []))
        if s.db not in names:
            return InfluxAnswer(databases=names)
        rps = _query(http, headers, s.url, f'SHOW RETENTION POLICIES ON "{s.db}"', timeout)
        if isinstance(rps, str):
            return InfluxAnswer(auth_error=rps)
        policies = []
        for series in rps:
            cols = series.get("columns", [])
            for v in series.get("values", []):
                row = dict(zip(cols, v, strict=False))
                policies.append((str(row.get("name")), str(row.get("duration")), bool(row.get("default"))))
        return InfluxAnswer(databases=names, retention=tuple(policies))
    except urllib3.exceptions.HTTPError as exc:
        return InfluxAnswer(error=str(exc))
    finally:
        http.clear()


def _query(http: urllib3.PoolManager, headers: dict[str, str], url: str, q: str, timeout: float
           ) -> list[dict[str, object]] | str:
    """A statement's series, or the refusal as a string (HTTP 401/403, or an error in the result)."""
    r = http.request("GET", f"{url}/query?{urlencode({'q': q})}", headers=headers, timeout=timeout)
    if r.status in (401, 403):
        return f"HTTP {r.status}: {r.data.decode('utf-8', 'replace')[:200]}"
    body = json.loads(r.data or b"{}")
    result = (body.get("results") or [{}])[0]
    if "error" in result or "error" in body:
        return str(result.get("error") or body.get("error"))
    return list(result.get("series", []))


def check_influx(s: InfluxSettings, a: InfluxAnswer) -> Check:
    if a.error:
        return Check("influxdb", FAIL, f"{s.url} not reachable: {a.error}",
                     "start InfluxDB (systemctl start influxdb) or correct influx.url; readings wait in the outbox")
    if a.auth_error:
        return Check("influxdb", FAIL, f"{s.url} refused the query: {a.auth_error}",
                     "check influx.username / influx.password (or influx.token / influx.token_file)")
    if a.databases is None:
        return Check("influxdb", OK, f"{s.url} answers /ping ({s.api}; the bucket {s.db} is not checked)")
    if s.db not in a.databases:
        return Check("influxdb", WARN, f"{s.url} answers, but has no database {s.db}",
                     "the gateway creates it when it starts; or create it: influx -execute 'CREATE DATABASE "
                     f"\"{s.db}\"'")
    default = next((p for p in a.retention if p[2]), None)
    keeps = "no default retention policy" if default is None else (
        f"default retention {default[0]} keeps " + ("everything (infinite)" if default[1] in ("0s", "0") else
                                                     default[1]))
    return Check("influxdb", OK, f"{s.url} answers; database {s.db}, {keeps}")


# -- serial ports ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortAnswer:
    exists: bool
    usable: bool = False  # readable and writable by this user
    group: str = ""  # the device's group (dialout)


def probe_port(path: str) -> PortAnswer:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return PortAnswer(False)
    except OSError:
        return PortAnswer(True)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return PortAnswer(True, os.access(path, os.R_OK | os.W_OK), group)


def check_port(port: str, a: PortAnswer | None, user: str) -> Check:
    """``a`` None: a pyserial URL (``rfc2217://``, ``socket://``), not a device to look at."""
    name = f"serial {port}"
    if a is None:
        return Check(name, OK, "a network port (pyserial URL), not checked here")
    if not a.exists:
        return Check(name, FAIL, "no such device",
                     "plug the adapter in, or correct the name in [[serial]] port (ls -l /dev/serial/by-id/)")
    if not a.usable:
        return Check(name, FAIL, f"not readable and writable by user {user} (device group {a.group or '?'})",
                     f"sudo usermod -aG {a.group or 'dialout'} {user}, then restart the gateway")
    return Check(name, OK, f"present, readable and writable by {user}")


# -- the clock ------------------------------------------------------------------------------------


def check_clock(status: ClockStatus, require_sync: bool) -> Check:
    if status.synced:
        return Check("clock", OK, status.detail)
    fix = ("enable NTP (timedatectl set-ntp true, or chrony) and let the gateway reach an NTP server; "
           "check with timedatectl or chronyc tracking")
    if require_sync:
        return Check("clock", FAIL, f"{status.detail}: the gateway holds SLA escalations, missed rounds and "
                                    f"silent-device checks until it is", fix)
    return Check("clock", WARN, f"{status.detail} (clock.require_sync is off: deadlines trust this clock)", fix)


# -- the data folder: disk, outbox, writable ------------------------------------------------------


def existing(path: Path) -> Path:
    """``path`` or its nearest existing parent."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@dataclass(frozen=True, slots=True)
class DiskAnswer:
    free: int
    total: int


def check_disk(path: Path, a: DiskAnswer) -> Check:
    fraction = a.free / a.total if a.total else 0.0
    detail = f"{a.free / 1e9:.1f} GB free of {a.total / 1e9:.1f} GB ({fraction:.0%}) at {path}"
    fix = "free space (old logs: journalctl --vacuum-size=200M) or a shorter InfluxDB retention"
    if fraction < DISK_FAIL_FRACTION or a.free < DISK_FAIL_BYTES:
        return Check("disk", FAIL, detail, fix)
    if fraction < DISK_WARN_FRACTION or a.free < DISK_WARN_BYTES:
        return Check("disk", WARN, detail, fix)
    return Check("disk", OK, detail)


@dataclass(frozen=True, slots=True)
class OutboxAnswer:
    exists: bool
    depth: int = 0
    size: int = 0
    oldest: float | None = None  # receive time of the oldest unsent reading
    dropped: int = 0
    error: str | None = None


def probe_outbox(path: Path) -> OutboxAnswer:
    """Read-only, creating nothing: a WAL reader would make ``-wal`` and ``-shm`` files when they are missing
    (owned by whoever runs doctor, perhaps root, which the gateway's user then cannot open). Without them
    the gateway is stopped and everything is in the main file, read as immutable."""
    if not path.is_file():
        return OutboxAnswer(False)
    wal = all(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm"))
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?{'mode=ro' if wal else 'immutable=1'}", uri=True,
                             timeout=5.0)
        try:
            depth, size, oldest = db.execute(
                "SELECT count(*), coalesce(sum(length(line)), 0), min(at) FROM outbox").fetchone()
            row = db.execute("SELECT count FROM outbox_drops").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return OutboxAnswer(True, error=str(exc))
    return OutboxAnswer(True, depth, size, oldest, row[0] if row else 0)


def check_outbox(path: Path, a: OutboxAnswer, now: float, max_bytes: float) -> Check:
    if not a.exists:
        return Check("outbox", OK, f"no {path} yet (the gateway has not run with this data folder)")
    if a.error:
        return Check("outbox", WARN, f"cannot read {path}: {a.error}", "run doctor as the gateway's user")
    dropped = f"; {a.dropped} dropped past its bound since it was made" if a.dropped else ""
    if a.oldest is None:
        return Check("outbox", OK, f"empty: everything reached InfluxDB{dropped}")
    age = max(0.0, now - a.oldest)
    detail = f"{a.depth} readings waiting ({a.size / 1e6:.1f} MB), the oldest received {_age(age)} ago{dropped}"
    if a.size > 0.8 * max_bytes:
        return Check("outbox", WARN, detail + f"; near its bound of {max_bytes / 1e6:.0f} MB",
                     "get InfluxDB taking readings (see the influxdb line) before the oldest are dropped")
    if age > OUTBOX_STALE_S:
        return Check("outbox", WARN, detail, "InfluxDB is not taking readings: see the influxdb line and the "
                                             "gateway's log (journalctl -u fm-gateway)")
    return Check("outbox", OK, detail)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True, slots=True)
class DirAnswer:
    exists: bool
    writable: bool
    error: str = ""


def probe_dir(path: Path) -> DirAnswer:
    """Writes and removes a temporary file: the real test of writable (read-only mounts, full disks)."""
    target = path if path.is_dir() else existing(path)
    try:
        fd, name = tempfile.mkstemp(prefix=".doctor-", dir=target)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return DirAnswer(path.is_dir(), False, exc.strerror or str(exc))
    return DirAnswer(path.is_dir(), True)


def check_dir(path: Path, a: DirAnswer, user: str) -> Check:
    fix = f"chown {user} {path} (or set data_dir / GATEWAY_DATA_DIR to a folder {user} may write)"
    if a.exists:
        return (Check("data_dir", OK, f"{path} is writable by {user}") if a.writable else
                Check("data_dir", FAIL, f"{path} is not writable by {user}: {a.error}", fix))
    if a.writable:
        return Check("data_dir", OK, f"{path} does not exist yet; the gateway makes it at its first start")
    return Check("data_dir", FAIL, f"{path} does not exist and cannot be made by {user}: {a.error}", fix)


# -- all of them ----------------------------------------------------------------------------------


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def run(settings: Settings, now: float) -> list[Check]:
    """Every check, probing this machine; ``now`` is the wall time the outbox's age is measured against."""
    user = _user()
    checks = [check_broker(settings.mqtt.url, probe_broker(settings.mqtt, settings.client_id)),
              check_influx(settings.influx, probe_influx(settings.influx))]
    for p in settings.serial:
        checks.append(check_port(p.port, None if "://" in p.port else probe_port(p.port), user))
    checks.append(check_clock(make_probe(settings.clock.sync_probe)(), settings.clock.require_sync))
    where = existing(settings.data_dir)
    usage = shutil.disk_usage(where)
    checks.append(check_disk(where, DiskAnswer(usage.free, usage.total)))
    outbox = settings.data_dir / "outbox.db"
    checks.append(check_outbox(outbox, probe_outbox(outbox), now, settings.outbox.max_mb * 1e6))
    checks.append(check_dir(settings.data_dir, probe_dir(settings.data_dir), user))
    return checks
