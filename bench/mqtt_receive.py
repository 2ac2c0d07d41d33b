"""How fast can one Python process receive a QoS 1 burst: paho-mqtt's client against the
gateway's own transport (gateway/sensors/mqtt.py), neither doing anything with the messages.

This is the measurement behind the gateway framing MQTT itself. Each variant gets a fresh
Mosquitto (stock 20-message in-flight window; v5 clients ask for 1000), then a raw-socket
publisher (firmware-sim/sim_raw.py, its own process) bursts N readings from 1000 devices.

    .venv/bin/python bench/mqtt_receive.py --n 100000

Variants: ``paho-v311`` and ``paho-v5`` acknowledge in ``on_message`` (paho's manual ack);
``gateway-v311`` and ``gateway-v5`` poll and acknowledge each read in one write.
msgs/s = N / (last message received - subscriber ready); CPU is this process's user+sys.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config import Settings  # noqa: E402
from gateway.devservers import Mosquitto  # noqa: E402
from gateway.sensors.mqtt import MqttTransport  # noqa: E402

_LOGGER = logging.getLogger("bench.mqtt_receive")
VARIANTS = ("paho-v311", "paho-v5", "gateway-v311", "gateway-v5")
PUBLISHER = """
import sys
sys.path.insert(0, {sim!r})
from sim_raw import burst, streetlight_burst
burst("127.0.0.1", {port}, streetlight_burst("fm", "b", [f"L{{i}}" for i in range(1000)], {n}))
"""


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def paho_receiver(port: int, v5: bool, n: int) -> Callable[[], None]:
    """Connect and subscribe; the returned function blocks until n messages arrived."""
    done, ready = threading.Event(), threading.Event()
    count = [0]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-paho-{int(v5)}",
                    protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, manual_ack=True)

    def on_message(client: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        count[0] += 1
        client.ack(m.mid, m.qos)
        if count[0] >= n:
            done.set()

    c.on_message = on_message
    c.on_connect = lambda cl, *_: cl.subscribe("fm/#", qos=1)
    c.on_subscribe = lambda *_: ready.set()
    props = None
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = 1000
    c.connect("127.0.0.1", port, properties=props)
    c.loop_start()
    ready.wait(10)

    def wait() -> None:
        done.wait(300)
        c.disconnect()
        c.loop_stop()

    return wait


def gateway_receiver(port: int, v5: bool, n: int) -> Callable[[], None]:
    s = Settings.model_validate({"site": "b", "mqtt": {"url": f"mqtt://127.0.0.1:{port}",
                                                        "protocol": "5" if v5 else "3.1.1"}})
    t = MqttTransport(s)
    while not t.connected:
        t.poll(0.05)

    def wait() -> None:
        got = 0
        end = time.monotonic() + 300
        while got < n and time.monotonic() < end:
            batch = t.poll(0.05)
            got += sum(1 for m in batch if "/gateway/" not in m.topic)
            t.ack(batch)
        t.stop()

    return wait


def run(variant: str, n: int, folder: Path) -> dict[str, float]:
    broker = Mosquitto(folder / variant, persistence=False).start()
    try:
        v5 = variant.endswith("v5")
        wait = (paho_receiver if variant.startswith("paho") else gateway_receiver)(broker.port, v5, n)
        code = PUBLISHER.format(sim=str(ROOT / "firmware-sim"), port=broker.port, n=n)
        c0, t0 = cpu(), time.perf_counter()
        pub = subprocess.Popen([sys.executable, "-c", code])
        wait()
        seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
        pub.wait(60)
        return {"msgs_per_s": n / seconds, "cpu_us": cpu_s / n * 1e6}
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--variant", action="append", choices=VARIANTS, help="default: all")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="fm-bench-receive-") as tmp:
        rows = [(v, run(v, a.n, Path(tmp))) for v in a.variant or VARIANTS]
    sys.stdout.write(f"\nQoS 1 receive only, N={a.n:,}, 1000 devices:\n\n")
    sys.stdout.write("| receiver | msgs/s | CPU µs/msg |\n|---|---|---|\n")
    for v, r in rows:
        sys.stdout.write(f"| {v} | {r['msgs_per_s']:,.0f} | {r['cpu_us']:.1f} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
