"""Repair service indicators (维修服务承诺指标) over ticket and callback facts: pure functions.

Each indicator is a :class:`Ratio` with what it is made of: ``counted`` holds the ticket
ids in the denominator and ``evidence`` the ids behind the misses (for a "≤" target such
as 二次返修率, the ids in the numerator), both sorted, so a posted figure can always be
traced back to tickets. Periods are half-open ``[start, end)``; cancelled tickets are never
counted. Nothing here reads a clock: ``now`` is passed in where "already passed" matters.

The facts are a ticket's *current* state: a reopened ticket (rework) has its steps cleared
and its clocks restarted, so it counts again where its new resolution or close falls.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from gateway.commitments.model import CallbackFacts, Period, Ratio, TicketFacts
from gateway.sla import CLOCKS

SATISFIED_MIN_SCORE = 4
"""Callbacks scored 4 (满意) or 5 (很满意) are satisfied; 1 (很不满意) to 3 are not."""

_CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Indicator:
    """One computed indicator: the figure, the ids behind its misses and the ids it counted."""

    ratio: Ratio
    evidence: tuple[int, ...]
    counted: tuple[int, ...]

    @property
    def value(self) -> float | None:
        return self.ratio.value


@dataclass(frozen=True, slots=True)
class Timeliness(Indicator):
    """零修急修及时率, with each SLA clock's own figure over the same counted tickets.

    ``per_clock`` maps respond, arrive and resolve to met / counted tickets having that
    clock; ``per_clock_evidence`` to the ids that missed it (sorted).
    """

    per_clock: Mapping[str, Ratio]
    per_clock_evidence: Mapping[str, tuple[int, ...]]


def _in(at: float, period: Period) -> bool:
    return period.start <= at < period.end


def timeliness(tickets: Sequence[TicketFacts], period: Period, now: float) -> Timeliness:
    """零修急修及时率: tickets that met every SLA clock / tickets counted in ``period``.

    A ticket counts in the period in which it was resolved (``resolved_at``; a ticket
    closed without a resolution, e.g. a fault that cleared by itself, at ``closed_at``),
    or, while unresolved, in the period in which its resolve deadline passed, as a miss,
    once it has passed at ``now`` (strictly after the deadline, as in
    :func:`gateway.sla.clock_state`). An unresolved ticket without a resolve clock is
    not counted until it is resolved.

    A clock is met when its step happened at or before its deadline (respond:
    ``acknowledged_at``, arrive: ``on_site_at``, resolve: the resolution). A step never
    taken is a miss only if its deadline passed before the resolution (an arrival skipped
    by a remote fix done in time is no miss), or, for an unresolved ticket, before ``now``.
    """
    counted: list[int] = []
    missed: list[int] = []
    has = dict.fromkeys(CLOCKS, 0)
    clock_missed: dict[str, list[int]] = {name: [] for name in CLOCKS}
    start, end = period.start, period.end
    for t in tickets:
        if t.status == _CANCELLED:
            continue
        stop = t.resolved_at if t.resolved_at is not None else t.closed_at
        if stop is not None:
            if not start <= stop < end:
                continue
            judged_at = stop
        else:
            resolve_by = t.resolve_by
            if resolve_by is None or not (start <= resolve_by < end and resolve_by < now):
                continue
            judged_at = now
        ok = True
        for name, deadline, done in (
            ("respond", t.respond_by, t.acknowledged_at),
            ("arrive", t.arrive_by, t.on_site_at),
            ("resolve", t.resolve_by, stop),
        ):
            if deadline is None:
                continue
            has[name] += 1
            if (deadline < judged_at) if done is None else (done > deadline):
                ok = False
                clock_missed[name].append(t.id)
        counted.append(t.id)
        if not ok:
            missed.append(t.id)
    return Timeliness(
        ratio=Ratio(len(counted) - len(missed), len(counted)),
        evidence=tuple(sorted(missed)),
        counted=tuple(sorted(counted)),
        per_clock=MappingProxyType({n: Ratio(has[n] - len(clock_missed[n]), has[n]) for n in CLOCKS}),
        per_clock_evidence=MappingProxyType({n: tuple(sorted(clock_missed[n])) for n in CLOCKS}),
    )


def _closed_in(tickets: Iterable[TicketFacts], period: Period) -> list[TicketFacts]:
    start, end = period.start, period.end
    return [t for t in tickets
            if t.closed_at is not None and start <= t.closed_at < end and t.status != _CANCELLED]


def _indicator(num: int, den: int, evidence: Iterable[int], counted: Iterable[int]) -> Indicator:
    return Indicator(ratio=Ratio(num, den), evidence=tuple(sorted(evidence)), counted=tuple(sorted(counted)))


def first_time_fix(tickets: Sequence[TicketFacts], period: Period) -> Indicator:
    """维修工程质量合格率: tickets closed in ``period`` never reworked / tickets closed in ``period``.

    A ticket counts where its (last) close falls, whenever it was opened; evidence: the
    closed tickets that were reworked (reopened, or the fault returned within 30 days).
    """
    closed = _closed_in(tickets, period)
    reworked = [t.id for t in closed if t.reworks > 0]
    return _indicator(len(closed) - len(reworked), len(closed), reworked, (t.id for t in closed))


def rework_rate(tickets: Sequence[TicketFacts], period: Period) -> Indicator:
    """二次返修率 (a "≤" target): tickets closed in ``period`` that were reworked / tickets closed.

    Evidence: the reworked ones (the numerator).
    """
    closed = _closed_in(tickets, period)
    reworked = [t.id for t in closed if t.reworks > 0]
    return _indicator(len(reworked), len(closed), reworked, (t.id for t in closed))


def callback_rate(tickets: Sequence[TicketFacts], callbacks: Sequence[CallbackFacts], period: Period) -> Indicator:
    """住户维修回访率: tickets closed in ``period`` with at least one callback (any time) / tickets closed.

    Evidence: the closed tickets nobody called back.
    """
    called = {c.ticket for c in callbacks}
    closed = _closed_in(tickets, period)
    uncalled = [t.id for t in closed if t.id not in called]
    return _indicator(len(closed) - len(uncalled), len(closed), uncalled, (t.id for t in closed))


def satisfaction(callbacks: Sequence[CallbackFacts], period: Period) -> Indicator:
    """物业服务满意率: callbacks made in ``period`` scored 4 or 5 / callbacks made in ``period``.

    Counted per callback, not per ticket: ``counted`` and ``evidence`` (the tickets of
    callbacks scored 1 to 3) hold one id per callback, so a ticket called back twice
    appears twice. A score outside 1..5 is a ValueError.
    """
    start, end = period.start, period.end
    counted: list[int] = []
    unhappy: list[int] = []
    for c in callbacks:
        if not start <= c.at < end:
            continue
        if not 1 <= c.score <= 5:
            raise ValueError(f"callback for ticket {c.ticket}: score must be 1 to 5, got {c.score!r}")
        counted.append(c.ticket)
        if c.score < SATISFIED_MIN_SCORE:
            unhappy.append(c.ticket)
    return _indicator(len(counted) - len(unhappy), len(counted), unhappy, counted)


def _as_set(value: str | Collection[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(value)


def filter_tickets(
    tickets: Iterable[TicketFacts],
    *,
    category: str | Collection[str] | None = None,
    assets: str | Collection[str] | None = None,
    priority: str | Collection[str] | None = None,
) -> tuple[TicketFacts, ...]:
    """The tickets inside a catalogue scope: each filter given keeps tickets matching one of its values.

    ``None`` does not filter; a single string is one value; an empty collection keeps
    nothing (an empty scope). Order is kept; cancelled tickets are left to the indicators.
    """
    categories, asset_ids, priorities = _as_set(category), _as_set(assets), _as_set(priority)
    return tuple(
        t for t in tickets
        if (categories is None or t.category in categories)
        and (asset_ids is None or t.asset in asset_ids)
        and (priorities is None or t.priority in priorities)
    )


def filter_callbacks(callbacks: Iterable[CallbackFacts], tickets: Iterable[TicketFacts]) -> tuple[CallbackFacts, ...]:
    """The callbacks of ``tickets`` (say, a scope from :func:`filter_tickets`), cancelled tickets left out."""
    ids = {t.id for t in tickets if t.status != _CANCELLED}
    return tuple(c for c in callbacks if c.ticket in ids)
