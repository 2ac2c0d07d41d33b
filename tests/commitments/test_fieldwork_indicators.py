"""Patrol completion and inspection coverage as the commitments engine computes them, by hand."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.commitments import engine
from gateway.commitments.catalogue import load_catalogue
from gateway.commitments.data import InspectionFacts, SiteData, VisitFacts
from gateway.commitments.model import AssetInfo
from gateway.commitments.periods import parse_period

SH = ZoneInfo("Asia/Shanghai")
NOV = parse_period("2026-11", SH)
NOW = parse_period("2026-12", SH).start + 3600


def at(day: int, hour: int = 0) -> float:
    return datetime(2026, 11, day, hour, tzinfo=SH).timestamp()


ASSETS = [AssetInfo("FE-1", "fire", "fire_extinguisher"), AssetInfo("FE-2", "fire", "fire_extinguisher"),
          AssetInfo("W-1", "drainage", "drain_level"), AssetInfo("ST-1", "drainage", "drain_level", name="3号化粪池")]


def results(visits=(), inspections=()) -> dict[str, dict]:
    data = SiteData(ASSETS, {}, (), (), tuple(visits), tuple(inspections))
    return {r["id"]: r for r in engine.evaluate(load_catalogue(), data, NOV, NOW, SH)}


def test_patrol_completion_counts_visits_made_in_their_window():
    visits = [VisitFacts("night@22:00", "night", cp, "on_time", "G1", at(3, 22)) for cp in "ABCD"]
    visits += [VisitFacts("night@23:00", "night", "A", "on_time", "G2", at(3, 23)),
               VisitFacts("night@23:00", "night", "B", "late", "G2", at(3, 23)),
               VisitFacts("night@23:00", "night", "C", "missed", "G2", at(3, 23)),
               VisitFacts("day@09:00", "day", "A", "out_of_order", "G1", at(4, 9))]
    r = results(visits)["patrol_completion"]
    assert (r["num"], r["den"], r["met"]) == (5, 8, False)
    assert r["evidence"] == ["day@09:00", "night@23:00"]
    assert r["detail"]["per_guard"]["G1"] == {"num": 4, "den": 5, "value": 0.8}
    assert r["detail"]["per_route"]["night"]["den"] == 7
    assert r["detail"]["per_night"]["2026-11-03"] == {"num": 5, "den": 8, "value": 0.625}  # 18:00 to 12:00


def test_inspection_coverage_needs_the_plans_count_of_distinct_days():
    inspections = [InspectionFacts("FE-1", "fire", at(5, 10), True), InspectionFacts("FE-1", "fire", at(5, 15), True),
                   InspectionFacts("FE-2", "fire", at(5, 10), True), InspectionFacts("FE-2", "fire", at(20, 10), False),
                   InspectionFacts("W-1", "wells", at(9, 10), True)]
    r = results(inspections=inspections)
    fire = r["fire_inspection"]  # FE-1 twice on one day counts once; FE-2 on two days (a failed one still counts)
    assert (fire["num"], fire["den"], fire["evidence"], fire["detail"]["needed"]) == (1, 2, ["FE-1"], 2)
    wells = r["well_inspection"]  # the septic tank is a well too, and was not inspected
    assert (wells["num"], wells["den"], wells["evidence"]) == (1, 2, ["ST-1"])


def test_septic_cleanout_looks_back_half_a_year_from_the_periods_end():
    done = InspectionFacts("ST-1", "septic_cleanout", at(1) - 150 * 86400, True)
    assert results(inspections=[done])["septic_cleanout"]["num"] == 1
    failed = InspectionFacts("ST-1", "septic_cleanout", at(1) - 10 * 86400, False)
    r = results(inspections=[failed])["septic_cleanout"]
    assert (r["num"], r["den"], r["evidence"]) == (0, 1, ["ST-1"])
