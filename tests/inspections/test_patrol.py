"""Patrol rounds (巡更): schedules, the round state machine, events at exact instants, plausibility and
巡更完成率. Hand-computed in Asia/Shanghai (UTC+8 all year: 22:00 local is 14:00 UTC)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.commitments.model import Period, Ratio
from gateway.inspections.model import DEFAULT_SCHEDULES, PatrolSettings, RouteModel, ScheduleModel
from gateway.inspections.patrol import (
    EARLY,
    LATE,
    MISSED,
    ON_TIME,
    OUT_OF_ORDER,
    PENDING,
    ROUND_MISSED,
    TAP_FLAGGED,
    VISIT_LATE,
    VISIT_MISSED,
    DueRound,
    Event,
    Patrols,
    TapFact,
    completion,
    due_rounds,
    night_of,
    per_guard,
    per_night,
    per_route,
    plausible,
    positions,
)
from gateway.site import CheckpointModel

SH = ZoneInfo("Asia/Shanghai")
MIN = 60.0


def at(text: str) -> float:
    """``2026-11-20 22:00[:ss]`` local time in Shanghai, as epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=SH).timestamp()


def local(t: float) -> str:
    return datetime.fromtimestamp(t, SH).strftime("%Y-%m-%d %H:%M:%S")


CPS = ("gate", "garage", "pool", "park")  # 大门, 车库, 水池, 停车场
CHECKPOINTS = [CheckpointModel(id=cp, tag=f"04A2{i:02X}B2", x_m=x, y_m=y)
               for i, (cp, x, y) in enumerate(zip(CPS, (0.0, 400.0, None, 0.0), (0.0, 0.0, None, 300.0), strict=True))]
NIGHT_ROUTE = RouteModel(id="night", checkpoints=CPS, ordered=True, duration_min=30)
HOURLY = ScheduleModel(route="night", start="22:00", end="06:00", every_min=60)  # ±10 min
AT_TEN = ScheduleModel(route="night", at=("10:00",))
QUIET = PatrolSettings(min_gap_s=0, repeat_s=0)  # without positions: nothing is implausible


def patrols(*schedules: ScheduleModel, route: RouteModel = NIGHT_ROUTE, limits: PatrolSettings = QUIET,
            plan_from: str = "2026-11-20 18:00") -> Patrols:
    p = Patrols([route], schedules or (HOURLY,), () if limits is QUIET else CHECKPOINTS, limits, SH)
    p.plan(at(plan_from), 18 * 3600)
    return p


# --- schedules -------------------------------------------------------------------------------------


def test_a_round_is_due_at_local_wall_time():
    (first, *_) = due_rounds([NIGHT_ROUTE], [HOURLY], at("2026-11-20 12:00"), at("2026-11-21 12:00"), SH)
    assert first == DueRound("night", datetime(2026, 11, 20, 14, 0, tzinfo=UTC).timestamp(), 600.0,
                             "night@2026-11-20T22:00")


@pytest.mark.parametrize(("schedules", "start", "end", "expected"), [
    pytest.param([HOURLY], "2026-11-20 12:00", "2026-11-21 12:00",
                 ["2026-11-20 22:00", "2026-11-20 23:00", "2026-11-21 00:00", "2026-11-21 01:00",
                  "2026-11-21 02:00", "2026-11-21 03:00", "2026-11-21 04:00", "2026-11-21 05:00"],
                 id="22:00-06:00 every 60 crosses midnight, 06:00 excluded"),
    pytest.param([HOURLY], "2026-11-21 00:00", "2026-11-21 03:00",
                 ["2026-11-21 00:00", "2026-11-21 01:00", "2026-11-21 02:00"],
                 id="a period starting after midnight gets last evening's night, end excluded"),
    pytest.param([ScheduleModel(route="night", start="22:00", end="01:00", every_min=45)],
                 "2026-11-20 12:00", "2026-11-21 12:00",
                 ["2026-11-20 22:00", "2026-11-20 22:45", "2026-11-20 23:30", "2026-11-21 00:15"],
                 id="every 45 while before the end"),
    pytest.param([ScheduleModel(route="night", start="08:00", end="12:00", every_min=120, at=("07:15", "20:00"))],
                 "2026-11-21 00:00", "2026-11-22 00:00",
                 ["2026-11-21 07:15", "2026-11-21 08:00", "2026-11-21 10:00", "2026-11-21 20:00"],
                 id="a daytime span plus at times"),
    pytest.param([ScheduleModel(route="night", at=("09:00", "13:00", "17:00"))],
                 "2026-11-21 00:00", "2026-11-23 00:00",
                 ["2026-11-21 09:00", "2026-11-21 13:00", "2026-11-21 17:00",
                  "2026-11-22 09:00", "2026-11-22 13:00", "2026-11-22 17:00"],
                 id="at times every day of the period"),
    pytest.param([HOURLY, ScheduleModel(route="night", at=("23:00", "23:30"), tolerance_min=5)],
                 "2026-11-20 22:30", "2026-11-21 00:30",
                 ["2026-11-20 23:00", "2026-11-20 23:30", "2026-11-21 00:00"],
                 id="the same minute from two schedules is one round"),
    pytest.param([ScheduleModel(route="elsewhere", at=("23:00",))], "2026-11-20 12:00", "2026-11-21 12:00", [],
                 id="a schedule of no known route gives nothing"),
])
def test_due_rounds(schedules, start, end, expected):
    got = due_rounds([NIGHT_ROUTE], schedules, at(start), at(end), SH)
    assert [local(d.due_at)[:16] for d in got] == expected
    assert [d.id for d in got] == [f"night@{e.replace(' ', 'T')}" for e in expected]


def test_two_schedules_on_one_minute_keep_the_first_tolerance():
    twice = [HOURLY, ScheduleModel(route="night", at=("23:00",), tolerance_min=5)]
    (d,) = due_rounds([NIGHT_ROUTE], twice, at("2026-11-20 23:00"), at("2026-11-20 23:01"), SH)
    assert d.tolerance_s == 600.0
    assert d.start_window == (at("2026-11-20 22:50"), at("2026-11-20 23:10"))


def test_default_schedules_over_a_day():
    route = RouteModel(id="all", checkpoints=CPS, ordered=False)
    got = due_rounds([route], DEFAULT_SCHEDULES, at("2026-11-21 00:00"), at("2026-11-22 00:00"), SH)
    assert [local(d.due_at)[11:16] for d in got] == [
        "00:00", "01:00", "02:00", "03:00", "04:00", "05:00", "09:00", "13:00", "17:00", "22:00", "23:00"]


def test_a_wall_time_repeated_by_a_dst_fall_back_is_one_round():
    berlin = ZoneInfo("Europe/Berlin")  # 2026-10-25 03:00 CEST goes back to 02:00 CET
    s = ScheduleModel(route="night", start="01:00", end="04:00", every_min=30)
    start = datetime(2026, 10, 25, tzinfo=berlin).timestamp()
    got = due_rounds([NIGHT_ROUTE], [s], start, start + 86400, berlin)
    assert [d.id[-5:] for d in got] == ["01:00", "01:30", "02:00", "02:30", "03:00", "03:30"]
    assert [d.due_at for d in got] == sorted(d.due_at for d in got)


# --- a full night ---------------------------------------------------------------------------------

# Hourly rounds 22:00-05:00 on gate, garage, pool, park (ordered, 30 min, ±10 min). Each round starts at
# :02 (the gate tap), so the expected times are :02, :12, :22, :32 and the final close is :42. Every round
# is walked on time (:02, :11, :23, :35) except garage skipped at 01:00 and pool 15 min late at 03:00.
#        round                gate     garage   pool     park     guard
NIGHT = [("2026-11-20 22:00", "22:02", "22:11", "22:23", "22:35", "wang"),
         ("2026-11-20 23:00", "23:02", "23:11", "23:23", "23:35", "wang"),
         ("2026-11-21 00:00", "00:02", "00:11", "00:23", "00:35", "wang"),
         ("2026-11-21 01:00", "01:02", None, "01:23", "01:35", "wang"),  # garage skipped
         ("2026-11-21 02:00", "02:02", "02:11", "02:23", "02:35", "li"),
         ("2026-11-21 03:00", "03:02", "03:11", "03:37", "03:35", "li"),  # pool at 03:37, expected 03:22
         ("2026-11-21 04:00", "04:02", "04:11", "04:23", "04:35", "li"),
         ("2026-11-21 05:00", "05:02", "05:11", "05:23", "05:35", "li")]
NIGHT_EVENTS = [
    (VISIT_LATE, "2026-11-21 01:22:00", "night@2026-11-21T01:00", "garage"),  # expected 01:12 + 10 min
    (VISIT_MISSED, "2026-11-21 01:42:00", "night@2026-11-21T01:00", "garage"),  # final close 01:02 + 30 + 10
    (VISIT_LATE, "2026-11-21 03:32:00", "night@2026-11-21T03:00", "pool"),  # expected 03:22 + 10 min
]
NIGHT_START, NIGHT_END = at("2026-11-20 21:40"), at("2026-11-21 06:30")


def night_taps() -> list[TapFact]:
    taps = []
    for due, *times, guard in NIGHT:
        day = due[:10]
        for cp, hhmm in zip(CPS, times, strict=True):
            if hhmm is not None:
                taps.append(TapFact(cp, at(f"{day} {hhmm}"), guard, f"handheld-{guard}"))
    return sorted(taps, key=lambda t: t.at)


def walk(p: Patrols, taps: list[TapFact], advances: list[float]) -> list[tuple[float, Event]]:
    """Feed each tap before the first advance at or after its time; the events with when they came out.
    Taps already fed by an earlier call (by time, up to the last advance) are not fed again."""
    out = []
    i = next((k for k, t in enumerate(taps) if t.at > p.clock), len(taps))
    for now in advances:
        while i < len(taps) and taps[i].at <= now:
            flagged = p.tap(taps[i].checkpoint, taps[i].at, taps[i].guard, taps[i].reader)
            assert all(e.type == TAP_FLAGGED and e.at == taps[i].at for e in flagged)
            i += 1
        out += [(now, e) for e in p.advance(now)]
    return out


def brief(events: list[Event]) -> list[tuple[str, str, str, str | None]]:
    return [(e.type, local(e.at), e.data["round"], e.data["checkpoint"]) for e in events]


def test_a_night_gives_exactly_the_hand_computed_events_at_their_instants():
    p = patrols(limits=PatrolSettings())  # real limits: minutes apart is plausible
    assert len(p.rounds()) == 8
    got = walk(p, night_taps(), [NIGHT_START + 60 * k for k in range(int((NIGHT_END - NIGHT_START) / 60) + 1)])
    assert brief([e for _, e in got]) == NIGHT_EVENTS
    late = got[0][1]
    assert late.data == {"route": "night", "round": "night@2026-11-21T01:00", "due_at": at("2026-11-21 01:00"),
                         "checkpoint": "garage", "guard": "wang", "expected_at": at("2026-11-21 01:12"),
                         "window": (at("2026-11-21 01:02"), at("2026-11-21 01:22")),
                         "started_at": at("2026-11-21 01:02")}
    assert late.title == "巡更点超时未到"


@pytest.mark.parametrize("step", [1.0, 37.0, 600.0, None])
def test_the_events_do_not_depend_on_how_often_the_clock_is_advanced(step):
    p = patrols()
    if step is None:  # every tap first, then one advance at the end
        taps = night_taps()
        for t in taps:
            p.tap(t.checkpoint, t.at, t.guard, t.reader)
        events = p.advance(NIGHT_END)
    else:
        n = int((NIGHT_END - NIGHT_START) / step) + 1
        events = [e for _, e in walk(p, night_taps(), [NIGHT_START + step * k for k in range(n)] + [NIGHT_END])]
    assert brief(events) == NIGHT_EVENTS
    assert p.advance(NIGHT_END + 86400) == []  # exactly once


def test_each_event_comes_out_at_its_instant_not_before():
    p = patrols()
    taps = [t for t in night_taps() if t.at < at("2026-11-21 02:00")]
    for now, expected in [("01:21:59", []), ("01:21:59.999", []), ("01:22", NIGHT_EVENTS[:1]),
                          ("01:41:59", []), ("01:42", NIGHT_EVENTS[1:2]), ("01:59", [])]:
        assert brief([e for _, e in walk(p, taps, [at(f"2026-11-21 {now}")])]) == expected, now


def test_a_night_s_visits_and_completion():
    p = patrols()
    walk(p, night_taps(), [NIGHT_END])
    rounds = p.rounds(NIGHT_END)
    statuses = {(r.id[-5:], v.checkpoint): v.status for r in rounds for v in r.visits if v.status != ON_TIME}
    assert statuses == {("01:00", "garage"): MISSED, ("03:00", "pool"): LATE}
    assert all(r.state == "closed" for r in rounds)
    night = Period(at("2026-11-20 18:00"), at("2026-11-21 12:00"))
    assert completion(rounds, night) == Ratio(8 * 4 - 2, 32)
    assert per_guard(rounds, night) == {"li": Ratio(15, 16), "wang": Ratio(15, 16)}
    assert per_route(rounds, night) == {"night": Ratio(30, 32)}
    assert per_night(rounds, night, SH) == {date(2026, 11, 20): Ratio(30, 32)}
    assert completion(rounds, Period(at("2026-11-21 01:00"), at("2026-11-21 02:00"))) == Ratio(3, 4)


def test_an_unvisited_checkpoint_is_pending_then_late_then_missed():
    p = patrols()
    walk(p, [t for t in night_taps() if t.at < at("2026-11-21 02:00")], [at("2026-11-21 01:59")])
    rid = "night@2026-11-21T01:00"
    for now, status, state in [("01:21:59", PENDING, "started"), ("01:22:00", LATE, "started"),
                               ("01:41:59", LATE, "started"), ("01:42:00", MISSED, "closed")]:
        r = p.round(rid).as_of(at(f"2026-11-21 {now}"))
        assert (r.visits[1].status, r.visits[1].at, r.state) == (status, None, state), now


# --- one round, tap by tap -------------------------------------------------------------------------

# The 10:00 round: started by the first tap at 10:00, expected gate 10:00, garage 10:10, pool 10:20,
# park 10:30, each ±10 min; final close 10:40.
@pytest.mark.parametrize(("taps", "statuses"), [
    pytest.param([("gate", "10:00"), ("garage", "10:10"), ("pool", "10:20"), ("park", "10:30")],
                 [ON_TIME, ON_TIME, ON_TIME, ON_TIME], id="in order on time"),
    pytest.param([("gate", "10:00"), ("pool", "10:05"), ("garage", "10:12"), ("park", "10:30")],
                 [ON_TIME, ON_TIME, OUT_OF_ORDER, ON_TIME], id="pool while garage's window is open"),
    pytest.param([("pool", "10:00"), ("gate", "10:03"), ("garage", "10:10"), ("park", "10:30")],
                 [ON_TIME, ON_TIME, OUT_OF_ORDER, ON_TIME], id="started on a later checkpoint"),
    pytest.param([("gate", "10:00"), ("garage", "10:02"), ("pool", "10:05"), ("park", "10:30")],
                 [ON_TIME, ON_TIME, EARLY, ON_TIME], id="early"),
    pytest.param([("gate", "10:00"), ("garage", "10:19:59"), ("pool", "10:20"), ("park", "10:30")],
                 [ON_TIME, ON_TIME, ON_TIME, ON_TIME], id="the last second of a window"),
    pytest.param([("gate", "10:00"), ("pool", "10:20"), ("garage", "10:20:30"), ("park", "10:30")],
                 [ON_TIME, LATE, ON_TIME, ON_TIME], id="garage's window closed: pool in order, garage late"),
    pytest.param([("gate", "10:00"), ("garage", "10:10"), ("park", "10:39:59")],
                 [ON_TIME, ON_TIME, MISSED, ON_TIME], id="a later tap does not close an earlier checkpoint"),
    pytest.param([("gate", "10:00"), ("garage", "10:10"), ("pool", "10:40"), ("park", "10:30")],
                 [ON_TIME, ON_TIME, MISSED, ON_TIME], id="a tap at the final close is not the round's"),
    pytest.param([("gate", "10:00"), ("gate", "10:01"), ("garage", "10:10"), ("garage", "10:25"),
                  ("pool", "10:20"), ("park", "10:30")],
                 [ON_TIME, ON_TIME, ON_TIME, ON_TIME], id="a checkpoint again: the first tap counts"),
    pytest.param([("gate", "09:50"), ("garage", "10:00"), ("pool", "10:10"), ("park", "10:20")],
                 [ON_TIME, ON_TIME, ON_TIME, ON_TIME], id="started at the start window's opening"),
    pytest.param([("gate", "09:49:59"), ("gate", "10:10"), ("garage", "10:11")],
                 [MISSED, MISSED, MISSED, MISSED], id="taps outside the start window start nothing"),
])
def test_one_round(taps, statuses):
    p = patrols(AT_TEN, plan_from="2026-11-21 09:00")
    for cp, hhmm in taps:
        p.tap(cp, at(f"2026-11-21 {hhmm}"), "wang")
    (r,) = p.rounds(at("2026-11-21 12:00"))
    assert [v.status for v in r.visits] == statuses
    day = Period(at("2026-11-21 00:00"), at("2026-11-22 00:00"))
    assert completion([r], day) == Ratio(statuses.count(ON_TIME), 4)


def test_a_round_not_started_is_missed_at_due_plus_tolerance():
    p = patrols(AT_TEN, plan_from="2026-11-21 09:00")
    assert p.advance(at("2026-11-21 10:09:59")) == []
    (e,) = p.advance(at("2026-11-21 10:10"))
    assert (e.type, e.at) == (ROUND_MISSED, at("2026-11-21 10:10"))
    assert e.data["round"] == "night@2026-11-21T10:00"
    assert e.data["window"] == (at("2026-11-21 09:50"), at("2026-11-21 10:10"))
    assert p.tap("gate", at("2026-11-21 10:10"), "wang") == []  # too late to start it: no round takes it
    assert p.advance(at("2026-11-21 12:00")) == []  # no per-checkpoint event after a missed round
    (r,) = p.rounds(at("2026-11-21 12:00"))
    assert (r.state, r.started_at, [v.status for v in r.visits]) == ("missed", None, [MISSED] * 4)
    assert completion([r], Period(at("2026-11-21 00:00"), at("2026-11-22 00:00"))) == Ratio(0, 4)
    assert per_guard([r], Period(at("2026-11-21 00:00"), at("2026-11-22 00:00"))) == {"": Ratio(0, 4)}


def test_the_last_checkpoint_of_an_ordered_route_only_has_a_missed_event():
    p = patrols(AT_TEN, plan_from="2026-11-21 09:00")
    for cp, hhmm in [("gate", "10:00"), ("garage", "10:10"), ("pool", "10:20")]:
        p.tap(cp, at(f"2026-11-21 {hhmm}"), "wang")
    assert brief(p.advance(at("2026-11-21 12:00"))) == [(VISIT_MISSED, "2026-11-21 10:40:00",
                                                         "night@2026-11-21T10:00", "park")]


def test_an_unordered_route():
    garden = RouteModel(id="night", checkpoints=CPS, ordered=False, duration_min=30)
    p = patrols(AT_TEN, route=garden, plan_from="2026-11-21 09:00")
    for cp, hhmm in [("park", "10:00"), ("gate", "10:05"), ("pool", "10:39:59")]:
        p.tap(cp, at(f"2026-11-21 {hhmm}"), "wang")
    (r,) = p.rounds(at("2026-11-21 10:39"))
    assert {v.expected_at for v in r.visits} == {at("2026-11-21 10:15")}
    assert {v.window for v in r.visits} == {(at("2026-11-21 09:50"), at("2026-11-21 10:40"))}
    assert [v.status for v in r.visits] == [ON_TIME, PENDING, ON_TIME, ON_TIME]  # no "late" before the close
    assert brief(p.advance(at("2026-11-21 12:00"))) == [(VISIT_MISSED, "2026-11-21 10:40:00",
                                                         "night@2026-11-21T10:00", "garage")]
    assert [v.status for v in p.rounds(at("2026-11-21 12:00"))[0].visits] == [ON_TIME, MISSED, ON_TIME, ON_TIME]


def test_a_long_round_still_open_does_not_swallow_the_next_round_s_start():
    long = RouteModel(id="night", checkpoints=CPS, ordered=True, duration_min=60)  # expected +0, +20, +40, +60
    p = patrols(ScheduleModel(route="night", start="22:00", end="00:00", every_min=60), route=long)
    for cp, hhmm in [("gate", "22:05"), ("garage", "22:25"), ("pool", "22:45"), ("gate", "23:00"),
                     ("park", "23:04")]:
        p.tap(cp, at(f"2026-11-20 {hhmm}"), "wang")
    first, second = p.rounds()
    assert second.started_at == at("2026-11-20 23:00")  # gate again: the 22:00 round no longer waits for it
    assert first.visits[3].at == at("2026-11-20 23:04")  # park: the 22:00 round still waits for it
    assert [v.status for v in first.visits] == [ON_TIME] * 4
    assert [v.status for v in second.visits] == [ON_TIME, PENDING, PENDING, PENDING]


def test_a_checkpoint_on_two_routes_counts_on_both():
    short = RouteModel(id="short", checkpoints=("gate", "park"), ordered=True, duration_min=10)
    p = Patrols([NIGHT_ROUTE, short], [AT_TEN, ScheduleModel(route="short", at=("10:00",))], (), QUIET, SH)
    p.plan(at("2026-11-21 09:00"), 6 * 3600)
    p.tap("gate", at("2026-11-21 10:01"), "wang")
    assert [r.started_at for r in p.rounds()] == [at("2026-11-21 10:01")] * 2


# --- taps arriving late ----------------------------------------------------------------------------


def test_a_tap_delivered_after_the_clock_passed_it_counts_but_old_news_is_not_told():
    p = patrols(AT_TEN, plan_from="2026-11-21 09:00")
    assert [e.type for e in p.advance(at("2026-11-21 10:25"))] == [ROUND_MISSED]
    p.tap("gate", at("2026-11-21 10:00"), "wang")  # the handheld was out of range: it comes in now
    (r,) = p.rounds(at("2026-11-21 10:25"))
    assert (r.started_at, r.visits[0].status, r.visits[1].status) == (at("2026-11-21 10:00"), ON_TIME, LATE)
    # garage's window closed at 10:20, already past: not told; pool's closes at 10:30, park's at the close.
    assert brief(p.advance(at("2026-11-21 12:00"))) == [
        (VISIT_LATE, "2026-11-21 10:30:00", "night@2026-11-21T10:00", "pool"),
        (VISIT_MISSED, "2026-11-21 10:40:00", "night@2026-11-21T10:00", "garage"),
        (VISIT_MISSED, "2026-11-21 10:40:00", "night@2026-11-21T10:00", "pool"),
        (VISIT_MISSED, "2026-11-21 10:40:00", "night@2026-11-21T10:00", "park")]


# --- plausibility -------------------------------------------------------------------------------

POS = positions(CHECKPOINTS)  # gate (0, 0), garage (400, 0), park (0, 300); pool has no position
LIMITS = PatrolSettings()  # 2 m/s, 20 s without positions, the same tag again within 10 s


@pytest.mark.parametrize(("prev", "tap", "reason"), [
    pytest.param(None, TapFact("gate", 0), None, id="first tap"),
    pytest.param(TapFact("gate", 0), TapFact("garage", 3), "too_fast", id="400 m in 3 s"),
    pytest.param(TapFact("gate", 0), TapFact("garage", 199), "too_fast", id="400 m in 199 s"),
    pytest.param(TapFact("gate", 0), TapFact("garage", 200), None, id="400 m in 200 s: 2 m/s"),
    pytest.param(TapFact("garage", 0), TapFact("park", 249), "too_fast", id="500 m diagonal in 249 s"),
    pytest.param(TapFact("garage", 0), TapFact("park", 250), None, id="500 m diagonal in 250 s"),
    pytest.param(TapFact("gate", 0), TapFact("gate", 9.9), "repeat", id="same tag within 10 s"),
    pytest.param(TapFact("gate", 0), TapFact("gate", 10), None, id="same tag after 10 s"),
    pytest.param(TapFact("gate", 0), TapFact("pool", 19), "too_fast", id="no position: under 20 s"),
    pytest.param(TapFact("gate", 0), TapFact("pool", 20), None, id="no position: 20 s"),
])
def test_plausible(prev, tap, reason):
    got = plausible(prev, tap, POS, LIMITS)
    assert (got if got is None else got.partition(":")[0]) == reason


def test_positions_only_for_checkpoints_with_both_coordinates():
    assert POS == {"gate": (0.0, 0.0), "garage": (400.0, 0.0), "park": (0.0, 300.0)}


def test_two_taps_3_s_apart_on_checkpoints_400_m_apart_are_flagged_until_accepted():
    p = patrols(AT_TEN, limits=LIMITS, plan_from="2026-11-21 09:00")
    assert p.tap("gate", at("2026-11-21 10:00"), "wang") == []
    (e,) = p.tap("garage", at("2026-11-21 10:00:03"), "wang")
    assert (e.type, e.at, e.data["round"], e.data["checkpoint"]) == (
        TAP_FLAGGED, at("2026-11-21 10:00:03"), "night@2026-11-21T10:00", "garage")
    assert e.data["reason"].startswith("too_fast: 400 m from gate in 3 s")
    (r,) = p.rounds()
    assert (r.visits[1].at, [f.checkpoint for f in r.flagged]) == (None, ["garage"])
    r = p.accept(r.id, "garage", "duty-manager")
    assert (r.visits[1].at, r.visits[1].status, r.visits[1].accepted_by, r.flagged) == (
        at("2026-11-21 10:00:03"), ON_TIME, "duty-manager", ())
    assert r.visits[1].flag is not None and r.visits[1].flag.startswith("too_fast")
    with pytest.raises(KeyError):
        p.accept(r.id, "garage", "duty-manager")


def test_the_same_tag_twice_within_10_s_is_flagged():
    p = patrols(AT_TEN, limits=LIMITS, plan_from="2026-11-21 09:00")
    p.tap("gate", at("2026-11-21 10:00"), "wang")
    (e,) = p.tap("gate", at("2026-11-21 10:00:05"), "wang")
    assert e.type == TAP_FLAGGED and e.data["reason"].startswith("repeat")
    (r,) = p.rounds()
    assert (r.visits[0].at, [f.at for f in r.flagged]) == (at("2026-11-21 10:00"), [at("2026-11-21 10:00:05")])
    with pytest.raises(ValueError, match="already visited"):
        p.accept(r.id, "gate", "duty-manager")


def test_plausibility_compares_the_same_guard_else_the_same_reader():
    p = patrols(AT_TEN, limits=LIMITS, plan_from="2026-11-21 09:00")
    assert p.tap("gate", at("2026-11-21 10:00"), "wang", "h1") == []
    assert p.tap("garage", at("2026-11-21 10:00:03"), "li", "h1") == []  # another guard, same reader
    assert p.tap("gate", at("2026-11-21 10:01"), None, "wall-7") == []
    (e,) = p.tap("park", at("2026-11-21 10:01:05"), None, "wall-7")  # 300 m in 5 s from the same reader
    assert e.type == TAP_FLAGGED and e.data["guard"] is None and e.data["reader"] == "wall-7"


def test_an_accepted_flagged_start_tap_starts_the_round():
    p = patrols(AT_TEN, limits=LIMITS, plan_from="2026-11-21 09:00")
    p.tap("garage", at("2026-11-21 09:49:58"), "wang")  # stray: before the start window opens
    (e,) = p.tap("gate", at("2026-11-21 09:50:01"), "wang")  # 400 m in 3 s
    assert e.data["round"] == "night@2026-11-21T10:00"
    (r,) = p.rounds()
    assert r.started_at is None and len(r.flagged) == 1
    r = p.accept(r.id, "gate", "duty-manager")
    assert (r.started_at, r.guard, r.visits[0].status) == (at("2026-11-21 09:50:01"), "wang", ON_TIME)


# --- properties ---------------------------------------------------------------------------------

OFFSETS = st.one_of(st.none(), st.integers(-4, 90).map(lambda k: 30.0 * k))  # seconds after :00, by 30 s


@st.composite
def nights(draw: st.DrawFn) -> list[TapFact]:
    """Random walks of the hourly night: per round, per checkpoint, a tap at some instant or none."""
    taps = []
    for due, *_, guard in NIGHT:
        for cp in CPS:
            offset = draw(OFFSETS)
            if offset is not None:
                taps.append(TapFact(cp, at(due) + offset, guard, None))
    return sorted(taps, key=lambda t: t.at)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(taps=nights(), advances=st.lists(st.floats(NIGHT_START, NIGHT_END), max_size=40))
def test_any_advance_granularity_gives_the_same_events(taps, advances):
    reference = patrols(limits=LIMITS)
    expected = [e for _, e in walk(reference, taps, [NIGHT_END])]
    p = patrols(limits=LIMITS)
    got = walk(p, taps, [*sorted(advances), NIGHT_END])
    assert [e for _, e in got] == expected
    assert all(e.at <= now for now, e in got)
    assert [e.at for _, e in got] == sorted(e.at for _, e in got)
    # exactly what the final rounds imply: nothing dropped, nothing extra
    implied = sorted((e for r in reference.rounds() for e in r.events()), key=lambda e: e.at)
    assert sorted(expected, key=lambda e: (e.at, e.type, e.data["round"], str(e.data["checkpoint"]))) == sorted(
        implied, key=lambda e: (e.at, e.type, e.data["round"], str(e.data["checkpoint"])))


@settings(max_examples=40, deadline=None)
@given(taps=nights(), seed=st.integers(0, 2**32 - 1))
def test_rounds_do_not_depend_on_the_order_taps_are_delivered_in(taps, seed):
    in_order = patrols()
    for t in taps:
        in_order.tap(t.checkpoint, t.at, t.guard)
    shuffled = list(taps)
    random.Random(seed).shuffle(shuffled)
    p = patrols()
    for t in shuffled:
        p.tap(t.checkpoint, t.at, t.guard)
    assert p.rounds() == in_order.rounds()
    assert p.advance(NIGHT_END) == in_order.advance(NIGHT_END)


# --- indicators -------------------------------------------------------------------------------


@pytest.mark.parametrize(("when", "night"), [
    ("2026-11-20 18:00", date(2026, 11, 20)),
    ("2026-11-20 23:59", date(2026, 11, 20)),
    ("2026-11-21 00:00", date(2026, 11, 20)),
    ("2026-11-21 11:59", date(2026, 11, 20)),
    ("2026-11-21 12:00", None),
    ("2026-11-21 17:59", None),
])
def test_night_of(when, night):
    assert night_of(at(when), SH) == night


def test_forget_drops_what_is_over_and_told():
    p = patrols()
    walk(p, night_taps(), [NIGHT_END])
    p.forget(at("2026-11-21 12:00"))
    assert p.rounds() == []
    assert len(p.plan(at("2026-11-21 18:00"), 18 * 3600)) == 8
