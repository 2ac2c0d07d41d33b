"""Replay benchmark: a generated month of 100 devices, one reading a minute, through ``gateway replay``.

    .venv/bin/python bench/replay.py                               # 4.32 M readings, InfluxDB off
    .venv/bin/python bench/replay.py --stream /tmp/month.jsonl --runs 3 --json /tmp/replay.jsonl

The stream (and its site file, configuration and ground truth, beside it) is generated once by
firmware-sim/sim_month.py into ``--stream`` (about 40 s and 770 MB for the default month) and
reused while its options match. Each run is ``python -m gateway replay STREAM --data-dir <tmp>``
in its own process, InfluxDB writing off; from its ``replay.json`` come readings/s (records /
the replay's own wall time) and the counts, from ``wait4`` the process's peak RSS and CPU, and
the replayed ledger is checked against the generator's truth (every state change, exact).
Prints one table row per run and the median. Exit status 1 if a run failed or its ledger or
tickets differ from the truth; the target rate is reported, not enforced (a shared machine).
``--profile FILE`` adds one run under py-spy (speedscope format), not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "firmware-sim"))

from sim_month import DEFAULT_DEVICES, MonthOptions, Paths, generate  # noqa: E402
from sim_site import parse_devices  # noqa: E402

from gateway.tickets import TicketStore  # noqa: E402

_LOG = logging.getLogger("bench.replay")
COLS = (("readings", "readings", "{:,}"), ("wall_s", "wall s", "{:.1f}"), ("readings_per_s", "readings/s", "{:,.0f}"),
        ("process_s", "process s", "{:.1f}"), ("cpu_s", "CPU s", "{:.1f}"), ("rss_mb", "peak RSS MB", "{:.1f}"),
        ("tickets", "tickets", "{}"), ("state_changes", "state changes", "{}"), ("truth", "ledger = truth", "{}"))


def paths_for(stream: Path) -> Paths:
    stem = stream.with_suffix("")
    return Paths(stream, Path(f"{stem}.site.toml"), Path(f"{stem}.truth.json"), Path(f"{stem}.gateway.toml"))


def ensure_stream(opts: MonthOptions, paths: Paths, regenerate: bool) -> None:
    """Generate the month unless the cached one was made with the same options."""
    if not regenerate and all(p.is_file() for p in (paths.stream, paths.site_file, paths.truth, paths.config)):
        cached = json.loads(paths.truth.read_text())["options"]
        wanted = json.loads(json.dumps({**asdict(opts), "devices": dict(opts.devices)}))
        if cached == wanted:
            _LOG.info("reusing %s (%.0f MB)", paths.stream, paths.stream.stat().st_size / 1e6)
            return
        _LOG.info("%s was generated with other options: generating again", paths.stream)
    paths.stream.parent.mkdir(parents=True, exist_ok=True)
    _LOG.info("generating %s (once; about 10 s per million readings)", paths.stream)
    t0 = time.monotonic()
    generate(opts, paths)
    _LOG.info("generated in %.0f s, %.0f MB", time.monotonic() - t0, paths.stream.stat().st_size / 1e6)


def check_truth(data_dir: Path, truth: dict[str, Any]) -> tuple[bool, int, int]:
    """(ledger and tickets equal to the truth, tickets, state changes) of a replayed folder."""
    store = TicketStore(data_dir / "gateway.db", ZoneInfo(truth["timezone"]))
    try:
        same, changes = True, 0
        for asset, doc in truth["assets"].items():
            got: list[tuple[float, str]] = []
            for e in store.state_history(asset, limit=10_000_000):
                if not got or got[-1][1] != e["state"]:
                    got.append((e["at"], e["state"]))
            changes += len(got)
            if got != [(t["at"], t["state"]) for t in doc["transitions"]]:
                _LOG.error("asset %s: ledger %s differs from the truth %s", asset, got, doc["transitions"])
                same = False
        tickets, total = store.list(limit=100_000)
    finally:
        store.close()
    if sorted((t["subject"], t["fault"], t["opened_at"]) for t in tickets) != sorted(
            (t["subject"], t["fault"], t["opened_at"]) for t in truth["tickets"]):
        _LOG.error("tickets differ from the truth")
        same = False
    return same, total, changes


def one_run(a: argparse.Namespace, paths: Paths, data_dir: Path, truth: dict[str, Any],
            profile: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "gateway", "replay", str(paths.stream), "--config", str(paths.config),
           "--data-dir", str(data_dir), "--batch", str(a.batch), "--tick-s", str(a.tick_s), "--log-level", "ERROR"]
    if profile is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [spy, "record", "-r", "100", "-f", "speedscope", "-o", str(profile), "--", *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _LOG.info("replay running as PID %d (for py-spy: py-spy top --pid %d)", proc.pid, proc.pid)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS and CPU
    process_s = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise RuntimeError(f"replay exited with {proc.returncode}:\n{err[-3000:]}")
    record = json.loads((data_dir / "replay.json").read_text())
    same, tickets, changes = check_truth(data_dir, truth)
    _LOG.debug("%s", out)
    return {
        "readings": record["records"], "accepted": record["accepted"], "wall_s": record["wall_s"],
        "readings_per_s": record["records"] / record["wall_s"], "process_s": process_s,
        "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "tickets": tickets,
        "state_changes": changes, "truth": "yes" if same else "NO", "data_mb": _size(data_dir) / 1e6,
        "batch": a.batch, "tick_s": a.tick_s, "nproc": os.cpu_count(),
    }


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def table(rows: list[dict[str, Any]]) -> str:
    head = "| run | " + " | ".join(title for _, title, _ in COLS) + " |"
    lines = [head, "|" + "---|" * (len(COLS) + 1)]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | " + " | ".join(fmt.format(r[k]) for k, _, fmt in COLS) + " |")
    if len(rows) > 1:
        med = [fmt.format(type(rows[0][k])(statistics.median(r[k] for r in rows)))
               if isinstance(rows[0][k], int | float) else "-" for k, _, fmt in COLS]
        lines.append("| **median** | " + " | ".join(med) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stream", type=Path, default=Path(tempfile.gettempdir()) / "fm-bench-month.jsonl",
                   help="cache of the generated stream; its site file, config and truth go beside it")
    p.add_argument("--devices", default=DEFAULT_DEVICES, help=f"KIND=N,... (default {DEFAULT_DEVICES})")
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--interval", type=int, default=60, help="seconds between readings of a device (default 60)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--regenerate", action="store_true", help="generate the stream even if cached")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--tick-s", type=float, default=300.0)
    p.add_argument("--target", type=float, default=50_000.0, help="readings/s to report against (default 50,000)")
    p.add_argument("--profile", type=Path, help="one more run under py-spy, written here (speedscope JSON)")
    p.add_argument("--json", type=Path, help="append one JSON line per run")
    p.add_argument("--keep", action="store_true", help="keep the replayed data folders")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    opts = MonthOptions(devices=tuple(parse_devices(a.devices).items()), days=a.days, interval_s=a.interval,
                        seed=a.seed, tick_s=a.tick_s)
    paths = paths_for(a.stream.resolve())
    ensure_stream(opts, paths, a.regenerate)
    truth = json.loads(paths.truth.read_text())
    base = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    rows: list[dict[str, Any]] = []
    code = 0
    try:
        for run in range(1, a.runs + 1):
            try:
                row = one_run(a, paths, base / f"run{run}", truth)
            except RuntimeError as exc:
                _LOG.error("run %d failed: %s", run, exc)
                code = 1
                continue
            rows.append(row)
            _LOG.info("run %d: %.0f readings/s, %.1f s, %.1f MB peak RSS", run, row["readings_per_s"],
                      row["wall_s"], row["rss_mb"])
            if row["truth"] != "yes":
                code = 1
            if a.json:
                with open(a.json, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"run": run, "stream": str(paths.stream), **row}) + "\n")
        if a.profile:
            one_run(a, paths, base / "profile", truth, profile=a.profile)
            _LOG.info("profile written to %s (open it in speedscope.app)", a.profile)
    finally:
        if a.keep:
            _LOG.info("kept %s", base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    if rows:
        sys.stdout.write(f"stream: {paths.stream} ({truth['counts']['readings']:,} readings, "
                         f"{len(truth['assets'])} devices, {a.days:g} days)\n\n{table(rows)}\n\n")
        best = statistics.median(r["readings_per_s"] for r in rows)
        verdict = "met" if best >= a.target else "NOT met"
        sys.stdout.write(f"target {a.target:,.0f} readings/s: {verdict} (median {best:,.0f})\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
