"""The commitment catalogue (承诺指标目录): the shipped defaults of COMMITMENTS.md, a site's own
catalogue through its site file, every problem of a bad one at once, and where a target is met."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.commitments import engine
from gateway.commitments.catalogue import Commitment, load_catalogue
from gateway.commitments.data import SiteData, assets_of
from gateway.commitments.model import Change, Period, Ratio
from gateway.config import ConfigError
from gateway.site import load_site

SH = ZoneInfo("Asia/Shanghai")

# id -> (target, direction), as COMMITMENTS.md posts them.
SHIPPED = {
    "lighting_intact": (0.98, ">="),
    "fire_intact": (1.0, ">="),
    "drainage_intact": (0.98, ">="),
    "repair_timeliness": (1.0, ">="),
    "first_time_fix": (0.99, ">="),
    "rework_rate": (0.01, "<="),
    "callback_rate": (0.60, ">="),
    "satisfaction": (0.85, ">="),
    "patrol_completion": (1.0, ">="),
    "fire_inspection": (1.0, ">="),
    "well_inspection": (1.0, ">="),
    "septic_cleanout": (1.0, ">="),
}

SITE = """
commitments_file = "{catalogue}"

[site]
name = "测试小区"
timezone = "Asia/Shanghai"

[[assets]]
id = "L1"
category = "lighting"
kind = "streetlight"
building = "1"

[[assets]]
id = "L3A"
category = "lighting"
kind = "streetlight"
building = "3"

[[assets]]
id = "L3B"
category = "lighting"
kind = "streetlight"
building = "3"

[[assets]]
id = "F1"
category = "fire"
kind = "fire_extinguisher"
building = "3"
"""


def entry(ident: str, kind: str, target: float | int, *extra: str) -> str:
    return "\n".join(["[[commitment]]", f'id = "{ident}"', f'zh = "指标 {ident}"', f'en = "Indicator {ident}"',
                      f'kind = "{kind}"', f"target = {target}", *extra, ""])


def site_with(tmp_path: Path, catalogue: str, name: str = "site-commitments.toml") -> Path:
    (tmp_path / "commitments").mkdir(exist_ok=True)
    (tmp_path / "commitments" / name).write_text(catalogue, encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(catalogue=f"commitments/{name}"), encoding="utf-8")
    return path


# -- the shipped catalogue -----------------------------------------------------------------------


def test_the_shipped_catalogue_has_the_twelve_indicators_of_commitments_md():
    catalogue = load_catalogue()
    assert [c.id for c in catalogue] == list(SHIPPED)
    assert {c.id: (c.target, c.direction) for c in catalogue} == SHIPPED
    by_id = {c.id: c for c in catalogue}
    assert by_id["lighting_intact"].zh == "路灯、楼道灯完好率"
    assert by_id["rework_rate"].zh == "二次返修率"
    for ident, category in (("lighting_intact", "lighting"), ("fire_intact", "fire"), ("drainage_intact", "drainage")):
        assert by_id[ident].kind == "intact_rate" and by_id[ident].scope.category == category
    assert (by_id["fire_inspection"].kind, by_id["fire_inspection"].per_month) == ("inspection_coverage", 2)
    assert (by_id["well_inspection"].kind, by_id["well_inspection"].per_month) == ("inspection_coverage", 1)
    assert all(c.zh and c.en for c in catalogue)


def test_a_site_without_a_catalogue_of_its_own_gets_the_shipped_one(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(SITE.replace('commitments_file = "{catalogue}"', ""), encoding="utf-8")
    assert load_site(path).commitments == load_catalogue()


# -- a site's own catalogue ----------------------------------------------------------------------


def test_a_site_catalogue_changes_a_target_drops_indicators_and_adds_a_building_scoped_rate(tmp_path):
    catalogue = (
        entry("lighting_intact", "intact_rate", 0.95, 'scope = { category = "lighting" }')
        + entry("rework_rate", "rework_rate", 0.02, 'direction = "<="')
        + entry("b3_lighting", "intact_rate", 0.99, 'scope = { category = "lighting", building = "3" }')
    )
    site = load_site(site_with(tmp_path, catalogue))
    assert [(c.id, c.target, c.direction) for c in site.commitments] == [
        ("lighting_intact", 0.95, ">="), ("rework_rate", 0.02, "<="), ("b3_lighting", 0.99, ">=")]

    # The building-scoped rate counts building 3's lamps only: L3A dark for a day of a 10-day period.
    day = 86400.0
    start = datetime(2026, 11, 1, tzinfo=SH).timestamp()
    period = Period(start, start + 10 * day)
    ledger = {"L1": [Change(start, "faulty")],  # building 1: dark all along, outside the scope
              "L3A": [Change(start, "intact"), Change(start + day, "faulty"), Change(start + 2 * day, "intact")],
              "L3B": [Change(start, "intact")],
              "F1": [Change(start, "faulty")]}
    results = {r["id"]: r for r in engine.evaluate(site.commitments, SiteData(assets_of(site), ledger, (), ()),
                                                   period, period.end + day, SH)}
    b3 = results["b3_lighting"]
    assert (b3["num"], b3["den"]) == (19 * day, 20 * day)
    assert b3["value"] == pytest.approx(0.95) and b3["met"] is False
    assert b3["evidence"] == ["L3A"] and b3["detail"]["assets"] == 2
    everywhere = results["lighting_intact"]
    assert (everywhere["num"], everywhere["den"]) == (19 * day, 30 * day)
    assert everywhere["evidence"] == ["L1", "L3A"]


def test_a_catalogue_scoped_to_named_assets_loads_when_they_are_on_the_site(tmp_path):
    catalogue = entry("pair", "intact_rate", 0.9, 'scope = { assets = ["L1", "L3A"] }')
    site = load_site(site_with(tmp_path, catalogue))
    assert site.commitments[0].scope.assets == ("L1", "L3A")


def test_a_catalogue_with_several_problems_lists_them_all_one_line_each(tmp_path):
    catalogue = (
        entry("magic", "crystal_ball", 0.9)                                                      # 0
        + entry("percent", "intact_rate", 98, 'scope = { category = "lighting" }')               # 1
        + entry("plumbing", "intact_rate", 0.9, 'scope = { category = "plumbing" }')             # 2
        + entry("dup", "first_time_fix", 0.99)                                                   # 3
        + entry("dup", "callback_rate", 0.6)                                                     # 4
        + entry("insp", "inspection_coverage", 1.0, 'scope = { category = "fire" }')             # 5
        + entry("ftf", "first_time_fix", 0.99, "per_month = 2")                                  # 6
        + entry("prio", "intact_rate", 0.98, 'scope = { category = "fire", priority = "urgent" }')  # 7
        + entry("colour", "satisfaction", 0.85, 'colour = "red"')                                # 8
        + entry("ghost", "intact_rate", 0.98, 'scope = { assets = ["L1", "NOPE"] }')             # 9
    )
    path = site_with(tmp_path, catalogue)
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    problems = caught.value.problems
    source = str(tmp_path / "commitments" / "site-commitments.toml")
    expected = [  # (where, words)
        ("commitment.0.kind", "crystal_ball"),
        ("commitment.1.target", "98"),
        ("commitment.2.scope.category", "unknown category"),
        ("commitment id 'dup'", "appears 2 times"),
        ("commitment.5", "needs per_month"),
        ("commitment.6", "per_month only applies to inspection_coverage"),
        ("commitment.7", "scope.priority only applies to ticket indicators"),
        ("commitment.8.colour", "unknown key"),
        ("commitment.9.scope.assets", "no asset 'NOPE'"),
    ]
    assert len(problems) == len(expected), "\n".join(problems)
    for where, words in expected:
        lines = [p for p in problems if p.startswith(f"{source}: {where}") and words in p]
        assert len(lines) == 1, (where, words, problems)
    assert all("\n" not in p and p.startswith(f"{source}: ") for p in problems)


def test_a_missing_or_broken_catalogue_file_is_a_config_error(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(catalogue="nowhere.toml"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    assert caught.value.problems == [f"{tmp_path / 'nowhere.toml'}: no such commitment catalogue"]
    with pytest.raises(ConfigError) as caught:
        load_site(site_with(tmp_path, "[[commitment]\n"))
    assert len(caught.value.problems) == 1 and "not valid TOML" in caught.value.problems[0]


# -- met or not, at the boundary -----------------------------------------------------------------


def commitment(target: float, direction: str = ">=") -> Commitment:
    return Commitment(id="x", zh="指标", en="x", kind="intact_rate", target=target, direction=direction)


def test_met_at_the_boundary():
    at_least = commitment(0.98)
    assert at_least.met(0.98) is True
    assert at_least.met(Ratio(49, 50).value) is True
    assert at_least.met(Ratio(4900 * 98, 490000).value) is True  # 0.98 reached through a division
    assert at_least.met(0.9799) is False
    assert at_least.met(None) is None
    full = commitment(1.0)
    assert full.met(1.0) is True and full.met(Ratio(999, 1000).value) is False

    at_most = commitment(0.01, "<=")
    assert at_most.met(0.01) is True
    assert at_most.met(Ratio(1, 100).value) is True
    assert at_most.met(Ratio(3, 300).value) is True
    assert at_most.met(0.0) is True
    assert at_most.met(0.0101) is False
    assert at_most.met(None) is None
