"""``make demo``: a live demo site on this machine, until Ctrl-C.

Starts a private Mosquitto and InfluxDB on loopback (unless ``GATEWAY_MQTT_URL`` /
``GATEWAY_INFLUX_URL`` point at existing ones), the gateway, and the device
simulators of ``firmware-sim/`` running the scenario ``DEMO_SCENARIO`` (default
``firmware-sim/scenarios/demo-day.toml``) with its clock ``DEMO_SPEED`` (120) times real time:
readings carry real time, so the gateway judges them as on a real site (README "Scenarios").
Serial devices run too, on pseudo-terminals (``firmware-sim/sim_serial.py``), in the gateway's
``[[serial]]`` settings: the gate guard's NFC reader (his taps make the gate route's rounds), a
JSON-lines concentrator, and a Modbus RTU bus of level and pressure transmitters (pymodbus, from the
``test`` extra ``make demo`` installs) that the gateway polls. They follow the scenario on the MQTT
simulator's clock (``--clock-origin``): rain fills their wells too, the hydrant main's drop shows on its
transmitter.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.devservers import Influxd, Mosquitto, wait_tcp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "firmware-sim"))
from sim_clock import SceneClock
from sim_scenario import load as load_scenario
from sim_serial import SerialSims, site_lines

_LOGGER = logging.getLogger("gateway.demo")
ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "firmware-sim" / "scenarios" / "demo-day.toml"
USERS = (("manager", "manager"), ("maintenance", "maintenance"), ("G001", "guard"))
"""Demo logins; the guard is named after his guard id so his taps count for him."""
KINDS = ("streetlight", "fire_extinguisher", "fire_hydrant", "smoke_detector", "drain_level")
MODBUS_POLL_S = 5.0


def _lamps_lit_now() -> str:
    """A lamp schedule lit from an hour ago for 12 hours: a failed lamp shows whatever the hour.

    Lamps are judged by real local time (the gateway's clock); on a real site a failed lamp
    is only seen while it should be lit, so by day the demo would show no lamp faults.
    """
    now = datetime.now(ZoneInfo("Asia/Shanghai"))  # the demo scenario's site
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=11):%H:%M}"


def _settings(interval: float) -> str:
    """Settings file: every kind's heartbeat is the simulators' interval, so a silent device is
    noticed in minutes, not in the hours a smoke detector's battery-saving heartbeat allows."""
    return "".join(f"[kinds.{k}]\nheartbeat_s = {interval * 2:g}\n\n" for k in KINDS)


def _api(url: str, token: str, method: str = "GET", body: dict[str, object] | None = None) -> object:
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _demo_users(base: str, token: str) -> list[str]:
    """Create the demo users with the installer's token; returns a line per login."""
    lines = []
    for name, role in USERS:
        try:
            user = _api(f"{base}/api/v1/users", token, "POST", {"name": name, "role": role})
            password = user["password"] if isinstance(user, dict) else "?"
            lines.append(f"  {role:<12} {name} / {password}  (temporary: the first login asks for a new one)")
        except urllib.error.HTTPError as err:
            lines.append(f"  {role:<12} {name}: already made in an earlier run ({err.code}); "
                         "an admin can reset it")
    return lines


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = Path(os.environ.get("DEMO_DIR", ROOT / "demo-data"))
    folder.mkdir(parents=True, exist_ok=True)
    servers: list[Mosquitto | Influxd] = []
    procs: list[subprocess.Popen[bytes]] = []
    serial_sims: SerialSims | None = None
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        mqtt_url = os.environ.get("GATEWAY_MQTT_URL")
        if not mqtt_url:
            servers.append(Mosquitto(folder / "mosquitto").start())
            mqtt_url = servers[-1].url
        influx_url = os.environ.get("GATEWAY_INFLUX_URL")
        if not influx_url:
            servers.append(Influxd(folder / "influxd").start())
            influx_url = servers[-1].url
        site_file, settings = folder / "site.toml", folder / "gateway.toml"
        interval = float(os.environ.get("DEMO_INTERVAL", "20"))
        speed = float(os.environ.get("DEMO_SPEED", "120"))
        scenario_file = os.environ.get("DEMO_SCENARIO", str(SCENARIO))
        sim = [sys.executable, str(ROOT / "firmware-sim" / "simulate.py"), "--mqtt-url", mqtt_url, "--site", "demo",
               "--scenario", scenario_file, "--lamp-schedule", os.environ.get("DEMO_LAMP_SCHEDULE", _lamps_lit_now())]
        subprocess.run([*sim, "--site-file", str(site_file), "--files-only"], check=True)
        scenario = load_scenario(scenario_file)
        clock = SceneClock.starting(scenario.start, time.time(), speed, ZoneInfo(scenario.timezone))
        serial_sims = SerialSims(scenario, clock, interval, folder / "usb-RS485-pump-room")
        with site_file.open("a", encoding="utf-8") as f:  # the running simulator leaves the site file alone
            f.write(site_lines(scenario.patrol, MODBUS_POLL_S))
        settings.write_text(_settings(interval) + serial_sims.settings_toml())
        bind = os.environ.get("GATEWAY_API_BIND", "127.0.0.1:8080")
        env = dict(os.environ, GATEWAY_MQTT_URL=mqtt_url, GATEWAY_INFLUX_URL=influx_url, GATEWAY_SITE="demo",
                   GATEWAY_DATA_DIR=str(folder / "gateway"), GATEWAY_SITE_FILE=str(site_file),
                   GATEWAY_API_BIND=bind)
        procs.append(subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(settings)], env=env,
                                      start_new_session=True))
        port = int(bind.rpartition(":")[2])
        if not wait_tcp(port, 30):
            _LOGGER.error("the gateway did not open its API on %s; see the log above", bind)
            return 1
        serial_sims.start()  # once the gateway is up: opening a port empties its input
        procs.append(subprocess.Popen([*sim, "--interval", f"{interval:g}", "--speed", f"{speed:g}",
                                       "--clock-origin", f"{clock.real0:.3f}"], start_new_session=True))
        token_file, one_time = folder / "gateway" / "api-token", folder / "gateway" / "admin-password"
        token = token_file.read_text().strip() if token_file.exists() else "(revoked: gateway token --new)"
        logins = _demo_users(f"http://{bind}", token) if token_file.exists() else []
        sys.stdout.write(
            f"\nDemo site running. Ctrl-C stops it.\n"
            f"  dashboard:   http://{bind}/manager  (faults, tickets and a missed round within minutes)\n"
            f"  pages:       http://{bind}/  (manager dashboard, maintenance queue, guard rounds, assets)\n"
            f"  health:      http://{bind}/api/v1/health\n"
            f"  API:         http://{bind}/api/v1/openapi.json (logged in)\n"
            f"  log in:      as admin, "
            + (f"the one-time password in {one_time}\n" if one_time.exists() else "with the password you chose\n")
            + "".join(line + "\n" for line in logins)
            + f"  devices:     curl -H 'Authorization: Bearer {token}' http://{bind}/api/v1/devices\n"
            f"  dead letters: curl -H 'Authorization: Bearer {token}' http://{bind}/api/v1/dead-letters\n"
            f"  InfluxDB:    {influx_url} (database facility)\n  MQTT:        {mqtt_url} (topics fm/demo/#)\n\n")
        while not stop.wait(1.0):
            if any(p.poll() is not None for p in procs):
                _LOGGER.error("a demo process exited; stopping the demo")
                return 1
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        if serial_sims is not None:
            serial_sims.stop()
        for server in reversed(servers):
            server.stop()
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
