"""A month of commitments computed by hand: a few lamps and extinguishers, their state ledger,
repair tickets and callbacks in a real TicketStore, read back through :class:`Commitments`;
then freezing, the running month's forecast, and the notice (CSV and the printable HTML).

Every instant is a whole second in Asia/Shanghai (UTC+8, no DST), so asset-second sums are exact.

The month is October 2026 (31 days = 2 678 400 s). Ledger:

- L1 (lamp): intact from Sep 20; faulty Oct 10 00:00 - Oct 11 00:00 (86 400 s lost);
- L2 (lamp): intact from Sep 20; unknown Oct 20 00:00 - 12:00 (43 200 s lost);
- F1 (extinguisher): intact from Sep 20;
- F2 (extinguisher): in service Oct 16 00:00, intact; faulty from Oct 31 12:00 (43 200 s lost).

Tickets (default SLAs; `general` 24 h / - / 48 h, `urgent` 30 min / 2 h / 24 h, `emergency`
15 min / 30 min / same day):

- T0 general on L2, resolved Sep 29, closed Sep 30; called back Oct 2, score 4;
- T1 general on L1, opened Oct 10 08:00, ack 09:00, resolved 20:00, closed Oct 11 00:00 (sensor);
  called back Oct 12, score 5;
- T2 emergency on F2, opened Oct 31 12:00, ack 12:10, on site 12:40 (arrive_by 12:30: missed),
  resolved 23:00, closed Nov 1 09:00;
- T3 general on L2, opened Oct 5, closed Oct 6, reopened Oct 8 09:00 (rework), ack 10:00,
  resolved 15:00, closed 16:00; called back Oct 9, score 3;
- T4 urgent on F1, opened Oct 20 08:00, ack 08:45 (respond_by 08:30: missed), on site 09:30,
  resolved 12:00, closed 13:00; no callback;
- T5 general on L1 opened by a person Oct 25 10:00, never touched (respond and resolve missed);
- T6 general on F1, opened and cancelled Oct 3 (never counted).
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.commitments import notice
from gateway.commitments.monthly import Commitments
from gateway.commitments.periods import parse_period
from gateway.site import Site, load_site
from gateway.tickets import TicketStore

SH = ZoneInfo("Asia/Shanghai")
HOUR, DAY = 3600.0, 86400.0
OCT_S = 31 * DAY
NOV_S = 30 * DAY
SITE_NAME = "幸福里小区"

ASSETS = {"L1": ("lighting", "streetlight"), "L2": ("lighting", "streetlight"),
          "F1": ("fire", "fire_extinguisher"), "F2": ("fire", "fire_extinguisher")}


def t(month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """Epoch seconds of a local instant in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=SH).timestamp()


def site_toml(assets: dict[str, tuple[str, str]]) -> str:
    out = ["[site]", f'name = "{SITE_NAME}"', 'timezone = "Asia/Shanghai"', "latitude = 31.23",
           "longitude = 121.47", ""]
    for ident, (category, kind) in assets.items():
        out += ["[[assets]]", f'id = "{ident}"', f'name = "设施 {ident}"', f'category = "{category}"',
                f'kind = "{kind}"', f'device = "dev-{ident.lower()}"', ""]
    return "\n".join(out)


def load(tmp_path: Path, assets: dict[str, tuple[str, str]], name: str = "site.toml") -> Site:
    path = tmp_path / name
    path.write_text(site_toml(assets), encoding="utf-8")
    return load_site(path)


@dataclass
class World:
    store: TicketStore
    commitments: Commitments
    db_path: Path
    tmp_path: Path
    ids: dict[str, int]

    def frozen_months(self) -> list[str]:
        with sqlite3.connect(self.db_path) as db:
            return [m for (m,) in db.execute("SELECT month FROM commitment_months ORDER BY month")]


def _ticket(store: TicketStore, asset: str, fault: str, priority: str, at: float, subject: bool = True) -> int:
    ticket, how = store.open(subject=f"asset:{asset}" if subject else None, fault=fault, priority=priority,
                             title=f"{asset} {fault}", at=at, by="sensor" if subject else "物业前台",
                             source="sensor" if subject else "manual", asset=asset, category=ASSETS[asset][0])
    assert how == "opened"
    return int(ticket["id"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db_path = tmp_path / "gateway.db"
    store = TicketStore(db_path, SH)
    # -- the ledger
    for asset in ("L1", "L2", "F1"):
        store.record_state(asset, t(9, 20), "intact", [], "in_service")
    store.record_state("L1", t(10, 10), "faulty", ["lamp_out"], "reading")
    store.record_state("L1", t(10, 11), "intact", [], "reading")
    store.record_state("L2", t(10, 20), "unknown", [], "device_silent")
    store.record_state("L2", t(10, 20, 12), "intact", [], "device_online")
    store.record_state("F2", t(10, 16), "intact", [], "in_service")
    store.record_state("F2", t(10, 31, 12), "faulty", ["low_pressure"], "reading")
    # -- tickets and callbacks
    ids: dict[str, int] = {}
    ids["T0"] = _ticket(store, "L2", "supply_voltage", "general", t(9, 28, 10))
    store.act(ids["T0"], "resolve", "王师傅", t(9, 29, 10))
    store.fault_cleared("asset:L2", "supply_voltage", t(9, 30, 10))
    store.add_callback(ids["T0"], "客服", "phone", 4, "", t(10, 2, 10))

    ids["T1"] = _ticket(store, "L1", "lamp_out", "general", t(10, 10, 8))
    store.act(ids["T1"], "acknowledge", "王师傅", t(10, 10, 9))
    store.act(ids["T1"], "resolve", "王师傅", t(10, 10, 20))
    store.fault_cleared("asset:L1", "lamp_out", t(10, 11))
    store.add_callback(ids["T1"], "客服", "phone", 5, "很满意", t(10, 12, 10))

    ids["T2"] = _ticket(store, "F2", "low_pressure", "emergency", t(10, 31, 12))
    store.act(ids["T2"], "acknowledge", "李师傅", t(10, 31, 12, 10))
    store.act(ids["T2"], "arrive", "李师傅", t(10, 31, 12, 40))
    store.act(ids["T2"], "resolve", "李师傅", t(10, 31, 23))
    store.act(ids["T2"], "close", "主管", t(11, 1, 9))

    ids["T3"] = _ticket(store, "L2", "lamp_out", "general", t(10, 5, 10))
    store.act(ids["T3"], "acknowledge", "王师傅", t(10, 5, 11))
    store.act(ids["T3"], "resolve", "王师傅", t(10, 6, 10))
    store.act(ids["T3"], "close", "主管", t(10, 6, 12))
    store.act(ids["T3"], "reopen", "业主", t(10, 8, 9), "灯又不亮了")
    store.act(ids["T3"], "acknowledge", "王师傅", t(10, 8, 10))
    store.act(ids["T3"], "resolve", "王师傅", t(10, 8, 15))
    store.act(ids["T3"], "close", "主管", t(10, 8, 16))
    store.add_callback(ids["T3"], "客服", "phone", 3, "一般", t(10, 9, 10))

    ids["T4"] = _ticket(store, "F1", "low_pressure", "urgent", t(10, 20, 8))
    store.act(ids["T4"], "acknowledge", "李师傅", t(10, 20, 8, 45))
    store.act(ids["T4"], "arrive", "李师傅", t(10, 20, 9, 30))
    store.act(ids["T4"], "resolve", "李师傅", t(10, 20, 12))
    store.act(ids["T4"], "close", "主管", t(10, 20, 13))

    ids["T5"] = _ticket(store, "L1", "manual", "general", t(10, 25, 10), subject=False)

    ids["T6"] = _ticket(store, "F1", "removed", "general", t(10, 3, 9))
    store.act(ids["T6"], "cancel", "主管", t(10, 3, 10))

    assert store.get(ids["T3"])["reworks"] == 1
    assert store.get(ids["T2"])["status"] == "closed"

    commitments = Commitments(db_path, load(tmp_path, ASSETS))
    yield World(store, commitments, db_path, tmp_path, ids)
    commitments.close()
    store.close()


NOW = t(11, 5, 12)  # a report asked for in November


def by_id(report: dict) -> dict[str, dict]:
    return {r["id"]: r for r in report["results"]}


def ratio(r: dict) -> tuple[float, float]:
    return r["num"], r["den"]


# -- October, by hand ----------------------------------------------------------------------------


def test_october_intact_rates(world):
    report = world.commitments.month("2026-10", now=NOW)
    assert report["month"] == "2026-10" and len(report["results"]) == 12
    r = by_id(report)

    light = r["lighting_intact"]
    lit, lost_l1, lost_l2 = 2 * OCT_S - DAY - 12 * HOUR, DAY, 12 * HOUR
    assert ratio(light) == (lit, 2 * OCT_S)
    assert light["value"] == pytest.approx(lit / (2 * OCT_S)) and light["value"] < 0.98
    assert light["met"] is False
    assert light["evidence"] == ["L1", "L2"]
    d = light["detail"]
    assert d["assets"] == 2
    assert d["seconds"] == {"intact": lit, "faulty": lost_l1, "unknown": lost_l2}
    # Known-only leaves the unknown half-day out: it would have met 98 %; the committed figure does not.
    assert (d["known_only"]["num"], d["known_only"]["den"]) == (lit, lit + lost_l1)
    assert d["known_only"]["value"] > 0.98
    assert d["ranking"] == [["L1", lost_l1], ["L2", lost_l2]]
    assert d["lowest_daily"]["day"] == "2026-10-10"  # L1 dark all day; L2's unknown day ties and comes later
    assert d["lowest_daily"]["at"] == t(10, 10)
    assert (d["lowest_daily"]["strict"]["num"], d["lowest_daily"]["strict"]["den"]) == (1, 2)
    assert (d["snapshot"]["intact"], d["snapshot"]["faulty"], d["snapshot"]["unknown"]) == (2, 0, 0)
    assert "forecast" not in d  # the month is over
    assert "L1（24.0 小时）" in light["why_zh"] and "L2（12.0 小时）" in light["why_zh"]
    assert light["why_en"] == "Most intact-time lost: L1 (24.0 h), L2 (12.0 h)"

    fire = r["fire_intact"]
    f2_in = 16 * DAY  # Oct 16 00:00 to Nov 1 00:00
    assert ratio(fire) == (OCT_S + f2_in - 12 * HOUR, OCT_S + f2_in)
    assert fire["met"] is False and fire["evidence"] == ["F2"]
    assert fire["detail"]["assets"] == 2
    assert ratio(fire["detail"]["known_only"]) == ratio(fire)  # nothing unknown
    assert fire["detail"]["lowest_daily"]["day"] == "2026-10-31"
    assert (fire["detail"]["snapshot"]["intact"], fire["detail"]["snapshot"]["faulty"]) == (1, 1)

    drain = r["drainage_intact"]  # no drainage asset on this site: no figure, nothing to meet
    assert (drain["value"], drain["num"], drain["den"], drain["met"]) == (None, 0, 0, None)
    assert drain["detail"]["assets"] == 0 and drain["evidence"] == []


def test_october_repair_indicators(world):
    ids = world.ids
    r = by_id(world.commitments.month("2026-10", now=NOW))

    timely = r["repair_timeliness"]  # T1..T5 count in October; T0 resolved in September, T6 cancelled
    assert ratio(timely) == (2, 5) and timely["value"] == pytest.approx(0.4) and timely["met"] is False
    assert timely["evidence"] == sorted([ids["T2"], ids["T4"], ids["T5"]])
    per_clock = {k: ratio(v) for k, v in timely["detail"]["per_clock"].items()}
    assert per_clock == {"respond": (3, 5), "arrive": (1, 2), "resolve": (4, 5)}
    assert timely["detail"]["per_clock_missed"] == {
        "respond": sorted([ids["T4"], ids["T5"]]), "arrive": [ids["T2"]], "resolve": [ids["T5"]]}
    assert timely["why_zh"].startswith("3 张工单：#")

    ftf = r["first_time_fix"]  # closed in October: T1, T3, T4 (T2 closes in November)
    assert ratio(ftf) == (2, 3) and ftf["met"] is False and ftf["evidence"] == [ids["T3"]]
    assert ftf["detail"]["counted"] == 3

    rework = r["rework_rate"]
    assert ratio(rework) == (1, 3) and rework["met"] is False and rework["evidence"] == [ids["T3"]]
    assert rework["direction"] == "<="
    assert rework["why_zh"] == f"1 张工单：#{ids['T3']}"

    called = r["callback_rate"]  # T4 was never called back
    assert ratio(called) == (2, 3) and called["met"] is True and called["evidence"] == [ids["T4"]]
    assert "why_zh" not in called

    happy = r["satisfaction"]  # callbacks made in October: T0 (4, its ticket closed in September), T1 (5), T3 (3)
    assert ratio(happy) == (2, 3) and happy["met"] is False and happy["evidence"] == [ids["T3"]]
    assert happy["detail"]["counted"] == 3

    for ident in ("patrol_completion", "well_inspection", "septic_cleanout"):  # no rounds, no wells
        assert (r[ident]["value"], r[ident]["met"], r[ident]["den"]) == (None, None, 0)
    inspected = r["fire_inspection"]  # nobody inspected the two extinguishers twice in October
    assert ratio(inspected) == (0, 2) and inspected["met"] is False and inspected["evidence"] == ["F1", "F2"]


def test_previous_carries_last_months_results(world):
    report = world.commitments.month("2026-10", now=NOW)
    before = {r["id"]: r for r in report["previous"]}
    assert list(before) == [r["id"] for r in report["results"]]
    assert before["lighting_intact"]["value"] == 1.0  # September: L1 and L2 intact from the 20th
    assert ratio(before["lighting_intact"]) == (2 * 11 * DAY, 2 * 11 * DAY)
    assert ratio(before["first_time_fix"]) == (1, 1)  # T0 closed on September 30
    assert before["satisfaction"]["value"] is None  # T0's callback came in October
    assert before["fire_intact"]["detail"]["assets"] == 2 and ratio(before["fire_intact"]) == (11 * DAY, 11 * DAY)


# -- frozen once over ----------------------------------------------------------------------------


def test_a_closed_month_is_frozen_at_its_first_report_and_later_changes_only_show_in_differs(world):
    c = world.commitments
    first = c.month("2026-10", now=NOW)
    assert first["frozen_at"] == NOW and "differs" not in first
    assert "2026-10" in world.frozen_months()

    again = c.month("2026-10", now=NOW + HOUR)
    assert again["results"] == first["results"] and again["frozen_at"] == NOW
    assert again["differs"] == []

    # L2 leaves the site file, and T5 (left unresolved, a miss in October) is resolved in November.
    c.current = load(world.tmp_path, {k: v for k, v in ASSETS.items() if k != "L2"}, "site-without-l2.toml")
    world.store.act(world.ids["T5"], "resolve", "王师傅", t(11, 6, 10))
    later = c.month("2026-10", now=t(11, 6, 12))
    assert later["results"] == first["results"]  # the published figures stand
    assert later["frozen_at"] == NOW and later["computed_at"] == NOW
    assert later["differs"] == ["lighting_intact", "repair_timeliness"]
    # What a recomputation would say: L1 alone; T5 now counts in November, where it was resolved.
    fresh = by_id(c.compute(parse_period("2026-10", SH), t(11, 6, 12)))
    assert ratio(fresh["lighting_intact"]) == (OCT_S - DAY, OCT_S)
    assert ratio(fresh["repair_timeliness"]) == (2, 4)


def test_the_running_month_has_a_forecast_and_is_not_frozen(world):
    report = world.commitments.month("2026-11", now=NOW)
    assert "frozen_at" not in report and "differs" not in report
    assert "2026-11" not in world.frozen_months()
    r = by_id(report)

    so_far = 4.5 * DAY  # Nov 1 00:00 to Nov 5 12:00
    light = r["lighting_intact"]
    assert ratio(light) == (2 * so_far, 2 * so_far) and light["met"] is True
    f = light["detail"]["forecast"]
    # Both lamps intact to the end: 2 x 30 days in service, 2 % of it may still be lost.
    assert f["can_meet"] is True and f["lost_h"] == 0
    assert f["left_h"] == pytest.approx(0.02 * 2 * NOV_S / HOUR) == pytest.approx(28.8)
    assert f["budget_h"] == pytest.approx(28.8)

    fire = r["fire_intact"]["detail"]["forecast"]  # F2 faulty since Oct 31 12:00; 100 % leaves no budget
    assert fire["can_meet"] is False
    assert fire["lost_h"] == pytest.approx(108) and fire["left_h"] == pytest.approx(-108)

    # T2, opened in October, closed on November 1: it counts in November's first-time-fix.
    assert ratio(r["first_time_fix"]) == (1, 1) and r["first_time_fix"]["met"] is True
    assert ratio(r["rework_rate"]) == (0, 1) and r["rework_rate"]["met"] is True

    assert [p["id"] for p in report["previous"]] == [x["id"] for x in report["results"]]
    assert ratio(by_id({"results": report["previous"]})["first_time_fix"]) == (2, 3)  # October's


def test_the_running_month_is_served_as_last_computed_for_a_minute(world):
    first = world.commitments.running(NOW)
    assert first["month"] == "2026-11" and first["computed_at"] == NOW and first["previous"]
    assert world.commitments.running(NOW + 59) is first  # a dashboard asking again, nothing new: as computed
    later = world.commitments.running(NOW + 61)  # older than a minute: computed anew, time moved on
    assert later["computed_at"] == NOW + 61
    assert by_id(later)["lighting_intact"]["den"] > by_id(first)["lighting_intact"]["den"]
    _ticket(world.store, "L2", "cabinet_open", "general", NOW + 62)  # something happened
    assert world.commitments.running(NOW + 65) is later  # within seconds of the last computation: as computed
    again = world.commitments.running(NOW + 67)  # past FRESH_S with something new: computed anew
    assert again["computed_at"] == NOW + 67
    assert world.commitments.running(NOW + 68, max_age_s=0)["computed_at"] == NOW + 68  # the thread's refresh
    world.commitments.current = load(world.tmp_path, ASSETS)  # the site file reloaded
    assert world.commitments.running(NOW + 69)["computed_at"] == NOW + 69


def test_freeze_due_freezes_the_month_just_ended_once(world):
    c = world.commitments
    assert world.frozen_months() == []
    assert c.freeze_due(NOW) == "2026-10"
    assert world.frozen_months() == ["2026-10"]
    assert c.freeze_due(NOW + 600) is None
    assert c.freeze_due(t(11, 30, 23)) is None
    assert world.frozen_months() == ["2026-10"]
    report = c.month("2026-10", now=t(11, 20), with_previous=False)
    assert report["frozen_at"] == NOW and ratio(by_id(report)["first_time_fix"]) == (2, 3)
    assert c.freeze_due(t(12, 1, 0, 5)) == "2026-11"
    assert c.freeze_due(t(12, 1, 0, 15)) is None
    assert world.frozen_months() == ["2026-10", "2026-11"]
    november = c.month("2026-11", now=t(12, 2), with_previous=False)
    assert november["frozen_at"] == t(12, 1, 0, 5) and "forecast" not in by_id(november)["fire_intact"]["detail"]
    assert ratio(by_id(november)["first_time_fix"]) == (1, 1)


def test_a_month_is_asked_for_as_yyyy_mm(world):
    for bad in ("2026-Q4", "2026", "2026-10-01", "2026-13", "10-2026"):
        with pytest.raises(ValueError, match="is not a"):
            world.commitments.month(bad, now=NOW)
    assert world.frozen_months() == []


# -- the notice ----------------------------------------------------------------------------------


def test_the_csv_has_a_header_and_one_row_per_indicator(world):
    report = world.commitments.month("2026-10", now=NOW)
    rows = list(csv.reader(io.StringIO(notice.to_csv(report))))
    assert rows[0] == ["编号", "承诺指标", "承诺目标", "本月实际", "是否达标", "较上月", "分子", "分母", "未达标说明"]
    assert [row[0] for row in rows[1:]] == [r["id"] for r in report["results"]]
    got = {row[0]: row for row in rows[1:]}
    lit = 2 * OCT_S - DAY - 12 * HOUR
    assert got["lighting_intact"][1:8] == ["路灯、楼道灯完好率", "≥ 98%", "97.58%", "未达标", "-2.42 pt",
                                           f"{lit:.0f}", f"{2 * OCT_S:.0f}"]
    assert got["lighting_intact"][8].startswith("完好时间损失最多的设施：L1（24.0 小时）")
    assert got["rework_rate"][1:9] == ["二次返修率", "≤ 1%", "33.33%", "未达标", "+33.33 pt", "1", "3",
                                       f"1 张工单：#{world.ids['T3']}"]
    assert got["callback_rate"][4] == "达标" and got["callback_rate"][8] == ""
    assert got["drainage_intact"][3:5] == ["—", "暂无数据"]

    en = list(csv.reader(io.StringIO(notice.to_csv(report, lang="en"))))
    assert en[0] == ["id", "Commitment", "Target", "This month", "Met", "Since last month", "Numerator",
                     "Denominator", "Why not met"]
    assert len(en) == 13
    light = {row[0]: row for row in en[1:]}["lighting_intact"]
    assert light[1] == "Street and corridor lights intact" and light[4] == "not met"
    assert light[8] == "Most intact-time lost: L1 (24.0 h), L2 (12.0 h)"


def test_the_html_notice(world):
    report = world.commitments.month("2026-10", now=NOW)
    html = notice.to_html(report, SITE_NAME, SH)
    assert "物业服务承诺公示" in html and SITE_NAME in html and "2026年10月" in html
    for r in report["results"]:
        assert r["zh"] in html
    assert "未达标" in html
    assert "完好时间损失最多的设施：L1（24.0 小时）、L2（12.0 小时）" in html
    assert f"3 张工单：#{world.ids['T2']}, #{world.ids['T4']}, #{world.ids['T5']}" in html
    assert "本月数据已于 2026-11-05 12:00 锁定" in html
    assert "http" not in html
    assert not re.search(r"<(script|link|img)\b", html)

    en = notice.to_html(report, "Riverside <Court> & Co", SH, lang="en")
    assert "Service commitments" in en and "Riverside &lt;Court&gt; &amp; Co" in en
    assert "Street and corridor lights intact" in en and "not met" in en and "http" not in en


def test_the_snapshot_at_any_instant_of_the_period(world):
    """On 10 October L1 was dark all day; at noon on the 20th L2's device was lost; a day later both lit."""
    october = parse_period("2026-10", SH)
    snap = {at: by_id(world.commitments.compute(october, NOW, "2026-10", at))["lighting_intact"]["detail"]["snapshot"]
            for at in (t(10, 10, 12), t(10, 20, 6), t(10, 21, 12))}
    assert [(s["intact"], s["faulty"], s["unknown"]) for s in snap.values()] == [(1, 1, 0), (1, 0, 1), (2, 0, 0)]
    with pytest.raises(ValueError, match="inside the period"):
        world.commitments.compute(october, NOW, "2026-10", t(11, 2))
