"""Ingest benchmark: a QoS 1 MQTT burst through the gateway into InfluxDB 1.x, end to end.

Run from the repository root (Mosquitto and influxd installed, the venv has the gateway):

    .venv/bin/python bench/ingest.py --n 100000 --runs 2        # the gateway alone
    .venv/bin/python bench/ingest.py --compare --runs 2         # + ../shared/bench harness: gateway/batched

Each run starts a private Mosquitto and influxd (gateway.devservers) and ``python -m gateway run``
in a temp folder, waits until the gateway is connected and subscribed, then bursts N readings
(devices lamp-0000.., payload with ts and seq) at QoS 1 with the raw-socket publisher of
firmware-sim/sim_raw.py. readings/s = N / (last point queryable in InfluxDB - first publish),
timed by polling influxd's /debug/vars written-points counter every 50 ms and confirmed with
``SELECT count(current_a)``. Lost and doubled come from the stored (device, time) pairs, which
map one-to-one to the published (device, seq). Peak RSS is the VmHWM sum of the gateway's process
tree; CPU s is its user+sys from the first publish to the end. Exit status 1 if a reading was
lost or doubled (or a run failed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil

from gateway.devservers import Influxd, Mosquitto

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware-sim"))
from sim_raw import burst, streetlight_burst  # noqa: E402

HARNESS = ROOT.parent / "shared" / "bench" / "harness.py"
WRAPPER = ('sh -c "GATEWAY_MQTT_URL=mqtt://$MQTT_HOST:$MQTT_PORT GATEWAY_INFLUX_URL=$INFLUX_URL '
           'GATEWAY_INFLUX_API=v1 GATEWAY_INFLUX_DB=$INFLUX_DB GATEWAY_SITE=bench '
           'GATEWAY_DATA_DIR=$BENCH_RUN_DIR/gw GATEWAY_API_BIND=127.0.0.1:0 exec gateway run"')
DB, POLL_S, STALL_S, TIMEOUT_S = "bench", 0.05, 15.0, 600.0
COLS = (("readings_per_s", "readings/s", "{:,.0f}"), ("lost", "lost", "{:,.0f}"), ("doubled", "doubled", "{:,.0f}"),
        ("rss_mb", "peak RSS MB", "{:.1f}"), ("cpu_s", "CPU s", "{:.2f}"), ("cpu_us", "CPU µs/reading", "{:.1f}"),
        ("cpu_others_s", "others' CPU s", "{:.2f}"))
_LOG = logging.getLogger("bench.ingest")


def usage(pid: int) -> tuple[float, float]:
    """(user+sys CPU s, sum of VmHWM MB) of a process tree."""
    cpu, kb = 0.0, 0
    with contextlib.suppress(psutil.Error):
        top = psutil.Process(pid)
        for p in (top, *top.children(recursive=True)):
            with contextlib.suppress(psutil.Error, OSError), open(f"/proc/{p.pid}/status") as f:
                t = p.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
                kb += next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
    return cpu, kb / 1024


def stop_proc(p: subprocess.Popen[Any], sig: int, grace: float = 30.0) -> int | str:
    """Signal a process we started (by its PID), SIGKILL if it lingers; its exit status."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            return "killed"
    return p.returncode


def busy() -> float:
    """CPU seconds all processes of the machine have used (user, nice, system, irq, softirq; all cores)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def written(influx: Influxd) -> int:
    """Points written OK into db bench so far: influxd's cheap /debug/vars counter (shard stats)."""
    return sum(v["values"].get("writePointsOk", 0) for k, v in get_json(influx.url + "/debug/vars").items()
               if k.startswith("shard:") and v.get("tags", {}).get("database") == DB)


def wait_ready(gw: subprocess.Popen[bytes], data_dir: Path, mqtt_port: int, timeout: float = 60.0) -> None:
    """Health says mqtt.connected; then the gateway's retained ``online`` proves its SUBSCRIBE was handled
    (connected is set on CONNACK, before the SUBSCRIBE is even sent)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if gw.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.returncode}; see {data_dir.parent / 'gateway.log'}")
        with contextlib.suppress(OSError, ValueError):
            port = int((data_dir / "api.port").read_text())
            if get_json(f"http://127.0.0.1:{port}/api/v1/health")["mqtt"]["connected"]:
                break
        time.sleep(0.1)
    else:
        raise RuntimeError("gateway not connected to the broker in time")
    online = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-ready-{os.getpid()}")
    c.on_connect = lambda cl, *_: cl.subscribe("fm/bench/gateway/+/status")
    c.on_message = lambda _c, _u, m: online.set() if m.payload == b"online" else None
    c.connect("127.0.0.1", mqtt_port)
    c.loop_start()
    try:
        if not online.wait(max(1.0, end - time.monotonic())):
            raise RuntimeError("gateway never published its retained online status")
    finally:
        c.disconnect()
        c.loop_stop()


def check_points(influx: Influxd, expected: set[tuple[str, int]]) -> dict[str, int]:
    """Stored (device, time µs) against the published ones: distinct, doubled pairs, extra rows."""
    rows = influx.query("SELECT current_a FROM streetlight GROUP BY device", DB)
    stored = Counter((s["tags"]["device"], t) for s in rows for t, _ in s["values"])
    distinct = sum(1 for k in stored if k in expected)
    doubled = sum(1 for k, c in stored.items() if c > 1 and k in expected)
    return {"points": stored.total(), "distinct": distinct, "doubled": doubled, "extra": stored.total() - distinct}


def one_run(a: argparse.Namespace, run: int, base: Path) -> dict[str, Any]:
    d = base / f"run{run}"
    res: dict[str, Any] = {"run": run, "n": a.n, "devices": a.devices, "synchronous": a.synchronous,
                           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    mosq, influx = Mosquitto(d / "mosquitto", persistence=False), Influxd(d / "influxd")
    gw: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    try:
        mosq.start()
        influx.start()
        env = dict(os.environ, GATEWAY_MQTT_URL=mosq.url, GATEWAY_INFLUX_URL=influx.url, GATEWAY_INFLUX_API="v1",
                   GATEWAY_INFLUX_DB=DB, GATEWAY_SITE="bench", GATEWAY_DATA_DIR=str(d / "gw"),
                   GATEWAY_API_BIND="127.0.0.1:0", GATEWAY_OUTBOX_SYNCHRONOUS=a.synchronous)
        with open(d / "gateway.log", "wb") as logf:
            gw = subprocess.Popen([sys.executable, "-m", "gateway", "run"], env=env, stdout=logf,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        _LOG.info("run %d: gateway pid %d, mosquitto %d, influxd %d, folder %s", run, gw.pid, mosq.port,
                  influx.port, d)
        wait_ready(gw, d / "gw", mosq.port)
        time.sleep(0.5)  # settle, as the shared harness does
        devices = [f"lamp-{i:04d}" for i in range(a.devices)]
        stamps: list[int] = []

        def clock() -> float:  # strictly increasing µs, recorded: stored time -> (device, seq)
            stamps.append(max(time.time_ns() // 1000, stamps[-1] + 1 if stamps else 0))
            return stamps[-1] / 1e6

        pub: dict[str, Any] = {}

        def publish() -> None:
            try:
                pub["result"] = burst("127.0.0.1", mosq.port, streetlight_burst("fm", "bench", devices, a.n, clock),
                                      window=1000, stop=stop, client_id=f"bench-pub-{os.getpid()}")
            except (OSError, ValueError) as exc:  # BurstError is a ConnectionError; reported with the run
                pub["error"] = repr(exc)
            pub["done"] = time.time()

        pids = {"gateway": gw.pid, **{k: s.proc.pid for k, s in (("mosquitto", mosq), ("influxd", influx)) if s.proc}}
        cpu0 = {k: usage(p)[0] for k, p in pids.items()} | {"bench": sum(os.times()[:2]), "all": busy()}
        thread = threading.Thread(target=publish, name="publisher", daemon=True)
        thread.start()
        t_go = time.time()
        t_reach = w_reach = t_end = None
        last, t_last, t_count, count = 0, time.time(), 0.0, 0
        while t_end is None:
            time.sleep(POLL_S)
            now = time.time()
            w = written(influx)
            if w > last:
                last, t_last = w, now
            if w >= a.n and t_reach is None:
                t_reach, w_reach = now, w
            if t_reach is not None and now - t_count >= 0.25:
                count, t_count = influx.count("streetlight", "current_a", DB), time.time()
                if count >= a.n:  # exact when the counter reached exactly N (nothing rewritten)
                    t_end = t_reach if w_reach == count == a.n else t_count
            if gw.poll() is not None:
                raise RuntimeError(f"gateway exited with {gw.returncode} during the run; see {d / 'gateway.log'}")
            stalled = "done" in pub and now - max(t_last, pub["done"]) > STALL_S
            if stalled or now - t_go > TIMEOUT_S:
                count = influx.count("streetlight", "current_a", DB)
                t_end, res["stalled"] = t_last, True
        cpu1 = {k: usage(p)[0] for k, p in pids.items()} | {"bench": sum(os.times()[:2]), "all": busy()}
        res["rss_mb"] = round(usage(gw.pid)[1], 1)
        thread.join(60)
        if "error" in pub:
            raise RuntimeError(f"publisher: {pub['error']}")
        t_first = stamps[0] / 1e6
        res["sent"], res["acked"], seconds = pub["result"]
        res["pub_per_s"] = round(res["acked"] / seconds) if seconds else None
        res["seconds"] = round(t_end - t_first, 3)
        res["readings_per_s"] = round(min(count, a.n) / (t_end - t_first))
        used = {k: cpu1[k] - cpu0[k] for k in cpu0}  # bench = this process: publisher and polling
        res.update({f"cpu_{k}_s": round(v, 2) for k, v in used.items() if k not in ("gateway", "all")})
        res["cpu_s"], res["cpu_us"] = round(used["gateway"], 2), round(used["gateway"] / a.n * 1e6, 1)
        # noise: what else ran on the machine meanwhile (other processes; ±0.5 s of accounting skew)
        res["cpu_others_s"] = round(used["all"] - sum(v for k, v in used.items() if k != "all"), 2)
        time.sleep(1.0)  # a late rewrite or duplicate would land now
        pts = check_points(influx, {(devices[k % a.devices], round(float(b"%.6f" % (us / 1e6)) * 1e6))
                                    for k, us in enumerate(stamps)})
        res.update(pts, lost=a.n - pts["distinct"])
    except (RuntimeError, OSError, ValueError, KeyError) as exc:  # reported; fails the exit status
        _LOG.error("run %d failed: %s", run, exc)
        res["error"] = str(exc)
    finally:
        stop.set()
        if gw is not None:
            res["gateway_exit"] = stop_proc(gw, signal.SIGTERM)
        influx.stop()
        mosq.stop()
    return res


def compare(a: argparse.Namespace, base: Path) -> dict[str, Any]:
    """The shared harness, batched vs the gateway, interleaved in one invocation; ratio of its medians."""
    out = base / "harness"
    cmd = [sys.executable, str(HARNESS), "run", "--pipeline", "batched", "--pipeline", WRAPPER, "--label", "batched",
           "--label", "gateway", "--qos", "1", "--n", str(a.n), "--devices", str(a.devices), "--runs", str(a.runs),
           "--out", str(out), *(["--keep-dirs"] if a.keep else [])]
    env = dict(os.environ, GATEWAY_OUTBOX_SYNCHRONOUS=a.synchronous,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    _LOG.info("harness: %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, cwd=HARNESS.parent, env=env, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)  # so that one Ctrl-C, forwarded below, reaches it once
    try:
        table_md, _ = proc.communicate()
    finally:
        stop_proc(proc, signal.SIGINT, 60)  # SIGINT: the harness then stops its own servers and pipeline
    jsonl = out / "results.jsonl"
    rows = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()] if jsonl.exists() else []
    med = {lab: statistics.median([r["msgs_per_s"] for r in rows if r["label"] == lab and "error" not in r] or [0])
           for lab in ("batched", "gateway")}
    lost = sum(r.get("lost", 0) for r in rows if r["label"] == "gateway")
    ratio = med["gateway"] / med["batched"] if med["batched"] else 0.0
    sys.stdout.write(f"\nShared harness ({HARNESS}), batched vs gateway, QoS 1, interleaved:\n\n{table_md}\n")
    sys.stdout.write(f"ratio gateway/batched msgs/s (medians of this invocation): {ratio:.2f} "
                     f"({med['gateway']:,.0f} / {med['batched']:,.0f})\n"
                     "Note: the harness's contract column flags the tags site and category that the gateway "
                     "writes on every point (CONTRACT.md, InfluxDB); this is expected, not an error.\n")
    return {"compare": True, "harness_exit": proc.returncode, "batched_msgs_per_s": med["batched"],
            "gateway_msgs_per_s": med["gateway"], "ratio": round(ratio, 3), "gateway_lost": lost,
            "harness_results": str(jsonl)}


def table(results: list[dict[str, Any]]) -> str:
    head = "| run | " + " | ".join(c[1] for c in COLS) + " |"
    lines = [head, "|" + "---|" * (len(COLS) + 1)]
    for r in results:
        cells = [r["error"][:60] if "error" in r else fmt.format(r[k]) for k, _, fmt in COLS]
        lines.append(f"| {r['run']} | " + " | ".join(cells) + " |")
    ok = [r for r in results if "error" not in r]
    if len(ok) > 1:
        lines.append("| **median** | " + " | ".join(fmt.format(statistics.median(r[k] for r in ok))
                                                      for k, _, fmt in COLS) + " |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?")
    return {"nproc": os.cpu_count(), "cpu": model, "python": sys.version.split()[0], "host": os.uname().nodename}


def append_json(path: Path | None, obj: dict[str, Any]) -> None:
    if path:
        with path.open("a") as f:
            f.write(json.dumps(obj) + "\n")


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--n", type=int, default=100_000, help="readings per run")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1, help="repeat with fresh servers; the median is printed")
    ap.add_argument("--json", type=Path, metavar="OUT", help="append each run (and the comparison) as JSON lines")
    ap.add_argument("--synchronous", choices=["full", "normal"], default="full",
                    help="the outbox's SQLite synchronous mode (GATEWAY_OUTBOX_SYNCHRONOUS)")
    ap.add_argument("--compare", action="store_true", help="also run the shared harness: batched vs gateway")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, data)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    signal.signal(signal.SIGTERM, _on_sigterm)
    base = Path(tempfile.mkdtemp(prefix="fm-bench-ingest-"))
    info = machine()
    results: list[dict[str, Any]] = []
    cmp: dict[str, Any] | None = None
    try:
        for run in range(1, a.runs + 1):
            res = one_run(a, run, base) | {"machine": info}
            results.append(res)
            _LOG.info("run %d: %s", run, {k: res.get(k) for k, *_ in COLS} if "error" not in res else res["error"])
            append_json(a.json, res)
        sys.stdout.write(f"\nGateway ingest, QoS 1 burst, N={a.n:,}, {a.devices} devices, outbox synchronous="
                         f"{a.synchronous}, {info['nproc']} x {info['cpu']}:\n\n{table(results)}\n")
        if a.compare:
            if HARNESS.exists():
                cmp = compare(a, base) | {"machine": info}
                append_json(a.json, cmp)
            else:
                _LOG.error("--compare: %s not found", HARNESS)
                return 1
    except KeyboardInterrupt:
        _LOG.error("interrupted: the servers and gateways it started are stopped")
        return 130
    finally:
        if a.keep:
            _LOG.info("kept %s", base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    bad = any("error" in r or r["lost"] or r["doubled"] or r["extra"] or r["gateway_exit"] for r in results)
    return 1 if bad or (cmp is not None and (cmp["gateway_lost"] or cmp["harness_exit"])) else 0


if __name__ == "__main__":
    sys.exit(main())
