"""Ticket latency: from publishing the reading that confirms a fault to the ticket being
visible through the API and its event arriving on MQTT, under healthy background traffic.

    .venv/bin/python bench/ticket_latency.py --trials 200 --rate 1000

Starts a private Mosquitto and influxd, writes a site file (``--lamps`` streetlights and one
fire extinguisher per trial), runs ``python -m gateway run``, and publishes healthy lamp
readings at ``--rate`` per second (paho, QoS 1, its own thread). Each trial takes a fresh
extinguisher: a low-pressure reading 61 s in the past (the debounce's first), then, timed, the
confirming one now. The API is polled every 2 ms for ``/api/v1/tickets?asset=...``; a
subscriber on the gateway's events topic notes when ``ticket.opened`` for that asset arrives.
Prints p50/p95/p99/max of both latencies, in ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.devservers import Influxd, Mosquitto  # noqa: E402

_LOG = logging.getLogger("bench.ticket_latency")
SITE = "bench"


def site_file(path: Path, lamps: int, trials: int) -> None:
    lines = ['[site]\nname = "latency bench"\nlatitude = 31.23\nlongitude = 121.47\n']
    for i in range(lamps):
        lines.append(f'[[assets]]\nid = "L-{i:04d}"\ncategory = "lighting"\nkind = "streetlight"\n'
                     f'device = "lamp-{i:04d}"\nrated = {{ current_a = 0.42 }}\nschedule = "00:00-23:59"\n')
    for i in range(trials):
        lines.append(f'[[assets]]\nid = "FE-{i:04d}"\ncategory = "fire"\nkind = "fire_extinguisher"\n'
                     f'device = "ext-{i:04d}"\n')
    path.write_text("\n".join(lines))


def get_json(url: str, token: str | None = None) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Background(threading.Thread):
    """Healthy lamp readings at a steady rate, round robin."""

    def __init__(self, port: int, lamps: int, rate: float) -> None:
        super().__init__(daemon=True, name="background")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-background")
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.lamps, self.rate = lamps, rate
        self.stop_evt = threading.Event()
        self.sent = 0

    def run(self) -> None:
        start, seq = time.monotonic(), 0
        while not self.stop_evt.is_set():
            due = start + self.sent / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            i = self.sent % self.lamps
            seq += 1
            payload = json.dumps({"ts": time.time(), "seq": seq, "on": True, "voltage_v": 221.0, "current_a": 0.41})
            self.client.publish(f"fm/{SITE}/streetlight/lamp-{i:04d}/reading", payload, qos=1)
            self.sent += 1

    def close(self) -> None:
        self.stop_evt.set()
        self.join(5)
        self.client.disconnect()
        self.client.loop_stop()


def run(a: argparse.Namespace, d: Path) -> dict[str, Any]:
    mosq, influx = Mosquitto(d / "mosquitto", persistence=False).start(), Influxd(d / "influxd").start()
    gw: subprocess.Popen[bytes] | None = None
    try:
        site_file(d / "site.toml", a.lamps, a.trials)
        env = dict(os.environ, GATEWAY_MQTT_URL=mosq.url, GATEWAY_INFLUX_URL=influx.url, GATEWAY_INFLUX_API="v1",
                   GATEWAY_INFLUX_DB="bench", GATEWAY_SITE=SITE, GATEWAY_GATEWAY_ID="gw",
                   GATEWAY_DATA_DIR=str(d / "gw"), GATEWAY_API_BIND="127.0.0.1:0",
                   GATEWAY_SITE_FILE=str(d / "site.toml"))
        with open(d / "gateway.log", "wb") as log:
            gw = subprocess.Popen([sys.executable, "-m", "gateway", "run"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        base, token = "", ""
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with contextlib.suppress(OSError, ValueError, KeyError):
                base = f"http://127.0.0.1:{int((d / 'gw' / 'api.port').read_text())}"
                token = (d / "gw" / "api-token").read_text().strip()
                if get_json(base + "/api/v1/health")["mqtt"]["connected"]:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"gateway not ready; see {d / 'gateway.log'}")

        opened: dict[str, float] = {}
        events = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-events")

        def on_event(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
            e = json.loads(m.payload)
            if e["type"] == "ticket.opened":
                opened.setdefault(e["data"]["ticket"]["asset"], time.perf_counter())

        events.on_message = on_event
        events.connect("127.0.0.1", mosq.port)
        events.subscribe(f"fm/{SITE}/gateway/gw/events", qos=1)
        events.loop_start()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-faults")
        pub.connect("127.0.0.1", mosq.port)
        pub.loop_start()
        background = Background(mosq.port, a.lamps, a.rate)
        background.start()
        time.sleep(2.0)  # background traffic settles
        api_ms, event_ms = [], []
        try:
            for i in range(a.trials):
                asset, topic = f"FE-{i:04d}", f"fm/{SITE}/fire_extinguisher/ext-{i:04d}/reading"
                first = {"ts": time.time() - 61, "seq": 1, "pressure_mpa": 0.6}
                pub.publish(topic, json.dumps(first), qos=1).wait_for_publish()
                time.sleep(0.05)  # the first failing reading is in
                t0 = time.perf_counter()
                pub.publish(topic, json.dumps({"ts": time.time(), "seq": 2, "pressure_mpa": 0.6}), qos=1)
                while not get_json(f"{base}/api/v1/tickets?asset={asset}", token)["items"]:
                    if time.perf_counter() - t0 > 10:
                        raise RuntimeError(f"no ticket for {asset} after 10 s; see {d / 'gateway.log'}")
                    time.sleep(0.002)
                api_ms.append((time.perf_counter() - t0) * 1000)
                while asset not in opened and time.perf_counter() - t0 < 10:
                    time.sleep(0.001)
                if asset not in opened:
                    raise RuntimeError(f"no ticket.opened event for {asset}")
                event_ms.append((opened[asset] - t0) * 1000)
                time.sleep(a.gap)
        finally:
            background.close()
            for c in (pub, events):
                c.disconnect()
                c.loop_stop()
        elapsed = max(1e-9, background.sent / a.rate)
        return {"api_ms": api_ms, "event_ms": event_ms, "background_rate": background.sent / elapsed}
    finally:
        if gw is not None and gw.poll() is None:
            gw.terminate()
            gw.wait(30)
        mosq.stop()
        influx.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--rate", type=float, default=1000.0, help="healthy background readings per second")
    ap.add_argument("--lamps", type=int, default=1000)
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between trials")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="fm-bench-tickets-") as tmp:
        r = run(a, Path(tmp))
    sys.stdout.write(f"\nTicket latency, {a.trials} trials, {a.rate:.0f} healthy readings/s in the background, "
                     f"{a.lamps} lamps:\n\n| path | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|\n")
    for name, key in (("ticket visible through the API", "api_ms"), ("ticket.opened event on MQTT", "event_ms")):
        v = r[key]
        sys.stdout.write(f"| {name} | {statistics.median(v):.1f} | {percentile(v, 95):.1f} | "
                         f"{percentile(v, 99):.1f} | {max(v):.1f} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
