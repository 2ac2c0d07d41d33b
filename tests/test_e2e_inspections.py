"""Patrols and inspections end to end (issue 5): taps come through the real broker, the API and a real
pseudo-terminal into the gateway process; what it decided is read back through the HTTP API and the
MQTT events topic.

A patrol event is told when the gateway's clock passes its instant, and a fresh gateway tells only what
happens after it started, so a night of rounds cannot be replayed into it from the past. The full night
(hourly rounds 22:00-05:00, one checkpoint skipped and one late) runs on a test clock against the pure
engine (``tests/inspections/test_patrol.py``) and the Field the ingest thread runs, with its events
table, visits and completion rate (``tests/inspections/test_field.py``). Here a short schedule runs in
real time: rounds due at two consecutive minutes, ±15 s windows, so the same skip, late visit and missed
round happen within a minute and a half, and each event is checked to come out at its window's close.
Rounds that need no clock (an out-of-order visit, a flagged tap) are due at the current minute with a
wide window and tapped at once, with times a little in the past.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from gateway.devservers import Mosquitto
from tests.conftest import GatewayProcess, Publisher, wait_for
from tests.sensors.test_serial import Pty

SH = ZoneInfo("Asia/Shanghai")
MIN = 60.0


# -- helpers ----------------------------------------------------------------------------------------


def hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, SH).strftime("%H:%M")


def round_id(route: str, due_at: float) -> str:
    return f"{route}@{datetime.fromtimestamp(due_at, SH):%Y-%m-%dT%H:%M}"


def this_minute() -> float:
    """The whole minute just begun: a round due then, with a wide tolerance, is open now."""
    return math.floor(time.time() / MIN) * MIN


def far_schedule(route: str) -> str:
    """A schedule twelve hours away, so the site has no default rounds (hourly by night, three by day)
    that would fall due during a test and be reported missed."""
    return f'[[schedules]]\nroute = "{route}"\nat = ["{hhmm(time.time() + 12 * 3600)}"]\n'


def png(width: int = 2, height: int = 2) -> bytes:
    """A small valid PNG (grey pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def local_midnight(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=SH).timestamp()


SITE_HEAD = """
[site]
name = "测试小区"
timezone = "Asia/Shanghai"
latitude = 31.23
longitude = 121.47
"""


class Events:
    """A client on the gateway's events topic: each event with the wall time it arrived."""

    def __init__(self, port: int, topic: str) -> None:
        self.topic = topic
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.status: list[bytes] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(host="127.0.0.1", port=port)
        self.client.loop_start()
        self.client.subscribe(topic.rsplit("/", 1)[0] + "/#", qos=1)
        assert subscribed.wait(10), "the broker did not acknowledge the subscription"

    def _on_message(self, _c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            if m.topic == self.topic:
                self.got.append((time.time(), json.loads(m.payload)))
            elif m.topic.endswith("/status"):
                self.status.append(m.payload)

    def all(self, prefix: str = "") -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return [(t, e) for t, e in self.got if e["type"].startswith(prefix)]

    def of(self, prefix: str) -> list[dict[str, Any]]:
        return [e for _, e in self.all(prefix)]

    def wait(self, prefix: str, n: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            got = self.of(prefix)
            return got if len(got) >= n else None

        return wait_for(enough, timeout, what=f"{n} {prefix} event(s) on MQTT")  # type: ignore[return-value]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Scene:
    """A running gateway on a site file, a device-side publisher and a listener on its events."""

    g: GatewayProcess
    site_file: Path
    pub: Publisher
    events: Events

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        req = urllib.request.Request(self.g.api_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.g.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (path, body)
        return body

    def raw(self, path: str) -> bytes:
        req = urllib.request.Request(self.g.api_url + path, headers={"Authorization": f"Bearer {self.g.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    # taps -----------------------------------------------------------------------------------------
    def tap(self, reader: str, tag: str, ts: float, badge: str | None = None) -> None:
        """A reader's tap through the broker (CONTRACT.md tap payload)."""
        self.pub.send(f"fm/t/checkpoint/{reader}/tap", {"tag": tag, "ts": ts, **({"badge": badge} if badge else {})})

    def phone_tap(self, by: str, tag: str, ts: float) -> dict[str, Any]:
        """A guard's phone posting a tap (Web NFC) as the logged-in user ``by``."""
        status, body = self.request("POST", "/api/v1/taps", {"tag": tag, "by": by, "ts": ts})
        assert status == 202, body
        return body

    def taps(self, query: str = "") -> list[dict[str, Any]]:
        return self.get(f"/api/v1/taps?limit=1000{query}")["items"]

    def wait_taps(self, n: int, query: str = "") -> list[dict[str, Any]]:
        """The taps (newest first) once there are ``n`` of them."""
        def recorded() -> list[dict[str, Any]] | None:
            taps = self.taps(query)
            return taps if len(taps) == n else None

        return wait_for(recorded, what=f"{n} taps recorded")  # type: ignore[return-value]

    def rounds(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.get("/api/v1/rounds")["items"]}

    # assets and tickets -----------------------------------------------------------------------------
    def tickets(self, asset: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v1/tickets?asset={asset}&limit=1000")["items"]

    def asset(self, asset: str) -> dict[str, Any]:
        return {a["asset"]: a for a in self.get("/api/v1/assets")["items"]}[asset]

    def ledger(self, asset: str) -> list[tuple[str, str]]:
        items = self.get(f"/api/v1/assets/{asset}/states")["items"]
        assert [e["at"] for e in items] == sorted(e["at"] for e in items), items
        return [(e["state"], e["cause"]) for e in items]

    def inspect(self, asset: str, results: dict[str, str], by: str = "消防员老周", photos: Sequence[bytes] = (),
                note: str = "") -> dict[str, Any]:
        status, body = self.request("POST", "/api/v1/inspections", {
            "asset": asset, "plan": "fire", "by": by, "results": results, "note": note,
            "photos": [base64.b64encode(p).decode() for p in photos]})
        assert status == 201, body
        return body


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of this module's own (persistent sessions of other modules' gateway ids stay elsewhere)."""
    server = Mosquitto(tmp_path_factory.mktemp("inspections") / "mosquitto").start()
    yield server
    server.stop()


@pytest.fixture
def scene(gateway_factory: Callable[..., GatewayProcess], broker: Mosquitto, tmp_path: Path
          ) -> Iterator[Callable[..., Scene]]:
    made: list[Scene] = []

    def start(site: str, config: str | None = None) -> Scene:
        uid = uuid.uuid4().hex[:8]
        site_file = tmp_path / "site.toml"
        site_file.write_text(SITE_HEAD + site, encoding="utf-8")
        config_file = None
        if config is not None:
            config_file = tmp_path / "gateway.toml"
            config_file.write_text(config, encoding="utf-8")
        gateway_id = f"gw-{uid}"
        events = Events(broker.port, f"fm/t/gateway/{gateway_id}/events")
        pub = Publisher(broker.port)
        g = gateway_factory(config_file, GATEWAY_MQTT_URL=broker.url, GATEWAY_SITE_FILE=str(site_file),
                            GATEWAY_GATEWAY_ID=gateway_id)
        s = Scene(g, site_file, pub, events)
        made.append(s)
        g.start()
        wait_for(lambda: b"online" in events.status, 10, what="the gateway's online status on MQTT")
        return s

    yield start
    for s in made:
        s.pub.close()
        s.events.close()


def until(t: float) -> None:
    """Wait for the wall clock to reach ``t`` (a tap is sent when it happens, carrying its own time)."""
    wait_for(lambda: time.time() >= t, max(5.0, t - time.time() + 5), 0.01, f"the clock to reach {t}")


# -- 1. a night of rounds, shortened to two minutes ------------------------------------------------

# Route N (ordered, 4 checkpoints, 45 s, ±15 s) is due at D and D + 1 min; route M (2 checkpoints,
# 30 s, ±15 s) at D. The first N round starts at D (gate tapped), so its checkpoints are expected at
# D, D+15, D+30, D+45, each window ±15 s, final close D+60:
#   N-A  D      on time (reader h-01, badge CARD01: guard G01)
#   N-B  D+35   late: its window closed at D+30 (the guard's phone, logged in as G01)
#   N-C  -      skipped: late at D+45 (its window's close), missed at D+60 (the final close)
#   N-E  D+50   on time (window D+30..D+60; N-C's window closed at D+45, so not out of order)
# The second N round is never started: missed as a whole at D+60+15. Route M, walked by G02 with a
# handheld configured as theirs (no badge), starts at D+5 and is on time: no event. At D+17, both rounds
# under way, the gateway restarts: it rebuilds them from the tap log and goes on as if nothing happened.
NIGHT_SITE = """
[patrol]
min_gap_s = 5.0

[[guards]]
id = "G01"
name = "王保安"
badge = "CARD01"

[[guards]]
id = "G02"
name = "李保安"

[[readers]]
id = "h-02"
guard = "G02"

[[checkpoints]]
id = "N-A"
name = "北门"
tag = "04A1000001"

[[checkpoints]]
id = "N-B"
name = "地下车库"
tag = "04A1000002"

[[checkpoints]]
id = "N-C"
name = "水泵房"
tag = "04A1000003"

[[checkpoints]]
id = "N-E"
name = "南门"
tag = "04A1000004"

[[checkpoints]]
id = "M-1"
name = "1号楼"
tag = "04A1000011"

[[checkpoints]]
id = "M-2"
name = "2号楼"
tag = "04A1000012"

[[routes]]
id = "N"
name = "夜间巡更"
checkpoints = ["N-A", "N-B", "N-C", "N-E"]
ordered = true
duration_min = 0.75

[[routes]]
id = "M"
name = "楼栋巡更"
checkpoints = ["M-1", "M-2"]
ordered = true
duration_min = 0.5

[[schedules]]
route = "N"
at = ["{d0}", "{d1}"]
tolerance_min = 0.25

[[schedules]]
route = "M"
at = ["{d0}"]
tolerance_min = 0.25
"""


def test_rounds_in_real_time_tell_each_late_and_missed_checkpoint_at_its_window_close(scene):
    due = math.ceil((time.time() + 10) / MIN) * MIN  # D: a whole minute, after the gateway is up
    s = scene(NIGHT_SITE.replace("{d0}", hhmm(due)).replace("{d1}", hhmm(due + MIN)))
    assert time.time() < due - 2, "the gateway took too long to start for the schedule written"
    first, second, m = round_id("N", due), round_id("N", due + MIN), round_id("M", due)
    planned = s.rounds()
    assert list(planned) == [m, first, second]  # in due order, then by route
    assert {r["state"] for r in planned.values()} == {"due"}

    walk = [  # (offset from D, how, tag, who)
        (0, "mqtt", "04A1000001", ("h-01", "CARD01")),  # N-A
        (5, "mqtt", "04A1000011", ("h-02", None)),  # M-1
        (17, "restart", "", ""),  # both rounds under way, their start windows closed
        (35, "phone", "04A1000002", "G01"),  # N-B, late
        (35, "mqtt", "04A1000012", ("h-02", None)),  # M-2
        (50, "mqtt", "04A1000004", ("h-01", "CARD01")),  # N-E
    ]
    n = 0
    for offset, how, tag, who in walk:
        until(due + offset)
        if how == "restart":  # the gateway restarted mid-round: the rounds are rebuilt from the tap log
            assert s.g.stop() == 0
            s.g.start()
            assert time.time() < due + 28, "the restart took too long for the windows of this test"
            rounds = s.rounds()
            assert [(rounds[r]["state"], rounds[r]["started_at"]) for r in (m, first, second)] == [
                ("started", due + 5), ("started", due), ("due", None)]
            continue
        if how == "mqtt":
            s.tap(who[0], tag, due + offset, who[1])
        else:
            assert s.phone_tap(who, tag, due + offset)["checkpoint"] == "N-B"
        n += 1
        s.wait_taps(n)

    wait_for(lambda: s.events.of("patrol.round_missed"), due + 75 - time.time() + 10,
             what="the second round reported missed")
    window = {  # N's checkpoints, started at D: expected D + 15 i, window ±15 s
        cp: (due + 15 * i - 15, due + 15 * i + 15) for i, cp in enumerate(("N-A", "N-B", "N-C", "N-E"))}
    got = s.events.all("patrol.")
    assert [(e["type"], e["at"], e["data"]["round"], e["data"]["checkpoint"]) for _, e in got] == [
        ("patrol.late", due + 30, first, "N-B"),  # the close of N-B's window
        ("patrol.late", due + 45, first, "N-C"),  # the close of N-C's window
        ("patrol.missed", due + 60, first, "N-C"),  # the round's final close: D + 45 s + 15 s
        ("patrol.round_missed", due + 75, second, None),  # the second round's start window: D+60 ± 15 s
    ]
    for arrived, e in got:  # told once the clock passed the instant, never before (how soon is a benchmark's)
        assert e["at"] <= arrived, (e["type"], arrived - e["at"])
    late_b, late_c = got[0][1], got[1][1]
    assert late_b["data"] == {
        "route": "N", "round": first, "due_at": due, "checkpoint": "N-B", "guard": "G01", "expected_at": due + 15,
        "window": list(window["N-B"]), "started_at": due}
    assert late_b["title"] == "巡更点超时未到：夜间巡更 · 地下车库"
    assert late_c["data"]["window"] == list(window["N-C"])
    assert got[3][1]["data"]["window"] == [due + 45, due + 75] and got[3][1]["data"]["started_at"] is None

    rounds = s.rounds()
    visits = {rid: [(v["checkpoint"], v["at"], v["status"], v["guard"]) for v in rounds[rid]["visits"]]
              for rid in (first, second, m)}
    assert visits[first] == [("N-A", due, "on_time", "G01"), ("N-B", due + 35, "late", "G01"),
                             ("N-C", None, "missed", None), ("N-E", due + 50, "on_time", "G01")]
    assert visits[second] == [(cp, None, "missed", None) for cp in ("N-A", "N-B", "N-C", "N-E")]
    assert visits[m] == [("M-1", due + 5, "on_time", "G02"), ("M-2", due + 35, "on_time", "G02")]
    assert [rounds[r]["state"] for r in (first, second, m)] == ["closed", "missed", "closed"]
    assert (rounds[first]["started_at"], rounds[first]["guard"]) == (due, "G01")

    # 巡更完成率 over the day: visits made inside their window / visits scheduled (the closed rounds).
    days = sorted({datetime.fromtimestamp(t, SH).date().isoformat() for t in (due, due + MIN)})
    period = days[0] if len(days) == 1 else f"{days[0]}..{days[1]}"

    def completion() -> dict[str, Any] | None:
        body = s.get(f"/api/v1/commitments?period={period}")
        r = next(r for r in body["results"] if r["id"] == "patrol_completion")
        return r if r["den"] == 10 else None

    pc = wait_for(completion, 10, what="the three rounds written as visits")
    assert (pc["num"], pc["den"], pc["value"], pc["met"]) == (4, 10, 0.4, False)
    assert sorted(pc["evidence"]) == sorted([first, second])  # the rounds with a visit not made on time
    assert {k: (v["num"], v["den"]) for k, v in pc["detail"]["per_route"].items()} == {"N": (2, 8), "M": (2, 2)}
    assert {k: (v["num"], v["den"]) for k, v in pc["detail"]["per_guard"].items()} == {
        "G01": (2, 4), "G02": (2, 2), "": (0, 4)}  # a round nobody started counts under nobody

    assert [e["type"] for e in s.events.of("patrol.")] == [e["type"] for _, e in got], "nothing more was told"
    assert s.taps("&flagged=true") == []
    by_tag = {t["tag"]: t for t in s.taps()}
    assert (by_tag["04A1000002"]["reader"], by_tag["04A1000002"]["guard"], by_tag["04A1000002"]["source"]) == (
        "phone-G01", "G01", "api:G01")
    assert (by_tag["04A1000001"]["guard"], by_tag["04A1000001"]["badge"]) == ("G01", "CARD01")
    assert (by_tag["04A1000011"]["guard"], by_tag["04A1000011"]["badge"]) == ("G02", None)


# -- 2. an out-of-order visit on an ordered route ---------------------------------------------------

ORDER_SITE = """
[[guards]]
id = "G03"
badge = "CARD03"

[[checkpoints]]
id = "O-1"
name = "大门"
tag = "04B1000001"

[[checkpoints]]
id = "O-2"
name = "花园"
tag = "04B1000002"

[[checkpoints]]
id = "O-3"
name = "车库"
tag = "04B1000003"

[[routes]]
id = "O"
checkpoints = ["O-1", "O-2", "O-3"]
ordered = true
duration_min = 2

[[schedules]]
route = "O"
at = ["{due}"]
tolerance_min = 10
"""


def test_a_checkpoint_tapped_before_an_earlier_one_whose_window_is_open_is_out_of_order(scene):
    due = this_minute()
    s = scene(ORDER_SITE.replace("{due}", hhmm(due)))
    t0 = time.time() - 90  # inside the round's start window (due ± 10 min)
    s.tap("h-03", "04B1000001", t0, "CARD03")  # O-1 starts the round
    s.tap("h-03", "04B1000003", t0 + 30, "CARD03")  # O-3 while O-2 (expected t0 + 60 ± 10 min) is still open
    s.tap("h-03", "04B1000002", t0 + 60, "CARD03")  # O-2 after all
    s.wait_taps(3)
    rid = round_id("O", due)

    def walked() -> dict[str, Any] | None:
        r = s.rounds()[rid]
        return r if all(v["at"] is not None for v in r["visits"]) else None

    r = wait_for(walked, what="the round walked")
    assert (r["state"], r["started_at"], r["guard"]) == ("started", t0, "G03")
    assert [(v["checkpoint"], v["at"], v["status"]) for v in r["visits"]] == [
        ("O-1", t0, "on_time"), ("O-2", t0 + 60, "on_time"), ("O-3", t0 + 30, "out_of_order")]
    assert s.events.of("patrol.") == []  # visited: an out-of-order visit is a verdict, not an alarm


# -- 3. two taps 3 s apart on checkpoints 400 m apart ----------------------------------------------

FLAG_SITE = """
[[guards]]
id = "G04"
name = "赵保安"
badge = "CARD04"

[[checkpoints]]
id = "F-1"
name = "东门"
tag = "04C1000001"
x_m = 0.0
y_m = 0.0

[[checkpoints]]
id = "F-2"
name = "西门"
tag = "04C1000002"
x_m = 400.0
y_m = 0.0

[[routes]]
id = "F"
name = "围墙巡更"
checkpoints = ["F-1", "F-2"]
ordered = true
duration_min = 1

[[schedules]]
route = "F"
at = ["{due}"]
tolerance_min = 10
"""


def test_two_taps_3_s_apart_400_m_apart_are_flagged_until_a_manager_accepts(scene):
    due = this_minute()
    s = scene(FLAG_SITE.replace("{due}", hhmm(due)))
    rid = round_id("F", due)
    t0 = time.time() - 30
    s.tap("h-04", "04C1000001", t0, "CARD04")
    s.tap("h-04", "04C1000002", t0 + 3, "CARD04")  # a copy of the west gate's tag, carried to the east gate?
    s.wait_taps(2)

    [flagged] = s.wait_taps(1, "&flagged=true")
    assert (flagged["checkpoint"], flagged["at"], flagged["guard"], flagged["accepted_by"]) == ("F-2", t0 + 3, "G04",
                                                                                                None)
    assert flagged["flagged"].startswith("too_fast: 400 m from F-1 in 3 s (walking takes at least 200 s)")
    assert [t["checkpoint"] for t in s.taps("&flagged=false")] == ["F-1"]
    [e] = s.events.wait("patrol.flagged")
    assert (e["at"], e["data"]["round"], e["data"]["checkpoint"], e["data"]["guard"], e["data"]["reason"]) == (
        t0 + 3, rid, "F-2", "G04", flagged["flagged"])
    assert e["title"] == "可疑巡更打卡（疑似复制或拍照的标签）：围墙巡更 · 西门"
    r = s.rounds()[rid]
    assert [(v["checkpoint"], v["at"], v["status"]) for v in r["visits"]] == [
        ("F-1", t0, "on_time"), ("F-2", None, "pending")], "a flagged tap is no visit"

    first = next(t for t in s.taps() if t["checkpoint"] == "F-1")
    status, body = s.request("POST", f"/api/v1/taps/{first['id']}/accept", {"by": "值班经理"})
    assert status == 404, body  # nothing to accept about a tap that was not flagged

    status, body = s.request("POST", f"/api/v1/taps/{flagged['id']}/accept", {"by": "值班经理"})
    assert status == 200, body
    assert (body["id"], body["accepted_by"], body["flagged"]) == (flagged["id"], "值班经理", flagged["flagged"])
    r = s.rounds()[rid]
    assert [(v["checkpoint"], v["at"], v["status"]) for v in r["visits"]] == [
        ("F-1", t0, "on_time"), ("F-2", t0 + 3, "on_time")], "accepted: it counts as of its own time"
    assert r["visits"][1]["flag"] == flagged["flagged"]
    assert [t["accepted_by"] for t in s.taps("&flagged=true")] == ["值班经理"]
    assert len(s.events.of("patrol.flagged")) == 1


# -- 4. an unknown tag ------------------------------------------------------------------------------

UNKNOWN_SITE = """
[[checkpoints]]
id = "U-1"
name = "门岗"
tag = "04D1000001"

[[routes]]
id = "U"
checkpoints = ["U-1"]
"""


def test_an_unknown_tag_is_listed_until_a_checkpoint_claims_it(scene):
    s = scene(UNKNOWN_SITE + far_schedule("U"))
    now = time.time()
    s.tap("h-05", "04:d1:00:00:99", now - 20)  # a new sticker nobody registered
    s.wait_taps(1)
    s.phone_tap("G05", "04D1000099", now - 10)
    s.tap("h-05", "04D1000001", now - 5)  # a known one
    taps = s.wait_taps(3)
    assert [(t["tag"], t["checkpoint"]) for t in taps] == [
        ("04D1000001", "U-1"), ("04D1000099", None), ("04D1000099", None)]
    body = s.get("/api/v1/tags/unknown")
    assert body["total"] == 1
    assert body["items"] == [{"tag": "04D1000099", "first_at": now - 20, "last_at": now - 10, "taps": 2,
                              "last_reader": "phone-G05"}]

    cp = {"id": "U-2", "name": "新增巡更点 地库出口", "tag": "04:D1:00:00:99", "asset": None, "x_m": None, "y_m": None}
    status, body = s.request("PUT", "/api/v1/checkpoints/U-2?by=%E7%BB%8F%E7%90%86", cp)
    assert status == 200, body
    assert body == {**cp, "tag": "04D1000099"}
    assert s.get("/api/v1/tags/unknown") == {"items": [], "total": 0, "limit": 100, "offset": 0}
    assert {c["id"]: c["tag"] for c in s.get("/api/v1/checkpoints")["items"]} == {
        "U-1": "04D1000001", "U-2": "04D1000099"}

    s.tap("h-05", "04D1000099", time.time())  # the next tap of the tag is the new checkpoint's
    [latest, *_] = s.wait_taps(4)
    assert (latest["tag"], latest["checkpoint"]) == ("04D1000099", "U-2")
    assert s.get("/api/v1/tags/unknown")["total"] == 0


# -- 5. a serial reader printing UIDs between garbage and partial lines ------------------------------

SERIAL_SITE = """
[patrol]
min_gap_s = 0.0  # the taps come a moment apart: walking limits are not what this test is about

[[guards]]
id = "G06"
name = "门卫老陈"

[[readers]]
id = "gate-reader"
guard = "G06"

[[checkpoints]]
id = "CP-GATE"
name = "北门"
tag = "04A224B2C15E80"

[[checkpoints]]
id = "CP-BEEF"
name = "垃圾站"
tag = "DEADBEEF"

[[routes]]
id = "S"
checkpoints = ["CP-GATE", "CP-BEEF"]
"""


def test_a_serial_reader_between_garbage_and_partial_lines_yields_exactly_the_taps(scene):
    pty = Pty()
    try:
        s = scene(SERIAL_SITE + far_schedule("S"), config=f"""
[[serial]]
port = {json.dumps(pty.path)}
mode = "nfc-lines"
reader = "gate-reader"
timeout = 0.3
""")
        g = s.g
        wait_for(lambda: f'gateway_serial_open{{port="{pty.path}"}} 1' in g.get("/metrics"), 10, what="the port open")
        start = time.time()
        pty.write(b"\x00\xff\xfe\x07READER v1.2\r\n")  # power-up noise and a banner on one line
        pty.write(b"04A224B2C15E80\r\n")
        pty.write(b"04A2")  # cut off mid-line: refused once no byte follows for the port's timeout
        wait_for(lambda: g.health()["dead_letters"].get("garbage") == 2, 10, what="the partial line refused")
        for b in b"04:a2:24:b2:c1:5e:81\r":  # a byte at a time, CR only
            pty.write(bytes([b]))
        pty.write(b"\n" + b"Z" * 300 + b"\r\n")  # over-long
        pty.write(b"\xff\xff\xffDEADBEEF\n")  # noise before a line: the line is kept
        pty.write(b"\xc3\x28\r\nhello\r\n0102030405\r\n")
        taps = s.wait_taps(4)
        wait_for(lambda: sum(g.health()["dead_letters"].values()) == 6, 10, what="six lines refused")
        assert [(t["tag"], t["checkpoint"], t["reader"], t["guard"], t["badge"], t["source"]) for t in taps[::-1]] == [
            ("04A224B2C15E80", "CP-GATE", "gate-reader", "G06", None, pty.path),
            ("04A224B2C15E81", None, "gate-reader", "G06", None, pty.path),
            ("DEADBEEF", "CP-BEEF", "gate-reader", "G06", None, pty.path),
            ("0102030405", None, "gate-reader", "G06", None, pty.path),
        ]
        assert all(start <= t["at"] <= time.time() for t in taps)  # no clock of its own: the time it was read
        assert [t["at"] for t in taps[::-1]] == sorted(t["at"] for t in taps)
        assert sorted(u["tag"] for u in s.get("/api/v1/tags/unknown")["items"]) == ["0102030405", "04A224B2C15E81"]
        assert s.taps("&flagged=true") == []
    finally:
        pty.close()


# -- 6. a failed extinguisher checklist -------------------------------------------------------------

FIRE_SITE = """
[[assets]]
id = "FE-1"
name = "3号楼1层灭火器"
category = "fire"
kind = "fire_extinguisher"
location = "3号楼1层走廊"
"""
PASS = {"pressure_green": "pass", "seal_intact": "pass", "in_service_life": "pass", "unobstructed": "pass"}


def test_a_failed_extinguisher_checklist_opens_one_ticket_and_makes_the_asset_faulty(scene):
    s = scene(FIRE_SITE)
    s.events.wait("inspection.overdue")  # never inspected: overdue at the first tick (test 7)
    photo = png()
    failed = {**PASS, "pressure_green": "fail"}
    body = s.inspect("FE-1", failed, photos=[photo], note="压力表指针在红区")
    assert body["failed"] == ["pressure_green"] and body["applied"] is True
    assert body["photos"] == [{"name": "1.png", "type": "image/png", "bytes": len(photo),
                               "sha256": hashlib.sha256(photo).hexdigest()}]
    assert s.raw(f"/api/v1/inspections/{body['id']}/photos/1.png") == photo
    assert body["effects"]["state"] == "faulty" and body["effects"]["faults"] == ["inspection.pressure_green"]
    [opened] = body["effects"]["opened"]
    [t] = s.tickets("FE-1")
    assert opened == {"item": "pressure_green", "ticket": t["id"], "what": "opened"}
    assert (t["fault"], t["priority"], t["status"], t["source"], t["category"]) == (
        "inspection.pressure_green", "emergency", "open", "inspection", "fire")
    assert (t["opened_at"], t["occurrences"]) == (body["at"], 1)
    a = s.asset("FE-1")
    assert (a["state"], a["faults"]) == ("faulty", ["inspection.pressure_green"])

    again = s.inspect("FE-1", failed)
    assert again["effects"]["opened"] == [{"item": "pressure_green", "ticket": t["id"], "what": "occurrence"}]
    [t2] = s.tickets("FE-1")
    assert (t2["id"], t2["occurrences"], t2["status"]) == (t["id"], 2, "open")
    assert s.asset("FE-1")["state"] == "faulty"

    fixed = s.inspect("FE-1", PASS, note="已更换灭火器")
    assert fixed["effects"]["state"] == "intact" and fixed["effects"]["opened"] == []
    assert [c["ticket"] for c in fixed["effects"]["cleared"]] == [t["id"]]
    [t3] = s.tickets("FE-1")
    assert t3["fault_cleared_at"] == fixed["at"]
    a = s.asset("FE-1")
    assert (a["state"], a["faults"]) == ("intact", [])
    assert s.ledger("FE-1") == [("unknown", "in_service"), ("unknown", "inspection_overdue"),
                                ("faulty", "inspection"), ("faulty", "inspection"), ("intact", "inspection")]
    # the entry into service is published too (the relay of a first start begins before it)
    assert [e["data"]["state"] for e in s.events.wait("asset.state", 3)] == ["unknown", "faulty", "intact"]
    assert len(s.events.wait("inspection.recorded", 3)) == 3
    assert len(s.get("/api/v1/tickets?limit=1000")["items"]) == 1


# -- 7. an overdue fire inspection -------------------------------------------------------------------

OVERDUE_SITE = """
[[assets]]
id = "FE-7"
name = "5号楼灭火器"
category = "fire"
kind = "fire_extinguisher"

[[assets]]
id = "FE-S"
name = "6号楼灭火器（带传感器）"
category = "fire"
kind = "fire_extinguisher"
device = "fe-s-{uid}"
"""


def test_an_overdue_fire_inspection_makes_a_sensorless_asset_unknown_and_is_told_once(scene):
    site = OVERDUE_SITE.replace("{uid}", uuid.uuid4().hex[:8])
    s = scene(site)
    now = time.time()
    today = datetime.fromtimestamp(now, SH).date()
    sixteenth = local_midnight(today.replace(day=16))
    # The first of two is due by the 15th 24:00, the second by the month's end; never inspected, the latest
    # deadline passed is missed: the 15th's from the 16th on, before that last month's end.
    deadline = sixteenth if now >= sixteenth else local_midnight(today.replace(day=1))
    told = s.events.wait("inspection.overdue", 2)
    by_asset = {e["data"]["asset"]: e for e in told}
    assert set(by_asset) == {"FE-7", "FE-S"}
    for asset, unknown in (("FE-7", True), ("FE-S", False)):  # a sensor's asset follows its readings
        e = by_asset[asset]
        assert (e["data"]["plan"], e["data"]["due_at"], e["data"]["done"], e["data"]["needed"],
                e["data"]["unknown"]) == ("fire", deadline, 0, 2, unknown)
        assert e["title"].startswith("巡检逾期 ") and e["title"].endswith("：消防设施定检")
    assert s.ledger("FE-7") == [("unknown", "in_service"), ("unknown", "inspection_overdue")]
    assert s.ledger("FE-S") == [("unknown", "in_service")]
    a = s.asset("FE-7")
    assert (a["state"], a["monitored"]) == ("unknown", False)
    [due] = s.get("/api/v1/inspections/due?asset=FE-7")["items"]
    assert (due["plan"], due["overdue"], due["overdue_since"], due["done"]) == ("fire", True, deadline, 0)

    # Once per missed deadline: after a restart with one more asset, only the new one is told.
    assert s.g.stop() == 0
    s.site_file.write_text(s.site_file.read_text(encoding="utf-8") + """
[[assets]]
id = "FE-8"
name = "7号楼灭火器"
category = "fire"
kind = "fire_extinguisher"
""", encoding="utf-8")
    s.g.start()
    s.events.wait("inspection.overdue", 3)
    assert [e["data"]["asset"] for e in s.events.of("inspection.overdue")][2:] == ["FE-8"]
    assert s.ledger("FE-7") == [("unknown", "in_service"), ("unknown", "inspection_overdue")]


# -- 8. a tap at an asset with an open ticket proves arrival -----------------------------------------

ARRIVAL_SITE = """
[[assets]]
id = "FE-A"
name = "8号楼灭火器"
category = "fire"
kind = "fire_extinguisher"

[[assets]]
id = "FE-B"
name = "9号楼灭火器"
category = "fire"
kind = "fire_extinguisher"

[[assets]]
id = "FE-C"
name = "10号楼灭火器"
category = "fire"
kind = "fire_extinguisher"

[[guards]]
id = "G08"
name = "维修工小孙"
badge = "CARD08"

[[checkpoints]]
id = "T-GATE"
name = "门岗"
tag = "04E1000000"

[[checkpoints]]
id = "T-FEA"
name = "8号楼灭火器标签"
tag = "04E100000A"
asset = "FE-A"

[[checkpoints]]
id = "T-FEB"
name = "9号楼灭火器标签"
tag = "04E100000B"
asset = "FE-B"

[[checkpoints]]
id = "T-FEC"
name = "10号楼灭火器标签"
tag = "04E100000C"
asset = "FE-C"

[[routes]]
id = "T"
checkpoints = ["T-GATE"]
"""


def test_a_tap_at_an_asset_with_an_open_ticket_records_arrival(scene):
    s = scene(ARRIVAL_SITE + far_schedule("T"))
    s.events.wait("inspection.overdue", 3)
    s.inspect("FE-A", {**PASS, "seal_intact": "fail"})
    s.inspect("FE-B", {**PASS, "unobstructed": "fail"})
    [ta], [tb] = s.tickets("FE-A"), s.tickets("FE-B")
    assert (ta["status"], tb["status"]) == ("open", "open")

    now = time.time()
    s.tap("h-08", "04E100000A", now - 60, "CARD08")  # the repairer's badge: guard G08
    s.tap("wall-9", "04E100000B", now - 50)  # a reader nobody carries, no badge: the reader
    s.tap("h-08", "04E100000C", now - 30, "CARD08")  # no ticket there: nothing to arrive at
    s.wait_taps(3)

    def arrived(ticket_id: int) -> dict[str, Any] | None:
        t = s.get(f"/api/v1/tickets/{ticket_id}")
        return t if t["status"] == "on_site" else None

    a = wait_for(lambda: arrived(ta["id"]), what="FE-A's ticket on site")
    b = wait_for(lambda: arrived(tb["id"]), what="FE-B's ticket on site")
    assert (a["on_site_at"], a["on_site_by"], a["acknowledged_at"]) == (now - 60, "G08", now - 60)
    assert (b["on_site_at"], b["on_site_by"]) == (now - 50, "reader:wall-9")
    assert [e["action"] for e in a["timeline"] if e["action"] != "escalate"] == ["open", "arrive"]
    assert s.tickets("FE-C") == []
    arrivals = s.events.wait("ticket.arrive", 2)
    assert sorted(e["data"]["ticket"]["id"] for e in arrivals) == sorted([ta["id"], tb["id"]])

    again = time.time()
    s.tap("h-08", "04E100000A", again, "CARD08")  # again: the arrival stays the first
    s.wait_taps(4)
    assert s.get(f"/api/v1/tickets/{ta['id']}")["on_site_at"] == now - 60
    by_tag = {t["tag"]: t for t in s.taps()}
    assert (by_tag["04E100000B"]["checkpoint"], by_tag["04E100000B"]["guard"]) == ("T-FEB", None)
    assert s.events.of("patrol.") == []

    # Plausibility holds off any route too: the same badge at another tag 3 s later (no positions: 20 s apart
    # at least) is flagged, and the event names the place alone.
    s.tap("h-08", "04E100000C", again + 3, "CARD08")
    [e] = s.events.wait("patrol.flagged")
    assert (e["at"], e["data"]["route"], e["data"]["checkpoint"], e["data"]["guard"]) == (
        again + 3, None, "T-FEC", "G08")
    assert e["title"] == "可疑巡更打卡（疑似复制或拍照的标签）：10号楼灭火器标签"
