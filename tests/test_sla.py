"""SLA clocks, escalations and callbacks (回访): fixed instants built in the site's zone, no wall clock."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gateway.sla import (
    DEFAULT_CALLBACKS,
    DEFAULT_SLA,
    PRIORITIES,
    Deadlines,
    Escalation,
    SlaRule,
    SlaRuleSettings,
    callback_due,
    callback_table,
    clock_state,
    deadlines,
    due_escalations,
    sla_table,
)

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
SANTIAGO = ZoneInfo("America/Santiago")
MIN = 60.0
HOUR = 3600.0
DAY = 24 * HOUR


def at(*args: int, tz: ZoneInfo = SH, fold: int = 0) -> float:
    return datetime(*args, tzinfo=tz, fold=fold).timestamp()


def test_defaults_cover_every_priority() -> None:
    assert tuple(DEFAULT_SLA) == PRIORITIES
    assert tuple(DEFAULT_CALLBACKS) == PRIORITIES


# --- 急修不过夜: the emergency resolve deadline in Asia/Shanghai ----------------------------


@pytest.mark.parametrize(
    ("opened", "resolve_by"),
    [
        pytest.param(at(2026, 5, 12, 10, 0), at(2026, 5, 13, 0, 0), id="10:00-same-day-24:00"),
        pytest.param(at(2026, 5, 12, 15, 59, 59), at(2026, 5, 13, 0, 0), id="15:59:59-same-day-24:00"),
        pytest.param(at(2026, 5, 12, 16, 0), at(2026, 5, 13, 0, 0), id="16:00-exactly-plus-8h"),
        pytest.param(at(2026, 5, 12, 23, 30), at(2026, 5, 13, 7, 30), id="23:30-plus-8h-next-morning"),
        pytest.param(at(2026, 5, 12, 0, 5), at(2026, 5, 13, 0, 0), id="00:05-that-day-24:00"),
        pytest.param(at(2026, 12, 31, 11, 0), at(2027, 1, 1, 0, 0), id="new-year-eve"),
    ],
)
def test_emergency_resolve_same_day(opened: float, resolve_by: float) -> None:
    d = deadlines("emergency", opened, SH)
    assert d == Deadlines(respond_by=opened + 15 * MIN, arrive_by=opened + 30 * MIN, resolve_by=resolve_by)


def test_emergency_at_cutoff_is_plus_eight_hours_not_midnight_by_coincidence() -> None:
    # 16:30 shows the +8 h branch is taken (midnight would be 7.5 h away).
    opened = at(2026, 5, 12, 16, 30)
    assert deadlines("emergency", opened, SH).resolve_by == opened + 8 * HOUR == at(2026, 5, 13, 0, 30)


@pytest.mark.parametrize(
    ("priority", "respond", "arrive", "resolve"),
    [
        pytest.param("urgent", 30 * MIN, 2 * HOUR, 24 * HOUR, id="urgent-30min-2h-24h"),
        pytest.param("general", 24 * HOUR, None, 48 * HOUR, id="general-24h-none-48h"),
    ],
)
@pytest.mark.parametrize(
    "opened",
    [
        pytest.param(at(2026, 5, 12, 10, 0), id="morning"),
        pytest.param(at(2026, 5, 12, 23, 30), id="late-night"),
    ],
)
def test_fixed_span_priorities(
    opened: float, priority: str, respond: float, arrive: float | None, resolve: float
) -> None:
    d = deadlines(priority, opened, SH)
    assert d.respond_by == opened + respond
    assert d.arrive_by == (None if arrive is None else opened + arrive)
    assert d.resolve_by == opened + resolve


def test_general_has_no_arrive_deadline() -> None:
    assert deadlines("general", at(2026, 5, 12, 10, 0), SH).arrive_by is None


def test_unknown_priority() -> None:
    with pytest.raises(ValueError, match="known: emergency, urgent, general"):
        deadlines("critical", at(2026, 5, 12, 10, 0), SH)


# --- DST: the same-day deadline is local midnight, not opened + fixed hours ----------------


@pytest.mark.parametrize(
    ("tz", "opened", "resolve_by", "span_h"),
    [
        # 2026-03-29: 02:00 CET -> 03:00 CEST, a 23 h day.
        pytest.param(
            BERLIN, at(2026, 3, 29, 0, 30, tz=BERLIN), at(2026, 3, 30, 0, 0, tz=BERLIN), 22.5, id="berlin-spring"
        ),
        pytest.param(
            BERLIN, at(2026, 3, 29, 10, 0, tz=BERLIN), at(2026, 3, 30, 0, 0, tz=BERLIN), 14, id="berlin-spring-pm"
        ),
        # 2026-10-25: 03:00 CEST -> 02:00 CET, a 25 h day.
        pytest.param(
            BERLIN, at(2026, 10, 25, 0, 30, tz=BERLIN), at(2026, 10, 26, 0, 0, tz=BERLIN), 24.5, id="berlin-autumn"
        ),
        pytest.param(
            BERLIN,
            at(2026, 10, 25, 2, 30, tz=BERLIN, fold=0),
            at(2026, 10, 26, 0, 0, tz=BERLIN),
            22.5,
            id="berlin-autumn-02:30-first-CEST",
        ),
        pytest.param(
            BERLIN,
            at(2026, 10, 25, 2, 30, tz=BERLIN, fold=1),
            at(2026, 10, 26, 0, 0, tz=BERLIN),
            21.5,
            id="berlin-autumn-02:30-second-CET",
        ),
        # 2026-09-06: Santiago skips 00:00-01:00; the day starts at the jump itself.
        pytest.param(
            SANTIAGO,
            at(2026, 9, 5, 10, 0, tz=SANTIAGO),
            at(2026, 9, 6, 1, 0, tz=SANTIAGO),
            14,
            id="santiago-skipped-midnight",
        ),
    ],
)
def test_same_day_is_local_midnight_across_dst(tz: ZoneInfo, opened: float, resolve_by: float, span_h: float) -> None:
    d = deadlines("emergency", opened, tz)
    assert d.resolve_by == resolve_by
    assert d.resolve_by - opened == span_h * HOUR


def test_after_cutoff_is_elapsed_hours_across_dst() -> None:
    # Opened 20:00 CET the evening before spring-forward: 8 elapsed hours end 05:00 CEST.
    opened = at(2026, 3, 28, 20, 0, tz=BERLIN)
    assert deadlines("emergency", opened, BERLIN).resolve_by == at(2026, 3, 29, 5, 0, tz=BERLIN)


# --- clock_state at every boundary ------------------------------------------------------

START = at(2026, 5, 12, 10, 0)
DEADLINE = START + 15 * MIN  # 80 % of the span is at START + 720 s


@pytest.mark.parametrize(
    ("deadline", "done_at", "now", "state"),
    [
        pytest.param(None, None, START + DAY, None, id="no-deadline"),
        pytest.param(None, START, START, None, id="no-deadline-done"),
        pytest.param(DEADLINE, None, START, "on_time", id="at-start"),
        pytest.param(DEADLINE, None, START + 719.999, "on_time", id="just-before-80pct"),
        pytest.param(DEADLINE, None, START + 720, "at_risk", id="exactly-80pct"),
        pytest.param(DEADLINE, None, DEADLINE, "at_risk", id="exactly-at-deadline-not-overdue"),
        pytest.param(DEADLINE, None, DEADLINE + 0.001, "overdue", id="just-after-deadline"),
        pytest.param(DEADLINE, DEADLINE, DEADLINE + DAY, "met", id="done-exactly-at-deadline"),
        pytest.param(DEADLINE, START + 60, DEADLINE + DAY, "met", id="done-early"),
        pytest.param(DEADLINE, DEADLINE + 0.001, DEADLINE + 0.001, "missed", id="done-just-late"),
        pytest.param(DEADLINE, DEADLINE + 1, START, "missed", id="done-judged-by-done-at-not-now"),
    ],
)
def test_clock_state(deadline: float | None, done_at: float | None, now: float, state: str | None) -> None:
    assert clock_state(START, deadline, done_at, now) == state


def test_clock_state_custom_threshold() -> None:
    assert clock_state(START, DEADLINE, None, START + 450, at_risk=0.5) == "at_risk"
    assert clock_state(START, DEADLINE, None, START + 449, at_risk=0.5) == "on_time"
    with pytest.raises(ValueError, match="at_risk"):
        clock_state(START, DEADLINE, None, START, at_risk=1.5)


# --- escalations ------------------------------------------------------------------------

RESPOND = (START, START + 15 * MIN, None)
ARRIVE = (START, START + 30 * MIN, None)
RESOLVE = (START, at(2026, 5, 13, 0, 0), None)
CLOCKS = {"respond": RESPOND, "arrive": ARRIVE, "resolve": RESOLVE}
E = Escalation


@pytest.mark.parametrize(
    ("clocks", "done", "now", "expected"),
    [
        pytest.param(CLOCKS, frozenset(), START + 60, [], id="nothing-due"),
        pytest.param({}, frozenset(), START + DAY, [], id="no-clocks"),
        pytest.param(
            {"arrive": (START, None, None)},
            frozenset(),
            START + DAY,
            [],
            id="no-deadline",
        ),
        pytest.param(CLOCKS, frozenset(), START + 12 * MIN, [E("respond", 1, "at_risk")], id="at-risk-level-1"),
        pytest.param(
            CLOCKS,
            frozenset(),
            START + 15 * MIN + 1,
            [E("respond", 1, "at_risk"), E("respond", 2, "overdue")],
            id="overdue-unescalated-both-levels",
        ),
        pytest.param(
            CLOCKS,
            frozenset({("respond", 1)}),
            START + 15 * MIN + 1,
            [E("respond", 2, "overdue")],
            id="overdue-level-1-already-sent",
        ),
        pytest.param(
            CLOCKS, frozenset({("respond", 1), ("respond", 2)}), START + 15 * MIN + 1, [], id="all-levels-already-sent"
        ),
        pytest.param(CLOCKS, frozenset({("respond", 1)}), START + 12 * MIN, [], id="at-risk-level-1-already-sent"),
        pytest.param(
            {**CLOCKS, "respond": (START, START + 15 * MIN, START + 5 * MIN)},
            frozenset(),
            START + 25 * MIN,
            [E("arrive", 1, "at_risk")],
            id="done-clock-skipped",
        ),
        pytest.param(
            {**CLOCKS, "respond": (START, START + 15 * MIN, START + 20 * MIN)},
            frozenset(),
            START + 40 * MIN,
            [E("arrive", 1, "at_risk"), E("arrive", 2, "overdue")],
            id="missed-but-done-clock-skipped",
        ),
        pytest.param(
            {"resolve": RESOLVE, "arrive": ARRIVE, "respond": RESPOND},
            frozenset({("arrive", 1)}),
            at(2026, 5, 13, 0, 0) + 1,
            [
                E("respond", 1, "at_risk"),
                E("respond", 2, "overdue"),
                E("arrive", 2, "overdue"),
                E("resolve", 1, "at_risk"),
                E("resolve", 2, "overdue"),
            ],
            id="deterministic-order",
        ),
    ],
)
def test_due_escalations(
    clocks: dict[str, tuple[float, float | None, float | None]],
    done: frozenset[tuple[str, int]],
    now: float,
    expected: list[Escalation],
) -> None:
    assert due_escalations(clocks, done, now) == expected


def test_due_escalations_unknown_clock() -> None:
    with pytest.raises(ValueError, match="known: respond, arrive, resolve"):
        due_escalations({"fix": RESPOND}, frozenset(), START)


# --- callbacks (回访) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "after"),
    [
        pytest.param("emergency", 24 * HOUR, id="emergency-24h"),
        pytest.param("urgent", 3 * DAY, id="urgent-3d"),
        pytest.param("general", 3 * DAY, id="general-3d"),
    ],
)
def test_callback_due(priority: str, after: float) -> None:
    closed = at(2026, 5, 12, 18, 0)
    assert callback_due(priority, closed) == closed + after


def test_callback_due_unknown_priority() -> None:
    with pytest.raises(ValueError, match="unknown priority 'leak'"):
        callback_due("leak", at(2026, 5, 12, 18, 0))


def test_callback_table_merges_hours() -> None:
    table = callback_table({"general": 48})
    assert table == {"emergency": 24 * HOUR, "urgent": 72 * HOUR, "general": 48 * HOUR}
    closed = at(2026, 5, 12, 18, 0)
    assert callback_due("general", closed, table) == closed + 48 * HOUR
    assert callback_table({}) == dict(DEFAULT_CALLBACKS)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        pytest.param({"vip": 12}, r"unknown priority 'vip' .*known: emergency, urgent, general", id="unknown"),
        pytest.param({"general": 0}, "positive", id="zero"),
        pytest.param({"general": -1}, "positive", id="negative"),
        pytest.param({"general": float("inf")}, "positive", id="inf"),
        pytest.param({"general": True}, "positive", id="bool"),
        pytest.param({"general": "24"}, "positive", id="string"),
    ],
)
def test_callback_table_errors(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        callback_table(overrides)  # type: ignore[arg-type]


# --- site overrides ---------------------------------------------------------------------


def test_sla_table_no_overrides_is_default() -> None:
    assert sla_table({}) == dict(DEFAULT_SLA)


def test_sla_table_merges_only_given_fields() -> None:
    table = sla_table({"urgent": SlaRuleSettings(respond_min=20), "general": SlaRuleSettings(resolve_h=72)})
    assert table["urgent"] == SlaRule(respond_s=20 * MIN, arrive_s=2 * HOUR, resolve_s=24 * HOUR)
    assert table["general"] == SlaRule(respond_s=24 * HOUR, arrive_s=None, resolve_s=72 * HOUR)
    assert table["emergency"] == DEFAULT_SLA["emergency"]


def test_sla_table_explicit_none_removes_clock() -> None:
    table = sla_table({"urgent": SlaRuleSettings.model_validate({"arrive_min": None})})
    assert table["urgent"].arrive_s is None
    assert deadlines("urgent", START, SH, table).arrive_by is None


def test_sla_table_emergency_cutoff_override() -> None:
    table = sla_table({"emergency": SlaRuleSettings(cutoff="18:00", after_cutoff_h=6)})
    rule = table["emergency"]
    assert (rule.same_day, rule.cutoff, rule.after_cutoff_s) == (True, time(18, 0), 6 * HOUR)
    assert deadlines("emergency", at(2026, 5, 12, 17, 0), SH, table).resolve_by == at(2026, 5, 13, 0, 0)
    assert deadlines("emergency", at(2026, 5, 12, 19, 0), SH, table).resolve_by == at(2026, 5, 13, 1, 0)


def test_same_day_and_resolve_hours_earlier_binds() -> None:
    table = sla_table({"emergency": SlaRuleSettings(resolve_h=4), "urgent": SlaRuleSettings(same_day=True)})
    assert deadlines("emergency", at(2026, 5, 12, 10, 0), SH, table).resolve_by == at(2026, 5, 12, 14, 0)
    assert deadlines("emergency", at(2026, 5, 12, 22, 0), SH, table).resolve_by == at(2026, 5, 13, 2, 0)
    assert deadlines("urgent", at(2026, 5, 12, 10, 0), SH, table).resolve_by == at(2026, 5, 13, 0, 0)


def test_sla_table_unknown_priority() -> None:
    with pytest.raises(ValueError, match=r"unknown priority 'vip' .*known: emergency, urgent, general"):
        sla_table({"vip": SlaRuleSettings(respond_min=5)})


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"respond_min": 0}, id="zero"),
        pytest.param({"arrive_min": -5}, id="negative"),
        pytest.param({"resolve_h": float("nan")}, id="nan"),
        pytest.param({"after_cutoff_h": 0}, id="after-cutoff-zero"),
        pytest.param({"cutoff": "24:00"}, id="cutoff-24"),
        pytest.param({"cutoff": "4pm"}, id="cutoff-words"),
        pytest.param({"cutoff": "16:0"}, id="cutoff-short"),
        pytest.param({"cutoff": "16:00:00"}, id="cutoff-seconds"),
        pytest.param({"resolve_hours": 4}, id="extra-field"),
    ],
)
def test_sla_rule_settings_rejects(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SlaRuleSettings.model_validate(data)


def test_sla_rule_settings_accepts_midnight_cutoff() -> None:
    assert SlaRuleSettings(cutoff="00:00").cutoff == "00:00"
    assert sla_table({"emergency": SlaRuleSettings(cutoff="23:59")})["emergency"].cutoff == time(23, 59)
