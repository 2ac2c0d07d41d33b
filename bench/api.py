"""API and page speed of a big site: latency of the list, detail and dashboard routes, and page weight.

    python bench/api.py                      # 10,000 assets, 50,000 tickets, a year of history
    python bench/api.py --assets 10000 --tickets 50000 --days 365 --requests 200 --json

Builds a site of ``--assets`` assets (streetlights, extinguishers, hydrants, smoke detectors, drain
wells), ``--checkpoints`` patrol checkpoints on two routes, and seeds the gateway's database before
it starts (``bench/seed.py``, the real stores' schemas): ``--tickets`` tickets over ``--days`` (``--live``
of them live), ``--changes`` asset state transitions, the patrols' taps and visits, the inspections,
every device seen (heartbeats set to a day, so none goes silent during the run), and
``--dead-letters`` refused messages. ``--readings-assets`` assets get a day of
readings at one a minute in InfluxDB. Then it runs ``python -m gateway run`` with a private
Mosquitto and influxd, logs in as a manager (a session cookie, as a browser) and times each route
over one keep-alive connection, sequentially, the routes taken in turn (``--warmup`` requests each
first, not counted; a route's first failed request ends its timing; at most ``--budget`` seconds),
with ``Accept-Encoding: gzip`` as a browser sends it. Pages are fetched the
same way with every ``/static/`` file they reference (scripts, their imports, stylesheets, images),
each page with a cold cache.

Targets (issue 6): p95 under 50 ms for list and detail routes, under 300 ms for the dashboard's
data, and under 300 KB transferred per page. They are reported, not enforced: the exit status is 1
only when a request failed or the gateway stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import logging
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed import (  # noqa: E402
    build,
    seed_dead_letters,
    seed_devices,
    seed_inspections,
    seed_patrols,
    site_dict,
    to_toml,
)
from gateway.devservers import Influxd, Mosquitto  # noqa: E402
from gateway.sensors import KINDS  # noqa: E402
from gateway.site import Site, SiteModel  # noqa: E402

_LOG = logging.getLogger("bench.api")
SITE = "bench"
DB = "bench"
LIST_MS, DASHBOARD_MS, PAGE_KB = 50.0, 300.0, 300.0
SLOW_MS = 250.0  # a route slower than this in the warm-up is timed --heavy-requests times only
PAGES = ("/login", "/manager", "/maintenance", "/guard", "/assets")
MANAGER, PASSWORD = "bench-manager", "bench-manager-password-2"
_REF = re.compile(r"""(?:src|href)\s*=\s*["']([^"'#]+)["']""", re.I)
_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']""")
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)|@import\s+["']([^"']+)["']""")


# -- HTTP ------------------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    ms: float


class Client:
    """One keep-alive connection; reconnects once if the server closed it. An answer that takes longer
    than ``timeout`` seconds comes back with status 0 (the connection is then replaced)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: Any = None) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, data, hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                ms = (time.perf_counter() - t0) * 1000
                return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, raw, ms)
            except TimeoutError:
                self.conn.close()
                self.conn = self._connect()
                return Answer(0, {}, b"", (time.perf_counter() - t0) * 1000)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _gzip_len(body: bytes) -> int:
    return len(gzip.compress(body, 6))


# -- the site and its servers ----------------------------------------------------------------------
def prepare(a: argparse.Namespace, d: Path, now: float) -> tuple[Site, dict[str, int]]:
    """The site file, the gateway's settings and its seeded databases, before it starts."""
    site_data = site_dict(a.assets, a.seed, a.checkpoints, SITE)
    (d / "site.toml").write_text(to_toml(site_data), encoding="utf-8")
    site = Site.from_model(SiteModel.model_validate(site_data))
    # Devices seen a moment ago would go silent during the run (a streetlight after 3 minutes) and open
    # 10,000 device tickets: their heartbeats are a day here, so the registry sweeps them all, finding none.
    (d / "gateway.toml").write_text("".join(f"[kinds.{k}]\nheartbeat_s = 86400.0\n" for k in KINDS))
    gw = d / "gw"
    gw.mkdir()
    db, start = gw / "gateway.db", now - a.days * 86400
    t0 = time.perf_counter()
    counts = build(db, site, start, now, a.changes or a.assets * 100, a.tickets, a.seed, live=a.live,
                   cancelled=0.02, callback_rate=0.95, timeline=True)
    counts |= seed_patrols(db, site, start, now - 3600, a.seed)
    counts["inspections"] = seed_inspections(db, site, start, now, a.seed)
    counts["devices"] = seed_devices(db, site, now, a.seed)
    counts["dead letters"] = seed_dead_letters(gw / "outbox.db", a.dead_letters, now, a.seed)
    _LOG.info("seeded in %.1f s: %s (gateway.db %.0f MB)", time.perf_counter() - t0,
              ", ".join(f"{n:,} {k}" for k, n in counts.items()), db.stat().st_size / 1e6)
    return site, counts


def seed_readings(influx: Influxd, site: Site, n: int, now: float, seed: int) -> list[str]:
    """A day of readings at one a minute for ``n`` assets (every field of their kind); returns their ids."""
    rng = random.Random(seed)
    chosen = rng.sample([x for x in site.assets if x.kind], min(n, len(site.assets)))
    urllib.request.urlopen(urllib.request.Request(
        f"{influx.url}/query", data=f"q=CREATE DATABASE {DB}".encode(), method="POST"), timeout=30).close()
    lines: list[str] = []
    for x in chosen:
        kind = KINDS[x.kind or ""]
        tags = f"{kind.name},site={SITE},device={x.device},asset={x.id},category={x.category}"
        for minute in range(24 * 60):
            fields = ",".join(f"{name}={'true' if spec.type is bool else round(rng.uniform(0.2, 1.5), 3)}"
                              for name, spec in kind.fields.items())
            lines.append(f"{tags} {fields} {int((now - 86400 + minute * 60) * 1e6)}")
    for i in range(0, len(lines), 20_000):
        req = urllib.request.Request(f"{influx.url}/write?db={DB}&precision=u",
                                     data="\n".join(lines[i:i + 20_000]).encode(), method="POST")
        urllib.request.urlopen(req, timeout=60).close()
    _LOG.info("%d readings for %d assets in InfluxDB", len(lines), len(chosen))
    return [x.id for x in chosen]


@contextlib.contextmanager
def gateway(d: Path, mosq: Mosquitto, influx: Influxd) -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    """``python -m gateway run`` on the folder; yields (process, API port, installer token); SIGTERM at the end."""
    env = dict(os.environ, GATEWAY_MQTT_URL=mosq.url, GATEWAY_INFLUX_URL=influx.url, GATEWAY_INFLUX_API="v1",
               GATEWAY_INFLUX_DB=DB, GATEWAY_SITE=SITE, GATEWAY_GATEWAY_ID="gw", GATEWAY_DATA_DIR=str(d / "gw"),
               GATEWAY_API_BIND="127.0.0.1:0", GATEWAY_SITE_FILE=str(d / "site.toml"))
    with open(d / "gateway.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(d / "gateway.toml")],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    try:
        t0, end = time.monotonic(), time.monotonic() + 180
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {proc.returncode}; see {d / 'gateway.log'}")
            with contextlib.suppress(OSError, ValueError, KeyError):
                port = int((d / "gw" / "api.port").read_text())
                token = (d / "gw" / "api-token").read_text().strip()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=10) as r:
                    if json.load(r)["mqtt"]["connected"]:
                        break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"gateway not ready after 180 s; see {d / 'gateway.log'}")
        _LOG.info("gateway pid %d ready in %.1f s on port %d", proc.pid, time.monotonic() - t0, port)
        yield proc, port, token
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def log_in(c: Client, token: str, patience_s: float = 180.0) -> str:
    """A manager made by the installer's token (an admin), logged in, password changed: the session cookie.
    Each step is retried while the gateway answers 5xx or not at all (a database locked by a long write)."""
    admin = {"Authorization": f"Bearer {token}"}
    end = time.monotonic() + patience_s

    def call(what: str, path: str, headers: dict[str, str], body: dict[str, str], ok: int) -> Answer:
        while True:
            r = c.request("POST", path, headers, body)
            if r.status == ok:
                return r
            if (r.status and r.status < 500) or time.monotonic() > end:
                raise RuntimeError(f"{what}: HTTP {r.status or 'timeout'} {r.body[:200]!r}")
            _LOG.warning("%s: HTTP %s after %.0f ms; again", what, r.status or "timeout", r.ms)

    call("creating the manager", "/api/v1/users", admin,
         {"name": MANAGER, "role": "manager", "password": PASSWORD + "-tmp"}, 201)
    r = call("logging in", "/api/v1/auth/login", {}, {"user": MANAGER, "password": PASSWORD + "-tmp"}, 200)
    cookie = r.headers.get("set-cookie", "").split(";", 1)[0]
    call("changing the password", "/api/v1/auth/password", {"Cookie": cookie},
         {"current": PASSWORD + "-tmp", "new": PASSWORD}, 200)
    return cookie


def callbacks_indexed(db: Path) -> bool:
    """Whether ``callbacks`` has an index led by ``ticket`` (without one, each tick scanned it per closed
    ticket: about 50 s a tick at 50,000 tickets, before the schema had it)."""
    conn = sqlite3.connect(db)
    try:
        return any(conn.execute(f"PRAGMA index_info({name!r})").fetchone()[2] == "ticket"
                   for _, name, *_ in conn.execute("PRAGMA index_list(callbacks)"))
    finally:
        conn.close()


def died(proc: subprocess.Popen[bytes], log: Path, exc: OSError) -> str:
    """Why the gateway stopped answering: its exit status and the first fatal error of its log."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    lines = log.read_text(errors="replace").splitlines()
    fatal = next((i for i, line in enumerate(lines) if " CRITICAL " in line), None)
    why = ""
    if fatal is not None:
        cause = next((line for line in lines[fatal + 1:] if line and not line.startswith((" ", "Traceback"))), "")
        why = f": {lines[fatal].split(' CRITICAL ', 1)[1]} ({cause})"
    text = f"the gateway stopped answering ({exc.__class__.__name__}), exit status {proc.poll()}{why}"
    _LOG.error("%s", text)
    return text


# -- routes ----------------------------------------------------------------------------------------
@dataclass
class Route:
    name: str
    group: str  # list | detail | dashboard
    path: Callable[[], str]
    admin: bool = False  # the installer's token (admin) instead of the manager's cookie
    ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # the failed request's HTTP status (or "timeout") -> 1
    count: int = 0  # requests to time
    served: int = 0  # bytes of the last answer, as served (gzipped or not)
    raw: int = 0  # the same, uncompressed

    @property
    def target_ms(self) -> float:
        return DASHBOARD_MS if self.group == "dashboard" else LIST_MS


def routes(a: argparse.Namespace, site: Site, charted: list[str], rng: random.Random) -> list[Route]:
    ids = [x.id for x in site.assets]

    def fixed(p: str) -> Callable[[], str]:
        return lambda: p

    lists = [
        "/api/v1/tickets", "/api/v1/tickets?status=open&status=acknowledged&status=on_site&sort=deadline",
        "/api/v1/tickets?callback_due=true", "/api/v1/assets", "/api/v1/assets?state=faulty", "/api/v1/devices",
        "/api/v1/taps", "/api/v1/inspections", "/api/v1/checkpoints", "/api/v1/rounds", "/api/v1/dead-letters",
    ]
    out = [Route(p, "list", fixed(p)) for p in lists]
    out.append(Route("/api/v1/users", "list", fixed("/api/v1/users"), admin=True))
    out += [
        Route("/api/v1/tickets/{id}", "detail", lambda: f"/api/v1/tickets/{rng.randint(1, a.tickets)}"),
        Route("/api/v1/assets/{id}/states", "detail", lambda: f"/api/v1/assets/{rng.choice(ids)}/states"),
        Route("/api/v1/assets/{id}/readings?hours=24", "detail",
              lambda: f"/api/v1/assets/{rng.choice(charted or ids)}/readings?hours=24"),
        Route("/api/v1/dashboard", "dashboard", fixed("/api/v1/dashboard")),
        Route("/api/v1/commitments", "dashboard", fixed("/api/v1/commitments")),
    ]
    return out


def measure(c: Client, rts: list[Route], cookie: str, token: str, a: argparse.Namespace) -> int:
    """``--requests`` requests of each route, taken in turn, after ``--warmup`` each; ``--heavy-requests``
    only of the dashboard's routes and of any route whose warm-up took over ``SLOW_MS`` on average. A route's
    first failed request (an error status, or no answer within ``--timeout``) ends its timing, and nothing
    is requested past ``--budget`` seconds: a broken gateway cannot make the run endless. Returns the rounds
    done."""
    n, deadline = a.requests, time.monotonic() + a.budget
    auth = {"Cookie": cookie, "Accept-Encoding": "gzip"}
    admin = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}

    def get(r: Route) -> Answer | None:
        if r.errors or time.monotonic() > deadline:
            return None
        ans = c.request("GET", r.path(), admin if r.admin else auth)
        if ans.status != 200:
            r.errors[str(ans.status or "timeout")] = 1
            _LOG.warning("%s: %s after %.0f ms, not timed further %s", r.name, ans.status or "no answer", ans.ms,
                         ans.body[:200])
            return None
        return ans

    for r in rts:
        spent = [ans.ms for _ in range(max(1, a.warmup)) if (ans := get(r)) is not None]
        slow = bool(spent) and sum(spent) / len(spent) > SLOW_MS
        r.count = a.heavy_requests if r.group == "dashboard" or slow else n
    t0 = time.monotonic()
    for i in range(n):
        if time.monotonic() > deadline:
            _LOG.warning("time budget (--budget %.0f s) spent at round %d/%d", a.budget, i, n)
            return i
        for r in rts:
            if (i + 1) * r.count // n == i * r.count // n:
                continue
            ans = get(r)
            if ans is not None:
                r.ms.append(ans.ms)
                r.served = len(ans.body)
                r.raw = len(gzip.decompress(ans.body)) if ans.headers.get("content-encoding") == "gzip" else r.served
        if (i + 1) % max(1, n // 5) == 0:
            _LOG.info("round %d/%d (%.0f s)", i + 1, n, time.monotonic() - t0)
    return n


# -- pages -----------------------------------------------------------------------------------------
def page_weight(c: Client, page: str, cookie: str) -> dict[str, Any]:
    """The page and every /static/ file it pulls in (recursively), as served with ``Accept-Encoding: gzip``."""
    headers = {"Cookie": cookie, "Accept-Encoding": "gzip"}
    r = c.request("GET", page, headers)
    if r.status == 404:
        return {"page": page, "status": "missing"}
    if r.status != 200:
        return {"page": page, "status": f"HTTP {r.status}" + (f" to {r.headers['location']}"
                                                              if "location" in r.headers else "")}
    files: list[dict[str, Any]] = []
    seen: set[str] = set()
    queue: list[tuple[str, Answer]] = [(page, r)]
    while queue:
        url, ans = queue.pop(0)
        gzipped = ans.headers.get("content-encoding") == "gzip"
        raw = gzip.decompress(ans.body) if gzipped else ans.body
        files.append({"url": url, "status": ans.status, "served": len(ans.body), "raw": len(raw),
                      "gzip": len(ans.body) if gzipped else _gzip_len(raw), "gzipped": gzipped,
                      "type": ans.headers.get("content-type", "")})
        text = raw.decode("utf-8", errors="replace")
        kind = ans.headers.get("content-type", "")
        refs = list(_REF.findall(text)) if "html" in kind else []
        if "javascript" in kind:
            refs += _IMPORT.findall(text)
        if "css" in kind:
            refs += [x or y for x, y in _CSS_URL.findall(text)]
        for ref in refs:
            target = urljoin(url, ref)
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path.startswith("/static/") or target in seen:
                continue
            seen.add(target)
            queue.append((target, c.request("GET", target, headers)))
    return {"page": page, "status": "ok", "files": files,
            "served": sum(f["served"] for f in files), "raw": sum(f["raw"] for f in files),
            "gzip": sum(f["gzip"] for f in files), "gzipped": any(f["gzipped"] for f in files),
            "missing": [f["url"] for f in files if f["status"] != 200]}


# -- the run ---------------------------------------------------------------------------------------
def run(a: argparse.Namespace, d: Path) -> dict[str, Any]:
    now, failure, rounds = time.time(), None, 0
    site, counts = prepare(a, d, now)
    indexed = callbacks_indexed(d / "gw" / "gateway.db")
    if not indexed:
        _LOG.warning("the callbacks table has no index on ticket: the ticket watch will scan it every second")
    mosq, influx = Mosquitto(d / "mosquitto", persistence=False), Influxd(d / "influxd")
    try:
        mosq.start()
        influx.start()
        charted = seed_readings(influx, site, a.readings_assets, now, a.seed)
        with gateway(d, mosq, influx) as (proc, port, token):
            c = Client(port, a.timeout)
            try:
                cookie = log_in(c, token)
                time.sleep(2.0)  # the first ticks (escalations of the live tickets) pass
                cpu0, t0 = cpu_s(proc.pid), time.monotonic()
                time.sleep(a.idle_s)
                idle = (cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0)
                _LOG.info("gateway idle: %.0f %% of a core, %.0f MB RSS", idle * 100, rss_mb(proc.pid))
                rts = routes(a, site, charted, random.Random(a.seed))
                cpu0, t0 = cpu_s(proc.pid), time.monotonic()
                pages: list[dict[str, Any]] = []
                try:
                    rounds = measure(c, rts, cookie, token, a)
                    busy = (cpu_s(proc.pid) - cpu0, time.monotonic() - t0)
                    pages = [page_weight(c, p, cookie) for p in PAGES]
                    rss = rss_mb(proc.pid)
                except OSError as exc:  # the gateway went away: say why, keep what was measured
                    busy, rss = (0.0, time.monotonic() - t0), 0.0
                    failure = died(proc, d / "gateway.log", exc)
            finally:
                c.close()
    finally:  # by PID, also on Ctrl-C or SIGTERM; a server not started has nothing to stop
        influx.stop()
        mosq.stop()
    return {
        "rounds": rounds,
        "config": {"assets": a.assets, "tickets": a.tickets, "days": a.days, "requests": a.requests,
                   "heavy_requests": a.heavy_requests, "warmup": a.warmup, "seed": a.seed},
        "failure": failure, "seeded": counts,
        "callbacks_index": {"present": indexed},
        "machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0]},
        "gateway": {"idle_cpu": round(idle, 3), "rss_mb": round(rss, 1), "cpu_s": round(busy[0], 1),
                    "wall_s": round(busy[1], 1)},
        "routes": [{"route": r.name, "group": r.group, "n": len(r.ms), "errors": r.errors,
                    "p50_ms": percentile(r.ms, 50) if r.ms else None,
                    "p95_ms": percentile(r.ms, 95) if r.ms else None,
                    "p99_ms": percentile(r.ms, 99) if r.ms else None, "max_ms": max(r.ms) if r.ms else None,
                    "bytes": r.served, "raw_bytes": r.raw, "target_ms": r.target_ms,
                    "pass": bool(r.ms) and not r.errors and percentile(r.ms, 95) < r.target_ms} for r in rts],
        "pages": [{**p, "target_kb": PAGE_KB,
                   "pass": p["status"] == "ok" and not p["missing"] and p["served"] / 1000 < PAGE_KB}
                  for p in pages],
    }


def report(res: dict[str, Any]) -> str:
    """The tables and the verdict, in Markdown."""
    cfg, g, ix = res["config"], res["gateway"], res["callbacks_index"]
    index = "present" if ix["present"] else "none"
    out = [f"\nFAILED: {res['failure']}\n"] if res["failure"] else []
    out += [f"\nAPI, {cfg['assets']:,} assets, {cfg['tickets']:,} tickets, {cfg['days']} days of history "
            f"({', '.join(f'{n:,} {k}' for k, n in res['seeded'].items())}); {cfg['requests']} requests per "
            f"route ({cfg['heavy_requests']} for the dashboard's), one keep-alive connection, manager session "
            f"cookie (/users: the installer's token). Index on callbacks(ticket): {index}.\n",
            "| route | n | p50 ms | p95 ms | p99 ms | max ms | KB served | KB raw | target p95 | |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["routes"]:
        errors = f" ({', '.join(f'{k}: {v}' for k, v in r['errors'].items())})" if r["errors"] else ""
        if not r["n"]:
            errors = errors or " (not reached)"
            out.append(f"| `{r['route']}` | 0 | | | | | | | < {r['target_ms']:.0f} ms | FAIL{errors} |")
            continue
        out.append(f"| `{r['route']}` | {r['n']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                   f"{r['max_ms']:.1f} | {r['bytes'] / 1000:.1f} | {r['raw_bytes'] / 1000:.1f} | "
                   f"< {r['target_ms']:.0f} ms | {'pass' if r['pass'] else 'FAIL'}{errors} |")
    if res["rounds"] < cfg["requests"] and not res["failure"]:
        out.append(f"\nThe time budget was spent after {res['rounds']} of {cfg['requests']} rounds.")
    out.append("\n`/api/v1/assets` is measured at its default page size (limit=500); `/api/v1/tickets` at 100. "
               "KB served: the answer as served (gzipped when the gateway gzips it); KB raw: uncompressed. "
               f"Routes slower than {SLOW_MS:.0f} ms in the warm-up are timed {cfg['heavy_requests']} times.\n")
    busy = (f", {g['cpu_s']:.1f} CPU s over the {g['wall_s']:.0f} s of requests, {g['rss_mb']:.0f} MB RSS"
            if not res["failure"] else "")
    out.append(f"Gateway: {g['idle_cpu'] * 100:.0f} % of a core when idle{busy}.\n")
    if res["pages"]:
        out += ["| page | files | KB transferred | KB uncompressed | KB if gzipped | target | |",
                "|---|---|---|---|---|---|---|"]
    for p in res["pages"]:
        if p["status"] != "ok":
            out.append(f"| `{p['page']}` | {p['status']} | | | | < {PAGE_KB:.0f} KB | - |")
            continue
        extra = f" (missing: {', '.join(p['missing'])})" if p["missing"] else ""
        out.append(f"| `{p['page']}` | {len(p['files'])}{extra} | {p['served'] / 1000:.1f} | {p['raw'] / 1000:.1f} | "
                   f"{p['gzip'] / 1000:.1f} | < {PAGE_KB:.0f} KB | {'pass' if p['pass'] else 'FAIL'} |")
    ok = [p for p in res["pages"] if p["status"] == "ok"]
    if ok and not any(p["gzipped"] for p in ok):
        out.append("\nThe gateway does not gzip: pages and answers are served uncompressed.")
    if res["failure"]:
        out.append("\nTargets: not measured (the gateway failed).\n")
        return "\n".join(out)
    failed = [r["route"] for r in res["routes"] if not r["pass"]] + [p["page"] for p in res["pages"]
                                                                   if p["status"] == "ok" and not p["pass"]]
    missing = [p["page"] for p in res["pages"] if p["status"] != "ok"]
    out.append(f"\nTargets: {'all met' if not failed else 'missed by ' + ', '.join(failed)}"
               + (f"; pages not served: {', '.join(missing)}" if missing else "") + ".\n")
    return "\n".join(out)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", type=int, default=10_000)
    ap.add_argument("--tickets", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=365, help="days of history (tickets, ledger, patrols, inspections)")
    ap.add_argument("--changes", type=int, default=0, help="ledger entries (default 100 per asset)")
    ap.add_argument("--live", type=int, default=200, help="live tickets among --tickets")
    ap.add_argument("--checkpoints", type=int, default=40)
    ap.add_argument("--dead-letters", type=int, default=5000)
    ap.add_argument("--readings-assets", type=int, default=50, help="assets with a day of readings in InfluxDB")
    ap.add_argument("--requests", type=int, default=200, help="timed requests per list or detail route")
    ap.add_argument("--heavy-requests", type=int, default=30, help="timed requests of the dashboard's routes")
    ap.add_argument("--warmup", type=int, default=3, help="untimed requests per route first")
    ap.add_argument("--idle-s", type=float, default=35.0,
                    help="seconds to measure the idle gateway's CPU (past its start-up work and one refresh "
                         "of the running month)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds: a route answering later is not timed further")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds of requests at most (warm-up included)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="the results as JSON on stdout instead of tables")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, databases)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped like Ctrl-C: every server is stopped on the way out
    tmp = tempfile.mkdtemp(prefix="fm-bench-api-")
    try:
        res = run(a, Path(tmp))
    except RuntimeError as exc:  # the gateway did not start, or refused to log the manager in
        _LOG.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        _LOG.error("interrupted: servers stopped")
        return 130
    finally:
        if a.keep:
            _LOG.info("kept %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.write(json.dumps(res, indent=1) + "\n" if a.json else report(res))
    return 1 if res["failure"] or any(r["errors"] for r in res["routes"]) else 0


if __name__ == "__main__":
    sys.exit(main())
