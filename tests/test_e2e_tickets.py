"""Faults to repair tickets end to end: readings go through the real broker into the gateway
process; what it decided is read back through the HTTP API, the MQTT events topic and InfluxDB.

Readings carry device times placed in the past (or, after an action taken now, a minute or
two ahead, inside the allowed clock skew), so every deadline is known to the second. Each
device's times only increase, so no reading is ``late``. Debounce is the default: a fault
opens on the second failing reading at least 60 s after the first, and clears the same way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.config import ConfigError
from gateway.devservers import Mosquitto
from gateway.site import load_site
from tests.conftest import ROOT, GatewayProcess, Publisher, Subscriber, wait_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
CATEGORY = {"streetlight": "lighting", "fire_extinguisher": "fire", "fire_hydrant": "fire",
            "smoke_detector": "fire", "drain_level": "drainage"}

# Payloads: a lamp rated 0.42 A, an extinguisher whose gauge's green zone is 1.0-1.4 MPa.
LAMP_OFF = {"on": False, "current_a": 0.0, "voltage_v": 220.0}
LAMP_DIM = {"on": True, "current_a": 0.02, "voltage_v": 220.0}
LAMP_LIT = {"on": True, "current_a": 0.42, "voltage_v": 220.0}
LOW = {"pressure_mpa": 0.6, "present": True}
GOOD = {"pressure_mpa": 1.2, "present": True}


# -- helpers: time, site file, API ----------------------------------------------------------------


def local_day(days_ago: int, tz: ZoneInfo = SHANGHAI) -> date:
    return datetime.now(tz).date() - timedelta(days=days_ago)


def local_ts(day: date, hour: int, minute: int = 0, tz: ZoneInfo = SHANGHAI) -> float:
    """Epoch seconds of HH:MM site-local time on ``day``."""
    return datetime.combine(day, clock(hour, minute), tzinfo=tz).timestamp()


@dataclass(frozen=True)
class Asset:
    id: str
    kind: str
    rated: Mapping[str, float] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    schedule: str | None = None


def lamp(asset_id: str) -> Asset:
    return Asset(asset_id, "streetlight", rated={"current_a": 0.42})


def extinguisher(asset_id: str) -> Asset:
    return Asset(asset_id, "fire_extinguisher")


def _inline(values: Mapping[str, float]) -> str:
    return "{ " + ", ".join(f"{k} = {v}" for k, v in values.items()) + " }"


def site_toml(assets: list[Asset], devices: Mapping[str, str], faults: Mapping[str, str] | None = None,
              self_cleared: str | None = None) -> str:
    """A site file in Shanghai (31.23 N, 121.47 E); ``faults`` overrides priorities per fault code."""
    out = ['[site]', 'name = "测试小区"', 'timezone = "Asia/Shanghai"', "latitude = 31.23", "longitude = 121.47", ""]
    for a in assets:
        out += ["[[assets]]", f'id = "{a.id}"', f'name = "设施 {a.id}"', f'category = "{CATEGORY[a.kind]}"',
                f'kind = "{a.kind}"', f'device = "{devices[a.id]}"', f'location = "{a.id} 位置"']
        if a.rated:
            out.append(f"rated = {_inline(a.rated)}")
        if a.thresholds:
            out.append(f"thresholds = {_inline(a.thresholds)}")
        if a.schedule:
            out.append(f'schedule = "{a.schedule}"')
        out.append("")
    for code, priority in (faults or {}).items():
        out += [f"[faults.{code}]", f'priority = "{priority}"', ""]
    if self_cleared:
        out += ["[tickets]", f'self_cleared = "{self_cleared}"', ""]
    return "\n".join(out)


def request(g: GatewayProcess, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
    """An API call with the bearer token; (status, JSON body), errors included."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(g.api_url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {g.token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def assert_error(status: int, body: Any, expected: int, words: str) -> None:
    """The API's error body: ``{"error": {"code", "message", "field"}}``."""
    assert status == expected, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["code"] == expected
    assert words in body["error"]["message"], body


# -- a gateway with a site, its events, its devices ------------------------------------------------


@dataclass
class Scene:
    """One running gateway with a site file, a device-side publisher and a listener on its events."""

    g: GatewayProcess
    site_file: Path
    pub: Publisher
    sub: Subscriber
    events_topic: str
    devices: dict[str, str]  # asset -> device
    kinds: dict[str, str]  # asset -> kind
    sent: dict[str, int] = field(default_factory=dict)  # device -> readings published

    # readings ---------------------------------------------------------------------------------
    def read(self, asset: str, ts: float, fields: Mapping[str, object]) -> None:
        device = self.devices[asset]
        self.pub.send(f"fm/t/{self.kinds[asset]}/{device}/reading", {"ts": ts, **fields})
        self.sent[device] = self.sent.get(device, 0) + 1

    def series(self, asset: str, readings: list[tuple[float, Mapping[str, object]]]) -> None:
        """Publish ``(ts, fields)`` readings in order and wait until the gateway has processed them all."""
        for ts, fields in readings:
            self.read(asset, ts, fields)
        self.processed(asset)

    def processed(self, asset: str) -> None:
        """The gateway counts a reading for its device only after the batch (and its tickets) committed."""
        device = self.devices[asset]
        n = self.sent.get(device, 0)
        wait_for(lambda: (self.device(device) or {}).get("readings") == n, what=f"{n} readings of {device} processed")

    def device(self, device: str) -> dict[str, Any] | None:
        status, body = request(self.g, "GET", f"/api/v1/devices/{device}")
        return body if status == 200 else None

    # API ----------------------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        return self.g.get(path, self.g.token)

    def post(self, path: str, body: object) -> tuple[int, Any]:
        return request(self.g, "POST", path, body)

    def tickets(self, asset: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v1/tickets?asset={asset}&limit=1000")["items"]

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        return self.get(f"/api/v1/tickets/{ticket_id}")

    def wait_ticket(self, ticket_id: int, ok: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            t = self.ticket(ticket_id)
            return t if ok(t) else None

        return wait_for(check, what=what)  # type: ignore[return-value]

    def act(self, ticket_id: int, action: str, by: str = "王师傅", **extra: object) -> dict[str, Any]:
        status, body = self.post(f"/api/v1/tickets/{ticket_id}/{action}", {"by": by, **extra})
        assert status == 200, body
        return body

    def asset(self, asset: str) -> dict[str, Any]:
        return {a["asset"]: a for a in self.get("/api/v1/assets")["items"]}[asset]

    def ledger(self, asset: str) -> list[dict[str, Any]]:
        """The asset's state ledger, checked to run forwards in time (it is what period rates integrate)."""
        items = self.get(f"/api/v1/assets/{asset}/states")["items"]
        assert [e["at"] for e in items] == sorted(e["at"] for e in items), items
        return items

    # events ---------------------------------------------------------------------------------------
    def events(self, type_: str | None = None, ticket: int | None = None, asset: str | None = None
               ) -> list[dict[str, Any]]:
        out = [json.loads(p) for t, p, _ in list(self.sub.messages) if t == self.events_topic]
        if type_ is not None:
            out = [e for e in out if e["type"] == type_]
        if ticket is not None:
            out = [e for e in out if e["data"].get("ticket", {}).get("id") == ticket]
        if asset is not None:
            out = [e for e in out if e["type"] == "asset.state" and e["data"]["asset"] == asset]
        return out

    def wait_event(self, type_: str, ticket: int | None = None, asset: str | None = None, n: int = 1
                   ) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]] | None:
            got = self.events(type_, ticket, asset)
            return got if len(got) >= n else None

        return wait_for(found, 10, what=f"{n} {type_} event(s) on MQTT")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of this module's own. On the shared one, an offline status published here would be queued
    for the persistent session of every gateway id that is not connected (gw0 ...) and open a device ticket
    in whichever later test reuses that id."""
    server = Mosquitto(tmp_path_factory.mktemp("tickets") / "mosquitto").start()
    yield server
    server.stop()


@pytest.fixture
def scene(gateway_factory: Callable[..., GatewayProcess], broker: Mosquitto, tmp_path: Path
          ) -> Iterator[Callable[..., Scene]]:
    """Start a gateway on a site of the given assets; devices and the gateway id are unique to the test."""
    made: list[Scene] = []

    def start(assets: list[Asset], **site: Any) -> Scene:
        uid = uuid.uuid4().hex[:8]
        devices = {a.id: f"{a.id.lower()}-{uid}" for a in assets}
        path = tmp_path / "site.toml"
        path.write_text(site_toml(assets, devices, **site), encoding="utf-8")
        gateway_id = f"gw-{uid}"
        sub = Subscriber(broker.port, f"fm/t/gateway/{gateway_id}/#")
        pub = Publisher(broker.port)
        g = gateway_factory(GATEWAY_MQTT_URL=broker.url, GATEWAY_SITE_FILE=str(path), GATEWAY_GATEWAY_ID=gateway_id)
        s = Scene(g, path, pub, sub, f"fm/t/gateway/{gateway_id}/events", devices, {a.id: a.kind for a in assets})
        made.append(s)
        s.g.start()
        status = (f"fm/t/gateway/{gateway_id}/status", b"online")
        wait_for(lambda: status in [(t, p) for t, p, _ in sub.messages], 10,
                 what="the events listener to hear the gateway (its online status)")
        return s

    yield start
    for s in made:
        s.pub.close()
        s.sub.close()


# -- 1. lamps: dark at night is a fault, dark at noon is not, lit at noon is day-burning -----------


def test_lamp_dark_at_night_opens_one_general_ticket_and_not_at_noon(scene):
    s = scene([lamp("L-OFF"), lamp("L-DIM"), lamp("L-NOON-OFF"), lamp("L-NOON-ON")])
    day = local_day(2)
    night, noon = local_ts(day, 23), local_ts(day, 12)
    s.series("L-OFF", [(night, LAMP_OFF), (night + MIN, LAMP_OFF), (night + 2 * MIN, LAMP_OFF)])
    s.series("L-DIM", [(night, LAMP_DIM), (night + MIN, LAMP_DIM), (night + 2 * MIN, LAMP_DIM)])
    s.series("L-NOON-OFF", [(noon, LAMP_OFF), (noon + MIN, LAMP_OFF), (noon + 2 * MIN, LAMP_OFF)])
    s.series("L-NOON-ON", [(noon, LAMP_LIT), (noon + MIN, LAMP_LIT), (noon + 2 * MIN, LAMP_LIT)])

    confirmed = night + MIN  # the second failing reading, 60 s after the first
    for asset in ("L-OFF", "L-DIM"):
        [t] = s.tickets(asset)
        assert (t["fault"], t["priority"], t["status"], t["source"]) == ("lamp_out", "general", "open", "sensor")
        assert (t["asset"], t["device"], t["category"]) == (asset, s.devices[asset], "lighting")
        assert t["opened_at"] == confirmed
        assert t["respond_by"] == confirmed + 24 * HOUR
        assert t["arrive_by"] is None  # 零修 promises no arrival time
        assert t["resolve_by"] == confirmed + 48 * HOUR
        assert t["occurrences"] == 1
        assert [e["action"] for e in s.ticket(t["id"])["timeline"] if e["action"] != "escalate"] == ["open"]
        a = s.asset(asset)
        assert (a["state"], a["faults"], a["monitored"]) == ("faulty", ["lamp_out"], True)

    assert s.tickets("L-NOON-OFF") == []
    assert (s.asset("L-NOON-OFF")["state"], s.asset("L-NOON-OFF")["faults"]) == ("intact", [])

    [burning] = s.tickets("L-NOON-ON")
    assert (burning["fault"], burning["priority"], burning["opened_at"]) == ("day_burning", "general", noon + MIN)
    a = s.asset("L-NOON-ON")
    assert (a["state"], a["faults"]) == ("intact", ["day_burning"])  # a controller fault: the lamp is intact
    assert s.get("/api/v1/tickets?limit=1000")["total"] == 3


# -- 2. 急修: an extinguisher below its green zone ------------------------------------------------


def test_extinguisher_below_green_zone_is_an_emergency_resolved_the_same_day(scene):
    s = scene([extinguisher("FE-MORNING"), extinguisher("FE-EVENING")])
    day = local_day(1)
    morning, evening = local_ts(day, 10), local_ts(day, 17)
    s.series("FE-MORNING", [(morning, LOW), (morning + MIN, LOW)])
    s.series("FE-EVENING", [(evening, LOW), (evening + MIN, LOW)])
    next_midnight = datetime.combine(day + timedelta(days=1), clock(0), tzinfo=SHANGHAI).timestamp()
    for asset, confirmed, resolve_by in (
        ("FE-MORNING", morning + MIN, next_midnight),  # 急修不过夜: before 24:00 local
        ("FE-EVENING", evening + MIN, evening + MIN + 8 * HOUR),  # opened after 16:00: 8 h, past midnight
    ):
        [t] = s.tickets(asset)
        assert (t["fault"], t["priority"], t["category"]) == ("pressure_low", "emergency", "fire")
        assert t["opened_at"] == confirmed
        assert t["respond_by"] == confirmed + 15 * MIN
        assert t["arrive_by"] == confirmed + 30 * MIN
        assert t["resolve_by"] == resolve_by, (asset, datetime.fromtimestamp(t["resolve_by"], SHANGHAI))
        assert s.asset(asset)["state"] == "faulty"


# -- 3. a flapping sensor --------------------------------------------------------------------------


def test_flapping_readings_open_no_ticket_and_never_clear_a_confirmed_one(scene):
    """Failing and healthy every 30 s: no failing run ever reaches 2 readings over 60 s, so no ticket;
    and a confirmed fault that flaps is never 2 healthy readings long, so it never clears."""
    s = scene([extinguisher("FE-FLAP"), extinguisher("FE-FLAP-OPEN")])
    t0 = time.time() - 2 * HOUR
    s.series("FE-FLAP", [(t0 + 30 * i, LOW if i % 2 == 0 else GOOD) for i in range(20)])
    s.series("FE-FLAP-OPEN", [(t0, LOW), (t0 + MIN, LOW)]
             + [(t0 + MIN + 30 * i, GOOD if i % 2 else LOW) for i in range(1, 21)])

    assert s.tickets("FE-FLAP") == []
    assert (s.asset("FE-FLAP")["state"], s.asset("FE-FLAP")["faults"]) == ("intact", [])
    assert [(e["state"], e["cause"]) for e in s.ledger("FE-FLAP")] == [("unknown", "in_service"), ("intact", "reading")]

    [t] = s.tickets("FE-FLAP-OPEN")
    assert (t["status"], t["occurrences"], t["fault_cleared_at"], t["self_cleared"]) == ("open", 1, None, False)
    assert s.asset("FE-FLAP-OPEN")["state"] == "faulty"
    assert [e["state"] for e in s.ledger("FE-FLAP-OPEN")] == ["unknown", "intact", "faulty"]


# -- 4. a burst of failing readings from several connections at once -------------------------------


def test_fifty_concurrent_failing_readings_open_one_ticket(scene, broker, influxd):
    s = scene([extinguisher("FE-RACE")])
    device = s.devices["FE-RACE"]
    t0 = time.time() - 20 * MIN
    s.series("FE-RACE", [(t0, LOW)])  # the first failing reading; any one of the 50 below confirms it
    publishers = [Publisher(broker.port) for _ in range(5)]
    start = threading.Barrier(len(publishers))

    def burst(p: Publisher, part: int) -> None:
        start.wait()
        for i in range(part, 50, len(publishers)):
            p.send(f"fm/t/fire_extinguisher/{device}/reading", {"ts": t0 + MIN + i, "seq": i + 1, **LOW}, wait=False)
        p.flush()

    threads = [threading.Thread(target=burst, args=(p, n)) for n, p in enumerate(publishers)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    finally:
        for p in publishers:
            p.close()
    s.sent[device] += 50
    s.processed("FE-RACE")
    wait_for(lambda: influxd.count("fire_extinguisher", "pressure_mpa", s.g.env["GATEWAY_INFLUX_DB"]) == 51,
             what="all 51 readings stored")

    page = s.get("/api/v1/tickets?asset=FE-RACE")
    assert page["total"] == 1, page
    t = s.ticket(page["items"][0]["id"])
    assert (t["fault"], t["status"]) == ("pressure_low", "open")
    assert t0 + MIN <= t["opened_at"] <= t0 + MIN + 49
    actions = [e["action"] for e in t["timeline"]]
    assert actions.count("open") == 1 and set(actions) <= {"open", "occurrence"}
    assert t["occurrences"] == 1 + actions.count("occurrence") <= 50
    assert len(s.wait_event("ticket.opened")) == 1


# -- 5. repaired, verified by the sensor, then the fault comes back --------------------------------


def test_resolved_ticket_closes_on_healthy_readings_and_a_returning_fault_reopens_it(scene):
    s = scene([extinguisher("FE-FIX"), extinguisher("FE-PROBE")])
    t0 = time.time() - 5 * HOUR
    s.series("FE-FIX", [(t0, LOW), (t0 + MIN, LOW)])
    [t] = s.tickets("FE-FIX")
    for action, status in (("acknowledge", "acknowledged"), ("arrive", "on_site"), ("resolve", "resolved")):
        after = s.act(t["id"], action)
        assert after["status"] == status
    assert after["resolved_by"] == "王师傅" and after["resolved_at"] is not None
    assert s.ticket(t["id"])["status"] == "resolved"  # a repair alone does not close it: the sensor must agree

    r0 = time.time() + 1  # after the repair; device time may run ahead of the gateway by up to 5 min
    s.series("FE-FIX", [(r0, GOOD), (r0 + MIN, GOOD)])
    closed = s.ticket(t["id"])
    assert (closed["status"], closed["closed_by"], closed["closed_at"]) == ("closed", "sensor", r0 + MIN)
    assert closed["callback_due"] == r0 + MIN + 24 * HOUR  # 急修: call the owner back within 24 h
    assert closed["fault_cleared_at"] == r0 + MIN
    assert s.asset("FE-FIX")["state"] == "intact"

    s.series("FE-FIX", [(r0 + 2 * MIN, LOW), (r0 + 3 * MIN, LOW)])  # the fault returns within 30 days
    reopened = s.ticket(t["id"])
    assert [x["id"] for x in s.tickets("FE-FIX")] == [t["id"]]
    assert (reopened["status"], reopened["reworks"]) == ("open", 1)
    assert reopened["respond_by"] == r0 + 3 * MIN + 15 * MIN  # the SLA clocks start again
    assert reopened["closed_at"] is None and reopened["callback_due"] is None
    assert [e["action"] for e in reopened["timeline"] if e["action"] != "escalate"] == [
        "open", "acknowledge", "arrive", "resolve", "close", "reopen"]
    assert s.wait_event("ticket.reopened", t["id"])[0]["data"]["ticket"]["reworks"] == 1
    assert s.asset("FE-FIX")["state"] == "faulty"

    # Fresh clocks: nothing of the rework is at risk yet. A probe ticket overdue from the start is
    # escalated at the next SLA watch; once its escalations are out, that watch has seen the rework too.
    assert reopened["clocks"]["respond"] == "on_time" and reopened["clocks"]["arrive"] == "on_time"
    s.series("FE-PROBE", [(t0, LOW), (t0 + MIN, LOW)])
    [probe] = s.tickets("FE-PROBE")
    s.wait_event("ticket.escalated", probe["id"], n=2)
    since_reopen = s.events(ticket=t["id"])
    since_reopen = since_reopen[[e["type"] for e in since_reopen].index("ticket.reopened"):]
    assert [e["type"] for e in since_reopen] == ["ticket.reopened"]
    assert s.ticket(t["id"])["escalations"] == []


def test_a_fault_still_read_after_the_repair_reopens_the_ticket(scene):
    s = scene([extinguisher("FE-STILL")])
    t0 = time.time() - 30 * MIN
    s.series("FE-STILL", [(t0, LOW), (t0 + MIN, LOW)])
    [t] = s.tickets("FE-STILL")
    s.act(t["id"], "resolve", note="换了压力表")
    r0 = time.time() + 1
    s.series("FE-STILL", [(r0, LOW)])
    assert s.ticket(t["id"])["status"] == "resolved"  # too soon after the repair to judge
    s.series("FE-STILL", [(r0 + MIN, LOW)])
    again = s.ticket(t["id"])
    assert (again["status"], again["reworks"], again["timeline"][-1]["action"]) == ("open", 1, "reopen")
    assert len(s.tickets("FE-STILL")) == 1


# -- 6. a device that says it is offline -------------------------------------------------------------


def test_offline_device_makes_its_asset_unknown_and_a_reading_brings_it_back(scene):
    s = scene([extinguisher("FE-DEV")])
    device = s.devices["FE-DEV"]
    status_topic = f"fm/t/fire_extinguisher/{device}/status"
    t0 = time.time() - 10 * MIN
    s.series("FE-DEV", [(t0, GOOD)])
    assert s.asset("FE-DEV")["state"] == "intact"
    try:
        s.pub.send(status_topic, "offline", retain=True)
        wait_for(lambda: s.asset("FE-DEV")["state"] == "unknown", what="FE-DEV unknown")
        a = s.asset("FE-DEV")
        assert a["monitored"] is False
        ledger = s.ledger("FE-DEV")
        assert [(e["state"], e["cause"]) for e in ledger] == [
            ("unknown", "in_service"), ("intact", "reading"), ("unknown", "device_status")]
        [lost] = s.tickets("FE-DEV")
        assert (lost["fault"], lost["subject"], lost["device"], lost["source"], lost["status"]) == (
            "device_lost", f"device:{device}", device, "device", "open")
        assert lost["priority"] == "general" and lost["self_cleared"] is False
        s.wait_event("ticket.opened", lost["id"])
        wait_for(lambda: [e for e in s.events(asset="FE-DEV") if e["data"]["state"] == "unknown"], 10,
                 what="the asset.state event: FE-DEV unknown")

        s.series("FE-DEV", [(t0 + MIN, GOOD)])
        a = s.asset("FE-DEV")
        assert (a["state"], a["monitored"]) == ("intact", True)
        assert [e["state"] for e in s.ledger("FE-DEV")] == ["unknown", "intact", "unknown", "intact"]
        back = s.wait_ticket(lost["id"], lambda t: t["self_cleared"], "the device ticket marked self-cleared")
        assert back["status"] == "open"  # policy "confirm": a person closes it
        assert back["fault_cleared_at"] is not None
        s.wait_event("ticket.self_cleared", lost["id"])
        closed = s.act(lost["id"], "close", by="主管")
        assert (closed["status"], closed["closed_by"]) == ("closed", "主管")
    finally:
        s.pub.send(status_topic, b"", retain=True)  # the broker is shared: clear the retained status


# -- 7. deadlines already passed -------------------------------------------------------------------------


def test_passed_deadlines_are_escalated_at_once_in_two_levels(scene):
    s = scene([extinguisher("FE-LATE")], faults={"pressure_low": "urgent"})  # urgent: 30 min / 2 h / 24 h
    t0 = time.time() - 3 * HOUR
    s.series("FE-LATE", [(t0, LOW), (t0 + MIN, LOW)])
    [t] = s.tickets("FE-LATE")
    assert (t["priority"], t["respond_by"], t["arrive_by"], t["resolve_by"]) == (
        "urgent", t0 + MIN + 30 * MIN, t0 + MIN + 2 * HOUR, t0 + MIN + 24 * HOUR)
    escalated = s.wait_event("ticket.escalated", t["id"], n=4)
    got = sorted((e["data"]["clock"], e["data"]["level"], e["data"]["to"]) for e in escalated)
    assert got == [("arrive", 1, "assignee"), ("arrive", 2, "duty_manager"),
                   ("respond", 1, "assignee"), ("respond", 2, "duty_manager")]
    assert all(e["data"]["ticket"]["id"] == t["id"] and e["title"] and e["text"] for e in escalated)
    s.act(t["id"], "acknowledge")
    s.wait_event("ticket.acknowledge", t["id"])
    assert len(s.events("ticket.escalated", t["id"])) == 4  # each (clock, level) once
    shown = s.ticket(t["id"])
    assert sorted(map(tuple, shown["escalations"])) == [("arrive", 1), ("arrive", 2), ("respond", 1), ("respond", 2)]
    assert shown["clocks"] == {"respond": "missed", "arrive": "overdue", "resolve": "on_time"}


# -- 8. every change is an event, and the ledger reaches InfluxDB ---------------------------------------


def test_every_ticket_change_is_an_event_and_asset_states_reach_influxdb(scene, influxd):
    s = scene([extinguisher("FE-EV")], faults={"pressure_low": "general"})  # 24 h / 48 h: nothing escalates
    t0 = time.time() - 30 * MIN
    s.series("FE-EV", [(t0, GOOD), (t0 + MIN, LOW), (t0 + 2 * MIN, LOW)])
    [t] = s.tickets("FE-EV")
    for action in ("acknowledge", "arrive", "resolve"):
        s.act(t["id"], action)
    r0 = time.time() + 1
    s.series("FE-EV", [(r0, GOOD), (r0 + MIN, GOOD)])
    status, _ = s.post(f"/api/v1/tickets/{t['id']}/callbacks", {"by": "客服 李", "score": 5, "note": "很满意"})
    assert status == 201

    final = s.ticket(t["id"])
    expected = [("ticket.opened", "open"), ("ticket.acknowledge", "acknowledged"), ("ticket.arrive", "on_site"),
                ("ticket.resolve", "resolved"), ("ticket.closed", "closed"), ("callback.recorded", "closed")]
    events = s.wait_event("callback.recorded", t["id"]) and s.events(ticket=t["id"])
    assert [(e["type"], e["data"]["ticket"]["status"]) for e in events] == expected
    assert [e["action"] for e in final["timeline"]] == ["open", "acknowledge", "arrive", "resolve", "close", "callback"]
    assert [e["at"] for e in events] == [e["at"] for e in final["timeline"]]
    assert all(isinstance(e["title"], str) and e["title"] and isinstance(e["text"], str) for e in events)
    assert events[0]["data"]["ticket"]["fault"] == "pressure_low"

    ledger = s.ledger("FE-EV")
    assert [(e["state"], e["cause"], e["reading_ts"]) for e in ledger] == [
        ("unknown", "in_service", None), ("intact", "reading", t0), ("faulty", "reading", t0 + 2 * MIN),
        ("intact", "reading", r0 + MIN)]
    # Readings from before the asset entered service (the gateway's start) count from their arrival.
    assert ledger[1]["at"] >= ledger[0]["at"] and ledger[3]["at"] == r0 + MIN
    states = s.wait_event("asset.state", asset="FE-EV", n=4)  # the entry into service is published too
    assert [(e["data"]["state"], e["at"]) for e in states] == [(e["state"], e["at"]) for e in ledger]
    assert states[2]["data"]["faults"] == "pressure_low" and states[2]["data"]["category"] == "fire"

    db = s.g.env["GATEWAY_INFLUX_DB"]
    wait_for(lambda: influxd.count("asset_state", "intact", db, "WHERE asset = 'FE-EV'") == len(ledger),
             what="every ledger entry in InfluxDB")
    [series] = influxd.query("SELECT intact, state, fault, category FROM asset_state WHERE asset = 'FE-EV'", db)
    points = [dict(zip(series["columns"], v, strict=True)) for v in series["values"]]
    assert [(p["time"], p["state"], p["intact"], p["fault"], p["category"]) for p in points] == [
        (round(e["at"] * 1e6), e["state"], int(e["state"] == "intact"), e["faults"], "fire") for e in ledger]


# -- 9. people: a manual ticket, a callback, actions that do not apply ------------------------------------


def test_manual_ticket_callback_and_refused_actions(scene):
    s = scene([lamp("L-9")])
    status, t = s.post("/api/v1/tickets", {"by": "保安 G017", "title": "3号楼楼道灯不亮", "asset": "L-9",
                                           "priority": "urgent"})
    assert status == 201, t
    assert (t["outcome"], t["status"], t["source"], t["fault"], t["asset"], t["category"], t["opened_by"]) == (
        "opened", "open", "manual", "reported", "L-9", "lighting", "保安 G017")
    assert t["respond_by"] - t["opened_at"] == 30 * MIN and t["resolve_by"] - t["opened_at"] == 24 * HOUR
    assert s.wait_event("ticket.opened", t["id"])[0]["data"]["ticket"]["title"] == "3号楼楼道灯不亮"
    status, same = s.post("/api/v1/tickets", {"by": "业主 302", "title": "楼道灯还是不亮", "asset": "L-9"})
    assert (status, same["outcome"], same["id"], same["occurrences"]) == (201, "occurrence", t["id"], 2)

    tid = t["id"]
    assert_error(*s.post(f"/api/v1/tickets/{tid}/callbacks", {"by": "客服", "score": 4}), 409, "closed ticket")
    assert_error(*s.post(f"/api/v1/tickets/{tid}/close", {"by": "主管"}), 409, "cannot close")
    s.act(tid, "acknowledge")
    assert_error(*s.post(f"/api/v1/tickets/{tid}/acknowledge", {"by": "王师傅"}), 409, "cannot acknowledge")
    s.act(tid, "arrive")
    s.act(tid, "resolve", note="更换灯泡")
    closed = s.act(tid, "close", by="主管")
    assert (closed["status"], closed["closed_by"]) == ("closed", "主管")
    assert closed["callback_due"] == closed["closed_at"] + 3 * DAY
    assert_error(*s.post(f"/api/v1/tickets/{tid}/resolve", {"by": "王师傅"}), 409, "cannot resolve")

    status, called = s.post(f"/api/v1/tickets/{tid}/callbacks",
                            {"by": "客服 李", "channel": "phone", "score": 5, "note": "很满意"})
    assert status == 201, called
    assert [(c["by"], c["channel"], c["score"]) for c in called["callbacks"]] == [("客服 李", "phone", 5)]
    assert s.ticket(tid)["timeline"][-1]["action"] == "callback"
    s.wait_event("callback.recorded", tid)

    assert_error(*s.post("/api/v1/tickets/999999/acknowledge", {"by": "王师傅"}), 404, "no ticket 999999")
    assert_error(*s.post("/api/v1/tickets", {"by": "保安", "title": "?", "asset": "NOPE"}), 422, "no asset 'NOPE'")
    status, loose = s.post("/api/v1/tickets", {"by": "保安", "title": "大门口有积水"})  # about no asset
    assert (status, loose["outcome"], loose["asset"], loose["priority"]) == (201, "opened", None, "general")


# -- 10. the site file: problems at start-up, and reloads -------------------------------------------------

BROKEN_SITE = """
[site]
timezone = "Asia/Shanghai"

[[assets]]
id = "FE-1"
category = "fire"
kind = "fire_extinguisher"
device = "ext-1"

[[assets]]
id = "FE-1"
category = "fire"

[[assets]]
id = "X-1"
category = "fire"
kind = "toaster"

[[assets]]
id = "L-1"
category = "lighting"
kind = "streetlight"
schedule = "dusk-dawn"

[[assets]]
id = "L-2"
category = "lighting"
thresholds = { current_a_min = 0.1 }

[faults.lamp_gone]
priority = "urgent"

[sla.urgent]
respond_min = -5
"""


def test_a_site_file_with_problems_stops_check_and_run_listing_them_all(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(BROKEN_SITE, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_site(path)
    problems = info.value.problems
    expected = ("asset id 'FE-1' appears 2 times", "assets.2.kind: ", "assets.3.schedule: ",
                "assets.4.thresholds.current_a_min: unknown", "faults.lamp_gone: unknown fault",
                "sla.urgent.respond_min: ")
    for words in expected:
        assert [p for p in problems if words in p], f"{words!r} not in {problems}"
    assert len(problems) == len(expected), problems
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_SITE_FILE=str(path), GATEWAY_DATA_DIR=str(tmp_path / "data"))
    for command in ("check", "run"):
        proc = subprocess.run([sys.executable, "-m", "gateway", command], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr.splitlines() == [f"config error: {p}" for p in problems], command
        assert proc.stdout == ""


def test_reloading_a_broken_site_keeps_the_old_one_and_a_good_one_adds_unknown_assets(scene):
    s = scene([extinguisher("FE-A")])
    s.series("FE-A", [(time.time() - MIN, GOOD)])
    assert s.asset("FE-A")["state"] == "intact"
    good_text = s.site_file.read_text(encoding="utf-8")
    s.site_file.write_text(BROKEN_SITE, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_site(s.site_file)
    problems = info.value.problems

    assert s.g.proc is not None
    s.g.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: all(f"site file not reloaded: {p}" in s.g.log() for p in problems), 10,
             what="SIGHUP to log every problem")
    status, body = s.post("/api/v1/site/reload", {})
    assert status == 422, body
    assert set(body["error"]) == {"code", "message", "field"} and body["error"]["code"] == 422
    for p in problems:
        assert p in body["error"]["message"]
    assert [(a["asset"], a["state"]) for a in s.get("/api/v1/assets")["items"]] == [("FE-A", "intact")]

    device_b = f"fe-b-{uuid.uuid4().hex[:8]}"
    s.site_file.write_text(good_text + f'\n[[assets]]\nid = "FE-B"\ncategory = "fire"\nkind = "fire_extinguisher"\n'
                                       f'device = "{device_b}"\n', encoding="utf-8")
    status, body = s.post("/api/v1/site/reload", {})
    assert (status, body) == (200, {"assets": 2, "checkpoints": 0})
    wait_for(lambda: len(s.get("/api/v1/assets")["items"]) == 2, what="FE-B on the site")
    assets = {a["asset"]: a for a in s.get("/api/v1/assets")["items"]}
    assert (assets["FE-A"]["state"], assets["FE-B"]["state"], assets["FE-B"]["monitored"]) == (
        "intact", "unknown", False)
    assert [(e["state"], e["cause"]) for e in s.ledger("FE-B")] == [("unknown", "in_service")]
    assert s.wait_event("asset.state", asset="FE-B")[0]["data"]["cause"] == "in_service"
    assert [e["state"] for e in s.ledger("FE-A")] == ["unknown", "intact"]  # kept, not re-entered into service

    s.site_file.write_text(good_text + '\n[[assets]]\nid = "FE-C"\ncategory = "fire"\n', encoding="utf-8")
    s.g.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: [a["asset"] for a in s.get("/api/v1/assets")["items"]] == ["FE-A", "FE-C"],
             what="SIGHUP to apply the new site (FE-B gone, FE-C in)")
    assert s.asset("FE-C")["state"] == "unknown" and s.asset("FE-A")["state"] == "intact"
