"""Scenarios produce the faults they announce, end to end: small scenario files run by ``simulate.py`` on an
accelerated clock against real Mosquitto and InfluxDB and a gateway process. A silent device makes its
asset unknown; a device whose broker goes away buffers its readings and sends them late, each stored once;
a guard asleep misses his round and a guard skipping a checkpoint misses it. Each test has its own MQTT site
(retained statuses would leak into the next test's gateway) and judges progress by states, never by clocks.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
SIM = ROOT / "firmware-sim" / "simulate.py"


class Run:
    """A scenario's site file, its gateway, and ``simulate.py`` running it."""

    def __init__(self, tmp_path: Path, site: str, scenario: str, settings: str = "") -> None:
        (tmp_path / "scenario.toml").write_text(scenario, encoding="utf-8")
        self.site_file = tmp_path / "site.toml"
        self.cmd = [sys.executable, str(SIM), "--site", site, "--scenario", str(tmp_path / "scenario.toml"),
                    "--start", "07:00", "--seed", "3"]
        subprocess.run([*self.cmd, "--site-file", str(self.site_file), "--files-only"], check=True, timeout=30)
        self.config = tmp_path / "gateway.toml"
        self.config.write_text(settings, encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, mqtt_url: str, speed: float) -> None:
        self.proc = subprocess.Popen([*self.cmd, "--mqtt-url", mqtt_url, "--speed", f"{speed:g}", "--interval", "1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop(self) -> tuple[dict, str]:
        """Stop the simulator; its summary line and its log."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err.decode()[-3000:]
        return json.loads(out.decode().splitlines()[-1]), err.decode()


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    made: list[Run] = []
    yield made
    for run in made:
        if run.proc is not None and run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)


LOST = """
events = [
  { at = "07:02", device = "ext-0001", event = "silent" },
  { at = "07:02", device = "well-0001", event = "broker_away", minutes = 15 },
]
[site]
devices = { fire_extinguisher = 2, drain_level = 1 }
"""


def test_a_silent_device_goes_unknown_and_a_device_cut_off_sends_its_buffer_late_stored_once(
        gateway_factory, mosquitto, influxd, tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path, "scn-lost", LOST, "[kinds.fire_extinguisher]\nheartbeat_s = 2\n\n"
              "[kinds.drain_level]\nheartbeat_s = 60\n")  # the cut-off well must not go lost: it is back soon
    runs.append(run)
    g = gateway_factory(run.config, GATEWAY_SITE_FILE=str(run.site_file), GATEWAY_SITE="scn-lost").start()
    db = g.env["GATEWAY_INFLUX_DB"]
    run.start(mosquitto.url, 60.0)  # a scenario minute a real second: the well is away 15 s

    def states() -> dict[str, str]:
        return {a["asset"]: a["state"] for a in g.get("/api/v1/assets", g.token)["items"]}

    def online(device: str) -> bool:
        return bool(g.get(f"/api/v1/devices/{device}", g.token)["online"])

    wait_for(lambda: states() == {"E-0001": "intact", "E-0002": "intact", "W-0001": "intact"}, 30,
             what="every asset intact first")
    wait_for(lambda: not online("well-0001"), 30, what="the well's status offline (its last will)")
    wait_for(lambda: states()["E-0001"] == "unknown", 60, what="the silent extinguisher unknown")
    tickets = g.get("/api/v1/tickets?asset=E-0001", g.token)["items"]
    assert [(t["subject"], t["fault"]) for t in tickets] == [("device:ext-0001", "device_lost")]
    wait_for(lambda: online("well-0001"), 60, what="the well back online")
    stored_then = influxd.count("drain_level", "level_m", db)
    wait_for(lambda: influxd.count("drain_level", "level_m", db) >= stored_then + 3, 30, what="new readings")
    wait_for(lambda: states()["W-0001"] == "intact", 30, what="the well intact again")

    def well_tickets() -> list[tuple[str, str, bool]]:
        items = g.get("/api/v1/tickets?asset=W-0001", g.token)["items"]
        return [(t["subject"], t["fault"], bool(t["self_cleared"])) for t in items]
    # Its last will said offline: lost, then back (the site closes what clears by itself).
    wait_for(lambda: well_tickets() == [("device:well-0001", "device_lost", True)], 30, what="its ticket cleared")
    summary, log = run.stop()  # every device offline now

    [buffered] = [int(line.split("sending ")[1].split()[0]) for line in log.splitlines() if "well-0001 back" in line]
    assert buffered >= 10  # about 15 readings taken while away
    sent = summary["by_kind"]["drain_level"]
    wait_for(lambda: influxd.count("drain_level", "level_m", db) == sent, 30, what="every well reading stored")
    series = influxd.query("SELECT level_m FROM drain_level WHERE device = 'well-0001'", db)[0]
    times = [row[0] for row in series["values"]]
    assert len(times) == len(set(times)) == sent  # each reading once, the late ones with their own ts
    device = g.get("/api/v1/devices/well-0001", g.token)
    assert device["readings"] == sent
    assert g.stop() == 0


PATROL = """
events = [
  { at = "07:00", guard = "G001", event = "asleep", hours = 24 },
  { at = "07:00", guard = "G002", event = "skip", checkpoint = "CP-0004" },
]
[site]
devices = { streetlight = 1 }
checkpoints = 4
guards = 2

[patrol]
every_min = 5
duration_min = 0.5
tolerance_min = 0.25
"""


def test_a_guard_asleep_misses_his_round_and_a_skipped_checkpoint_is_missed(
        gateway_factory, mosquitto, tmp_path: Path, runs: list[Run]) -> None:
    """Rounds are due every 5 real minutes (the gateway's clock), so this waits for the next one."""
    run = Run(tmp_path, "scn-patrol", PATROL)
    runs.append(run)
    g = gateway_factory(run.config, GATEWAY_SITE_FILE=str(run.site_file), GATEWAY_SITE="scn-patrol").start()
    run.start(mosquitto.url, 60.0)

    def walked() -> list[dict]:
        """R2's rounds that G002 walked and that are over."""
        items = g.get("/api/v1/rounds?route=R2&limit=1000", g.token)["items"]
        return [r for r in items if r["started_at"] and r["state"] == "closed"]

    [r2] = wait_for(walked, 420, 1.0, "a round of G002's closed")  # type: ignore[misc]
    assert r2["guard"] == "G002"
    assert [(v["checkpoint"], v["status"]) for v in r2["visits"]] == [("CP-0003", "on_time"), ("CP-0004", "missed")]
    due = r2["due_at"]
    [r1] = [r for r in g.get("/api/v1/rounds?route=R1&limit=1000", g.token)["items"] if r["due_at"] == due]
    assert r1["state"] == "missed" and r1["started_at"] is None and r1["guard"] is None
    assert {v["status"] for v in r1["visits"]} == {"missed"}
    summary, _ = run.stop()
    assert [(e["event"], e["expect"]) for e in summary["events"]] == [
        ("asleep", "patrol.round_missed"), ("skip", "patrol.missed")]
    assert g.stop() == 0
