"""``gateway replay`` against the month generator's ground truth (firmware-sim/sim_month.py).

The generator works out, from what it injected and with its own small model of the
contract's rules, the ledger, tickets and intact rates the gateway must produce; these tests
replay its stream through the gateway's real pipeline and compare. Three simulated days of
20 devices keep it to seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.commitments.model import Period
from gateway.commitments.monthly import Commitments
from gateway.config import load_settings
from gateway.devservers import Influxd, free_port
from gateway.replay import InfluxStalled, ReplayError, ReplaySummary, default_data_dir, replay
from gateway.site import load_site
from gateway.tickets import TicketStore

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware-sim"))
from sim_month import MonthOptions, Paths, generate  # noqa: E402

TICK_S = 300.0


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    out = tmp_path_factory.mktemp("month")
    paths = Paths(out / "stream.jsonl", out / "site.toml", out / "truth.json", out / "gateway.toml")
    opts = MonthOptions(devices=(("streetlight", 14), ("fire_extinguisher", 3), ("drain_level", 3)), days=3.0, seed=7,
                        lamp_failures=3, offline=2, cover_events=1, pressure_faults=1, duplicates=5, bad_payloads=8,
                        tick_s=TICK_S)
    generate(opts, paths)
    return paths


@pytest.fixture(scope="module")
def truth(month: Paths) -> dict[str, Any]:
    return json.loads(month.truth.read_text())


@pytest.fixture(scope="module")
def replayed(month: Paths, tmp_path_factory: pytest.TempPathFactory) -> ReplaySummary:
    return _replay(month, tmp_path_factory.mktemp("replay") / "data")


def _replay(month: Paths, data_dir: Path | None, environ: dict[str, str] | None = None, stream: Path | None = None,
            **kw: Any) -> ReplaySummary:
    settings = load_settings(month.config, environ or {})
    site = load_site(settings.site_file)
    return replay(settings, site, stream or month.stream, data_dir, tick_s=TICK_S, **kw)


def _store(data_dir: Path | str) -> TicketStore:
    from zoneinfo import ZoneInfo

    return TicketStore(Path(data_dir) / "gateway.db", ZoneInfo("Asia/Shanghai"))


def _changes(store: TicketStore, asset: str) -> list[tuple[float, str]]:
    """The ledger as state changes: entries whose state differs from the one before."""
    out: list[tuple[float, str]] = []
    for e in store.state_history(asset, limit=1_000_000):
        if not out or out[-1][1] != e["state"]:
            out.append((e["at"], e["state"]))
    return out


def _ledgers(data_dir: Path | str, assets: list[str]) -> dict[str, list[tuple[float, str]]]:
    store = _store(data_dir)
    try:
        return {a: _changes(store, a) for a in assets}
    finally:
        store.close()


def assert_ledger_matches(truth: dict[str, Any], data_dir: Path | str, unknown_tolerance_s: float) -> None:
    """Same states in the same order; exact times for intact and faulty, within a tick for unknown."""
    got_all = _ledgers(data_dir, list(truth["assets"]))
    problems = []
    for asset, want_doc in truth["assets"].items():
        want = [(t["at"], t["state"]) for t in want_doc["transitions"]]
        got = got_all[asset]
        if [s for _, s in got] != [s for _, s in want]:
            problems.append(f"{asset}: states {got} != {want}")
            continue
        for i, ((g_at, state), (w_at, _)) in enumerate(zip(got, want, strict=True)):
            tolerance = unknown_tolerance_s if state == "unknown" and i > 0 else 0.0
            if abs(g_at - w_at) > tolerance:
                problems.append(f"{asset}: {state} at {g_at}, expected {w_at} (± {tolerance:g} s)")
    assert not problems, "\n".join(problems)


def test_ledger_matches_the_generators_truth(truth: dict[str, Any], replayed: ReplaySummary) -> None:
    assert_ledger_matches(truth, replayed.data_dir, unknown_tolerance_s=TICK_S)
    # The generator models the tick grid (multiples of --tick-s), so in fact every time is exact.
    want = {a: [(t["at"], t["state"]) for t in d["transitions"]] for a, d in truth["assets"].items()}
    assert _ledgers(replayed.data_dir, list(want)) == want
    faulty = {a for a, d in truth["assets"].items() if any(t["state"] == "faulty" for t in d["transitions"])}
    assert len(faulty) == 3 + 1 + 1  # three lamps, a cover, an extinguisher: the test covers every story


def test_tickets_match_the_failures(truth: dict[str, Any], replayed: ReplaySummary) -> None:
    store = _store(replayed.data_dir)
    try:
        tickets, total = store.list(limit=1000)
    finally:
        store.close()
    got = sorted((t["subject"], t["fault"], t["opened_at"]) for t in tickets)
    assert got == sorted((t["subject"], t["fault"], t["opened_at"]) for t in truth["tickets"])
    lamp_failures = {f["asset"] for f in truth["failures"] if f["what"] == "lamp_out"}
    assert len(lamp_failures) == 3
    lamp_tickets = [t for t in tickets if t["fault"] == "lamp_out"]
    assert sorted(t["asset"] for t in lamp_tickets) == sorted(lamp_failures)  # one ticket per lamp failure
    silent = {f["device"] for f in truth["failures"] if f["what"] == "silent"}
    assert {t["device"] for t in tickets if t["fault"] == "device_lost"} == silent
    assert replayed.tickets_opened == total == len(truth["tickets"])


def test_summary_counts_match_the_stream(truth: dict[str, Any], replayed: ReplaySummary) -> None:
    counts = truth["counts"]
    assert replayed.records == counts["records"]
    assert replayed.accepted == counts["readings"]
    assert replayed.accepted_by_kind == counts["by_kind"]
    assert replayed.duplicates == counts["duplicates"] == 5
    assert replayed.rejected == counts["rejected"] and sum(replayed.rejected.values()) == counts["bad_payloads"] > 0
    assert replayed.bad_lines == 0
    assert replayed.first_at == truth["stream"]["first_at"] and replayed.last_at == truth["stream"]["last_at"]
    changes = sum(len(a["transitions"]) for a in truth["assets"].values())
    assert replayed.state_changes == changes
    assert replayed.written == 0 and replayed.points > replayed.accepted  # readings and asset states, not kept
    record = json.loads((Path(replayed.data_dir) / "replay.json").read_text())
    assert record["records"] == replayed.records and record["stream"] == str(replayed.stream)


def _figures(data_dir: str, truth: dict[str, Any]) -> dict[str, float]:
    """Time-weighted strict intact rate per category over the period, from the replayed ledger alone."""
    start, end = truth["period"]["from"], truth["period"]["to"]
    store = _store(data_dir)
    intact: dict[str, float] = {}
    service: dict[str, float] = {}
    try:
        for asset, doc in truth["assets"].items():
            entries = store.state_history(asset, limit=1_000_000)
            for i, e in enumerate(entries):
                until = entries[i + 1]["at"] if i + 1 < len(entries) else end
                span = max(0.0, min(until, end) - max(e["at"], start))
                service[doc["category"]] = service.get(doc["category"], 0.0) + span
                if e["state"] == "intact":
                    intact[doc["category"]] = intact.get(doc["category"], 0.0) + span
    finally:
        store.close()
    return {c: intact.get(c, 0.0) / s for c, s in service.items()}


def test_month_figures_from_the_replayed_folder(truth: dict[str, Any], replayed: ReplaySummary) -> None:
    got = _figures(replayed.data_dir, truth)
    want = {c: f["strict_intact_rate"] for c, f in truth["figures"].items()}
    assert got == pytest.approx(want, abs=1e-12)
    assert all(0.8 < v < 1.0 for v in got.values())  # every category had some failure


def test_the_commitment_engine_on_the_replayed_folder_agrees_with_the_truth(month: Paths, truth: dict[str, Any],
                                                                            replayed: ReplaySummary) -> None:
    """The intact-rate commitments as a manager would see them, computed by the real engine."""
    period = Period(truth["period"]["from"], truth["period"]["to"])
    commitments = Commitments(Path(replayed.data_dir) / "gateway.db", load_site(month.site_file))
    try:
        report = commitments.compute(period, period.end + 1, "replayed")
    finally:
        commitments.close()
    got = {r["id"]: r["value"] for r in report["results"] if r["kind"] == "intact_rate"}
    want = {f"{c}_intact": f["strict_intact_rate"] for c, f in truth["figures"].items()}
    assert got == pytest.approx(want, abs=1e-12)


def test_same_stream_twice_gives_identical_ledgers(month: Paths, replayed: ReplaySummary, tmp_path: Path) -> None:
    again = _replay(month, tmp_path / "again", batch=97)  # another batch size too: cut at ticks, it cannot matter

    def dump(data_dir: str | Path) -> tuple[list[Any], ...]:
        db = sqlite3.connect(Path(data_dir) / "gateway.db")
        try:
            return tuple(db.execute(sql).fetchall() for sql in (
                "SELECT * FROM asset_states ORDER BY id",
                "SELECT subject, asset, device, fault, priority, status, title, opened_at, respond_by, resolve_by,"
                " occurrences, last_occurrence_at, fault_cleared_at, self_cleared, escalations"
                " FROM tickets ORDER BY id",
                "SELECT at, type, title, text, data FROM events ORDER BY id",
            ))
        finally:
            db.close()

    first, second = dump(replayed.data_dir), dump(again.data_dir)
    assert first[0] and first[1]
    assert first == second
    assert again.accepted == replayed.accepted and again.rejected == replayed.rejected


def test_bad_lines_are_reported_with_their_numbers_and_the_replay_goes_on(
        month: Paths, truth: dict[str, Any], tmp_path: Path) -> None:
    lines = month.stream.read_bytes().splitlines(keepends=True)
    junk = [
        b"this is not json\n",
        b"[1, 2, 3]\n",
        b'{"payload": {"on": true}, "received_at": 1}\n',
        b'{"topic": "fm/demo/streetlight/lamp-0001/reading", "payload": 42, "received_at": 1793462500}\n',
        b'{"topic": "fm/demo/streetlight/lamp-0001/reading", "payload": {}, "received_at": "yesterday"}\n',
        b'{"topic": "fm/demo/streetlight/lamp-0001/reading", "payload": {}, "received_at": -5}\n',
        b'{"topic": "fm/demo/streetlight/lamp-0001/re\xff\xfe", "payload": {}, "received_at": 1}\n',
        b'{"topic": "fm/demo/streetlight/lamp-0001/reading", "payload": {"on": tr\n',
    ]
    expected = [1, 10, 500, 20_000, 40_001, 60_000, 70_000, len(lines) + 7]  # the junk's 1-based line numbers
    out = list(lines)
    for number, line in zip(expected, junk, strict=True):
        out.insert(number - 1, line)
    out.insert(300, b"\n")  # blank lines are not records, and not worth a complaint
    expected = [n if n <= 300 else n + 1 for n in expected]
    stream = tmp_path / "with-junk.jsonl"
    stream.write_bytes(b"".join(out))
    summary = _replay(month, tmp_path / "data", stream=stream)
    assert summary.bad_lines == len(junk)
    assert [b.number for b in summary.bad_examples] == expected
    reasons = [b.reason for b in summary.bad_examples]
    assert reasons[0].startswith("not JSON") and "JSON object" in reasons[1] and reasons[2].startswith("topic")
    assert reasons[3].startswith("payload") and reasons[4].startswith("received_at")
    assert summary.records == truth["counts"]["records"]  # every good line went through
    assert_ledger_matches(truth, summary.data_dir, unknown_tolerance_s=TICK_S)
    text = summary.text()
    assert "bad lines:         8" in text and f"  line {expected[0]}: not JSON" in text


def test_influx_gets_every_reading_exactly_once(month: Paths, truth: dict[str, Any], influxd: Influxd,
                                                tmp_path: Path) -> None:
    db = "t_replay_once"
    environ = {"GATEWAY_INFLUX_URL": influxd.url, "GATEWAY_INFLUX_API": "v1", "GATEWAY_INFLUX_DB": db}
    summary = _replay(month, tmp_path / "data", environ, influx=True)
    by_kind = truth["counts"]["by_kind"]
    for measurement, field in (("streetlight", "current_a"), ("fire_extinguisher", "pressure_mpa"),
                               ("drain_level", "level_m")):
        assert influxd.count(measurement, field, db) == by_kind[measurement], measurement
    # Each point the pipeline committed was written once, none is left, none was dead-lettered.
    assert summary.written == summary.points == summary.accepted + _ledger_entries(summary.data_dir)
    assert summary.left_in_outbox == 0
    outbox = sqlite3.connect(Path(summary.data_dir) / "outbox.db")
    try:
        assert outbox.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        assert outbox.execute("SELECT count(*) FROM dead_letters WHERE reason = 'influx_rejected'").fetchone()[0] == 0
    finally:
        outbox.close()
    assert_ledger_matches(truth, summary.data_dir, unknown_tolerance_s=TICK_S)


def test_influx_not_answering_stops_the_replay_before_it_starts(month: Paths, tmp_path: Path) -> None:
    environ = {"GATEWAY_INFLUX_URL": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(InfluxStalled, match="does not answer"):
        _replay(month, tmp_path / "d", environ, influx=True)
    assert not (tmp_path / "d").exists()


def test_a_stream_without_records_still_leaves_a_readable_folder(month: Paths, tmp_path: Path) -> None:
    stream = tmp_path / "nothing.jsonl"
    stream.write_text("\n# a comment is not a record\n\n")
    summary = _replay(month, None, stream=stream)
    assert summary.data_dir == str(tmp_path / "nothing.replay")
    assert (summary.records, summary.bad_lines, summary.first_at, summary.ticks) == (0, 1, None, 0)
    assert [b.number for b in summary.bad_examples] == [2]
    assert _ledgers(summary.data_dir, ["L-0001"])["L-0001"][0][1] == "unknown"  # in service, never heard from


def _ledger_entries(data_dir: str) -> int:
    db = sqlite3.connect(Path(data_dir) / "gateway.db")
    try:
        return int(db.execute("SELECT count(*) FROM asset_states").fetchone()[0])
    finally:
        db.close()


def test_without_influx_lines_are_not_kept_but_dedupe_keys_and_dead_letters_are(replayed: ReplaySummary) -> None:
    db = sqlite3.connect(Path(replayed.data_dir) / "outbox.db")
    try:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM seen").fetchone()[0] > 0  # the last hour's keys, pruned as live
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == sum(replayed.rejected.values())
    finally:
        db.close()


def test_the_data_folder_must_be_new_or_empty(month: Paths, tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("x")
    with pytest.raises(ReplayError, match="not empty"):
        _replay(month, used)
    live = tmp_path / "live"
    live.mkdir()
    (live / "gateway.db").write_text("")
    with pytest.raises(ReplayError, match="live gateway's data_dir"):
        _replay(month, live, {"GATEWAY_DATA_DIR": str(live)})
    empty_live = tmp_path / "empty-live"
    empty_live.mkdir()
    assert _replay(month, empty_live, {"GATEWAY_DATA_DIR": str(empty_live)}).records > 0
    stream = tmp_path / "s.jsonl"
    shutil.copy(month.stream, stream)
    assert default_data_dir(stream) == tmp_path / "s.replay"
    (tmp_path / "s.replay").mkdir()
    assert default_data_dir(stream) == tmp_path / "s.replay"  # an empty one will do
    (tmp_path / "s.replay" / "gateway.db").write_text("")
    assert default_data_dir(stream) == tmp_path / "s.replay-2"


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run([sys.executable, "-m", "gateway", "replay", *map(str, args)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_replays_and_prints_the_summary(month: Paths, truth: dict[str, Any], tmp_path: Path) -> None:
    r = _cli(month.stream, "--config", month.config, "--data-dir", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    counts = truth["counts"]
    for expected in (f"readings:          {counts['records']:,}", f"accepted:          {counts['readings']:,}",
                     "duplicates:        5", "bad lines:         0", f"tickets opened:    {len(truth['tickets'])}",
                     "state transitions:", "simulated span:    2026-11-01T00:00:00+08:00", "wall seconds:",
                     "readings/s:", "InfluxDB:          off"):
        assert expected in r.stdout, (expected, r.stdout)
    assert "Traceback" not in r.stderr
    assert_ledger_matches(truth, tmp_path / "d", unknown_tolerance_s=TICK_S)


def test_cli_bad_site_file_exits_2(month: Paths, tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(month.site_file.read_text().replace('category = "lighting"', 'category = "lightning"', 1)
                    + '\n[faults.no_such_fault]\npriority = "urgent"\n')
    config = tmp_path / "gateway.toml"
    config.write_text(f'site = "demo"\nsite_file = {json.dumps(str(site))}\n')
    r = _cli(month.stream, "--config", config, "--data-dir", tmp_path / "d")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr  # every problem, one line each
    assert all(line.startswith("config error: ") for line in lines)
    assert "unknown category" in r.stderr and "faults.no_such_fault: unknown fault" in r.stderr
    assert not (tmp_path / "d").exists()


def test_cli_refuses_a_used_folder_with_one_line(month: Paths, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("")
    r = _cli(month.stream, "--config", month.config, "--data-dir", tmp_path / "d")
    assert r.returncode == 2
    assert r.stderr.startswith("replay error: --data-dir") and r.stderr.count("\n") == 1
