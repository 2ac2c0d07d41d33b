"""Plain data the commitment formulas work on (物业服务承诺指标), read from the gateway's stores.

Times are epoch seconds; periods are half-open ``[start, end)``. Nothing here reads a
clock or a database: the engine is pure, so a month is computed the same way live, in a
replay and in a test.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ratio:
    """A figure with what it is made of: ``num / den``; no denominator means no figure."""

    num: float
    den: float

    @property
    def value(self) -> float | None:
        return self.num / self.den if self.den > 0 else None


@dataclass(frozen=True, slots=True)
class Period:
    start: float
    end: float

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise ValueError(f"a period must end after it starts ({self.start} .. {self.end})")

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Change:
    """One ledger entry: from ``at`` on, the asset is ``state`` (intact, faulty or unknown)."""

    at: float
    state: str


@dataclass(frozen=True, slots=True)
class AssetInfo:
    id: str
    category: str
    kind: str | None = None
    building: str = ""
    zone: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the repair indicators need of a ticket (cancelled tickets are never counted)."""

    id: int
    asset: str | None
    fault: str
    priority: str
    status: str
    opened_at: float
    clocks_from: float
    respond_by: float | None
    arrive_by: float | None
    resolve_by: float | None
    acknowledged_at: float | None
    on_site_at: float | None
    resolved_at: float | None
    closed_at: float | None
    reworks: int
    category: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackFacts:
    ticket: int
    at: float
    score: int
