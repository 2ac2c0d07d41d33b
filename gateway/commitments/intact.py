"""Facility intact rates (完好率) from the asset state ledger: pure functions.

Formula (seed 000): 完好数量 / 总数量 × 100%, read two ways (COMMITMENTS.md):

- **snapshot**: assets intact at an instant / assets in service at that instant;
- **period**: intact asset-seconds / in-service asset-seconds over a period (time-weighted),
  with, per local calendar day, the day's weighted rate and its lowest snapshot.

Both come as a **strict** figure (``unknown`` counts against: an unverified asset is not a
kept promise; this is the committed figure) and a **known-only** figure (intact / (intact +
faulty)), always as a :class:`Ratio` so a report can show what the figure is made of.

The ledger holds, per asset id, its changes sorted by time: from ``Change.at`` on the asset
is ``Change.state``. An asset is in service from its first entry on; before it, it is not
counted at all. Several changes at the same instant: the last one is the state. Periods are
half-open ``[start, end)``: a change at ``start`` sets the state at the start, a change at
``end`` belongs to the next period. Times are epoch seconds; no function here reads a clock
or does I/O, and the time zone for day boundaries is passed in.

Speed: every function takes either the raw mapping or a :class:`LedgerIndex` built from it
once (per-asset time and state arrays, searched with ``bisect``), so a month is located in a
year of ledger without walking it. Daily figures come from one sweep over the period's
change events sorted by time, keeping the count of assets per state.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from fractions import Fraction
from operator import itemgetter

from gateway.commitments.model import Change, Period, Ratio
from gateway.rules import FAULTY, INTACT, STATES, UNKNOWN

__all__ = [
    "DayFigure",
    "Forecast",
    "LedgerIndex",
    "LedgerLike",
    "PeriodRate",
    "Snapshot",
    "daily",
    "forecast",
    "intervals",
    "lowest_daily",
    "period_rate",
    "ranking",
    "snapshot",
]

CODE = {state: code for code, state in enumerate(STATES)}  # intact 0, faulty 1, unknown 2
_CODE = CODE
_I, _F, _U = _CODE[INTACT], _CODE[FAULTY], _CODE[UNKNOWN]
_OUT = len(STATES)  # "not in service yet": a fourth slot in the count arrays, never read


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Assets per state at one instant (those in service then), and the two readings."""

    at: float
    intact: int
    faulty: int
    unknown: int
    strict: Ratio  # intact / in service (unknown counts against)
    known: Ratio  # intact / (intact + faulty)

    @property
    def in_service(self) -> int:
        return self.intact + self.faulty + self.unknown


@dataclass(frozen=True, slots=True)
class PeriodRate:
    """Asset-seconds per state over the period, and the two time-weighted readings."""

    period: Period
    intact_s: float
    faulty_s: float
    unknown_s: float
    strict: Ratio  # intact / in-service asset-seconds
    known: Ratio  # intact / (intact + faulty) asset-seconds

    @property
    def in_service_s(self) -> float:
        return self.intact_s + self.faulty_s + self.unknown_s

    @property
    def not_intact_s(self) -> float:
        return self.faulty_s + self.unknown_s


@dataclass(frozen=True, slots=True)
class DayFigure:
    """One local calendar day, clipped to the period: ``[start, end)``.

    ``strict``/``known`` are the day's time-weighted readings with its asset-seconds per
    state; ``lowest`` is the worst instant's snapshot (evaluated at the day's start and at
    every change inside it; the earliest of equal ones), ``None`` if no asset was in service
    at any instant of the day.
    """

    day: date
    start: float
    end: float
    intact_s: float
    faulty_s: float
    unknown_s: float
    strict: Ratio
    known: Ratio
    lowest: Snapshot | None


@dataclass(frozen=True, slots=True)
class Forecast:
    """Whether a period can still meet its target, in asset-seconds.

    So far is ``[period.start, now)`` (``now`` clamped into the period). The projection
    assumes every asset in service at ``now`` stays in service and intact to the end, and
    that no other asset enters service: ``total_s`` = in-service so far + ``in_service_now``
    x ``remaining_s``; ``budget_s`` = (1 - target) x ``total_s``; ``left_s`` = budget -
    ``lost_s`` (negative: the target is already out of reach); ``best_case`` is the strict
    rate at the end under that assumption. Once the period is over (``over``), nothing
    remains: ``best_case`` is the period's strict rate and ``left_s`` its slack.
    ``left_s`` and ``can_meet`` are computed exactly from the asset-second sums (rational
    arithmetic, rounded once): ``can_meet`` == ``left_s >= 0`` == ``best_case >= target``
    with no rounding disagreement at the boundary. With no asset-time at all nothing can be
    missed: ``can_meet`` is true.
    """

    period: Period
    now: float
    target: float
    over: bool
    lost_s: float  # not-intact (faulty + unknown) asset-seconds so far
    in_service_s: float  # in-service asset-seconds so far
    so_far: Ratio  # strict rate so far
    in_service_now: int
    remaining_s: float
    total_s: float
    budget_s: float
    left_s: float
    can_meet: bool
    best_case: Ratio


# --- the ledger, indexed ---------------------------------------------------------------------


class LedgerIndex:
    """The ledger as per-asset arrays of change times and state codes, built once and reused.

    Arrays are built (and checked: sorted times, known states) on an asset's first use, so
    wrapping a large ledger costs nothing until it is read; pass the same index to every
    function computing a report to build each asset's arrays once. The index keeps the
    ledger by reference and caches what it built: make a new one when the ledger changes.
    """

    __slots__ = ("_arrays", "_ledger")

    def __init__(self, ledger: Mapping[str, Sequence[Change]]) -> None:
        self._ledger = ledger
        self._arrays: dict[str, tuple[list[float], list[int]] | None] = {}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, tuple[list[float], list[int]]]) -> LedgerIndex:
        """An index over per-asset (times, state codes) already sorted, as a database query gives them:
        no Change objects in between (a year of a big site is a million entries)."""
        index = cls({})
        index._ledger = arrays  # type: ignore[assignment]  # only its keys are used once arrays are given
        index._arrays = dict(arrays)
        return index

    def __contains__(self, asset: object) -> bool:
        return asset in self._ledger

    def arrays(self, asset: str) -> tuple[list[float], list[int]] | None:
        """Change times and state codes (index into ``STATES``); ``None``: never in service."""
        try:
            return self._arrays[asset]
        except KeyError:
            pass
        changes = self._ledger.get(asset)
        built = _build(asset, changes) if changes else None
        self._arrays[asset] = built
        return built

    def state_at(self, asset: str, at: float) -> str | None:
        """The asset's state at ``at``; ``None`` before its first entry (not in service)."""
        arr = self.arrays(asset)
        if arr is None:
            return None
        i = bisect_right(arr[0], at)
        return STATES[arr[1][i - 1]] if i else None

    def intervals(self, asset: str, period: Period) -> list[tuple[float, float, str]]:
        """See :func:`intervals`."""
        arr = self.arrays(asset)
        return [] if arr is None else _intervals(arr[0], arr[1], period.start, period.end)


LedgerLike = Mapping[str, Sequence[Change]] | LedgerIndex
"""What the functions take: the raw ledger, or an index built from it once."""


def _build(asset: str, changes: Sequence[Change]) -> tuple[list[float], list[int]]:
    times = [c.at for c in changes]
    try:
        codes = [_CODE[c.state] for c in changes]
    except KeyError as e:
        raise ValueError(f"asset {asset!r}: unknown state {e.args[0]!r} (known: {', '.join(STATES)})") from None
    for k in range(1, len(times)):
        if times[k] < times[k - 1]:
            raise ValueError(f"asset {asset!r}: ledger not sorted by time at entry {k} ({times[k]} < {times[k - 1]})")
    return times, codes


def _as_index(ledger: LedgerLike) -> LedgerIndex:
    return ledger if isinstance(ledger, LedgerIndex) else LedgerIndex(ledger)


def _unique(assets: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(assets))


def _ratio(intact: float, faulty: float, unknown: float) -> tuple[Ratio, Ratio]:
    return Ratio(intact, intact + faulty + unknown), Ratio(intact, intact + faulty)


def _add_seconds(times: list[float], codes: list[int], start: float, end: float, out: list[float]) -> None:
    """Add the asset's seconds per state code in ``[start, end)`` into ``out``."""
    i = bisect_right(times, start)
    j = bisect_left(times, end)
    if i:
        t, c = start, codes[i - 1]
    elif j:  # enters service inside the period
        t, c, i = times[0], codes[0], 1
    else:
        return
    for k in range(i, j):
        nt = times[k]
        out[c] += nt - t
        t, c = nt, codes[k]
    out[c] += end - t


def _intervals(times: list[float], codes: list[int], start: float, end: float) -> list[tuple[float, float, str]]:
    i = bisect_right(times, start)
    j = bisect_left(times, end)
    if i:
        t, c = start, codes[i - 1]
    elif j:
        t, c, i = times[0], codes[0], 1
    else:
        return []
    segments: list[tuple[float, float, str]] = []
    for k in range(i, j):
        nt = times[k]
        if nt > t:  # several changes at one instant: only the last one lasts
            segments.append((t, nt, STATES[c]))
        t, c = nt, codes[k]
    segments.append((t, end, STATES[c]))
    return _merged(segments)


def _merged(segments: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    for seg in segments:
        if out and out[-1][2] == seg[2] and out[-1][1] == seg[0]:
            out[-1] = (out[-1][0], seg[1], seg[2])
        else:
            out.append(seg)
    return out


# --- the functions ---------------------------------------------------------------------------


def intervals(changes: Sequence[Change], period: Period) -> list[tuple[float, float, str]]:
    """The asset's states clipped to ``period``: ``(start, end, state)``, contiguous, merged.

    The state at ``period.start`` is the last change at or before it; nothing comes before
    the asset's first change (not in service), so the first interval may start later.
    """
    if not changes:
        return []
    times, codes = _build("?", changes)
    return _intervals(times, codes, period.start, period.end)


def snapshot(assets: Iterable[str], ledger: LedgerLike, at: float) -> Snapshot:
    """Assets per state at the instant ``at`` (a change at ``at`` counts); only those in service."""
    idx = _as_index(ledger)
    counts = [0, 0, 0, 0]
    for asset in _unique(assets):
        arr = idx.arrays(asset)
        if arr is not None:
            i = bisect_right(arr[0], at)
            if i:
                counts[arr[1][i - 1]] += 1
    return _snapshot(at, counts)


def _snapshot(at: float, counts: list[int]) -> Snapshot:
    i, f, u = counts[_I], counts[_F], counts[_U]
    strict, known = _ratio(i, f, u)
    return Snapshot(at=at, intact=i, faulty=f, unknown=u, strict=strict, known=known)


def _seconds(idx: LedgerIndex, assets: list[str], start: float, end: float) -> list[float]:
    out = [0.0, 0.0, 0.0, 0.0]
    for asset in assets:
        arr = idx.arrays(asset)
        if arr is not None:
            _add_seconds(arr[0], arr[1], start, end, out)
    return out


def period_rate(assets: Iterable[str], ledger: LedgerLike, period: Period) -> PeriodRate:
    """Time-weighted readings over ``period``: asset-seconds per state of the assets in service."""
    secs = _seconds(_as_index(ledger), _unique(assets), period.start, period.end)
    strict, known = _ratio(secs[_I], secs[_F], secs[_U])
    return PeriodRate(period, secs[_I], secs[_F], secs[_U], strict, known)


def _local_day_start(day: date, tz: tzinfo) -> float:
    # fold=0: a midnight skipped by a DST jump resolves to the instant of the jump, which is
    # still the first instant of that local date; an ambiguous midnight to its first pass.
    return datetime.combine(day, time(0), tzinfo=tz).timestamp()


def _days(period: Period, tz: tzinfo) -> list[tuple[date, float, float]]:
    """Local calendar days overlapping ``period``, clipped to it: ``(date, start, end)``."""
    day = datetime.fromtimestamp(period.start, tz).date()
    day_start = _local_day_start(day, tz)
    out = []
    while day_start < period.end:
        nxt = day + timedelta(days=1)
        nxt_start = _local_day_start(nxt, tz)
        out.append((day, max(day_start, period.start), min(nxt_start, period.end)))
        day, day_start = nxt, nxt_start
    return out


def daily(assets: Iterable[str], ledger: LedgerLike, period: Period, tz: tzinfo) -> list[DayFigure]:
    """Per local calendar day (in ``tz``) overlapping ``period``, clipped to it: see :class:`DayFigure`.

    One sweep over the period's change events sorted by time, keeping the count of assets per
    state: O(changes log changes), not assets x days.
    """
    idx = _as_index(ledger)
    start, end = period.start, period.end
    counts = [0, 0, 0, 0]
    events: list[tuple[float, int, int]] = []  # (at, old code, new code); _OUT: entering service
    for asset in _unique(assets):
        arr = idx.arrays(asset)
        if arr is None:
            continue
        times, codes = arr
        i = bisect_right(times, start)
        j = bisect_left(times, end)
        prev = codes[i - 1] if i else _OUT
        counts[prev] += 1
        for k in range(i, j):
            c = codes[k]
            if c != prev:
                events.append((times[k], prev, c))
                prev = c
    events.sort(key=itemgetter(0))

    n, p = len(events), 0
    figures: list[DayFigure] = []
    for day, ds, de in _days(period, tz):
        while p < n and events[p][0] <= ds:  # changes exactly at the day's start
            _, old, new = events[p]
            counts[old] -= 1
            counts[new] += 1
            p += 1
        sums = [0.0, 0.0, 0.0, 0.0]
        lowest: tuple[float, int, int, int] | None = None  # (at, intact, faulty, unknown)
        t = ds
        while True:
            # the instant t (all changes at t applied): is it the worst so far?
            i_, f_, u_ = counts[_I], counts[_F], counts[_U]
            den = i_ + f_ + u_
            if den and (lowest is None or i_ * (lowest[1] + lowest[2] + lowest[3]) < lowest[1] * den):
                lowest = (t, i_, f_, u_)
            nt = events[p][0] if p < n and events[p][0] < de else de
            dt = nt - t
            sums[_I] += i_ * dt
            sums[_F] += f_ * dt
            sums[_U] += u_ * dt
            if nt == de:
                break
            while p < n and events[p][0] == nt:
                _, old, new = events[p]
                counts[old] -= 1
                counts[new] += 1
                p += 1
            t = nt
        strict, known = _ratio(sums[_I], sums[_F], sums[_U])
        low = None if lowest is None else _snapshot(lowest[0], [lowest[1], lowest[2], lowest[3], 0])
        figures.append(DayFigure(day, ds, de, sums[_I], sums[_F], sums[_U], strict, known, low))
    return figures


def lowest_daily(assets: Iterable[str], ledger: LedgerLike, period: Period, tz: tzinfo) -> DayFigure | None:
    """The day whose lowest snapshot is the lowest of the period (ties: the earliest day);
    ``None`` if no asset was in service at any instant of it."""
    return lowest_of(daily(assets, ledger, period, tz))


def lowest_of(days: Iterable[DayFigure]) -> DayFigure | None:
    """:func:`lowest_daily` over days already computed (the engine also charts them)."""
    worst: DayFigure | None = None
    worst_low: Ratio | None = None
    for fig in days:
        if fig.lowest is not None and (worst_low is None or _below(fig.lowest.strict, worst_low)):
            worst, worst_low = fig, fig.lowest.strict
    return worst


def _below(a: Ratio, b: Ratio) -> bool:
    """``a < b`` exactly (both with a positive denominator): no float division."""
    return a.num * b.den < b.num * a.den


def ranking(assets: Iterable[str], ledger: LedgerLike, period: Period, n: int = 10) -> list[tuple[str, float]]:
    """The ``n`` assets with the most not-intact (faulty + unknown) seconds in ``period``:
    ``(asset, seconds)``, most first, ties by asset id; assets with none are left out."""
    idx = _as_index(ledger)
    rows: list[tuple[str, float]] = []
    for asset in _unique(assets):
        arr = idx.arrays(asset)
        if arr is None:
            continue
        out = [0.0, 0.0, 0.0, 0.0]
        _add_seconds(arr[0], arr[1], period.start, period.end, out)
        lost = out[_F] + out[_U]
        if lost > 0:
            rows.append((asset, lost))
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows[: max(n, 0)]


def forecast(
    assets: Iterable[str],
    ledger: LedgerLike,
    period: Period,
    now: float,
    target: float,
) -> Forecast:
    """How much not-intact asset-time the period can still afford at ``now``: see :class:`Forecast`."""
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target is a fraction in [0, 1], not {target!r}")
    idx = _as_index(ledger)
    c = min(max(now, period.start), period.end)
    names = _unique(assets)
    secs = _seconds(idx, names, period.start, c) if c > period.start else [0.0, 0.0, 0.0, 0.0]
    in_now = 0
    for asset in names:
        arr = idx.arrays(asset)
        if arr is not None and bisect_right(arr[0], c):
            in_now += 1
    remaining = period.end - c
    intact, lost = secs[_I], secs[_F] + secs[_U]
    so_far = intact + lost
    total = so_far + in_now * remaining
    left = (1 - Fraction(target)) * Fraction(total) - Fraction(lost)  # exact: the sign decides
    return Forecast(
        period=period,
        now=now,
        target=target,
        over=c >= period.end,
        lost_s=lost,
        in_service_s=so_far,
        so_far=Ratio(intact, so_far),
        in_service_now=in_now,
        remaining_s=remaining,
        total_s=total,
        budget_s=(1 - target) * total,
        left_s=float(left),
        can_meet=left >= 0,
        best_case=Ratio(intact + in_now * remaining, total),
    )
