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
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed import TZ, build, make_site  # noqa: E402
from gateway.commitments.monthly import Commitments  # noqa: E402
from gateway.commitments.periods import parse_period  # noqa: E402

_LOG = logging.getLogger("bench.commitments")


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
    site = make_site(a.assets, a.seed)
    with tempfile.TemporaryDirectory(prefix="fm-bench-commitments-") as tmp:
        db = a.db or Path(tmp) / "gateway.db"
        if not db.exists():
            t0 = time.perf_counter()
            year = parse_period("2026", TZ)
            for what, n in build(db, site, year.start, year.end, a.changes, a.tickets, a.seed).items():
                _LOG.info("%s: %d", what, n)
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
