"""``make demo``: a live demo site on this machine, until Ctrl-C.

Starts a private Mosquitto and InfluxDB on loopback (unless ``GATEWAY_MQTT_URL`` /
``GATEWAY_INFLUX_URL`` point at existing ones), the gateway, and the device
simulators of ``firmware-sim/`` publishing a whole site in accelerated time.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from gateway.devservers import Influxd, Mosquitto, wait_tcp

_LOGGER = logging.getLogger("gateway.demo")
ROOT = Path(__file__).resolve().parent.parent
DEVICES = "streetlight=200,fire_extinguisher=80,fire_hydrant=20,smoke_detector=60,drain_level=40,checkpoint=30"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = Path(os.environ.get("DEMO_DIR", ROOT / "demo-data"))
    folder.mkdir(parents=True, exist_ok=True)
    servers: list[Mosquitto | Influxd] = []
    procs: list[subprocess.Popen[bytes]] = []
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
        site_file = folder / "site.toml"
        sim = [sys.executable, str(ROOT / "firmware-sim" / "simulate.py"), "--mqtt-url", mqtt_url, "--site", "demo",
               "--devices", DEVICES, "--site-file", str(site_file)]
        subprocess.run([*sim, "--files-only"], check=True)
        bind = os.environ.get("GATEWAY_API_BIND", "127.0.0.1:8080")
        env = dict(os.environ, GATEWAY_MQTT_URL=mqtt_url, GATEWAY_INFLUX_URL=influx_url, GATEWAY_SITE="demo",
                   GATEWAY_DATA_DIR=str(folder / "gateway"), GATEWAY_SITE_FILE=str(site_file),
                   GATEWAY_API_BIND=bind)
        procs.append(subprocess.Popen([sys.executable, "-m", "gateway", "run"], env=env, start_new_session=True))
        port = int(bind.rpartition(":")[2])
        if not wait_tcp(port, 30):
            _LOGGER.error("the gateway did not open its API on %s; see the log above", bind)
            return 1
        procs.append(subprocess.Popen([*sim, "--interval", "60", "--speed", "60", "--fault-ratio", "0.01",
                                       "--bad-ratio", "0.002", "--dup-ratio", "0.005"], start_new_session=True))
        token_file, one_time = folder / "gateway" / "api-token", folder / "gateway" / "admin-password"
        token = token_file.read_text().strip() if token_file.exists() else "(revoked: gateway token --new)"
        sys.stdout.write(
            f"\nDemo site running. Ctrl-C stops it.\n"
            f"  pages:       http://{bind}/  (manager dashboard, maintenance queue, guard rounds, assets)\n"
            f"  health:      http://{bind}/api/v1/health\n"
            f"  API:         http://{bind}/api/v1/openapi.json (logged in)\n"
            f"  log in:      as admin, "
            + (f"the one-time password in {one_time}\n" if one_time.exists() else "with the password you chose\n")
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
        for server in reversed(servers):
            server.stop()
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
