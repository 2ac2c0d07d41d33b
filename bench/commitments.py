"""How fast the commitment figures come out of a big site's history.

    .venv/bin/python bench/commitments.py --assets 10000 --changes 1000000 --tickets 50000

Builds a gateway database (the real schema, through gateway.tickets) with a year of
asset state transitions and tickets with callbacks, spread over the year, then times:
the monthly report (``Commitments.month``: load + every indicator, the previous month
included), the same month without the previous one, and the yearly figures
(``Commitments.compute`` over 2026). Each is the best of ``--repeat`` runs; the database
is built once into ``--db`` (reused when it exists, so a rerun only measures).
"""

from __future__ import annotations

import argparse
import logging
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.commitments.monthly import Commitments  # noqa: E402
from gateway.commitments.periods import parse_period  # noqa: E402
from gateway.site import Site, SiteModel  # noqa: E402
from gateway.tickets import TicketStore  # noqa: E402

_LOG = logging.getLogger("bench.commitments")
TZ = ZoneInfo("Asia/Shanghai")
CATEGORIES = (("lighting", "streetlight", 0.6), ("fire", "fire_extinguisher", 0.25), ("drainage", "drain_level", 0.15))


def make_site(n: int) -> Site:
    assets = []
    for i in range(n):
        x, cat = random.random(), None
        for category, kind, share in CATEGORIES:
            if x < share:
                cat = (category, kind)
                break
            x -= share
        category, kind = cat or CATEGORIES[-1][:2]
        assets.append({"id": f"A{i:05d}", "category": category, "kind": kind, "device": f"d{i:05d}",
                       "building": str(i % 20)})
    return Site.from_model(SiteModel.model_validate({"assets": assets}))


def build(db: Path, site: Site, changes: int, tickets: int, seed: int) -> None:
    rng = random.Random(seed)
    year = parse_period("2026", TZ)
    store = TicketStore(db, TZ)
    ids = [a.id for a in site.assets]
    per_asset = max(1, changes // len(ids))
    rows = []
    for a in ids:
        rows.append((a, year.start - 86400, "unknown", "", "in_service"))
        times = sorted(rng.uniform(year.start, year.end) for _ in range(per_asset - 1))
        state = "intact"
        for t in times:
            rows.append((a, t, state, "lamp_out" if state == "faulty" else "", "reading"))
            state = rng.choices(("intact", "faulty", "unknown"), (0, 0.8, 0.2))[0] if state == "intact" else "intact"
    with store.transaction() as conn:
        conn.executemany("INSERT INTO asset_states (asset, at, state, faults, cause) VALUES (?, ?, ?, ?, ?)", rows)
    _LOG.info("%d ledger entries", len(rows))
    with store.transaction() as conn:
        for i in range(tickets):
            opened = rng.uniform(year.start, year.end - 3 * 86400)
            ack = opened + rng.expovariate(1 / 1200)
            resolved = ack + rng.expovariate(1 / 20000)
            closed = resolved + rng.uniform(600, 86400)
            priority = rng.choice(("emergency", "urgent", "general"))
            cur = conn.execute(
                "INSERT INTO tickets (subject, asset, category, fault, priority, status, title, source, opened_at, "
                "opened_by, clocks_from, respond_by, arrive_by, resolve_by, acknowledged_at, acknowledged_by, "
                "on_site_at, resolved_at, closed_at, last_occurrence_at, reworks, callback_due) "
                "VALUES (NULL, ?, 'lighting', 'lamp_out', ?, 'closed', 't', 'sensor', ?, 'sensor', ?, ?, ?, ?, ?, "
                "'m', ?, ?, ?, ?, ?, ?)",
                (ids[i % len(ids)], priority, opened, opened, opened + 900, opened + 1800, opened + 86400, ack,
                 ack + 600, resolved, closed, opened, int(rng.random() < 0.02), closed + 86400))
            if rng.random() < 0.6:
                conn.execute("INSERT INTO callbacks (ticket, at, by, channel, score) VALUES (?, ?, 'k', 'phone', ?)",
                             (cur.lastrowid, closed + rng.uniform(0, 86400), rng.randint(1, 5)))
    _LOG.info("%d tickets", tickets)
    store.close()


def best(fn: object, repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out = min(out, time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", type=int, default=10_000)
    ap.add_argument("--changes", type=int, default=1_000_000)
    ap.add_argument("--tickets", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", type=Path, help="where to build (and reuse) the database")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    random.seed(a.seed)
    site = make_site(a.assets)
    with tempfile.TemporaryDirectory(prefix="fm-bench-commitments-") as tmp:
        db = a.db or Path(tmp) / "gateway.db"
        if not db.exists():
            t0 = time.perf_counter()
            build(db, site, a.changes, a.tickets, a.seed)
            _LOG.info("built %s in %.1f s", db, time.perf_counter() - t0)
        c = Commitments(db, site)
        now = parse_period("2027-01", TZ).start + 86400
        year = parse_period("2026", TZ)
        month_s = best(lambda: c.compute(parse_period("2026-06", TZ), now, "2026-06"), a.repeat)
        report_s = best(lambda: c.month("2026-06", now), a.repeat)
        year_s = best(lambda: c.compute(year, now, "2026"), a.repeat)
        c.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(
        f"\nCommitments, {a.assets:,} assets, {a.changes:,} ledger entries and {a.tickets:,} tickets over 2026:\n\n"
        f"| what | seconds (best of {a.repeat}) |\n|---|---|\n"
        f"| one month, every indicator | {month_s:.3f} |\n"
        f"| monthly report (the month and the one before, frozen after the first run) | {report_s:.3f} |\n"
        f"| the year, every indicator | {year_s:.3f} |\n\npeak RSS {rss:.0f} MB\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
