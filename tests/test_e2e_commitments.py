"""Service commitments end to end: readings of bound assets go through the real broker into the
gateway process; the figures are read back over HTTP (JSON, the printable notice, CSV) and,
once the gateway is stopped, with ``gateway report`` on its data folder.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.commitments.periods import month_of, parse_period, previous_month
from tests.conftest import ROOT, GatewayProcess, Publisher, wait_for

SH = ZoneInfo("Asia/Shanghai")
SITE_NAME = "测试小区"
IDS = ["lighting_intact", "fire_intact", "drainage_intact", "repair_timeliness", "first_time_fix", "rework_rate",
       "callback_rate", "satisfaction", "patrol_completion", "fire_inspection", "well_inspection", "septic_cleanout"]
CSV_HEADER_ZH = ["编号", "承诺指标", "承诺目标", "本月实际", "是否达标", "较上月", "分子", "分母", "未达标说明"]
CSV_HEADER_EN = ["id", "Commitment", "Target", "This month", "Met", "Since last month", "Numerator", "Denominator",
                 "Why not met"]
LAMP_LIT = {"on": True, "current_a": 0.42, "voltage_v": 220.0}  # intact by night, day-burning (not counted) by day
GOOD = {"pressure_mpa": 1.2, "present": True}


def site_toml(devices: Mapping[str, str]) -> str:
    out = ["[site]", f'name = "{SITE_NAME}"', 'timezone = "Asia/Shanghai"', "latitude = 31.23", "longitude = 121.47",
           ""]
    for asset, (category, kind, extra) in {"L1": ("lighting", "streetlight", "rated = { current_a = 0.42 }"),
                                          "L2": ("lighting", "streetlight", "rated = { current_a = 0.42 }"),
                                          "F1": ("fire", "fire_extinguisher", "")}.items():
        out += ["[[assets]]", f'id = "{asset}"', f'name = "设施 {asset}"', f'category = "{category}"',
                f'kind = "{kind}"', f'device = "{devices[asset]}"', extra, ""]
    return "\n".join(out)


def fetch(g: GatewayProcess, path: str, token: bool = True) -> tuple[int, str, str]:
    """(status, content type, body text), errors included."""
    req = urllib.request.Request(g.api_url + path)
    if token:
        req.add_header("Authorization", f"Bearer {g.token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def get_json(g: GatewayProcess, path: str) -> Any:
    status, _, body = fetch(g, path)
    assert status == 200, body
    return json.loads(body)


def readings(g: GatewayProcess, device: str) -> int:
    """How many readings the gateway has from ``device``; 0 until it has seen the device (a 404)."""
    status, _, body = fetch(g, f"/api/v1/devices/{device}")
    return json.loads(body)["readings"] if status == 200 else 0


def by_id(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in report["results"]}


def run_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gateway", "report", *args], env=dict(env), cwd=ROOT,
                          capture_output=True, timeout=60)


def test_commitments_over_http_and_from_the_command_line(gateway_factory: Callable[..., GatewayProcess],
                                                         publisher: Publisher, tmp_path: Path):
    uid = uuid.uuid4().hex[:8]
    devices = {a: f"{a.lower()}-{uid}" for a in ("L1", "L2", "F1")}
    kinds = {"L1": "streetlight", "L2": "streetlight", "F1": "fire_extinguisher"}
    site_file = tmp_path / "site.toml"
    site_file.write_text(site_toml(devices), encoding="utf-8")
    g = gateway_factory(GATEWAY_SITE_FILE=str(site_file)).start()

    # -- readings for the bound assets, all healthy
    for asset, payload in (("L1", LAMP_LIT), ("L2", LAMP_LIT), ("F1", GOOD)):
        for _ in range(2):
            publisher.send(f"fm/t/{kinds[asset]}/{devices[asset]}/reading", {"ts": time.time(), **payload})
    for device in devices.values():
        wait_for(lambda d=device: readings(g, d) == 2,
                 what=f"2 readings of {device} processed")

    # -- the running month: every indicator, intact rates with their forecast
    before = month_of(time.time(), SH)

    def running() -> dict[str, Any] | None:
        report = get_json(g, "/api/v1/commitments")
        light, fire = by_id(report)["lighting_intact"], by_id(report)["fire_intact"]
        ok = light["detail"]["snapshot"]["intact"] == 2 and fire["detail"]["snapshot"]["intact"] == 1
        return report if ok else None

    report = wait_for(running, what="the lamps and the extinguisher intact in the running month")
    assert report["month"] in (before, month_of(time.time(), SH))
    assert [r["id"] for r in report["results"]] == IDS
    assert "frozen_at" not in report and len(report["previous"]) == 12
    r = by_id(report)
    for ident, assets in (("lighting_intact", 2), ("fire_intact", 1), ("drainage_intact", 0)):
        detail = r[ident]["detail"]
        assert detail["assets"] == assets
        assert set(detail["forecast"]) >= {"can_meet", "left_h", "budget_h", "lost_h", "best_case"}
    light = r["lighting_intact"]
    assert light["detail"]["forecast"]["can_meet"] is True and light["detail"]["forecast"]["left_h"] > 0
    # 100 % leaves no budget: the seconds the extinguisher was unknown (before its first reading) already lost it.
    fire = r["fire_intact"]["detail"]["forecast"]
    assert fire["can_meet"] is (fire["lost_h"] == 0)
    # In service since the gateway started (unknown until the first reading), intact since.
    assert light["den"] > 0 and 0 < light["value"] <= 1
    assert light["detail"]["known_only"]["value"] == 1.0 and light["detail"]["seconds"]["faulty"] == 0
    assert r["repair_timeliness"]["value"] is None and r["repair_timeliness"]["met"] is None
    assert r["patrol_completion"]["den"] == 0  # no patrol rounds on this site

    # -- a custom range, a quarter, a bad period
    custom = get_json(g, "/api/v1/commitments?period=2026-11-01..2026-11-02")
    p = parse_period("2026-11-01..2026-11-02", SH)
    assert custom["period"] == {"label": "2026-11-01..2026-11-02", "start": p.start, "end": p.end}
    assert custom["period"]["start"] == datetime(2026, 11, 1, tzinfo=SH).timestamp()
    assert [x["id"] for x in custom["results"]] == IDS
    assert "month" not in custom and "frozen_at" not in custom
    quarter = get_json(g, "/api/v1/commitments?period=2026-Q4")
    assert quarter["period"]["label"] == "2026-Q4" and len(quarter["results"]) == 12

    status, content_type, body = fetch(g, "/api/v1/commitments?period=2026-13")
    assert status == 422 and content_type.startswith("application/json")
    error = json.loads(body)
    assert set(error) == {"error"} and set(error["error"]) == {"code", "message", "field"}
    assert error["error"]["code"] == 422
    assert "'2026-13' is not a period" in error["error"]["message"]
    assert "2026-11-01..2026-11-15" in error["error"]["message"]

    # -- last month's notice, CSV and JSON (its first report freezes it)
    last = previous_month(month_of(time.time(), SH))
    status, content_type, html = fetch(g, f"/api/v1/commitments/report?month={last}&format=html")
    assert status == 200 and content_type.startswith("text/html")
    assert "物业服务承诺公示" in html and SITE_NAME in html and "http" not in html
    assert all(x["zh"] in html for x in report["results"])

    status, content_type, api_csv = fetch(g, f"/api/v1/commitments/report?month={last}&format=csv")
    assert status == 200 and content_type.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(api_csv)))
    assert rows[0] == CSV_HEADER_ZH and [row[0] for row in rows[1:]] == IDS
    assert rows[1][1] == "路灯、楼道灯完好率"

    status, _, en_csv = fetch(g, f"/api/v1/commitments/report?month={last}&format=csv&lang=en")
    en_rows = list(csv.reader(io.StringIO(en_csv)))
    assert status == 200 and en_rows[0] == CSV_HEADER_EN and len(en_rows) == 13
    assert en_rows[1][1] == "Street and corridor lights intact"

    status, _, en_html = fetch(g, f"/api/v1/commitments/report?month={last}&lang=en")
    assert status == 200 and "Service commitments" in en_html and "物业服务承诺公示" not in en_html

    frozen = get_json(g, f"/api/v1/commitments/report?month={last}&format=json")
    assert frozen["month"] == last and frozen["frozen_at"] and frozen["differs"] == []

    # -- a token is required
    for path in ("/api/v1/commitments", f"/api/v1/commitments/report?month={last}&format=csv"):
        status, _, body = fetch(g, path, token=False)
        assert status == 401, body
        assert json.loads(body)["error"]["code"] == 401

    # -- the command line, on the stopped gateway's data folder
    assert g.stop() == 0
    cli = run_cli(g.env, "--month", last, "--format", "csv")
    assert cli.returncode == 0, cli.stderr.decode()
    assert cli.stdout.decode() == api_csv  # the frozen figures, byte for byte

    cli_en = run_cli(g.env, "--month", last, "--format", "csv", "--lang", "en")
    assert cli_en.returncode == 0 and cli_en.stdout.decode() == en_csv

    for bad in ("2026-13", "2026-Q4", "last"):
        cli = run_cli(g.env, "--month", bad, "--format", "csv")
        assert cli.returncode == 2 and cli.stdout == b""
        lines = cli.stderr.decode().splitlines()
        assert lines == [f"config error: --month: {bad!r} is not a month (2026-11)"], lines

    empty = tmp_path / "no-database"
    empty.mkdir()
    cli = run_cli({**g.env, "GATEWAY_DATA_DIR": str(empty)}, "--month", last, "--format", "csv")
    assert cli.returncode == 2 and cli.stdout == b""
    lines = cli.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error: data_dir: no gateway database at ")
    assert not (empty / "gateway.db").exists()
