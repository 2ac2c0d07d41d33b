"""What the formulas need for one period, read from the gateway's database in a few queries.

Only the period's ledger entries (and each asset's last one before it) and the tickets
and callbacks that can count in it are read, so a month is quick whatever the history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.commitments import intact
from gateway.commitments.model import AssetInfo, CallbackFacts, Period, TicketFacts
from gateway.site import Site

CLEANOUT_S = 183 * 86400.0  # septic tanks cleaned out every six months (每半年清掏)
_TICKET_COLUMNS = ("id, asset, fault, priority, status, opened_at, clocks_from, respond_by, arrive_by, resolve_by, "
                   "acknowledged_at, on_site_at, resolved_at, closed_at, reworks, category")


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """A checkpoint visit of a patrol round that is over: ``status`` on_time is a visit made in its window."""

    round: str
    route: str
    checkpoint: str
    status: str
    guard: str | None
    due_at: float


@dataclass(frozen=True, slots=True)
class InspectionFacts:
    asset: str
    plan: str
    at: float
    passed: bool


@dataclass(frozen=True)
class SiteData:
    assets: Sequence[AssetInfo]
    ledger: intact.LedgerLike  # the ledger per asset, or an index over it
    tickets: Sequence[TicketFacts]
    callbacks: Sequence[CallbackFacts]
    visits: Sequence[VisitFacts] = ()
    inspections: Sequence[InspectionFacts] = ()  # the period's, and cleanouts of the half-year before its end


def assets_of(site: Site) -> list[AssetInfo]:
    return [AssetInfo(a.id, a.category, a.kind, a.building, a.zone, a.name) for a in site.assets]


def load(db: sqlite3.Connection, site: Site, period: Period) -> SiteData:
    """The period's facts. ``db`` is the gateway's database (any row factory)."""
    cur = db.cursor()
    cur.row_factory = None
    code = intact.CODE
    arrays: dict[str, tuple[list[float], list[int]]] = {}
    for asset, at, state in cur.execute(
            "SELECT asset, max(at), state FROM asset_states WHERE at < ? GROUP BY asset", (period.start,)):
        arrays[asset] = ([at], [code[state]])
    # The (asset, at) index gives this order without sorting; equal times come in insertion (rowid) order.
    for asset, at, state in cur.execute(
            "SELECT asset, at, state FROM asset_states WHERE at >= ? AND at < ? ORDER BY asset, at",
            (period.start, period.end)):
        entry = arrays.get(asset)
        if entry is None:
            entry = arrays[asset] = ([], [])
        entry[0].append(at)
        entry[1].append(code[state])
    # Also the tickets of the period's callbacks: satisfaction counts a callback where it was made, and
    # keeps the callbacks of the tickets in its scope (a ticket closed last month, called back this month).
    tickets = [TicketFacts(*row) for row in cur.execute(
        f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE status != 'cancelled' AND ("
        "(resolved_at >= ? AND resolved_at < ?) OR (closed_at >= ? AND closed_at < ?) OR "
        "(resolved_at IS NULL AND resolve_by >= ? AND resolve_by < ?) OR "
        "id IN (SELECT ticket FROM callbacks WHERE at >= ? AND at < ?))", (period.start, period.end) * 4)]
    callbacks = [CallbackFacts(ticket, at, score) for _, ticket, at, score in cur.execute(
        "SELECT id, ticket, at, score FROM callbacks WHERE at >= ? AND at < ? UNION "
        "SELECT c.id, c.ticket, c.at, c.score FROM callbacks c JOIN tickets t ON t.id = c.ticket "
        "WHERE t.closed_at >= ? AND t.closed_at < ?", (period.start, period.end) * 2)]
    visits = [VisitFacts(*row) for row in _rows(cur, (
        "SELECT round, route, checkpoint, status, guard, due_at FROM patrol_visits WHERE due_at >= ? AND due_at < ? "
        "ORDER BY due_at, round, seq"), (period.start, period.end))]
    inspections = [InspectionFacts(asset, plan, at, not failed) for asset, plan, at, failed in _rows(cur, (
        "SELECT asset, plan, at, failed FROM inspections WHERE at < ? AND (at >= ? OR (plan = 'septic_cleanout' "
        "AND at >= ?)) ORDER BY at"), (period.end, period.start, period.end - CLEANOUT_S))]
    return SiteData(assets_of(site), intact.LedgerIndex.from_arrays(arrays), tickets, callbacks, visits, inspections)


def _rows(cur: sqlite3.Cursor, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Rows of a neighbour's table, none when that part of the gateway has not created it yet."""
    try:
        return cur.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
