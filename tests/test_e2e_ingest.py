"""Readings through a real Mosquitto into a real InfluxDB, the gateway running as its own process."""

from __future__ import annotations

import json
import time
import urllib.error
from datetime import UTC, datetime

import pytest

from tests.conftest import Publisher, Subscriber, wait_for

SITE_FILE = """
[site]
name = "测试小区"

[[assets]]
id = "L-001"
category = "lighting"
kind = "streetlight"
device = "lamp-1"

[[checkpoints]]
id = "CP-GATE"
name = "北门"
tag = "04A224B2C15E80"
"""


def db_of(g) -> str:
    return g.env["GATEWAY_INFLUX_DB"]


def test_every_kind_lands_with_contract_schema(gateway_factory, publisher: Publisher, influxd, tmp_path):
    site_file = tmp_path / "site.toml"
    site_file.write_text(SITE_FILE)
    g = gateway_factory(GATEWAY_SITE_FILE=str(site_file)).start()
    ts = round(time.time() - 60, 3)
    payloads = {
        ("streetlight", "lamp-1"): {"ts": ts, "seq": 1, "on": True, "voltage_v": 221.4, "current_a": 0.41},
        ("fire_extinguisher", "ext-1"): {"ts": ts, "seq": 1, "pressure_mpa": 1.18, "present": True},
        ("fire_hydrant", "hyd-1"): {"ts": ts, "seq": 1, "pressure_mpa": 0.3},
        ("smoke_detector", "smoke-1"): {"ts": ts, "seq": 1, "alarm": False, "battery_pct": 88, "tamper": False},
        ("drain_level", "well-1"): {"ts": ts, "seq": 1, "level_m": 0.35, "cover_tilt_deg": 2.5, "cover_open": False},
    }
    for (kind, device), payload in payloads.items():
        publisher.send(f"fm/t/{kind}/{device}/reading", payload)
    publisher.send("fm/t/checkpoint/reader-1/tap",
                   {"ts": datetime.fromtimestamp(ts, UTC).isoformat(), "tag": "04:a2:24:b2:c1:5e:80", "badge": "G017"})
    db = db_of(g)
    wait_for(lambda: influxd.count("checkpoint_tap", "tag", db) == 1, what="the tap in InfluxDB")
    for (kind, device), payload in payloads.items():
        series = wait_for(lambda k=kind: influxd.query(f'SELECT * FROM "{k}"', db), what=f"{kind} in InfluxDB")
        cols, values = series[0]["columns"], series[0]["values"]
        assert len(values) == 1
        row = dict(zip(cols, values[0], strict=True))
        assert row["time"] == round(ts * 1e6)
        assert row["device"] == device and row["site"] == "t"
        expected_category = {"streetlight": "lighting", "drain_level": "drainage"}.get(kind, "fire")
        assert row["category"] == expected_category
        assert row.get("asset") == ("L-001" if device == "lamp-1" else None)
        for field, value in payload.items():
            if field not in ("ts", "seq"):
                assert row[field] == value, (kind, field)
    field_types = {v[0]: v[1] for v in influxd.query('SHOW FIELD KEYS FROM "streetlight"', db)[0]["values"]}
    assert field_types == {"on": "boolean", "voltage_v": "float", "current_a": "float"}
    tap = influxd.query("SELECT * FROM checkpoint_tap", db)[0]
    row = dict(zip(tap["columns"], tap["values"][0], strict=True))
    assert row == {"time": round(ts * 1e6), "site": "t", "reader": "reader-1", "checkpoint": "CP-GATE",
                   "tag": "04A224B2C15E80", "badge": "G017"}
    devices = g.get("/api/v1/devices", g.token)
    assert {d["device"]: d["asset"] for d in devices["items"]}["lamp-1"] == "L-001"
    unbound = g.get("/api/v1/devices?unbound=true", g.token)
    assert "lamp-1" not in {d["device"] for d in unbound["items"]} and unbound["total"] == 5


BAD_INPUTS = [
    ("fm/t/streetlight/lamp-2/reading", b"{not json", "bad_json"),
    ("fm/t/streetlight/lamp-2/reading", b"[1, 2]", "schema"),
    ("fm/t/streetlight/lamp-2/reading", b'{"on": true}', "schema"),
    ("fm/t/streetlight/lamp-2/reading", b'{"on": true, "current_a": "high"}', "schema"),
    ("fm/t/streetlight/lamp-2/reading", b'{"on": true, "current_a": -1}', "schema"),
    ("fm/t/streetlight/lamp-2/reading", b'{"on": true, "current_a": 0.4, "ts": 1000}', "too_old"),
    ("fm/t/streetlight/lamp-2/reading", b'{"on": true, "current_a": 0.4, "x": "' + b"a" * 70_000 + b'"}', "too_large"),
    ("fm/t/toaster/t-1/reading", b'{"on": true}', "unknown_kind"),
    ("fm/t/streetlight/lamp 2!/reading", b'{"on": true, "current_a": 0.4}', "bad_topic"),
    ("fm/t/streetlight/lamp-2/readings", b'{"on": true, "current_a": 0.4}', "bad_topic"),
    ("fm/t/streetlight/lamp-2/status", b"sleeping", "schema"),
    ("fm/t/checkpoint/reader-2/tap", b'{"tag": "not-hex"}', "schema"),
]


def test_bad_input_is_dead_lettered_and_ingest_goes_on(gateway_factory, publisher: Publisher, influxd):
    g = gateway_factory().start()
    for i, (topic, payload, _) in enumerate(BAD_INPUTS):
        publisher.send(topic, payload)
        publisher.send("fm/t/streetlight/lamp-3/reading", {"seq": i, "on": True, "current_a": 0.4})
    expected: dict[str, int] = {}
    for _, _, reason in BAD_INPUTS:
        expected[reason] = expected.get(reason, 0) + 1
    wait_for(lambda: g.health()["dead_letters"] == expected, what=f"dead letters {expected}")
    wait_for(lambda: influxd.count("streetlight", "current_a", db_of(g)) == len(BAD_INPUTS),
             what="every good reading in between")
    letters = g.get("/api/v1/dead-letters?limit=100", g.token)["items"]
    assert sorted((d["source"], d["reason"]) for d in letters) == sorted((t, r) for t, _, r in BAD_INPUTS)
    big = next(d for d in letters if d["reason"] == "too_large")
    assert big["size"] > 70_000 and len(big["payload"]) <= 2048
    assert all(d["detail"] for d in letters)
    schema_only = g.get("/api/v1/dead-letters?reason=bad_json", g.token)["items"]
    assert [d["reason"] for d in schema_only] == ["bad_json"]
    metrics = g.get("/metrics")
    assert f'gateway_readings_rejected_total{{reason="schema"}} {expected["schema"]}' in metrics
    assert f"gateway_readings_received_total {2 * len(BAD_INPUTS)}" in metrics
    assert g.stop() == 0


def test_repeats_are_stored_once(gateway_factory, publisher: Publisher, influxd):
    """A device resending (same seq and ts) and a repeat without ts within the window are stored once;
    a rebooted device whose counter restarts is not mistaken for a repeat."""
    g = gateway_factory().start()
    ts = time.time() - 30
    for _ in range(3):
        publisher.send("fm/t/streetlight/lamp-5/reading", {"ts": ts, "seq": 7, "on": True, "current_a": 0.4})
        publisher.send("fm/t/fire_hydrant/hyd-5/reading", b'{"seq": 3, "pressure_mpa": 0.3}')
    publisher.send("fm/t/streetlight/lamp-5/reading", {"ts": ts + 5, "seq": 7, "on": True, "current_a": 0.4})
    publisher.send("fm/t/fire_hydrant/hyd-5/reading", b'{"seq": 3, "pressure_mpa": 0.31}')
    db = db_of(g)
    wait_for(lambda: influxd.count("fire_hydrant", "pressure_mpa", db) == 2, what="two hydrant readings")
    wait_for(lambda: influxd.count("streetlight", "current_a", db) == 2, what="two lamp readings")
    metrics = g.get("/metrics")
    assert "gateway_readings_duplicate_total 4" in metrics


def test_status_topic_marks_devices_offline_and_back(gateway_factory, publisher: Publisher):
    g = gateway_factory().start()
    publisher.send("fm/t/smoke_detector/smoke-9/status", "online", retain=True)
    publisher.send("fm/t/smoke_detector/smoke-9/status", "offline", retain=True)

    def device():
        try:
            return g.get("/api/v1/devices/smoke-9", g.token)
        except urllib.error.HTTPError:
            return None

    wait_for(lambda: device() and device()["online"] is False, what="smoke-9 offline")
    assert device()["offline_reason"] == "status"
    publisher.send("fm/t/smoke_detector/smoke-9/reading", {"alarm": False})
    wait_for(lambda: device()["online"] is True, what="smoke-9 back online after a reading")
    publisher.send("fm/t/smoke_detector/smoke-9/status", b"", retain=True)  # clear the retained status


def test_gateway_status_is_retained_and_its_will_says_offline_when_killed(gateway_factory, mosquitto):
    """Whoever watches the site sees at once that its gateway died, not only that it left."""
    g = gateway_factory(GATEWAY_GATEWAY_ID="gw-will").start()
    sub = Subscriber(mosquitto.port, "fm/t/gateway/gw-will/status")
    try:
        wait_for(lambda: sub.messages[-1:] == [("fm/t/gateway/gw-will/status", b"online", True)],
                 what="retained online status")
        g.kill()
        wait_for(lambda: sub.payloads()[-1:] == [b"offline"], what="the last will after SIGKILL")
    finally:
        sub.close()


def test_api_needs_a_token_but_health_does_not(gateway_factory):
    g = gateway_factory().start()
    assert g.health()["status"] == "ok"
    for path in ("/api/v1/devices", "/api/v1/dead-letters", "/api/v1/kinds"):
        with pytest.raises(urllib.error.HTTPError) as err:
            g.get(path)
        assert err.value.code == 401
        body = json.loads(err.value.read())
        assert body["error"]["code"] == 401 and body["error"]["message"]
        with pytest.raises(urllib.error.HTTPError):
            g.get(path, "wrong-token")
    kinds = g.get("/api/v1/kinds", g.token)
    assert kinds["streetlight"]["schema"]["required"] == ["on", "current_a"]
    assert g.token not in g.log()
