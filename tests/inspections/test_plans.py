"""Inspection plans: the defaults, a site's overrides (every problem at once), and when an inspection is due."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.config import ConfigError
from gateway.inspections.plans import (
    DEFAULT_PLANS,
    HALF_YEAR_S,
    PlanOverride,
    due,
    load_plans,
    month_deadlines,
)
from gateway.site import AssetModel

SH = ZoneInfo("Asia/Shanghai")
DAY = 86400.0


def local(*args: int) -> float:
    return datetime(*args, tzinfo=SH).timestamp()


EXT = AssetModel(id="E1", name="1号楼灭火器", category="fire", kind="fire_extinguisher")
HYD = AssetModel(id="H1", category="fire", kind="fire_hydrant", device="dev-h1")
SMOKE = AssetModel(id="S1", category="fire", kind="smoke_detector")
FIRE_NO_KIND = AssetModel(id="F0", category="fire")
WELL = AssetModel(id="W1", name="雨水井", category="drainage", kind="drain_level")
SEPTIC = AssetModel(id="T1", name="3号化粪池", category="drainage")
SEPTIC_ZONE = AssetModel(id="T2", name="tank", category="drainage", kind="drain_level", zone="North Septic area")
LAMP = AssetModel(id="L1", category="lighting", kind="streetlight")

FIRE, WELLS, CLEANOUT = DEFAULT_PLANS["fire"], DEFAULT_PLANS["wells"], DEFAULT_PLANS["septic_cleanout"]


# -- defaults ---------------------------------------------------------------------------------------
def test_default_plans() -> None:
    assert list(DEFAULT_PLANS) == ["fire", "wells", "septic_cleanout"]
    assert (FIRE.category, FIRE.every, FIRE.times, FIRE.cleanout) == ("fire", "month", 2, False)
    assert (WELLS.category, WELLS.every, WELLS.times, WELLS.cleanout) == ("drainage", "month", 1, False)
    assert (CLEANOUT.category, CLEANOUT.every, CLEANOUT.times, CLEANOUT.cleanout) == ("drainage", "half_year", 1, True)
    assert FIRE.zh == "消防设施定检" and CLEANOUT.zh == "化粪池清掏"


def test_fire_checklist_per_kind() -> None:
    ext = {i.id: i.zh for i in FIRE.checklist_for("fire_extinguisher")}
    assert ext == {"pressure_green": "压力在绿区", "seal_intact": "铅封完好", "unobstructed": "无遮挡",
                   "in_service_life": "在有效期内"}
    assert {i.id for i in FIRE.checklist_for("fire_hydrant")} == {"water_pressure", "valve_turns", "hose_nozzle",
                                                                   "unobstructed"}
    assert {i.id for i in FIRE.checklist_for("smoke_detector")} == {"alarm_test", "no_dust_cover"}
    assert FIRE.per_kind and FIRE.checklist_for(None) == ()


def test_wells_and_cleanout_checklists() -> None:
    assert [(i.id, i.zh) for i in WELLS.checklist] == [
        ("cover_seated", "井盖完好归位"), ("no_debris", "无杂物堵塞"), ("level_normal", "水位正常"),
        ("no_odour_overflow", "无异味、无外溢")]
    assert WELLS.checklist_for(None) == WELLS.checklist and not WELLS.per_kind
    assert [(i.id, i.zh) for i in CLEANOUT.checklist] == [("cleaned_out", "已清掏"), ("hauler_receipt", "清运单据")]


def test_which_assets_a_plan_covers() -> None:
    assert all(FIRE.applies_to(a) for a in (EXT, HYD, SMOKE, FIRE_NO_KIND))
    assert not FIRE.applies_to(WELL) and not FIRE.applies_to(LAMP)
    assert all(WELLS.applies_to(a) for a in (WELL, SEPTIC, SEPTIC_ZONE))  # septic tanks are inspected monthly too
    # Septic tanks, until the site file has a flag: 化粪池 or "septic" (any case) in the name or zone.
    assert CLEANOUT.applies_to(SEPTIC) and CLEANOUT.applies_to(SEPTIC_ZONE)
    assert not CLEANOUT.applies_to(WELL) and not CLEANOUT.applies_to(EXT)


# -- overrides ------------------------------------------------------------------------------------
def test_no_overrides_are_the_defaults() -> None:
    assert load_plans() == DEFAULT_PLANS
    assert load_plans({}) == DEFAULT_PLANS


def test_override_changes_only_what_it_gives() -> None:
    plans = load_plans({
        "fire": {"times": 4},
        "wells": {"checklist": [{"id": "cover_seated", "zh": "井盖完好"},
                                {"id": "no_smell", "zh": "无异味", "en": "no smell"}]},
        "septic_cleanout": PlanOverride(every="month"),
    })
    assert plans["fire"].times == 4 and plans["fire"].checklist == FIRE.checklist and plans["fire"].every == "month"
    assert [(i.id, i.zh, i.en) for i in plans["wells"].checklist] == [
        ("cover_seated", "井盖完好", "cover_seated"), ("no_smell", "无异味", "no smell")]
    assert plans["wells"].times == 1
    assert plans["septic_cleanout"].every == "month" and plans["septic_cleanout"].cleanout
    assert DEFAULT_PLANS["fire"].times == 2  # the defaults are untouched


def test_every_override_problem_listed_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        load_plans({
            "patrol": {"times": 1},
            "fire": {"checklist": [], "times": 0},
            "wells": {"checklist": [{"id": "Cover-OK", "zh": "井盖"}, {"id": "x", "zh": ""}]},
            "septic_cleanout": {"every": "week", "colour": "red"},
        }, source="site.toml")
    problems = e.value.problems
    assert problems[0] == "site.toml: plans.patrol: unknown plan (known: fire, wells, septic_cleanout)"
    text = "\n".join(problems)
    assert "site.toml: plans.fire.times: Input should be greater than or equal to 1" in text
    assert "site.toml: plans.fire.checklist: a checklist needs at least one item" in text
    assert "site.toml: plans.wells.checklist.0.id: must be 1-40 of a-z 0-9 _" in text
    assert "site.toml: plans.wells.checklist.1.zh:" in text
    assert "site.toml: plans.septic_cleanout.every: Input should be 'month' or 'half_year'" in text
    assert "site.toml: plans.septic_cleanout.colour: unknown key" in text
    assert len(problems) == 7


def test_override_problems_across_fields() -> None:
    with pytest.raises(ConfigError) as e:
        load_plans({
            "fire": {"every": "half_year"},  # twice ... every half year: refused
            "wells": {"checklist": [{"id": "a", "zh": "一"}, {"id": "a", "zh": "二"}]},
            "septic_cleanout": {"checklist": [{"id": "lamp", "zh": "灯", "kinds": ["streetlight"]},
                                              {"id": "b", "zh": "乙", "kinds": ["toaster"]}]},
        })
    text = "\n".join(e.value.problems)
    assert "plans.fire.times: a half-year plan needs times = 1 (got 2)" in text
    assert "plans.wells.checklist: item id 'a' appears more than once" in text
    assert "plans.septic_cleanout.checklist.1.kinds: unknown kind 'toaster'" in text
    assert len(e.value.problems) == 3
    with pytest.raises(ConfigError) as e:
        load_plans({"septic_cleanout": {"checklist": [{"id": "lamp", "zh": "灯", "kinds": ["streetlight"]}]}})
    assert e.value.problems == ["site file: plans.septic_cleanout.checklist.0.kinds: a streetlight is not a "
                                "drainage asset"]


# -- when it is due -------------------------------------------------------------------------------
def test_month_deadlines() -> None:
    assert month_deadlines(2, 2024, 3, SH) == [local(2024, 3, 16), local(2024, 4, 1)]
    assert month_deadlines(2, 2024, 2, SH) == [local(2024, 2, 16), local(2024, 3, 1)]  # the 15th, even in February
    assert month_deadlines(1, 2024, 12, SH) == [local(2025, 1, 1)]
    assert month_deadlines(3, 2024, 4, SH) == [local(2024, 4, 11), local(2024, 4, 21), local(2024, 5, 1)]


def test_twice_a_month_none_by_the_15th_overdue_on_the_16th() -> None:
    done = [local(2024, 2, 5, 10), local(2024, 2, 20, 10)]  # February kept
    s = due(FIRE, EXT, done, local(2024, 3, 15, 23, 59, 59), SH)
    assert (s.done_this_period, s.needed, s.overdue) == (0, 2, False)
    assert s.next_due_at == local(2024, 3, 16) and s.overdue_since is None
    s = due(FIRE, EXT, done, local(2024, 3, 16), SH)  # 16th 00:00 Asia/Shanghai
    assert s.overdue and s.overdue_since == local(2024, 3, 16) and s.next_due_at == local(2024, 3, 16)
    assert s.done_this_period == 0
    assert local(2024, 3, 16) == datetime(2024, 3, 15, 16, 0, tzinfo=ZoneInfo("UTC")).timestamp()


def test_a_late_first_inspection_ends_the_overdue() -> None:
    done = [local(2024, 2, 5, 10), local(2024, 2, 20, 10), local(2024, 3, 17, 9)]
    s = due(FIRE, EXT, done, local(2024, 3, 17, 12), SH)
    assert not s.overdue and s.done_this_period == 1 and s.next_due_at == local(2024, 4, 1)
    # An inspection at the very deadline is late for it, but verifies the asset again.
    assert not due(FIRE, EXT, [local(2024, 3, 16)], local(2024, 3, 16), SH).overdue


def test_one_by_the_15th_and_none_after_overdue_on_the_1st() -> None:
    done = [local(2024, 2, 5, 10), local(2024, 2, 20, 10), local(2024, 3, 10, 9)]
    s = due(FIRE, EXT, done, local(2024, 3, 16), SH)
    assert not s.overdue and s.done_this_period == 1 and s.next_due_at == local(2024, 4, 1)
    s = due(FIRE, EXT, done, local(2024, 3, 31, 23, 59, 59), SH)
    assert not s.overdue
    s = due(FIRE, EXT, done, local(2024, 4, 1), SH)
    assert s.overdue and s.overdue_since == local(2024, 4, 1) and s.done_this_period == 0
    # The next inspection, in April, verifies it again; April's first is then done.
    s = due(FIRE, EXT, [*done, local(2024, 4, 3, 9)], local(2024, 4, 5), SH)
    assert not s.overdue and s.done_this_period == 1 and s.next_due_at == local(2024, 5, 1)


def test_two_inspections_the_same_day_count_once() -> None:
    done = [local(2024, 3, 2, 9), local(2024, 3, 2, 15)]
    s = due(FIRE, EXT, done, local(2024, 3, 20), SH)
    assert s.done_this_period == 1 and not s.overdue and s.next_due_at == local(2024, 4, 1)
    s = due(FIRE, EXT, done, local(2024, 4, 1), SH)
    assert s.overdue


def test_all_done_next_due_is_next_month() -> None:
    done = [local(2024, 3, 2, 9), local(2024, 3, 9, 9)]  # both in the first half: both count
    s = due(FIRE, EXT, done, local(2024, 3, 20), SH)
    assert (s.done_this_period, s.overdue, s.next_due_at) == (2, False, local(2024, 4, 16))
    assert not due(FIRE, EXT, done, local(2024, 4, 1), SH).overdue


def test_never_inspected_is_overdue_from_the_start() -> None:
    s = due(FIRE, EXT, [], local(2024, 3, 1, 8), SH)
    assert s.overdue and s.overdue_since == local(2024, 3, 1)
    s = due(WELLS, WELL, [local(2024, 2, 29, 23, 59)], local(2024, 3, 31, 23), SH)
    assert not s.overdue and s.next_due_at == local(2024, 4, 1) and s.done_this_period == 0


def test_monthly_wells() -> None:
    done = [local(2024, 3, 25, 10)]
    assert due(WELLS, WELL, done, local(2024, 3, 26), SH).next_due_at == local(2024, 5, 1)
    assert not due(WELLS, WELL, done, local(2024, 4, 30, 23), SH).overdue
    assert due(WELLS, WELL, done, local(2024, 5, 1), SH).overdue
    assert not due(WELLS, WELL, [local(2024, 4, 2)], local(2024, 4, 20), SH).overdue  # March was missed, April done


def test_times_in_the_future_are_ignored() -> None:
    s = due(FIRE, EXT, [local(2024, 3, 20)], local(2024, 3, 16), SH)
    assert s.overdue and s.done_this_period == 0


def test_half_year_cleanout() -> None:
    s = due(CLEANOUT, SEPTIC, [], local(2024, 3, 1), SH)
    assert s.overdue and s.next_due_at is None and s.overdue_since is None and s.done_this_period == 0
    last = local(2024, 1, 10, 9)
    s = due(CLEANOUT, SEPTIC, [local(2023, 6, 1), last], last + 182 * DAY, SH)
    assert not s.overdue and s.next_due_at == last + 183 * DAY and s.done_this_period == 1 and s.needed == 1
    s = due(CLEANOUT, SEPTIC, [local(2023, 6, 1), last], last + 183 * DAY, SH)
    assert s.overdue and s.overdue_since == last + HALF_YEAR_S and s.done_this_period == 0
    assert HALF_YEAR_S == 183 * DAY


def test_due_refuses_an_asset_outside_the_plan() -> None:
    with pytest.raises(ValueError, match="plan septic_cleanout does not apply to asset W1"):
        due(CLEANOUT, WELL, [], local(2024, 3, 1), SH)
