"""Monthly figures, computed on demand and frozen once the month is over.

A published month must not move when the asset list or a ticket changes later: the
first report of a closed month (or the gateway's check after month end) stores it; a
later recomputation that differs is reported beside the frozen figures, never applied.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from gateway import events, schema
from gateway.commitments import data, engine, notice
from gateway.commitments.model import Period
from gateway.commitments.periods import is_month, month_of, parse_period, previous_month
from gateway.outbox import connect
from gateway.site import Site

_LOGGER = logging.getLogger(__name__)
_COMPARED = ("value", "num", "den", "met")
RUNNING_EVERY_S = 30.0  # the commitments thread recomputes the running month this often
RUNNING_MAX_AGE_S = 2 * RUNNING_EVERY_S  # older than this (the thread is late or not running): computed anew
FRESH_S = 5.0  # after something happened, the running month is computed anew once this old


class Commitments:
    """Reads the gateway's database with a connection of its own (WAL: never blocks ingest)."""

    def __init__(self, db_path: Path, site: Site) -> None:
        self.db = connect(db_path)
        schema.migrate(self.db, schema.GATEWAY)  # its tables: gateway/schema.py
        self.current = site  # replaced when the site file is reloaded
        self._lock = threading.Lock()
        #: The running month as last computed: for which site, when, after which event, the report.
        self._running: tuple[Site, float, int, dict[str, Any]] | None = None

    def site(self) -> Site:
        return self.current

    def compute(self, period: Period, now: float, label: str = "", at: float | None = None) -> dict[str, Any]:
        """Every indicator over ``period``; ``at`` moves the intact rates' snapshot to that instant."""
        if at is not None and not (period.start <= at < period.end and at <= now):
            raise ValueError("the snapshot instant must lie inside the period and not in the future")
        site = self.site()
        with self._lock:
            facts = data.load(self.db, site, period)
        results = engine.evaluate(site.commitments, facts, period, now, site.tz, at)
        notice.explain(results)
        return {"period": {"label": label, "start": period.start, "end": period.end}, "computed_at": now,
                "results": results}

    def month(self, month: str, now: float, with_previous: bool = True) -> dict[str, Any]:
        """A month's report: frozen if it is over, live (with forecasts) if it is running."""
        site = self.site()
        if not is_month(month):
            raise ValueError(f"{month!r} is not a month (2026-11)")
        period = parse_period(month, site.tz)
        report = {"month": month, **self.compute(period, now, month)}
        if period.end <= now:
            frozen = self._frozen(month)
            if frozen is None:
                self._freeze(month, report, now)
                report["frozen_at"] = now
            else:
                fresh = {r["id"]: r for r in report["results"]}
                frozen["differs"] = [r["id"] for r in frozen["results"]
                                     if any(fresh.get(r["id"], {}).get(k) != r.get(k) for k in _COMPARED)]
                report = frozen
        if with_previous:  # last month as published: its frozen figures, computed only if never frozen
            before = previous_month(month)
            report["previous"] = (self._frozen(before) or self.month(before, now, with_previous=False))["results"]
        return report

    def running(self, now: float, max_age_s: float = RUNNING_MAX_AGE_S) -> dict[str, Any]:
        """The running month's figures as last computed (the gateway's commitments thread recomputes them
        every ``RUNNING_EVERY_S``): a dashboard asks often, and on a site of 10,000 assets one computation
        takes most of a second of a Raspberry Pi. They are served while at most ``max_age_s`` old and
        nothing was recorded since (a ticket, an asset's state), or at most ``FRESH_S`` old whatever
        happened: what a repairer just did shows within seconds."""
        site, cached, last_event = self.current, self._running, self._last_event()
        if cached is not None and cached[0] is site and cached[3]["month"] == month_of(now, site.tz):
            age = now - cached[1]
            if 0 <= age <= min(max_age_s, FRESH_S) or (0 <= age <= max_age_s and cached[2] == last_event):
                return cached[3]
        report = self.month(month_of(now, site.tz), now)
        self._running = (site, now, last_event, report)
        return report

    def _last_event(self) -> int:
        with self._lock:
            return events.newest_id(self.db)

    def freeze_due(self, now: float) -> str | None:
        """Freeze the month just ended if nobody asked for it yet (called from the gateway's tick)."""
        site = self.site()
        last = previous_month(month_of(now, site.tz))
        if self._frozen(last) is not None:
            return None
        self.month(last, now, with_previous=False)
        _LOGGER.info("commitment figures of %s frozen", last)
        return last

    def _frozen(self, month: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT frozen_at, report FROM commitment_months WHERE month = ?",
                                  (month,)).fetchone()
        if row is None:
            return None
        return {**json.loads(row[1]), "frozen_at": row[0]}

    def _freeze(self, month: str, report: dict[str, Any], now: float) -> None:
        with self._lock:
            self.db.execute("INSERT OR IGNORE INTO commitment_months (month, frozen_at, report) VALUES (?, ?, ?)",
                            (month, now, json.dumps(report, ensure_ascii=False)))

    def close(self) -> None:
        with self._lock:
            self.db.close()
