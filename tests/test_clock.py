"""Clock sync: time-based decisions wait for a clock known to be right; readings never do.

The hold logic is a pure function, tested as a table. End to end, the gateway's clock probe
reads a file the test writes (``clock.sync_probe = "file:..."``), so the suite does not depend
on whether this machine's kernel says its clock is NTP-synchronised.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.clock import ClockGuard, ClockState, ClockStatus, adjtimex_probe, file_probe, make_probe, next_state
from gateway.devices import DeviceRegistry
from gateway.devservers import Influxd, Mosquitto
from tests.conftest import GatewayProcess, Publisher, wait_for
from tests.test_e2e_tickets import LOW, extinguisher, request, site_toml

SYNCED = ClockStatus(True, "test", "synced")
UNSYNCED = ClockStatus(False, "test", "not synced")


def state(held: bool, synced_once: bool, synced: bool = False, resumed_at: float = 0.0) -> ClockState:
    return ClockState(SYNCED if synced else UNSYNCED, held, synced_once, resumed_at)


# (before, probe says, require_sync) -> (held, synced_once, resumed_at, log level or None)
TABLE = [
    pytest.param(None, UNSYNCED, True, (True, False, 0.0, logging.WARNING), id="boot unsynced, required: hold"),
    pytest.param(None, SYNCED, True, (False, True, 0.0, None), id="boot synced: nothing held, nothing said"),
    pytest.param(None, UNSYNCED, False, (False, False, 0.0, logging.WARNING), id="unsynced, not required: said"),
    pytest.param(state(True, False), UNSYNCED, True, (True, False, 0.0, None), id="still unsynced: silent"),
    pytest.param(state(True, False), SYNCED, True, (False, True, 100.0, logging.INFO), id="synced: resume"),
    pytest.param(state(False, True, True, 100.0), UNSYNCED, True, (False, True, 100.0, logging.WARNING),
                 id="lost sync later: warned, not held"),
    pytest.param(state(False, True, False, 100.0), SYNCED, True, (False, True, 100.0, logging.INFO),
                 id="sync back: said"),
    pytest.param(state(False, False), UNSYNCED, False, (False, False, 0.0, None), id="not required: once only"),
]


@pytest.mark.parametrize(("before", "status", "require", "expected"), TABLE)
def test_hold_logic(before: ClockState | None, status: ClockStatus, require: bool,
                    expected: tuple[bool, bool, float, int | None]) -> None:
    after, note = next_state(before, status, require, 100.0)
    assert (after.held, after.synced_once, after.resumed_at, note.level if note else None) == expected
    assert after.status == status


def test_file_probe_says_synced_only_for_the_word(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    probe = file_probe(path)
    assert not probe().synced and "cannot read" in probe().detail
    for text, synced in (("synced\n", True), ("unsynced", False), ("", False), ("synced-ish", False)):
        path.write_text(text)
        assert probe().synced is synced, text
    assert make_probe(f"file:{path}")().source == f"file:{path}"


def test_adjtimex_probe_answers_either_way() -> None:
    """The host decides which: only the shape is this test's business (the e2e tests use a file probe)."""
    status = make_probe("adjtimex")()
    assert status == adjtimex_probe()
    assert status.source == "adjtimex" and "synchronised" in status.detail


def test_guard_logs_once_each_way(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "clock"
    guard = ClockGuard(file_probe(path), require_sync=True)
    for now in (1.0, 2.0, 3.0):
        assert guard.check(now).held
    path.write_text("synced")
    for now in (4.0, 5.0):
        assert not guard.check(now).held
    assert guard.state.resumed_at == 4.0
    said = [r.getMessage() for r in caplog.records if r.name == "gateway.clock"]
    assert len(said) == 2, said
    assert "are held until it is" in said[0] and "resume" in said[1]


def test_silence_is_counted_from_the_end_of_a_hold(tmp_path: Path) -> None:
    reg = DeviceRegistry(tmp_path / "g.db", {"streetlight": 60.0}, 3)
    try:
        with reg.lock:
            reg.saw_reading("lamp-1", "streetlight", 1000.0, {}, False, 1000.0)
        assert reg.sweep(1000.0 + 3 * 60 + 1, since=1100.0) == []  # silent 181 s, but only 81 s since the hold
        [t] = reg.sweep(1100.0 + 3 * 60 + 1, since=1100.0)
        assert (t.device, t.online, t.reason) == ("lamp-1", False, "silent")
    finally:
        reg.close()


# -- end to end ---------------------------------------------------------------------------------------


def test_deadlines_wait_for_the_clock_while_readings_are_stored(
        gateway_factory: Callable[..., GatewayProcess], own_mosquitto: Mosquitto, influxd: Influxd,
        tmp_path: Path) -> None:
    clock_file = tmp_path / "clock"
    clock_file.write_text("unsynced\n")
    device = f"fe-{uuid.uuid4().hex[:8]}"
    site = tmp_path / "site.toml"
    site.write_text(site_toml([extinguisher("FE-1")], {"FE-1": device}, faults={"pressure_low": "urgent"}),
                    encoding="utf-8")
    config = tmp_path / "gateway.toml"  # a device silent after 2 s without a reading, once the clock is trusted
    config.write_text("[ingest]\nheartbeat_misses = 1\n[kinds.fire_extinguisher]\nheartbeat_s = 2\n")
    g = gateway_factory(config, GATEWAY_MQTT_URL=own_mosquitto.url, GATEWAY_SITE_FILE=str(site),
                        GATEWAY_CLOCK_REQUIRE_SYNC="true", GATEWAY_CLOCK_SYNC_PROBE=f"file:{clock_file}").start()
    health = g.health()
    assert health["clock"]["held"] and not health["clock"]["synced"] and health["status"] == "degraded"
    assert health["clock"]["source"] == f"file:{clock_file}"

    pub = Publisher(own_mosquitto.port)
    try:
        t0 = time.time() - 3 * 3600  # an urgent ticket whose respond and arrive deadlines passed long ago
        for i, ts in enumerate((t0, t0 + 60)):
            pub.send(f"fm/t/fire_extinguisher/{device}/reading", {"ts": ts, "seq": i, **LOW})
    finally:
        pub.close()
    db = g.env["GATEWAY_INFLUX_DB"]
    wait_for(lambda: influxd.count("fire_extinguisher", "pressure_mpa", db) == 2, what="readings in InfluxDB")

    def ticket() -> dict | None:
        status, body = request(g, "GET", "/api/v1/tickets?asset=FE-1")
        return body["items"][0] if status == 200 and body["items"] else None

    opened = wait_for(ticket, what="the ticket opened from the readings")
    assert opened["respond_by"] < time.time()  # type: ignore[index]
    uptime = g.health()["uptime_s"]
    wait_for(lambda: g.health()["uptime_s"] >= uptime + 4, what="four ticks while held")
    held = ticket()
    assert held is not None and held["escalations"] == [], held
    status, dev = request(g, "GET", f"/api/v1/devices/{device}")
    assert status == 200 and dev["online"], dev  # silent for longer than its heartbeat, yet not declared so

    clock_file.write_text("synced\n")
    wait_for(lambda: (ticket() or {}).get("escalations"), what="the passed deadlines escalated once synced")
    wait_for(lambda: not request(g, "GET", f"/api/v1/devices/{device}")[1]["online"], what="the device silent")
    health = g.health()
    assert health["clock"]["synced"] and not health["clock"]["held"] and health["status"] == "ok"
    assert g.stop() == 0
    log = g.log()
    assert log.count("are held until it is") == 1 and log.count("time-based decisions resume") == 1, log[-3000:]
