"""The routes that gather for the pages (issue 6): the dashboard's figures against the routes they
summarise, a repairer's queue by deadline, callbacks due, a guard's report with a photo, paging,
and an asset's readings history read back from the real InfluxDB the gateway wrote to."""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path

import pytest

from gateway.config import InfluxSettings
from gateway.history import History, HistoryError, parse_points, readings_query, step_for
from gateway.sensors import KINDS
from tests.conftest import Publisher, wait_for
from tests.test_auth import Env, env  # noqa: F401  (the in-process services and app)
from tests.test_auth import http as call

HOUR = 3600.0
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


# -- pure: the InfluxQL built and read --------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "step"), [(60, 60), (3600, 60), (86400, 173), (400 * 86400, 69120)])
def test_the_step_keeps_a_chart_under_500_points(seconds: float, step: int) -> None:
    assert step_for(seconds) == step


def test_the_query_quotes_what_comes_from_outside() -> None:
    q = readings_query("fire_extinguisher", "FE-1' OR '1'='1", "t", KINDS["fire_extinguisher"].fields, 100, 200, 60)
    assert q == ('SELECT mean("pressure_mpa") AS "pressure_mpa", last("present") AS "present" '
                 "FROM \"fire_extinguisher\" WHERE \"asset\" = 'FE-1\\' OR \\'1\\'=\\'1' AND \"site\" = 't' "
                 "AND time >= 100000000000 AND time < 200000000000 GROUP BY time(60s) fill(none)")


def test_influxdb_answers_are_read_or_refused() -> None:
    answer = {"results": [{"statement_id": 0, "series": [
        {"name": "x", "columns": ["time", "pressure_mpa"], "values": [[60, 1.2], [120, None]]}]}]}
    assert parse_points(answer) == [{"t": 60, "pressure_mpa": 1.2}, {"t": 120, "pressure_mpa": None}]
    assert parse_points({"results": [{"statement_id": 0}]}) == []
    with pytest.raises(HistoryError, match="database not found"):
        parse_points({"results": [{"statement_id": 0, "error": "database not found: x"}]})


# -- in process: dashboard, queue, callbacks, reports with photos ---------------------------------------------


def _ticket(e: Env, asset: str, fault: str, priority: str, at: float) -> int:
    t, _ = e.sv.tickets.open(subject=f"asset:{asset}", fault=fault, priority=priority, title=f"{asset} {fault}",
                             at=at, by="test", source="test", asset=asset, category="fire")
    return int(t["id"])


def test_the_dashboard_summarises_what_the_other_routes_say(env: Env) -> None:  # noqa: F811
    now = time.time()
    manager = env.user("李经理", "manager")
    overdue = _ticket(env, "FE-1", "low_pressure", "emergency", now - 3 * HOUR)  # 30 min to arrive: long passed
    fresh = _ticket(env, "FE-1", "missing", "general", now)
    done = _ticket(env, "FE-1", "leak", "urgent", now - 2 * HOUR)
    for action in ("resolve", "close"):
        env.sv.tickets.act(done, action, "王师傅", now - HOUR)
    r = env.call("GET", "/api/v1/dashboard", manager)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["tickets"]["live"] == 2 and d["tickets"]["by_priority"] == {"emergency": 1, "urgent": 0, "general": 1}
    assert d["tickets"]["sla"] == {"on_time": 1, "at_risk": 0, "overdue": 1}
    assert d["callbacks_due"] == env.call("GET", "/api/v1/tickets?callback_due=true", manager).json()["total"] == 1
    assert d["categories"]["fire"] == {"intact": 0, "faulty": 0, "unknown": 1}  # no reading yet
    figures = {c["id"]: c for c in env.call("GET", "/api/v1/commitments", manager).json()["results"]}
    assert [c["id"] for c in d["commitments"]] == list(figures)
    for tile in d["commitments"]:
        full = figures[tile["id"]]
        assert (tile["target"], tile["met"], tile["den"] > 0) == (full["target"], full["met"], full["den"] > 0)
        assert tile["value"] == pytest.approx(full["value"], abs=1e-3) if full["value"] is not None \
            else tile["value"] is None
        if full["kind"] == "intact_rate":
            assert tile["daily"] == full["detail"]["daily"] and len(tile["daily"]) >= 1
    overdue_list = env.call("GET", "/api/v1/tickets?overdue=true", manager).json()["items"]
    assert [t["id"] for t in overdue_list] == [overdue] and fresh != overdue
    guard = env.user("G01", "guard")
    assert env.call("GET", "/api/v1/dashboard", guard).status_code == 403


def test_a_repairers_queue_is_his_own_by_next_deadline(env: Env) -> None:  # noqa: F811
    now = time.time()
    wang = env.user("王师傅", "maintenance")
    general = _ticket(env, "FE-1", "missing", "general", now - 60)
    emergency = _ticket(env, "FE-1", "low_pressure", "emergency", now)
    other = _ticket(env, "FE-1", "leak", "urgent", now)
    for ticket, who in ((general, "王师傅"), (emergency, "王师傅"), (other, "张师傅")):
        env.sv.tickets.act(ticket, "assign", "主管", now, assignee=who)
    mine = env.call("GET", "/api/v1/tickets?assignee=me&sort=deadline", wang).json()
    assert [t["id"] for t in mine["items"]] == [emergency, general] and mine["total"] == 2
    newest = env.call("GET", "/api/v1/tickets?sort=newest", wang).json()["items"]
    assert [t["id"] for t in newest] == [other, emergency, general]
    unclaimed = _ticket(env, "FE-1", "cabinet", "general", now)
    assert [t["id"] for t in env.call("GET", "/api/v1/tickets?assignee=none", wang).json()["items"]] == [unclaimed]
    assert env.call("POST", f"/api/v1/tickets/{unclaimed}/acknowledge", wang).status_code == 200  # 接单
    mine = env.call("GET", "/api/v1/tickets?assignee=me&sort=deadline", wang).json()["items"]
    assert unclaimed in [t["id"] for t in mine] and env.call("GET", "/api/v1/tickets?assignee=none", wang).json(
        )["total"] == 0
    bad = env.call("GET", "/api/v1/tickets?sort=oldest", wang)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "sort"


def test_a_guard_reports_a_problem_with_a_photo(env: Env) -> None:  # noqa: F811
    guard, wang = env.user("G01", "guard"), env.user("王师傅", "maintenance")
    body = {"title": "灭火器箱门坏了", "asset": "FE-1", "photos": [base64.b64encode(JPEG).decode()]}
    r = env.call("POST", "/api/v1/tickets", guard, body)
    assert r.status_code == 201, r.text
    ticket = r.json()
    [entry] = [e for e in ticket["timeline"] if e["action"] == "photos"]
    assert entry["by"] == "G01" and entry["data"]["photos"][0]["type"] == "image/jpeg"
    url = f"/api/v1/tickets/{ticket['id']}/photos/{entry['data']['entry']}/{entry['data']['photos'][0]['name']}"
    got = env.call("GET", url, wang)
    assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    assert env.call("GET", url, guard).status_code == 403
    assert env.call("GET", url.replace("/1.jpg", "/../gateway.db"), wang).status_code == 404
    for photos, words in (([base64.b64encode(b"%PDF-1.4 not a photo").decode()], "photo 1: not a JPEG"),
                          (["not base64!"], "each must be base64")):
        r = env.call("POST", "/api/v1/tickets", guard, {"title": "x", "photos": photos})
        assert r.status_code == 422 and words in r.json()["error"]["message"]
    assert env.sv.tickets.list()[1] == 1  # the refused reports opened nothing


def test_every_list_pages(env: Env) -> None:  # noqa: F811
    manager = env.user("root", "admin")  # every list
    for path in ("/api/v1/checkpoints", "/api/v1/plans", "/api/v1/rounds", "/api/v1/inspections/due",
                 "/api/v1/webhooks", "/api/v1/tickets", "/api/v1/assets", "/api/v1/taps", "/api/v1/users",
                 "/api/v1/auth/tokens", "/api/v1/inspections", "/api/v1/tags/unknown", "/api/v1/devices"):
        page = env.call("GET", f"{path}?limit=1&offset=0", manager)
        assert page.status_code == 200, (path, page.text)
        assert {"items", "total"} <= set(page.json()) and len(page.json()["items"]) <= 1, path
        assert env.call("GET", f"{path}?limit=0", manager).json()["error"]["field"] == "limit", path
    assert env.call("GET", "/api/v1/checkpoints?route=nope", manager).status_code == 404


def test_readings_need_influxdb_and_say_so(env: Env) -> None:  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once closed
    env.sv.history = History(InfluxSettings(url=f"http://127.0.0.1:{closed}", timeout_s=2))
    wang = env.user("王师傅", "maintenance")
    r = env.call("GET", "/api/v1/assets/FE-1/readings", wang)
    assert r.status_code == 503 and "did not answer" in r.json()["error"]["message"]
    assert env.call("GET", "/api/v1/assets/NOPE/readings", wang).status_code == 404
    r = env.call("GET", "/api/v1/assets/FE-1/readings?field=current_a", wang)
    assert r.status_code == 422 and "not a field of fire_extinguisher" in r.json()["error"]["message"]


# -- through the gateway: readings written to InfluxDB and read back for the chart ----------------------------

SITE = """
[[assets]]
id = "FE-H"
category = "fire"
kind = "fire_extinguisher"
device = "ext-h"
"""


def test_an_assets_readings_come_back_from_influxdb(gateway_factory, publisher: Publisher, tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    g = gateway_factory(GATEWAY_SITE_FILE=str(tmp_path / "site.toml")).start()
    minute = (time.time() // 60) * 60
    sent = {minute - 180 + 10: 1.20, minute - 120 + 10: 1.10, minute - 60 + 10: 1.00}
    for seq, (ts, mpa) in enumerate(sent.items()):
        publisher.send("fm/t/fire_extinguisher/ext-h/reading", {"ts": ts, "seq": seq, "pressure_mpa": mpa,
                                                                "present": True})
    publisher.flush()

    def charted() -> list[dict]:
        status, body = call(g, "GET", "/api/v1/assets/FE-H/readings?hours=1", g.token)
        assert status == 200, body
        return body["points"] if len(body["points"]) == 3 else []

    points = wait_for(charted, 20, 0.2, "the readings in InfluxDB")
    assert [(p["t"], p["pressure_mpa"], p["present"]) for p in points] == [
        (int(ts // 60 * 60), mpa, True) for ts, mpa in sent.items()]
    status, body = call(g, "GET", "/api/v1/assets/FE-H/readings?hours=1&field=pressure_mpa", g.token)
    assert status == 200 and body["every_s"] == 60 and [f["name"] for f in body["fields"]] == ["pressure_mpa"]
    assert all(set(p) == {"t", "pressure_mpa"} for p in body["points"])
    status, spec = call(g, "GET", "/api/v1/openapi.json", g.token)
    assert "example" in spec["paths"]["/api/v1/assets/{asset}/readings"]["get"]["responses"]["200"]["content"][
        "application/json"]
