"""Repair service indicators (零修急修及时率, 合格率, 返修率, 回访率, 满意率): hand-computed cases in Asia/Shanghai."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway import sla
from gateway.commitments.model import CallbackFacts, Period, Ratio, TicketFacts
from gateway.commitments.repair import (
    Indicator,
    callback_rate,
    filter_callbacks,
    filter_tickets,
    first_time_fix,
    rework_rate,
    satisfaction,
    timeliness,
)

SH = ZoneInfo("Asia/Shanghai")
CLOCKS = ("respond", "arrive", "resolve")


def at(text: str) -> float:
    """``2026-10-31 23:50[:ss]`` local time in Shanghai, as epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=SH).timestamp()


def opt(text: str | None) -> float | None:
    return None if text is None else at(text)


OCT = Period(at("2026-10-01 00:00"), at("2026-11-01 00:00"))
NOV = Period(at("2026-11-01 00:00"), at("2026-12-01 00:00"))
DEC = Period(at("2026-12-01 00:00"), at("2027-01-01 00:00"))
LATER = at("2027-02-01 00:00")  # a `now` after everything below


def ticket(
    id_: int = 1, *, priority: str = "urgent", opened: str, clocks_from: str | None = None,
    respond_by: str | None = None, arrive_by: str | None = None, resolve_by: str | None = None,
    ack: str | None = None, on_site: str | None = None, resolved: str | None = None, closed: str | None = None,
    reworks: int = 0, status: str | None = None, category: str | None = "lighting", asset: str | None = "lamp-1",
) -> TicketFacts:
    if status is None:
        status = ("closed" if closed else "resolved" if resolved else "on_site" if on_site
                  else "acknowledged" if ack else "open")
    return TicketFacts(
        id=id_, asset=asset, fault="dark", priority=priority, status=status, opened_at=at(opened),
        clocks_from=at(clocks_from or opened), respond_by=opt(respond_by), arrive_by=opt(arrive_by),
        resolve_by=opt(resolve_by), acknowledged_at=opt(ack), on_site_at=opt(on_site), resolved_at=opt(resolved),
        closed_at=opt(closed), reworks=reworks, category=category)


# An urgent ticket opened 2026-11-10 09:00: respond by 09:30, arrive by 11:00, resolve by 11-11 09:00.
URGENT = {"opened": "2026-11-10 09:00", "respond_by": "2026-11-10 09:30", "arrive_by": "2026-11-10 11:00",
          "resolve_by": "2026-11-11 09:00"}
# The same, unresolved at 2026-11-19 10:00: respond by 10:30, arrive by 12:00, resolve by 11-20 10:00.
PENDING = {"opened": "2026-11-19 10:00", "respond_by": "2026-11-19 10:30", "arrive_by": "2026-11-19 12:00",
           "resolve_by": "2026-11-20 10:00"}

T: dict[str, TicketFacts] = {
    # 急修 opened after 16:00: respond 00:05, arrive 00:20, resolve within 8 h (07:50), across midnight.
    "emergency_across_midnight": ticket(
        priority="emergency", opened="2026-10-31 23:50", respond_by="2026-11-01 00:05",
        arrive_by="2026-11-01 00:20", resolve_by="2026-11-01 07:50", ack="2026-10-31 23:55",
        on_site="2026-11-01 00:15", resolved="2026-11-01 00:20", closed="2026-11-01 00:30"),
    "respond_at_deadline": ticket(**URGENT, ack="2026-11-10 09:30:00", on_site="2026-11-10 10:00",
                                  resolved="2026-11-10 12:00"),
    "respond_late": ticket(**URGENT, ack="2026-11-10 09:30:01", on_site="2026-11-10 10:00",
                           resolved="2026-11-10 12:00"),
    "arrive_at_deadline": ticket(**URGENT, ack="2026-11-10 09:10", on_site="2026-11-10 11:00:00",
                                 resolved="2026-11-10 12:00"),
    "arrive_late": ticket(**URGENT, ack="2026-11-10 09:10", on_site="2026-11-10 11:00:01",
                          resolved="2026-11-10 12:00"),
    "resolve_at_deadline": ticket(**URGENT, ack="2026-11-10 09:10", on_site="2026-11-10 10:00",
                                  resolved="2026-11-11 09:00:00", closed="2026-11-11 10:00"),
    "resolve_late": ticket(**URGENT, ack="2026-11-10 09:10", on_site="2026-11-10 10:00",
                           resolved="2026-11-11 09:00:01", closed="2026-11-11 10:00"),
    # Remote fixes: nobody went on site.
    "remote_fix_in_time": ticket(**URGENT, ack="2026-11-10 09:10", resolved="2026-11-10 10:30"),
    "remote_fix_at_arrive_deadline": ticket(**URGENT, ack="2026-11-10 09:10", resolved="2026-11-10 11:00:00"),
    "remote_fix_after_arrive_deadline": ticket(**URGENT, ack="2026-11-10 09:10", resolved="2026-11-10 11:00:01"),
    "never_acknowledged_resolved_late": ticket(**URGENT, resolved="2026-11-10 09:40"),
    # 零修: respond within 24 h, no arrive promise, resolve within 48 h.
    "general_no_arrive_clock": ticket(
        priority="general", opened="2026-11-10 09:00", respond_by="2026-11-11 09:00",
        resolve_by="2026-11-12 09:00", ack="2026-11-10 15:00", resolved="2026-11-11 10:00"),
    # The fault cleared by itself and the ticket closed without a resolution.
    "self_cleared_before_respond": ticket(**URGENT, closed="2026-11-10 09:10"),
    "self_cleared_after_respond": ticket(**URGENT, closed="2026-11-10 09:45"),
    # Unresolved, on site, resolve deadline 2026-10-31 20:00 (opened 10-30 20:00).
    "unresolved_october_deadline": ticket(
        opened="2026-10-30 20:00", respond_by="2026-10-30 20:30", arrive_by="2026-10-30 22:00",
        resolve_by="2026-10-31 20:00", ack="2026-10-30 20:10", on_site="2026-10-30 21:00"),
    "unresolved_untouched": ticket(**PENDING),
    # Unresolved, resolve deadline exactly on the month boundary.
    "unresolved_deadline_at_midnight": ticket(
        opened="2026-10-31 00:00", respond_by="2026-10-31 00:30", arrive_by="2026-10-31 02:00",
        resolve_by="2026-11-01 00:00", ack="2026-10-31 00:10", on_site="2026-10-31 01:00"),
    "resolved_at_month_start": ticket(
        opened="2026-10-31 20:00", respond_by="2026-10-31 20:30", arrive_by="2026-10-31 22:00",
        resolve_by="2026-11-01 20:00", ack="2026-10-31 20:05", on_site="2026-10-31 21:00",
        resolved="2026-11-01 00:00:00"),
    "resolved_at_month_end": ticket(
        opened="2026-10-31 20:00", respond_by="2026-10-31 20:30", arrive_by="2026-10-31 22:00",
        resolve_by="2026-11-01 20:00", ack="2026-10-31 20:05", on_site="2026-10-31 21:00",
        resolved="2026-10-31 23:59:59"),
    # Opened in October, reopened 11-03 08:00 (clocks restart: 08:30 / 10:00 / 11-04 08:00), fixed in November.
    "reworked": ticket(
        opened="2026-10-05 10:00", clocks_from="2026-11-03 08:00", respond_by="2026-11-03 08:30",
        arrive_by="2026-11-03 10:00", resolve_by="2026-11-04 08:00", ack="2026-11-03 08:20",
        on_site="2026-11-03 09:00", resolved="2026-11-03 15:00", closed="2026-11-03 16:00", reworks=1),
    "cancelled_after_resolving": ticket(**URGENT, ack="2026-11-10 09:10", resolved="2026-11-10 12:00",
                                        status="cancelled"),
    "cancelled_overdue": ticket(**PENDING, status="cancelled"),
}

ALL_MET = {"respond": True, "arrive": True, "resolve": True}
Expected = dict[str, bool] | None  # None: not counted; else each clock the ticket has -> met

TIMELINESS_CASES: list[tuple[str, Period, float, Expected]] = [
    ("emergency_across_midnight", NOV, LATER, ALL_MET),
    ("emergency_across_midnight", OCT, LATER, None),
    ("respond_at_deadline", NOV, LATER, ALL_MET),
    ("respond_late", NOV, LATER, {"respond": False, "arrive": True, "resolve": True}),
    ("arrive_at_deadline", NOV, LATER, ALL_MET),
    ("arrive_late", NOV, LATER, {"respond": True, "arrive": False, "resolve": True}),
    ("resolve_at_deadline", NOV, LATER, ALL_MET),
    ("resolve_late", NOV, LATER, {"respond": True, "arrive": True, "resolve": False}),
    ("remote_fix_in_time", NOV, LATER, ALL_MET),
    ("remote_fix_at_arrive_deadline", NOV, LATER, ALL_MET),
    ("remote_fix_after_arrive_deadline", NOV, LATER, {"respond": True, "arrive": False, "resolve": True}),
    ("never_acknowledged_resolved_late", NOV, LATER, {"respond": False, "arrive": True, "resolve": True}),
    ("general_no_arrive_clock", NOV, LATER, {"respond": True, "resolve": True}),
    ("self_cleared_before_respond", NOV, LATER, ALL_MET),
    ("self_cleared_after_respond", NOV, LATER, {"respond": False, "arrive": True, "resolve": True}),
    ("unresolved_october_deadline", OCT, at("2026-11-05 00:00"), {"respond": True, "arrive": True, "resolve": False}),
    ("unresolved_october_deadline", NOV, at("2026-11-05 00:00"), None),
    ("unresolved_october_deadline", OCT, at("2026-10-31 19:00"), None),  # October, computed before it passed
    ("unresolved_untouched", NOV, at("2026-11-15 00:00"), None),
    ("unresolved_untouched", NOV, at("2026-11-20 10:00:00"), None),  # at the deadline: not passed yet
    ("unresolved_untouched", NOV, at("2026-11-20 10:00:01"), {"respond": False, "arrive": False, "resolve": False}),
    ("unresolved_untouched", DEC, LATER, None),
    ("unresolved_deadline_at_midnight", NOV, LATER, {"respond": True, "arrive": True, "resolve": False}),
    ("unresolved_deadline_at_midnight", OCT, LATER, None),
    ("resolved_at_month_start", NOV, LATER, ALL_MET),
    ("resolved_at_month_start", OCT, LATER, None),
    ("resolved_at_month_end", OCT, LATER, ALL_MET),
    ("resolved_at_month_end", NOV, LATER, None),
    ("reworked", NOV, LATER, ALL_MET),
    ("reworked", OCT, LATER, None),
    ("cancelled_after_resolving", NOV, LATER, None),
    ("cancelled_overdue", NOV, LATER, None),
]


@pytest.mark.parametrize(("name", "period", "now", "expected"), TIMELINESS_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TIMELINESS_CASES)])
def test_timeliness_one_ticket(name: str, period: Period, now: float, expected: Expected) -> None:
    t = T[name]
    result = timeliness([t], period, now)
    if expected is None:
        assert result.ratio == Ratio(0, 0)
        assert result.value is None
        assert result.counted == result.evidence == ()
        assert all(r == Ratio(0, 0) for r in result.per_clock.values())
        return
    met = all(expected.values())
    assert result.ratio == Ratio(int(met), 1)
    assert result.counted == (t.id,)
    assert result.evidence == (() if met else (t.id,))
    for clock in CLOCKS:
        if clock in expected:
            assert result.per_clock[clock] == Ratio(int(expected[clock]), 1), clock
            assert result.per_clock_evidence[clock] == (() if expected[clock] else (t.id,)), clock
        else:
            assert result.per_clock[clock] == Ratio(0, 0), clock
            assert result.per_clock_evidence[clock] == (), clock


def test_hand_written_deadlines_match_the_sla_table() -> None:
    """The fixtures' deadlines are what the gateway would set (急修 after 16:00: 8 h; urgent 30 min / 2 h / 24 h)."""
    for name, priority in (("emergency_across_midnight", "emergency"), ("respond_late", "urgent"),
                           ("general_no_arrive_clock", "general"), ("unresolved_october_deadline", "urgent"),
                           ("reworked", "urgent")):
        t = T[name]
        d = sla.deadlines(priority, t.clocks_from, SH)
        assert (d.respond_by, d.arrive_by, d.resolve_by) == (t.respond_by, t.arrive_by, t.resolve_by), name


def test_timeliness_november_mix() -> None:
    tickets = [
        replace(T["emergency_across_midnight"], id=11),        # met
        replace(T["respond_late"], id=12),                     # respond missed
        replace(T["arrive_late"], id=13),                      # arrive missed
        replace(T["remote_fix_in_time"], id=14),               # met (no arrival needed)
        replace(T["general_no_arrive_clock"], id=15),          # met, has no arrive clock
        replace(T["unresolved_october_deadline"], id=16),      # an October miss: not in November
        replace(T["unresolved_untouched"], id=17),             # every clock missed by December
        replace(T["cancelled_after_resolving"], id=18),        # never counted
        replace(T["resolve_late"], id=19),                     # resolve missed
        replace(T["resolved_at_month_end"], id=20),            # October
    ]
    result = timeliness(list(reversed(tickets)), NOV, at("2026-12-01 00:00"))
    assert result.counted == (11, 12, 13, 14, 15, 17, 19)
    assert result.evidence == (12, 13, 17, 19)
    assert result.ratio == Ratio(3, 7)
    assert result.value == pytest.approx(3 / 7)
    assert dict(result.per_clock) == {"respond": Ratio(5, 7), "arrive": Ratio(4, 6), "resolve": Ratio(5, 7)}
    assert dict(result.per_clock_evidence) == {"respond": (12, 17), "arrive": (13, 17), "resolve": (17, 19)}

    october = timeliness(tickets, OCT, at("2026-12-01 00:00"))
    assert october.counted == (16, 20)
    assert october.evidence == (16,)
    assert october.ratio == Ratio(1, 2)


# -- closed tickets: 合格率, 返修率, 回访率 ---------------------------------------------------------------

CLOSED = [
    ticket(1, opened="2026-10-20 09:00", resolved="2026-10-20 12:00", closed="2026-10-21 09:00"),
    # opened in October, closed in November
    ticket(2, opened="2026-10-30 09:00", resolved="2026-11-01 10:00", closed="2026-11-02 09:00"),
    # closed in October, the fault came back: reopened in November and closed again there
    ticket(3, opened="2026-10-05 09:00", clocks_from="2026-11-03 08:00", resolved="2026-11-03 15:00",
           closed="2026-11-04 09:00", reworks=1),
    ticket(4, opened="2026-11-09 09:00", resolved="2026-11-09 12:00", closed="2026-11-10 09:00"),
    ticket(5, opened="2026-11-05 09:00", resolved="2026-11-05 12:00", reworks=1, status="cancelled"),
    ticket(6, opened="2026-11-27 09:00", resolved="2026-11-28 09:00"),  # resolved, not closed yet
    ticket(7, opened="2026-11-30 20:00", resolved="2026-11-30 23:00", closed="2026-11-30 23:59:59", reworks=2),
    ticket(8, opened="2026-11-30 20:00", resolved="2026-11-30 23:00", closed="2026-12-01 00:00:00"),
]
CALLBACKS = [
    CallbackFacts(ticket=1, at=at("2026-10-22 10:00"), score=5),
    CallbackFacts(ticket=3, at=at("2026-10-10 10:00"), score=2),  # after its first close, in October
    CallbackFacts(ticket=2, at=at("2026-11-03 10:00"), score=4),
    CallbackFacts(ticket=3, at=at("2026-11-06 10:00"), score=3),
    CallbackFacts(ticket=3, at=at("2026-11-08 10:00"), score=1),
    CallbackFacts(ticket=8, at=at("2026-11-30 23:59:59"), score=5),  # a callback in November for a December close
    CallbackFacts(ticket=8, at=at("2026-12-01 00:00"), score=1),
]

# (function, period) -> (num, den, evidence, counted)
CLOSED_CASES = [
    ("first_time_fix", OCT, (1, 1, (), (1,))),
    ("first_time_fix", NOV, (2, 4, (3, 7), (2, 3, 4, 7))),
    ("first_time_fix", DEC, (1, 1, (), (8,))),
    ("rework_rate", OCT, (0, 1, (), (1,))),
    ("rework_rate", NOV, (2, 4, (3, 7), (2, 3, 4, 7))),
    ("rework_rate", DEC, (0, 1, (), (8,))),
    ("callback_rate", OCT, (1, 1, (), (1,))),
    ("callback_rate", NOV, (2, 4, (4, 7), (2, 3, 4, 7))),
    ("callback_rate", DEC, (1, 1, (), (8,))),
]


def _closed_indicator(name: str, period: Period) -> Indicator:
    if name == "first_time_fix":
        return first_time_fix(CLOSED, period)
    if name == "rework_rate":
        return rework_rate(CLOSED, period)
    return callback_rate(CLOSED, CALLBACKS, period)


@pytest.mark.parametrize(("name", "period", "expected"), CLOSED_CASES)
def test_closed_ticket_indicators(name: str, period: Period, expected: tuple[int, int, tuple[int, ...],
                                                                           tuple[int, ...]]) -> None:
    num, den, evidence, counted = expected
    result = _closed_indicator(name, period)
    assert result.ratio == Ratio(num, den)
    assert result.evidence == evidence
    assert result.counted == counted


SATISFACTION_CASES = [
    (OCT, (1, 2, (3,), (1, 3))),
    (NOV, (2, 4, (3, 3), (2, 3, 3, 8))),  # per callback: ticket 3 was called twice, both unhappy
    (DEC, (0, 1, (8,), (8,))),
]


@pytest.mark.parametrize(("period", "expected"), SATISFACTION_CASES)
def test_satisfaction_by_callback_time(period: Period, expected: tuple[int, int, tuple[int, ...],
                                                                       tuple[int, ...]]) -> None:
    num, den, evidence, counted = expected
    result = satisfaction(CALLBACKS, period)
    assert result.ratio == Ratio(num, den)
    assert result.evidence == evidence
    assert result.counted == counted


@pytest.mark.parametrize(("score", "satisfied"), [(1, False), (2, False), (3, False), (4, True), (5, True)])
def test_satisfaction_scores(score: int, satisfied: bool) -> None:
    result = satisfaction([CallbackFacts(ticket=9, at=at("2026-11-15 12:00"), score=score)], NOV)
    assert result.ratio == Ratio(int(satisfied), 1)
    assert result.evidence == (() if satisfied else (9,))
    assert result.counted == (9,)


@pytest.mark.parametrize("score", [0, 6, -1])
def test_satisfaction_rejects_a_score_outside_1_to_5(score: int) -> None:
    with pytest.raises(ValueError, match="score must be 1 to 5"):
        satisfaction([CallbackFacts(ticket=9, at=at("2026-11-15 12:00"), score=score)], NOV)


def test_an_empty_period_has_no_figure() -> None:
    jan = Period(at("2027-01-01 00:00"), at("2027-02-01 00:00"))
    results: list[Indicator] = [
        timeliness(list(T.values()), jan, LATER), first_time_fix(CLOSED, jan), rework_rate(CLOSED, jan),
        callback_rate(CLOSED, CALLBACKS, jan), satisfaction(CALLBACKS, jan),
        timeliness([], NOV, LATER), first_time_fix([], NOV), rework_rate([], NOV),
        callback_rate([], [], NOV), satisfaction([], NOV),
    ]
    for result in results:
        assert result.ratio == Ratio(0, 0)
        assert result.value is None
        assert result.evidence == result.counted == ()


def test_cancelled_tickets_are_never_counted() -> None:
    cancelled = [replace(t, status="cancelled") for t in CLOSED]
    assert first_time_fix(cancelled, NOV).counted == ()
    assert rework_rate(cancelled, NOV).counted == ()
    assert callback_rate(cancelled, CALLBACKS, NOV).counted == ()
    assert timeliness(cancelled, NOV, LATER).counted == ()
    assert filter_callbacks(CALLBACKS, cancelled) == ()


def test_results_are_frozen() -> None:
    result = timeliness([T["respond_late"]], NOV, LATER)
    with pytest.raises(AttributeError):
        result.ratio = Ratio(1, 1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.per_clock["respond"] = Ratio(1, 1)  # type: ignore[index]


# -- scopes ------------------------------------------------------------------------------------------

SCOPED = [
    replace(CLOSED[0], category="lighting", asset="lamp-1", priority="emergency"),
    replace(CLOSED[1], category="lighting", asset="lamp-2", priority="general"),
    replace(CLOSED[2], category="fire", asset="ext-1", priority="urgent"),
    replace(CLOSED[3], category="drainage", asset="well-1", priority="general"),
    replace(CLOSED[4], category=None, asset=None, priority="general"),
]


@pytest.mark.parametrize(("scope", "ids"), [
    ({}, (1, 2, 3, 4, 5)),
    ({"category": "lighting"}, (1, 2)),
    ({"category": ["fire", "drainage"]}, (3, 4)),
    ({"assets": {"lamp-2", "well-1", "nowhere"}}, (2, 4)),
    ({"assets": "ext-1"}, (3,)),
    ({"priority": "general"}, (2, 4, 5)),
    ({"priority": ("emergency", "general")}, (1, 2, 4, 5)),
    ({"category": "lighting", "priority": "general"}, (2,)),
    ({"category": "lighting", "assets": ["ext-1"]}, ()),
    ({"assets": []}, ()),
])
def test_filter_tickets(scope: dict[str, object], ids: tuple[int, ...]) -> None:
    assert tuple(t.id for t in filter_tickets(SCOPED, **scope)) == ids  # type: ignore[arg-type]


def test_scoped_callbacks_follow_the_scoped_tickets() -> None:
    lighting = filter_tickets(SCOPED, category="lighting")
    assert [c.ticket for c in filter_callbacks(CALLBACKS, lighting)] == [1, 2]
    assert satisfaction(filter_callbacks(CALLBACKS, lighting), NOV).ratio == Ratio(1, 1)
    assert callback_rate(lighting, CALLBACKS, NOV).counted == (2,)
