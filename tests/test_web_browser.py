"""The pages in a real browser (issue 6): headless Chromium, driven by Playwright, against a gateway
process with its broker and InfluxDB. A manager's dashboard shows what the API says (and the assets page
the faulty asset, the unbound device, the refused message); a failing reading on the broker reaches the
maintenance page through the live event stream and is worked to resolved there; a guard walks a round
typing the checkpoints' tags, then reports a problem with a photo made smaller on the phone. Each page is
saved as a full-page screenshot under ``test-artifacts/`` (``TEST_ARTIFACTS`` names another folder).

A script error or a Content-Security-Policy violation on a page fails its test.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Error as PlaywrightError

from gateway.commitments.notice import pct
from tests.conftest import ROOT, GatewayProcess, Publisher, wait_for

SH = ZoneInfo("Asia/Shanghai")
# A phone whose clock is set to UTC: the pages show the site's time all the same.
PHONE = {"viewport": {"width": 360, "height": 780}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN", "timezone_id": "UTC"}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
MS = 1000

SITE = """
[site]
name = "阳光花园"
timezone = "Asia/Shanghai"
latitude = 31.23
longitude = 121.47

[[assets]]
id = "FE-01"
name = "1号楼灭火器"
category = "fire"
kind = "fire_extinguisher"
device = "ext-01"
building = "1号楼"
zone = "东区"
location = "一层电梯厅"

[[assets]]
id = "L-01"
name = "东门路灯"
category = "lighting"
kind = "streetlight"
device = "lamp-01"

[[assets]]
id = "DW-01"
name = "2号雨水井"
category = "drainage"
kind = "drain_level"
device = "well-01"
"""


def artifacts() -> Path:
    folder = Path(os.environ.get("TEST_ARTIFACTS", "test-artifacts"))
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def call(g: GatewayProcess, method: str, path: str, token: str | None = None, body: object = None
         ) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(g.api_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def user(g: GatewayProcess, name: str, role: str, password: str, change: bool = True) -> None:
    """A user made by the installer's token; ``change``: who already chose ``password`` (the temporary
    one is then ``password`` + " temp")."""
    status, body = call(g, "POST", "/api/v1/users", g.token, {"name": name, "role": role,
                                                               "password": password + " temp" if change else password})
    assert status == 201, body
    if change:
        status, body = call(g, "POST", "/api/v1/auth/login", body={"user": name, "password": password + " temp"})
        assert status == 200, body
        status, body = call(g, "POST", "/api/v1/auth/password", body["token"],
                            {"current": password + " temp", "new": password})
        assert status == 200, body


def watched(page: Any) -> list[str]:
    """What went wrong on the page: uncaught script errors and blocked content (CSP)."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and "Content Security Policy" in m.text else None)
    return problems


def log_in(page: Any, base: str, path: str, name: str, password: str) -> None:
    """Open ``path`` without a session: sent to the login page, then back once logged in."""
    page.goto(base + path)
    page.wait_for_url(f"**/login?next={path}")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()


def fits(page: Any) -> bool:
    """Nothing wider than the screen: no sideways scrolling on a phone."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def publish_fault(publisher: Publisher) -> None:
    """An extinguisher below its gauge's green zone for a minute: a confirmed fault, an emergency ticket."""
    now = time.time()
    for i, ts in enumerate((now - 61, now)):
        publisher.send("fm/t/fire_extinguisher/ext-01/reading", {"ts": ts, "seq": i, "pressure_mpa": 0.5})


# -- 1. the manager's dashboard shows the API's figures ----------------------------------------------------


def dashboard_mismatches(page: Any, d: dict[str, Any]) -> list[str]:
    """Where the page's figures differ from the dashboard answer ``d`` (empty: they agree)."""
    bad = []

    def text(selector: str) -> str:
        loc = page.locator(selector)
        return loc.inner_text().strip() if loc.count() == 1 else f"<{loc.count()} x {selector}>"

    for c in d["commitments"]:
        tile = f'[data-commitment="{c["id"]}"]'
        expected = {f"{tile} h3": c["zh"], f"{tile} .value": pct(c["value"]), f"{tile} .target-num": pct(c["target"])}
        if c["forecast"] is not None and c["forecast"]["can_meet"]:
            expected[f"{tile} .forecast"] = f"本月还可承受 {c['forecast']['left_h']:.1f} 小时设施故障"
        for selector, want in expected.items():
            if text(selector) != want:
                bad.append(f"{selector}: {text(selector)!r} != {want!r}")
        state = {True: "met", False: "missed", None: "none"}[c["met"]]
        if state not in (page.locator(tile).get_attribute("class") or ""):
            bad.append(f"{tile} is not shown {state}")
    charts = sum(1 for c in d["commitments"] if c["daily"] is not None)
    if page.locator("[data-chart] svg").count() != charts:
        bad.append(f"{page.locator('[data-chart] svg').count()} charts, not {charts}")
    counts = {**{f"sla.{k}": v for k, v in d["tickets"]["sla"].items()}, "tickets.live": d["tickets"]["live"],
              **{f"prio.{k}": v for k, v in d["tickets"]["by_priority"].items()},
              **{f"visit.{k}": v for k, v in d["patrols"]["visits"].items()}}
    for key, want in counts.items():
        if text(f'[data-count="{key}"] .num') != str(want):
            bad.append(f"{key}: {text(f'[data-count={key!r}] .num')} != {want}")
    for cat, n in d["categories"].items():
        cells = page.locator(f'[data-category="{cat}"] td').all_inner_texts()
        if cells != [str(n["intact"]), str(n["faulty"]), str(n["unknown"])]:
            bad.append(f"{cat}: {cells} != {n}")
    if text("#callbacks") != str(d["callbacks_due"]):
        bad.append(f"callbacks {text('#callbacks')} != {d['callbacks_due']}")
    return bad


def test_a_manager_logs_in_and_the_dashboard_shows_the_apis_figures(
        gateway_factory: Callable[..., GatewayProcess], publisher: Publisher, chromium: Callable[..., Any],
        tmp_path: Path):
    (tmp_path / "site.toml").write_text(SITE, encoding="utf-8")
    g = gateway_factory(GATEWAY_SITE_FILE=str(tmp_path / "site.toml")).start()
    user(g, "李经理", "manager", "manager temp 1", change=False)  # a first login changes it on the page
    publish_fault(publisher)
    publisher.send("fm/t/streetlight/lamp-99/reading", {"on": True, "current_a": 0.4})  # bound to no asset
    publisher.send("fm/t/fire_extinguisher/ext-01/reading", {"pressure_mpa": "high"})  # refused
    wait_for(lambda: call(g, "GET", "/api/v1/tickets?asset=FE-01", g.token)[1]["items"], 20,
             what="the extinguisher's ticket")
    wait_for(lambda: call(g, "GET", "/api/v1/dead-letters", g.token)[1]["items"], 20, what="the refused reading")

    page = chromium(**DESKTOP).new_page()
    problems = watched(page)
    answers: list[dict[str, Any]] = []  # every dashboard the page fetched, in order

    def keep_dashboard(r: Any) -> None:
        if r.url.endswith("/api/v1/dashboard") and r.ok:
            with contextlib.suppress(PlaywrightError):  # the page left before its body was read: never drawn
                answers.append(r.json())

    page.on("response", keep_dashboard)
    log_in(page, g.api_url, "/manager", "李经理", "manager temp 1")
    page.get_by_label("新密码", exact=True).fill("my own secret 1")
    page.get_by_label("再次输入新密码").fill("my own secret 2")
    page.get_by_role("button", name="保存新密码").click()
    page.get_by_role("alert").filter(has_text="两次输入的新密码不一致").wait_for()
    page.get_by_label("再次输入新密码").fill("my own secret 1")
    page.get_by_role("button", name="保存新密码").click()
    page.wait_for_url("**/manager")
    page.locator("[data-commitment]").first.wait_for()

    # What the page shows is what it was answered (the latest answer, should an event have refreshed it) ...
    page.wait_for_function("() => document.querySelector('#updated').textContent !== '—'")
    end = time.monotonic() + 10
    while dashboard_mismatches(page, answers[-1]) and time.monotonic() < end:  # a refresh drawing meanwhile
        page.wait_for_timeout(200)
    shown = answers[-1]
    assert dashboard_mismatches(page, shown) == []
    # ... and the API, asked again with the same session, says the same where time does not move it.
    r = page.request.get(g.api_url + "/api/v1/dashboard")
    assert r.ok, r.text()
    api = r.json()
    assert [(c["id"], c["target"], c["direction"]) for c in api["commitments"]] == [
        (c["id"], c["target"], c["direction"]) for c in shown["commitments"]]
    assert (api["tickets"], api["categories"], api["callbacks_due"]) == (
        shown["tickets"], shown["categories"], shown["callbacks_due"])
    assert not dashboard_mismatches(page, {**shown, "tickets": api["tickets"], "categories": api["categories"]})
    assert api["tickets"]["live"] == 1 and api["tickets"]["by_priority"]["emergency"] == 1
    assert api["categories"]["fire"]["faulty"] == 1
    assert page.locator('[data-count="sla.on_time"] .num').inner_text() == str(api["tickets"]["sla"]["on_time"])
    assert page.locator('[data-category="fire"] td').nth(1).inner_text() == "1"
    assert len(api["commitments"]) >= 5 and page.locator("[data-commitment]").count() == len(api["commitments"])
    month = api["month"]
    assert page.get_by_role("link", name="打开可打印的公示").get_attribute("href") == \
        f"/api/v1/commitments/report?month={month}&lang=zh"
    page.screenshot(path=str(artifacts() / "manager.png"), full_page=True)

    # Assets and devices: the faulty extinguisher with its history, the unbound lamp, the refused reading.
    page.get_by_role("link", name="设施", exact=True).click()
    page.wait_for_url("**/assets")
    page.locator("[data-asset]").nth(2).wait_for()
    assert page.locator("[data-asset]").count() == 3
    page.get_by_label("状态").select_option(label="故障")
    page.locator("[data-asset]").nth(1).wait_for(state="detached")
    assert page.locator("[data-asset]").get_attribute("data-asset") == "FE-01"
    page.locator('[data-asset="FE-01"]').click()
    page.locator("#detail table tbody tr").first.wait_for()
    assert "故障" in page.locator("#detail table tbody tr").first.inner_text()  # newest first
    page.locator('#detail [data-field="pressure_mpa"] svg').wait_for(timeout=20 * MS)
    lamp = page.locator('[data-device="lamp-99"]')
    assert 'device = "lamp-99"' in lamp.locator("pre").inner_text()
    assert 'category = "lighting"' in lamp.locator("pre").inner_text()
    assert "schema" in page.locator("#dead-list").inner_text()
    page.screenshot(path=str(artifacts() / "assets.png"), full_page=True)
    page.get_by_role("link", name="看板").click()
    page.wait_for_url("**/manager")

    # English, remembered across a reload.
    page.get_by_role("button", name="English").click()
    page.get_by_role("heading", name="Service commitments", exact=True).wait_for()
    page.reload()
    first = api["commitments"][0]
    page.locator(f'[data-commitment="{first["id"]}"] h3').filter(has_text=first["en"]).wait_for()
    assert page.locator("html").get_attribute("lang") == "en"
    assert problems == []
    page.close()  # its event stream ends with it, before the gateway stops
    assert g.stop() == 0


# -- 2. a failing reading becomes a ticket on the maintenance page, worked to resolved ------------------------


def test_maintenance_sees_a_fault_arrive_live_and_works_its_ticket_to_resolved(
        gateway_factory: Callable[..., GatewayProcess], publisher: Publisher, chromium: Callable[..., Any],
        tmp_path: Path):
    (tmp_path / "site.toml").write_text(SITE, encoding="utf-8")
    g = gateway_factory(GATEWAY_SITE_FILE=str(tmp_path / "site.toml")).start()
    user(g, "王师傅", "maintenance", "repair secret 1")

    page = chromium(**PHONE).new_page()
    problems = watched(page)
    log_in(page, g.api_url, "/maintenance", "王师傅", "repair secret 1")
    page.wait_for_url("**/maintenance")
    page.get_by_text("没有待您处理的工单。").wait_for()
    page.locator('#live[data-state="on"]').wait_for()  # the event stream is open: what comes next is live
    assert page.locator("[data-ticket]").count() == 0

    publish_fault(publisher)
    card = page.locator("article.ticket")
    card.wait_for(timeout=30 * MS)
    ticket = int(card.get_attribute("data-ticket") or 0)
    assert card.get_attribute("data-status") == "open"
    assert "急修" in card.inner_text() and "FE-01 1号楼灭火器" in card.inner_text()
    assert card.locator('[data-clock="respond"]').inner_text() == "响应 · 按时"

    card.get_by_role("button", name="响应接单").click()
    page.locator(f'[data-ticket="{ticket}"][data-status="acknowledged"]').wait_for()
    card.get_by_role("button", name="已到现场").click()
    page.locator(f'[data-ticket="{ticket}"][data-status="on_site"]').wait_for()
    card.get_by_text("位置与读数").click()
    card.get_by_text("1号楼 · 东区 · 一层电梯厅").wait_for()
    card.locator('[data-field="pressure_mpa"] svg').wait_for(timeout=20 * MS)  # from InfluxDB
    page.locator("#toast").wait_for(state="hidden")  # "on site" said: out of the picture
    assert fits(page)
    page.screenshot(path=str(artifacts() / "maintenance.png"), full_page=True)
    card.get_by_role("button", name="维修完成").click()
    page.get_by_role("status").filter(has_text=f"工单 #{ticket}：已完成维修").wait_for()
    page.locator("article.ticket").wait_for(state="detached")  # resolved: out of the queue

    status, t = call(g, "GET", f"/api/v1/tickets/{ticket}", g.token)
    assert status == 200, t
    assert t["status"] == "resolved" and t["resolved_by"] == "王师傅"
    assert (t["acknowledged_by"], t["on_site_by"]) == ("王师傅", "王师傅")
    assert [e["action"] for e in t["timeline"] if e["by"] == "王师傅"] == ["acknowledge", "arrive", "resolve"]
    assert problems == []
    page.close()  # its event stream ends with it, before the gateway stops
    assert g.stop() == 0


# -- 3. a guard walks a round typing the tags in ---------------------------------------------------------------


GUARD_SITE = """
[site]
name = "阳光花园"
timezone = "Asia/Shanghai"

[patrol]
min_gap_s = 0  # the test walks fast

[[guards]]
id = "G01"
name = "张保安"

[[checkpoints]]
id = "CP-1"
name = "北门"
tag = "04A1000001"

[[checkpoints]]
id = "CP-2"
name = "花园"
tag = "04A1000002"

[[checkpoints]]
id = "CP-3"
name = "车库"
tag = "04A1000003"

[[routes]]
id = "R"
checkpoints = ["CP-1", "CP-2", "CP-3"]
ordered = true
duration_min = 3

[[schedules]]
route = "R"
at = ["{due}"]
tolerance_min = 10
"""


def png(width: int, height: int) -> bytes:
    """A grey PNG of that size (a phone camera's photo, only bigger than the upload limit of 1600 px)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = (b"\x00" + bytes(range(256)) * (width // 256) + b"\x80" * (width % 256)) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    raise AssertionError("no frame header")


def test_a_guard_completes_a_round_by_typing_the_checkpoints_tags(
        gateway_factory: Callable[..., GatewayProcess], chromium: Callable[..., Any], tmp_path: Path):
    due = math.floor(time.time() / 60) * 60.0  # this minute: the round is open now, ±10 min
    (tmp_path / "site.toml").write_text(GUARD_SITE.replace("{due}", datetime.fromtimestamp(due, SH).strftime("%H:%M")),
                                        encoding="utf-8")
    g = gateway_factory(GATEWAY_SITE_FILE=str(tmp_path / "site.toml")).start()
    user(g, "G01", "guard", "guard secret 1")
    round_id = f"R@{datetime.fromtimestamp(due, SH):%Y-%m-%dT%H:%M}"

    page = chromium(**PHONE).new_page()
    problems = watched(page)
    log_in(page, g.api_url, "/guard", "G01", "guard secret 1")
    page.wait_for_url("**/guard")
    page.locator(f'#round [data-round="{round_id}"]').wait_for()
    assert page.locator("#next-name").inner_text() == "北门"
    assert f"计划 {datetime.fromtimestamp(due, SH):%H:%M}" in page.locator("#round .round-title").inner_text()
    result = page.locator("#tap-result")

    page.get_by_label("标签编号").fill("04A1000001")  # typed as printed on the tag
    page.get_by_role("button", name="记录打卡").click()
    result.filter(has_text="✓ 北门 已记录").wait_for()
    page.locator("#next-name").filter(has_text="花园").wait_for()

    page.get_by_label("标签编号").fill("04:ff:00:00:00:09")  # a tag of no checkpoint
    page.get_by_role("button", name="记录打卡").click()
    result.filter(has_text="未知标签 04FF00000009").wait_for()

    page.get_by_label("选择巡更点").select_option(label="花园 (CP-2)")  # picked from the list: fills the tag
    assert page.get_by_label("标签编号").input_value() == "04A1000002"
    page.get_by_role("button", name="记录打卡").click()
    result.filter(has_text="✓ 花园 已记录").wait_for()
    page.locator("#next-name").filter(has_text="车库").wait_for()

    page.get_by_label("标签编号").fill("04:a1:00:00:03")  # a phone's NFC serial, lower case with colons
    page.get_by_role("button", name="记录打卡").click()
    result.filter(has_text="✓ 车库 已记录").wait_for()
    page.get_by_text("本轮巡更点已全部打卡 ✓").wait_for()
    assert page.locator("#progress").get_attribute("value") == "3"
    assert fits(page)
    page.screenshot(path=str(artifacts() / "guard.png"), full_page=True)

    status, body = call(g, "GET", "/api/v1/rounds", g.token)
    assert status == 200, body
    [walked] = [r for r in body["items"] if r["id"] == round_id]
    assert walked["guard"] == "G01" and walked["state"] == "started"
    assert [v["checkpoint"] for v in walked["visits"]] == ["CP-1", "CP-2", "CP-3"]
    assert all(v["at"] is not None for v in walked["visits"]), walked["visits"]
    assert [v["guard"] for v in walked["visits"]] == ["G01"] * 3

    # A problem seen on the way, with a photo: made smaller on the phone before it is sent.
    photo = tmp_path / "photo.png"
    photo.write_bytes(png(2000, 1000))
    page.get_by_role("textbox", name="问题").fill("车库入口积水")
    page.get_by_label("优先级").select_option(label="紧急")
    page.get_by_label("照片").set_input_files(photo)
    page.get_by_role("img", name="照片 1").wait_for()
    page.get_by_role("button", name="上报").click()
    done = page.get_by_role("status").filter(has_text="已上报，工单 #")
    done.wait_for()
    ticket = int(done.inner_text().rsplit("#", 1)[1])
    status, t = call(g, "GET", f"/api/v1/tickets/{ticket}", g.token)
    assert status == 200, t
    assert (t["title"], t["priority"], t["opened_by"], t["source"]) == ("车库入口积水", "urgent", "G01", "manual")
    [shots] = [e["data"] for e in t["timeline"] if e["action"] == "photos"]
    [shot] = shots["photos"]
    assert shot["type"] == "image/jpeg"
    req = urllib.request.Request(f"{g.api_url}/api/v1/tickets/{ticket}/photos/{shots['entry']}/{shot['name']}",
                                 headers={"Authorization": f"Bearer {g.token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert jpeg_size(r.read()) == (1600, 800)
    assert problems == []
    page.close()  # its event stream ends with it, before the gateway stops
    assert g.stop() == 0
