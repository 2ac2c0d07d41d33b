"""Patrol rounds (巡更): which rounds are due, how each is walked, and what the duty manager is told.

Pure: times are epoch seconds, the site's time zone is passed in, nothing here reads a clock
or a store. The same code judges a night live (taps as they come, :meth:`Patrols.advance`
from a timer), in a replay and in a test, and gives the same events whichever way the
clock is advanced.

Rules
-----

Schedules (班次). A schedule's ``start``/``end``/``every_min`` gives rounds at start,
start + every, ... while before ``end`` (an end at or before the start crosses midnight:
22:00-06:00 every 60 gives 22:00 ... 05:00), plus one round at each ``at`` time; all in
site local wall time, converted with zoneinfo. A round's id is ``route@YYYY-MM-DDTHH:MM``
(local), so it is the same whenever and however often it is planned; two schedules giving
the same route the same minute give one round (the first schedule's tolerance).

Windows are half-open ``[opens, closes)``: a tap at the very instant a window closes is
already outside it. An event at instant T therefore depends only on taps before T, which
is what makes the events independent of how often the clock is advanced.

A round (一轮巡更) with tolerance ``tol`` and route duration ``D``:

- **Start.** The start window is ``[due - tol, due + tol)``. A (counted) tap on any
  checkpoint of the route inside it starts the round: ``started_at`` is that tap's time
  and the round's guard is that tap's guard. Nothing by ``due + tol``: the whole round is
  missed (漏巡), event ``patrol.round_missed`` at exactly ``due + tol``; its visits are
  all missed and no per-checkpoint event follows.
- **Expected times.** Ordered route of n checkpoints: checkpoint i is expected at
  ``started_at + D * i / (n - 1)`` (the first at ``started_at``), window
  ``[expected - tol, expected + tol)``. Unordered route: every checkpoint at
  ``started_at + D / 2``, window the whole round ``[started_at - tol, started_at + D + tol)``.
  Before the round starts, expected times assume it starts on time (at ``due``).
- **Final close** of a started round: ``started_at + D + tol``. Taps at or after it are
  not the round's.
- **A visit's status** (judged when tapped): inside its window ``on_time`` (按时); before it
  ``early``; after it ``late`` (迟到, allowed until the final close; on an ordered route a
  later checkpoint's tap never closes an earlier one). On an ordered route, a tap on
  checkpoint j while an earlier checkpoint i < j is still unvisited and i's window is still
  open is ``out_of_order`` (顺序错误): visited, but not on time. A checkpoint tapped again
  in the same round is ignored: the first tap counts. A checkpoint listed twice on a route
  (a loop back to the gate) is two visits, taken in turn.
- **Clock-driven.** A visit's window closes without a tap: event ``patrol.late`` at exactly
  ``expected + tol`` ("not there yet": the duty manager hears while there is still time), and
  the visit shows ``late`` with no ``at``. The final close passes without a tap: the visit is
  ``missed`` (漏检), event ``patrol.missed`` at exactly the final close. A late tap between
  the two: status ``late``, no second event. A visit whose window closes only at the final
  close (every visit of an unordered route, the last of an ordered one) has no separate
  ``late`` event: only ``patrol.missed``.
- **Which round a tap belongs to**, for each route the checkpoint is on: (1) the earliest
  started round of the route whose window ``[started_at - tol, final close)`` contains the
  tap and which still waits for that checkpoint; else (2) the earliest not-yet-started
  round whose start window contains it (the tap starts it); else (3) the earliest started
  round whose window contains it (a repeat: ignored). Rule (1) asks "still waits", so
  the tap that starts the next round is not swallowed as a repeat by a long round still
  open. A tap in no round is stray (it still counts in the guard's history). Taps are taken
  in time order whatever order they were delivered in; taps of one instant in the order of
  their checkpoints on the route.
- **Plausibility** (a copied or photographed tag, 复制或拍照的巡更标签, is a known fraud):
  see :func:`plausible`. A flagged tap does not count, does not start a round, and is kept
  on its round as ``flagged`` (event ``patrol.flagged`` when tapped) until a manager
  accepts it with :meth:`Patrols.accept`; it then counts as of its own time. Events
  already announced stay announced; an event whose instant had already been passed by
  the clock when the facts behind it arrived (an acceptance, a tap delivered late) is
  not announced afterwards: the round's state shows it.

Indicators: :func:`completion` is 巡更完成率 = visits made inside their window
(``on_time``) / visits scheduled, over the rounds due in the period; a missed round brings
all its visits to the denominator. :func:`per_guard`, :func:`per_route` and
:func:`per_night` break it down.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from gateway.commitments.model import Period, Ratio
from gateway.inspections.model import PatrolSettings, RouteModel, ScheduleModel, parse_hhmm
from gateway.site import CheckpointModel

ON_TIME = "on_time"
EARLY = "early"
LATE = "late"
OUT_OF_ORDER = "out_of_order"
MISSED = "missed"
PENDING = "pending"
STATUSES = (ON_TIME, EARLY, LATE, OUT_OF_ORDER, MISSED, PENDING)

ROUND_MISSED = "patrol.round_missed"
VISIT_LATE = "patrol.late"
VISIT_MISSED = "patrol.missed"
TAP_FLAGGED = "patrol.flagged"

#: One line per event type, in the site's language.
TITLES = {
    ROUND_MISSED: "巡更漏巡：本轮未按时开始",
    VISIT_LATE: "巡更点超时未到",
    VISIT_MISSED: "巡更点漏检",
    TAP_FLAGGED: "可疑巡更打卡（疑似复制或拍照的标签）",
}

#: The key :func:`per_guard` counts a visit under when nobody walked the round (漏巡).
NO_GUARD = ""

NIGHT_STARTS = time(18, 0)
NIGHT_ENDS = time(12, 0)


# --- schedules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueRound:
    """A round of ``route`` due at ``due_at``; ``id`` names it the same however often it is planned."""

    route: str
    due_at: float
    tolerance_s: float
    id: str

    @property
    def start_window(self) -> tuple[float, float]:
        return (self.due_at - self.tolerance_s, self.due_at + self.tolerance_s)


def round_id(route: str, due_at: float, tz: ZoneInfo) -> str:
    """``route@2026-11-20T22:00``: the local minute a round is due, stable across restarts."""
    return f"{route}@{datetime.fromtimestamp(due_at, tz):%Y-%m-%dT%H:%M}"


def _walls(s: ScheduleModel, day: date) -> Iterator[datetime]:
    """The schedule's local wall times starting on ``day`` (naive: the zone is applied after)."""
    if s.start is not None and s.end is not None and s.every_min is not None:
        t = datetime.combine(day, parse_hhmm(s.start))
        end = datetime.combine(day, parse_hhmm(s.end))
        if end <= t:  # 22:00-06:00: the night crosses midnight
            end += timedelta(days=1)
        while t < end:
            yield t
            t += timedelta(minutes=s.every_min)
    for hhmm in s.at:
        yield datetime.combine(day, parse_hhmm(hhmm))


def due_rounds(routes: Iterable[RouteModel], schedules: Iterable[ScheduleModel], period_start: float,
               period_end: float, tz: ZoneInfo) -> list[DueRound]:
    """Every round due in ``[period_start, period_end)``, in time order (then by route).

    A schedule naming no known route gives nothing (the site file's cross-checks report it).
    A wall time that occurs twice (a DST fall-back) is one round; zoneinfo places one that
    does not exist.
    """
    known = {r.id for r in routes}
    first = datetime.fromtimestamp(period_start, tz).date() - timedelta(days=1)  # last evening's night
    last = datetime.fromtimestamp(period_end, tz).date()
    out: dict[str, DueRound] = {}
    for s in schedules:
        if s.route not in known:
            continue
        tol = s.tolerance_min * 60.0
        day = first
        while day <= last:
            for wall in _walls(s, day):
                at = wall.replace(tzinfo=tz).timestamp()
                if period_start <= at < period_end:
                    rid = round_id(s.route, at, tz)
                    out.setdefault(rid, DueRound(s.route, at, tol, rid))
            day += timedelta(days=1)
    return sorted(out.values(), key=lambda d: (d.due_at, d.route))


# --- taps and plausibility ----------------------------------------------------------------------


class TapLike(Protocol):
    """What :func:`plausible` reads of a tap (:class:`TapFact`, or the tap log's own record)."""

    @property
    def checkpoint(self) -> str | None: ...
    @property
    def at(self) -> float: ...


@dataclass(frozen=True, slots=True)
class TapFact:
    """A tap resolved to a checkpoint, with the guard (from the badge or the handheld) when known."""

    checkpoint: str
    at: float
    guard: str | None = None
    reader: str | None = None


def positions(checkpoints: Iterable[CheckpointModel]) -> dict[str, tuple[float, float]]:
    """Checkpoint id to its place on the site plan, for those with both coordinates."""
    return {c.id: (c.x_m, c.y_m) for c in checkpoints if c.x_m is not None and c.y_m is not None}


def plausible(prev: TapLike | None, tap: TapLike, positions: Mapping[str, tuple[float, float]],
              settings: PatrolSettings) -> str | None:
    """Why ``tap`` cannot be a guard walking (``None``: nothing against it).

    ``prev`` is the previous tap of the same guard (of the same reader when no guard is
    known): a copied or photographed tag (复制、拍照的标签) is tapped from wherever the
    copy is, so it shows up as the same tag again at once (``repeat``: within
    ``repeat_s``), or as another checkpoint reached faster than anyone walks (``too_fast``:
    distance / ``walk_m_s``; ``min_gap_s`` when either checkpoint has no position).
    """
    if prev is None or prev.checkpoint is None or tap.checkpoint is None:
        return None
    gap = abs(tap.at - prev.at)
    if prev.checkpoint == tap.checkpoint:
        if gap < settings.repeat_s:
            return f"repeat: the same tag again after {gap:.0f} s (a copy? under {settings.repeat_s:.0f} s)"
        return None
    a, b = positions.get(prev.checkpoint), positions.get(tap.checkpoint)
    if a is not None and b is not None:
        metres = math.dist(a, b)
        need = metres / settings.walk_m_s
        if gap < need:
            return (f"too_fast: {metres:.0f} m from {prev.checkpoint} in {gap:.0f} s "
                    f"(walking takes at least {need:.0f} s)")
        return None
    if gap < settings.min_gap_s:
        return (f"too_fast: {prev.checkpoint} to {tap.checkpoint} in {gap:.0f} s "
                f"(at least {settings.min_gap_s:.0f} s between checkpoints)")
    return None


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something the duty manager (值班经理) is told, at the instant it became true."""

    type: str
    at: float
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def title(self) -> str:
        return TITLES.get(self.type, self.type)


# --- a round ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visit:
    """One checkpoint of one round: when it was expected, when (if) it was tapped, and the verdict.

    ``late`` without ``at`` means its window closed and nobody is there yet; ``flag`` is why
    the tap looked implausible before a manager accepted it (``accepted_by``).
    """

    checkpoint: str
    expected_at: float
    at: float | None
    status: str
    window: tuple[float, float]
    guard: str | None = None
    flag: str | None = None
    accepted_by: str | None = None


@dataclass(frozen=True, slots=True)
class FlaggedTap:
    """A tap kept on a round but not counted: :func:`plausible` gave ``reason``."""

    checkpoint: str
    at: float
    guard: str | None
    reader: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Round:
    """One round as the taps made it (``state`` due or started); :meth:`as_of` judges it at an instant.

    ``state`` in a view from :meth:`as_of`: ``due`` (start window not passed), ``started``,
    ``missed`` (漏巡: never started) or ``closed`` (final close passed).
    """

    due: DueRound
    checkpoints: tuple[str, ...]
    ordered: bool
    duration_s: float
    visits: tuple[Visit, ...]
    started_at: float | None = None
    guard: str | None = None
    flagged: tuple[FlaggedTap, ...] = ()
    state: str = "due"

    @classmethod
    def plan(cls, due: DueRound, route: RouteModel) -> Round:
        """The round before anyone taps: expected times as if started on time."""
        r = cls(due, tuple(route.checkpoints), route.ordered, route.duration_min * 60.0, ())
        return replace(r, visits=r._visits(due.due_at))

    @property
    def id(self) -> str:
        return self.due.id

    @property
    def route(self) -> str:
        return self.due.route

    @property
    def tolerance_s(self) -> float:
        return self.due.tolerance_s

    @property
    def final_close(self) -> float:
        """When the round stops taking taps (started), or would (not yet started: if on time)."""
        start = self.due.due_at if self.started_at is None else self.started_at
        return start + self.duration_s + self.tolerance_s

    def _visits(self, start: float) -> tuple[Visit, ...]:
        tol, n, dur = self.tolerance_s, len(self.checkpoints), self.duration_s
        out = []
        for i, cp in enumerate(self.checkpoints):
            if self.ordered:
                expected = start + (dur * i / (n - 1) if n > 1 else 0.0)
                window = (expected - tol, expected + tol)
            else:
                expected = start + dur / 2
                window = (start - tol, start + dur + tol)
            out.append(Visit(cp, expected, None, PENDING, window))
        return tuple(out)

    def in_start_window(self, t: float) -> bool:
        opens, closes = self.due.start_window
        return self.started_at is None and opens <= t < closes

    def contains(self, t: float) -> bool:
        """Whether a tap at ``t`` falls in this started round's window."""
        return self.started_at is not None and self.started_at - self.tolerance_s <= t < self.final_close

    def waits_for(self, checkpoint: str) -> bool:
        return any(v.checkpoint == checkpoint and v.at is None for v in self.visits)

    def take(self, tap: TapFact, flag: str | None = None, accepted_by: str | None = None) -> Round:
        """The round after a counted tap (taps are taken in time order): starts it, or visits a checkpoint."""
        r = self
        if r.started_at is None:
            if not r.in_start_window(tap.at):
                return r
            r = replace(r, started_at=tap.at, guard=tap.guard, state="started")
            r = replace(r, visits=r._visits(tap.at))
        if not r.contains(tap.at):
            return r
        idx = next((i for i, v in enumerate(r.visits) if v.checkpoint == tap.checkpoint and v.at is None), None)
        if idx is None:  # not on the route, or tapped again: the first tap counts
            return r
        v = r.visits[idx]
        opens, closes = v.window
        if r.ordered and any(w.at is None and tap.at < w.window[1] for w in r.visits[:idx]):
            status = OUT_OF_ORDER
        elif tap.at < opens:
            status = EARLY
        elif tap.at < closes:
            status = ON_TIME
        else:
            status = LATE
        visited = replace(v, at=tap.at, status=status, guard=tap.guard, flag=flag, accepted_by=accepted_by)
        return replace(r, visits=(*r.visits[:idx], visited, *r.visits[idx + 1:]))

    def keep_flagged(self, tap: TapFact, reason: str) -> Round:
        return replace(self, flagged=(*self.flagged, FlaggedTap(tap.checkpoint, tap.at, tap.guard, tap.reader,
                                                                 reason)))

    def as_of(self, now: float) -> Round:
        """The round judged at ``now``: unvisited checkpoints become late (window closed) or missed."""
        if self.started_at is None:
            if now < self.due.start_window[1]:
                return self
            return replace(self, state=MISSED, visits=tuple(replace(v, status=MISSED) for v in self.visits))
        final = self.final_close
        visits = []
        for v in self.visits:
            if v.at is None:
                v = replace(v, status=MISSED if now >= final else LATE if now >= v.window[1] else PENDING)
            visits.append(v)
        return replace(self, visits=tuple(visits), state="closed" if now >= final else "started")

    def deadlines(self) -> list[tuple[tuple[str, str, int], Event]]:
        """Every clock event the taps so far imply, at any time, each with a key naming it once."""
        base = {"route": self.route, "round": self.id, "due_at": self.due.due_at}
        if self.started_at is None:
            opens, closes = self.due.start_window
            return [((ROUND_MISSED, self.id, -1), Event(ROUND_MISSED, closes, {
                **base, "checkpoint": None, "guard": None, "expected_at": self.due.due_at,
                "window": (opens, closes), "started_at": None, "flagged": len(self.flagged)}))]
        final = self.final_close
        out = []
        for i, v in enumerate(self.visits):
            data = {**base, "checkpoint": v.checkpoint, "guard": self.guard, "expected_at": v.expected_at,
                    "window": v.window, "started_at": self.started_at}
            closes = v.window[1]
            if (v.at is None or v.at >= closes) and closes < final:
                out.append(((VISIT_LATE, self.id, i), Event(VISIT_LATE, closes, data)))
            if v.at is None:
                out.append(((VISIT_MISSED, self.id, i), Event(VISIT_MISSED, final, data)))
        return out

    def events(self) -> list[Event]:
        return [e for _, e in self.deadlines()]


# --- the state container ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Taken:
    """A tap as a route keeps it, in ``order``: by time, then (taps of one instant) by the checkpoint's
    place on the route, the guard, the reader, and last by arrival, so the order they were delivered
    in does not change a round."""

    order: tuple[float, int, str, str, int]
    tap: TapFact
    flag: str | None

    @property
    def at(self) -> float:
        return self.tap.at

    @property
    def seq(self) -> int:
        return self.order[-1]


class Patrols:
    """Every planned round of a site and the taps on them; pure state, driven by :meth:`tap` and
    :meth:`advance`. Rounds are rebuilt from their taps when a tap arrives out of time order or a
    flagged tap is accepted, so the outcome does not depend on the order taps were delivered in.
    """

    def __init__(self, routes: Iterable[RouteModel], schedules: Iterable[ScheduleModel],
                 checkpoints: Iterable[CheckpointModel] = (), settings: PatrolSettings | None = None,
                 tz: ZoneInfo | None = None) -> None:
        self.routes = {r.id: r for r in routes}
        self.schedules = tuple(schedules)
        self.positions = positions(checkpoints)
        self.settings = settings or PatrolSettings()
        self.tz = tz or ZoneInfo("Asia/Shanghai")
        self._on: dict[str, list[str]] = {}
        for r in self.routes.values():
            for cp in dict.fromkeys(r.checkpoints):
                self._on.setdefault(cp, []).append(r.id)
        self._due: dict[str, DueRound] = {}
        self._rounds: dict[str, Round] = {}
        self._by_route: dict[str, list[str]] = {r: [] for r in self.routes}
        self._taps: dict[str, list[_Taken]] = {r: [] for r in self.routes}
        self._history: dict[tuple[str, str], list[TapFact]] = {}
        self._accepted: dict[tuple[str, str], tuple[str, float]] = {}
        self._seq = 0
        self._now = -math.inf
        self._emitted: set[tuple[str, str, int]] = set()
        self._current: dict[tuple[str, str, int], Event] = {}
        self._keys: dict[str, set[tuple[str, str, int]]] = {}
        self._heap: list[tuple[float, float, str, int, int, tuple[str, str, int], Event]] = []

    # planning

    def plan(self, now: float, horizon_s: float) -> list[DueRound]:
        """Plan every round due up to ``now + horizon_s`` not planned yet (idempotent); the new ones.

        A round whose start window has already closed at ``now`` is not planned: the gateway
        was not there to see it.
        """
        tol = max((s.tolerance_min * 60.0 for s in self.schedules), default=0.0)
        new = [d for d in due_rounds(self.routes.values(), self.schedules, now - tol, now + horizon_s, self.tz)
               if d.id not in self._due and d.due_at + d.tolerance_s > now]
        for d in new:
            self._due[d.id] = d
            ids = self._by_route[d.route]
            ids.append(d.id)
            ids.sort(key=lambda i: self._due[i].due_at)
        for route in dict.fromkeys(d.route for d in new):
            self._replay(route)
        return new

    # taps

    def tap(self, checkpoint: str, at: float, guard: str | None = None, reader: str | None = None) -> list[Event]:
        """A tap on ``checkpoint`` (already resolved from its tag); the events it causes at once
        (``patrol.flagged`` for an implausible one). Clock events come from :meth:`advance`."""
        fact = TapFact(checkpoint, at, guard, reader)
        flag = self._check(fact)
        self._seq += 1
        kept: list[tuple[str, str]] = []
        for route in self._on.get(checkpoint, ()):
            place = self.routes[route].checkpoints.index(checkpoint)
            taken = _Taken((at, place, guard or "", reader or "", self._seq), fact, flag)
            taps = self._taps[route]
            if not taps or taps[-1].order <= taken.order:
                taps.append(taken)
                rid = self._apply(route, taken)
                if rid is not None:
                    self._refresh(self._rounds[rid])
            else:  # delivered after later taps: rebuild the route's rounds in time order
                bisect.insort(taps, taken, key=lambda t: t.order)
                rid = self._replay(route, taken.seq)
            if rid is not None:
                kept.append((route, rid))
        if flag is None:
            return []
        route, rid = kept[0] if kept else (None, None)
        return [Event(TAP_FLAGGED, at, {"route": route, "round": rid, "rounds": tuple(r for _, r in kept),
                                         "checkpoint": checkpoint, "guard": guard, "reader": reader,
                                         "reason": flag, "expected_at": None, "window": None})]

    def _check(self, fact: TapFact) -> str | None:
        """Plausibility against the guard's (else the reader's) previous tap in time."""
        key = ("guard", fact.guard) if fact.guard else ("reader", fact.reader) if fact.reader else None
        if key is None:
            return None
        seen = self._history.setdefault(key, [])
        i = bisect.bisect_right(seen, fact.at, key=lambda t: t.at)
        flag = plausible(seen[i - 1] if i else None, fact, self.positions, self.settings)
        seen.insert(i, fact)
        return flag

    def accept(self, round_id: str, checkpoint: str, by: str) -> Round:
        """A manager accepts the round's first still-flagged tap on ``checkpoint``: it counts as of its time."""
        r = self._rounds[round_id]
        f = next((f for f in r.flagged if f.checkpoint == checkpoint), None)
        if f is None:
            raise KeyError(f"no flagged tap on {checkpoint!r} in round {round_id!r}")
        if not r.waits_for(checkpoint):
            raise ValueError(f"{checkpoint!r} is already visited in round {round_id!r}: the flagged tap is a repeat")
        self._accepted[(round_id, checkpoint)] = (by, f.at)
        self._replay(r.route)
        return self._rounds[round_id]

    def _apply(self, route: str, t: _Taken) -> str | None:
        """Give one tap (in time order) to its round (see the module rules); the round's id. The
        caller re-derives the round's events."""
        rounds = [self._rounds[i] for i in self._by_route[route]]
        cp, at = t.tap.checkpoint, t.tap.at
        chosen = (next((r for r in rounds if r.contains(at) and r.waits_for(cp)), None)
                  or next((r for r in rounds if r.in_start_window(at)), None)
                  or next((r for r in rounds if r.contains(at)), None))
        if chosen is None:
            return None
        accepted = self._accepted.get((chosen.id, cp))
        if t.flag is None:
            new = chosen.take(t.tap)
        elif accepted is not None and accepted[1] == at:
            new = chosen.take(t.tap, t.flag, accepted[0])
        else:
            new = chosen.keep_flagged(t.tap, t.flag)
        self._rounds[chosen.id] = new
        return chosen.id

    def _replay(self, route: str, seq: int | None = None) -> str | None:
        """Rebuild a route's rounds from its taps; the round the tap ``seq`` went to."""
        model = self.routes[route]
        for rid in self._by_route[route]:
            self._rounds[rid] = Round.plan(self._due[rid], model)
        found = None
        for t in self._taps[route]:
            rid = self._apply(route, t)
            if t.seq == seq:
                found = rid
        for rid in self._by_route[route]:
            self._refresh(self._rounds[rid])
        return found

    # the clock

    def _refresh(self, r: Round) -> None:
        """Re-derive a round's clock events: what changed replaces what was pending."""
        old = {key: self._current.pop(key) for key in self._keys.pop(r.id, set()) if key in self._current}
        keys = set()
        for key, e in r.deadlines():
            if key in self._emitted or e.at <= self._now:  # told already, or no longer news
                continue
            keys.add(key)
            if old.get(key) == e:  # unchanged: its place in the heap stands
                self._current[key] = old[key]
                continue
            self._current[key] = e
            heapq.heappush(self._heap, (e.at, r.due.due_at, r.route, key[2], id(e), key, e))
        self._keys[r.id] = keys

    def advance(self, now: float) -> list[Event]:
        """The clock events due at or before ``now`` not told yet, in time order, each exactly once."""
        self._now = max(self._now, now)
        out = []
        while self._heap and self._heap[0][0] <= now:
            *_, key, e = heapq.heappop(self._heap)
            if self._current.get(key) is e:
                del self._current[key]
                self._keys[key[1]].discard(key)
                self._emitted.add(key)
                out.append(e)
        return out

    # reading

    @property
    def clock(self) -> float:
        """The latest instant :meth:`advance` has reached (-inf before the first)."""
        return self._now

    def rounds(self, now: float | None = None) -> list[Round]:
        """Every planned round in due order, judged at ``now`` when given (else as the taps left them)."""
        out = sorted(self._rounds.values(), key=lambda r: (r.due.due_at, r.route))
        return out if now is None else [r.as_of(now) for r in out]

    def round(self, round_id: str) -> Round:
        return self._rounds[round_id]

    def forget(self, before: float) -> None:
        """Drop rounds over before ``before`` with nothing left to tell, and the taps only they needed."""
        dropped: set[str] = set()
        for route, ids in self._by_route.items():
            keep = []
            for rid in ids:
                r = self._rounds[rid]
                end = r.final_close if r.started_at is not None else r.due.start_window[1]
                if end < before and not self._keys.get(rid):
                    del self._rounds[rid], self._due[rid]
                    self._keys.pop(rid, None)
                    dropped.add(rid)
                else:
                    keep.append(rid)
            self._by_route[route] = keep
            kept = [self._rounds[i] for i in keep]
            floor = min((r.due.start_window[0] if r.started_at is None else r.started_at - r.tolerance_s
                         for r in kept), default=before)
            self._taps[route] = [t for t in self._taps[route] if t.at >= min(floor, before)]
        self._emitted = {k for k in self._emitted if k[1] not in dropped}
        self._accepted = {k: v for k, v in self._accepted.items() if k[0] in self._rounds}
        for key, seen in self._history.items():
            self._history[key] = [t for t in seen[:-1] if t.at >= before] + seen[-1:]


# --- indicators -------------------------------------------------------------------------------


def _due_in(rounds: Iterable[Round], period: Period) -> Iterator[Round]:
    return (r for r in rounds if period.start <= r.due.due_at < period.end)


def _ratio(visits: Iterable[Visit]) -> Ratio:
    vs = list(visits)
    return Ratio(sum(v.status == ON_TIME for v in vs), len(vs))


def completion(rounds: Iterable[Round], period: Period) -> Ratio:
    """巡更完成率: visits made inside their window / visits scheduled, over rounds due in ``period``.

    Early, late and out-of-order visits were made but not as promised, so they are not in the
    numerator; an unstarted (missed) round brings all its checkpoints to the denominator; an
    unaccepted flagged tap is no visit.
    """
    return _ratio(v for r in _due_in(rounds, period) for v in r.visits)


def _grouped(pairs: Iterable[tuple[Any, Visit]]) -> dict[Any, Ratio]:
    groups: dict[Any, list[Visit]] = {}
    for k, v in pairs:
        groups.setdefault(k, []).append(v)
    return {k: _ratio(vs) for k, vs in sorted(groups.items())}


def per_guard(rounds: Iterable[Round], period: Period) -> dict[str, Ratio]:
    """By guard: a visit made counts for whoever tapped it, one not made for whoever walked the
    round, and the visits of a round nobody started under :data:`NO_GUARD`."""
    return _grouped(((v.guard if v.at is not None else r.guard) or NO_GUARD, v)
                    for r in _due_in(rounds, period) for v in r.visits)


def per_route(rounds: Iterable[Round], period: Period) -> dict[str, Ratio]:
    return _grouped((r.route, v) for r in _due_in(rounds, period) for v in r.visits)


def night_of(at: float, tz: ZoneInfo) -> date | None:
    """The night (夜间, local 18:00 to next day 12:00) ``at`` falls in, named by its evening's date;
    ``None`` for the afternoon (12:00-18:00)."""
    local = datetime.fromtimestamp(at, tz)
    if local.time() >= NIGHT_STARTS:
        return local.date()
    if local.time() < NIGHT_ENDS:
        return local.date() - timedelta(days=1)
    return None


def per_night(rounds: Iterable[Round], period: Period, tz: ZoneInfo) -> dict[date, Ratio]:
    """By night, each round counted in the night it is due in; afternoon rounds in none."""
    pairs = ((night_of(r.due.due_at, tz), v) for r in _due_in(rounds, period) for v in r.visits)
    return _grouped((n, v) for n, v in pairs if n is not None)

