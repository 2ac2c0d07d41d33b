#!/usr/bin/env python3
"""Month-long recorded streams for ``gateway replay``, and what the gateway must make of them.

A live site needs a month to show a month's intact rates; a generated month replays in a
minute. This writes four files: the stream (JSON lines as ``gateway replay`` reads them:
``{"topic", "payload", "received_at"}``), the site file binding every device to an asset
(lamps on a fixed schedule, so day and night are exact), a gateway configuration naming
the site, and the ground truth: per asset the state changes the gateway's ledger must
record, the tickets it must open, and the month's time-weighted intact rates.

The truth is worked out here from what was injected, with a small model of the contract's
rules (debounce, heartbeat, sweeps), not by running the gateway's code, so a replay checks
the gateway against an independent account. See README.md beside this file for the flags.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The sim_* modules beside this file are plain scripts, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_args import positive, whole
from sim_bad import BAD_CASES, bad_message
from sim_site import asset_for, build_fleet, parse_devices, site_toml, write_atomic
from sim_values import (
    CATEGORY,
    DEFAULT_LATITUDE,
    DEFAULT_LONGITUDE,
    DEFAULT_TIMEZONE,
    DeviceState,
    LampSchedule,
    reading,
    reading_topic,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_DEVICES = "streetlight=80,fire_extinguisher=10,drain_level=10"
DEFAULT_START = "2026-11-01T00:00:00+08:00"

#: The gateway's defaults (CONTRACT.md, gateway/sensors): the truth assumes a configuration
#: that leaves them alone.
DEBOUNCE_N = 2
DEBOUNCE_S = 60.0
HEARTBEAT_MISSES = 3
HEARTBEAT_S: dict[str, float] = {
    "streetlight": 60.0,
    "fire_extinguisher": 3600.0,
    "fire_hydrant": 600.0,
    "smoke_detector": 3600.0,
    "drain_level": 600.0,
}
#: Which bad payload is refused for which reason (CONTRACT.md's dead-letter reasons).
BAD_REASON: dict[str, str] = {
    "invalid_json": "bad_json",
    "json_array": "schema",
    "missing_field": "schema",
    "wrong_type": "schema",
    "negative": "schema",
    "oversized": "too_large",
    "bad_segment": "bad_topic",
    "unknown_kind": "unknown_kind",
}
UNKNOWN, INTACT, FAULTY = "unknown", "intact", "faulty"
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class Window:
    """An injected event: ``what`` happens to ``device`` from ``start`` (inclusive) to ``end``."""

    what: str  # lamp_out | cover_displaced | pressure_low | silent
    device: str
    asset: str
    start: float
    end: float

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class MonthOptions:
    """Everything that decides a generated month; the same options give the same files."""

    site: str = "demo"
    prefix: str = "fm"
    devices: tuple[tuple[str, int], ...] = tuple(parse_devices(DEFAULT_DEVICES).items())
    interval_s: int = 60
    start: float = datetime.fromisoformat(DEFAULT_START).timestamp()
    days: float = 30.0
    seed: int = 1
    timezone: str = DEFAULT_TIMEZONE
    lamp_schedule: str = "18:00-06:00"
    lamp_failures: int = 5
    lamp_hours: tuple[float, float] = (1.0, 6.0)
    offline: int = 2
    offline_hours: float = 24.0
    cover_events: int = 1
    cover_hours: tuple[float, float] = (0.25, 4.0)
    pressure_faults: int = 0
    pressure_hours: tuple[float, float] = (1.0, 24.0)
    duplicates: int = 0
    bad_payloads: int = 0
    tick_s: float = 300.0

    @property
    def end(self) -> float:
        return self.start + self.days * DAY


@dataclass(frozen=True)
class Paths:
    stream: Path
    site_file: Path
    truth: Path
    config: Path


@dataclass
class AssetTruth:
    """The contract's rules for one asset, as the ledger must apply them (an independent model).

    A fault is confirmed at the ``DEBOUNCE_N``-th consecutive failing reading once those
    readings span ``DEBOUNCE_S``, and cleared by as many healthy ones; a device silent past
    its heartbeat times the misses is swept at the next periodic tick and its asset becomes
    unknown until it reports again.
    """

    asset: str
    device: str
    kind: str
    category: str
    limit_s: float
    transitions: list[tuple[float, str]] = field(default_factory=list)
    state: str = UNKNOWN
    active: set[str] = field(default_factory=set)
    failing: dict[str, tuple[float, int]] = field(default_factory=dict)
    healing: dict[str, tuple[float, int]] = field(default_factory=dict)
    last_seen: float | None = None
    online: bool = False
    tickets: list[tuple[str, str, float]] = field(default_factory=list)  # (subject, fault, opened at)
    _ticketed: set[tuple[str, str]] = field(default_factory=set)

    def _to(self, at: float, state: str) -> None:
        if state != self.state:
            self.transitions.append((at, state))
            self.state = state

    def _ticket(self, subject: str, fault: str, at: float) -> None:
        """Only the first opening is a new ticket: later ones are occurrences or rework of it."""
        if (subject, fault) not in self._ticketed:
            self._ticketed.add((subject, fault))
            self.tickets.append((subject, fault, at))

    def reading(self, t: float, failing_now: frozenset[str]) -> None:
        self.last_seen, self.online = t, True
        old_active = frozenset(self.active)
        failing: dict[str, tuple[float, int]] = {}
        for code in failing_now:
            if code in old_active:
                continue
            since, count = self.failing.get(code, (t, 0))
            if count + 1 >= DEBOUNCE_N and t - since >= DEBOUNCE_S:
                self.active.add(code)
                self._ticket(f"asset:{self.asset}", code, t)
            else:
                failing[code] = (since, count + 1)
        healing: dict[str, tuple[float, int]] = {}
        for code in old_active - failing_now:
            since, count = self.healing.get(code, (t, 0))
            if count + 1 >= DEBOUNCE_N and t - since >= DEBOUNCE_S:
                self.active.discard(code)
            else:
                healing[code] = (since, count + 1)
        self.failing, self.healing = failing, healing
        self._to(t, FAULTY if self.active else INTACT)

    def sweep_due(self, before: float, tick_s: float) -> float | None:
        """The periodic tick (a multiple of ``tick_s``) that finds the device silent, if before ``before``.

        Ticks run after every message received up to their instant, so a reading at the
        tick's own time still counts as heard.
        """
        if not self.online or self.last_seen is None:
            return None
        tick = (math.floor((self.last_seen + self.limit_s) / tick_s) + 1) * tick_s
        return tick if tick < before else None

    def silent(self, at: float) -> None:
        self.online = False
        self._ticket(f"device:{self.device}", "device_lost", at)
        self._to(at, UNKNOWN)

    def seconds(self, start: float, end: float) -> dict[str, float]:
        """Time in each state within ``[start, end)``; nothing before the asset entered service."""
        out = {INTACT: 0.0, FAULTY: 0.0, UNKNOWN: 0.0}
        for i, (at, state) in enumerate(self.transitions):
            until = self.transitions[i + 1][0] if i + 1 < len(self.transitions) else end
            a, b = max(at, start), min(until, end)
            if b > a:
                out[state] += b - a
        return out


def lit_windows(schedule: LampSchedule, start: float, end: float) -> list[tuple[float, float]]:
    """The spans of ``[start, end)`` in which a lamp on ``schedule`` should be lit."""
    tz = schedule.tz
    day = datetime.fromtimestamp(start, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, tz).date()
    out = []
    while day <= last:
        on = datetime.combine(day, schedule.on, tz)
        off = datetime.combine(day if schedule.off > schedule.on else day + timedelta(days=1), schedule.off, tz)
        a, b = max(on.timestamp(), start), min(off.timestamp(), end)
        if b > a:
            out.append((a, b))
        day += timedelta(days=1)
    return out


def _span(rng: random.Random, hours: tuple[float, float]) -> float:
    return float(round(rng.uniform(*hours) * HOUR))


def plan(opts: MonthOptions, devices: list[DeviceState], schedule: LampSchedule) -> list[Window]:
    """Choose the failures: each on a device of its own, so every failure is one story."""
    rng = random.Random(f"{opts.seed}/month-plan")
    start, end = opts.start, opts.end
    by_kind: dict[str, list[DeviceState]] = {}
    for d in devices:
        by_kind.setdefault(d.kind, []).append(d)
    windows: list[Window] = []
    used: set[str] = set()

    def pick(kind: str, n: int, flag: str) -> list[DeviceState]:
        pool = by_kind.get(kind, [])
        if n > len(pool):
            raise ValueError(f"{flag} {n}: only {len(pool)} {kind} device(s) in --devices")
        chosen = rng.sample(pool, n)
        used.update(d.device for d in chosen)
        return chosen

    def asset(d: DeviceState) -> str:
        return asset_for(d.kind, d.index)[0]

    nights = [w for w in lit_windows(schedule, start, end) if w[1] - w[0] >= 2 * HOUR]
    lamps = pick("streetlight", opts.lamp_failures, "--lamp-failures")
    if lamps and not nights:
        raise ValueError("--lamp-failures: the period has no night of at least 2 h under --lamp-schedule")
    for d in lamps:
        a, b = rng.choice(nights)
        begin = float(round(rng.uniform(a, b - HOUR)))  # at least an hour of failing readings
        windows.append(Window("lamp_out", d.device, asset(d), begin, begin + _span(rng, opts.lamp_hours)))
    for kind, n, flag, what, hours in (
        ("drain_level", opts.cover_events, "--cover-events", "cover_displaced", opts.cover_hours),
        ("fire_extinguisher", opts.pressure_faults, "--pressure-faults", "pressure_low", opts.pressure_hours),
    ):
        for d in pick(kind, n, flag):
            length = _span(rng, hours)
            begin = float(round(rng.uniform(start, max(start, end - length))))
            windows.append(Window(what, d.device, asset(d), begin, begin + length))
    others = [d for d in devices if d.device not in used]
    if opts.offline > len(others):
        raise ValueError(f"--offline {opts.offline}: only {len(others)} device(s) left without another failure")
    length = min(opts.offline_hours * HOUR, (end - start) / 2)
    for d in rng.sample(others, opts.offline):
        margin = 2 * opts.interval_s
        begin = float(round(rng.uniform(start + margin, max(start + margin, end - length - margin))))
        windows.append(Window("silent", d.device, asset(d), begin, begin + length))
    return sorted(windows, key=lambda w: (w.start, w.device))


def _iso(t: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, tz).isoformat()


def _record(topic: str, payload: str, received_at: float) -> str:
    """One stream line; ``payload`` is already JSON (an object, or a string for bytes that are not one)."""
    return f'{{"topic":{json.dumps(topic)},"payload":{payload},"received_at":{received_at!r}}}\n'


def generate(opts: MonthOptions, paths: Paths, progress_s: float = 10.0) -> dict[str, Any]:
    """Write the stream, site file, configuration and truth; returns the summary."""
    tz = ZoneInfo(opts.timezone)
    schedule = LampSchedule.parse(opts.lamp_schedule, tz, DEFAULT_LATITUDE, DEFAULT_LONGITUDE)
    if schedule.sun:
        raise ValueError("--lamp-schedule: a month stream needs HH:MM-HH:MM, so day and night are exact")
    counts = dict(opts.devices)
    if counts.get("checkpoint"):
        raise ValueError("--devices: checkpoint readers are not simulated in month streams")
    devices, _ = build_fleet(counts, site=opts.site, born=opts.start, seed=opts.seed, schedule=schedule)
    if not devices:
        raise ValueError("--devices: no devices to simulate")
    windows = plan(opts, devices, schedule)
    by_device: dict[str, list[Window]] = {}
    for w in windows:
        by_device.setdefault(w.device, []).append(w)
    phase_rng = random.Random(f"{opts.seed}/phases")
    phases = {d.device: phase_rng.randrange(opts.interval_s) for d in devices}
    order = sorted(devices, key=lambda d: (phases[d.device], d.device))
    slots = math.ceil(opts.days * DAY / opts.interval_s)
    extra_rng = random.Random(f"{opts.seed}/extras")
    total = len(devices) * slots
    dup_at = set(extra_rng.sample(range(total), min(opts.duplicates, total)))
    bad_at = set(extra_rng.sample(range(total), min(opts.bad_payloads, total)))
    index = {d.device: i for i, d in enumerate(devices)}
    truth = {d.device: AssetTruth(asset_for(d.kind, d.index)[0], d.device, d.kind, CATEGORY[d.kind],
                                  HEARTBEAT_S[d.kind] * HEARTBEAT_MISSES) for d in devices}
    topics = {d.device: reading_topic(opts.prefix, opts.site, d.kind, d.device) for d in devices}
    first_at: float | None = None
    last_at = opts.start
    n_readings = n_dups = 0
    bad_cases: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    shown = time.monotonic()
    for path in (paths.stream, paths.site_file, paths.truth, paths.config):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.stream.with_name(f".{paths.stream.name}.part")
    with open(tmp, "w", encoding="utf-8") as out:
        for k in range(slots):
            base = opts.start + k * opts.interval_s
            lines: list[str] = []
            for d in order:
                t = base + phases[d.device]
                if t >= opts.end:
                    continue
                mine = by_device.get(d.device, ())
                if any(w.what == "silent" and w.covers(t) for w in mine):
                    continue
                failing, payload = _reading(d, t, mine, schedule)
                if first_at is None:
                    first_at = t
                    for a in truth.values():
                        a.transitions.append((t, UNKNOWN))
                a = truth[d.device]
                due = a.sweep_due(t, opts.tick_s)
                if due is not None:
                    a.silent(due)
                a.reading(t, failing)
                line = _record(topics[d.device], compact(payload), t)
                lines.append(line)
                n_readings += 1
                by_kind[d.kind] = by_kind.get(d.kind, 0) + 1
                slot = k * len(devices) + index[d.device]
                if slot in dup_at:
                    lines.append(line)  # a resend: the same bytes again (QoS 1 redelivery)
                    n_dups += 1
                if slot in bad_at:
                    case = BAD_CASES[sum(bad_cases.values()) % len(BAD_CASES)]
                    bad = bad_message(case, d, t, prefix=opts.prefix, site=opts.site)
                    lines.append(_record(bad.topic, json.dumps(bad.payload.decode("utf-8")), t))
                    bad_cases[case] = bad_cases.get(case, 0) + 1
                last_at = t
            out.writelines(lines)
            if time.monotonic() - shown >= progress_s:
                shown = time.monotonic()
                _LOGGER.info("%s: %d readings written, simulated up to %s", paths.stream, n_readings,
                             _iso(base, tz))
    tmp.replace(paths.stream)
    for a in truth.values():  # the last periodic tick, and the one at the end of the replay
        due = a.sweep_due(last_at, opts.tick_s)
        if due is not None:
            a.silent(due)
        elif a.online and a.last_seen is not None and last_at - a.last_seen > a.limit_s:
            a.silent(last_at)
    doc = _truth(opts, tz, truth, windows, first_at, last_at, n_readings, n_dups, bad_cases, by_kind)
    write_atomic(paths.truth, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    write_atomic(paths.site_file, site_toml(devices, [], site=opts.site, timezone=opts.timezone,
                                            latitude=DEFAULT_LATITUDE, longitude=DEFAULT_LONGITUDE,
                                            schedule=opts.lamp_schedule))
    write_atomic(paths.config, _config(opts, paths))
    return {"stream": str(paths.stream), "site_file": str(paths.site_file), "truth": str(paths.truth),
            "config": str(paths.config), **doc["counts"], "failures": len(windows), "tickets": len(doc["tickets"])}


def _reading(d: DeviceState, t: float, mine: Any, schedule: LampSchedule) -> tuple[frozenset[str], dict[str, Any]]:
    """The device's payload at ``t`` and the fault codes the gateway must see failing in it."""
    active = {w.what for w in mine if w.covers(t)}
    if d.kind == "streetlight" and "lamp_out" in active and schedule.lit(t):
        return frozenset(("lamp_out",)), reading(d.kind, d, t, fault=True)  # dark, or drawing ~0 A
    if d.kind == "drain_level" and "cover_displaced" in active:
        payload = reading(d.kind, d, t)
        payload["cover_open"], payload["cover_tilt_deg"] = True, round(d.rng.uniform(35.0, 80.0), 1)
        return frozenset(("cover_displaced",)), payload
    if d.kind == "fire_extinguisher" and "pressure_low" in active:
        return frozenset(("pressure_low",)), reading(d.kind, d, t, fault=True)  # 0.6 MPa
    return frozenset(), reading(d.kind, d, t)


def _truth(opts: MonthOptions, tz: ZoneInfo, truth: dict[str, AssetTruth], windows: list[Window],
           first_at: float | None, last_at: float, n_readings: int, n_dups: int, bad_cases: dict[str, int],
           by_kind: dict[str, int]) -> dict[str, Any]:
    start, end = opts.start, opts.end
    assets: dict[str, Any] = {}
    figures: dict[str, dict[str, float]] = {}
    for a in truth.values():
        secs = a.seconds(start, end)
        assets[a.asset] = {
            "device": a.device, "kind": a.kind, "category": a.category,
            "transitions": [{"at": at, "state": s, "local": _iso(at, tz)} for at, s in a.transitions],
            "seconds": secs,
        }
        f = figures.setdefault(a.category, {"assets": 0, INTACT: 0.0, FAULTY: 0.0, UNKNOWN: 0.0})
        f["assets"] += 1
        for state, s in secs.items():
            f[state] += s
    for f in figures.values():
        service = f[INTACT] + f[FAULTY] + f[UNKNOWN]
        known = f[INTACT] + f[FAULTY]
        f["in_service_s"] = service
        f["strict_intact_rate"] = f[INTACT] / service if service else None  # type: ignore[assignment]
        f["known_intact_rate"] = f[INTACT] / known if known else None  # type: ignore[assignment]
    tickets = sorted(({"subject": s, "fault": fault, "opened_at": at, "local": _iso(at, tz), "asset": a.asset,
                       "device": a.device} for a in truth.values() for s, fault, at in a.tickets),
                     key=lambda t: (t["opened_at"], t["subject"]))
    n_bad = sum(bad_cases.values())
    rejected: dict[str, int] = {}
    for case, n in bad_cases.items():
        rejected[BAD_REASON[case]] = rejected.get(BAD_REASON[case], 0) + n
    return {
        "format": 1,
        "options": {**asdict(opts), "devices": dict(opts.devices)},
        "site": opts.site,
        "prefix": opts.prefix,
        "timezone": opts.timezone,
        "period": {"from": start, "to": end, "from_local": _iso(start, tz), "to_local": _iso(end, tz)},
        "stream": {"first_at": first_at, "last_at": last_at},
        "rules": {
            "debounce_n": DEBOUNCE_N, "debounce_s": DEBOUNCE_S, "heartbeat_s": HEARTBEAT_S,
            "heartbeat_misses": HEARTBEAT_MISSES, "tick_s": opts.tick_s,
            "ticks": "at multiples of tick_s (epoch), after every message received up to that instant, "
                     "and once more at the last message's time",
        },
        "counts": {"records": n_readings + n_dups + n_bad, "readings": n_readings, "duplicates": n_dups,
                   "bad_payloads": n_bad, "by_kind": by_kind, "rejected": rejected, "bad_cases": bad_cases},
        "failures": [{**asdict(w), "from_local": _iso(w.start, tz), "to_local": _iso(w.end, tz)} for w in windows],
        "tickets": tickets,
        "assets": assets,
        "figures": figures,
    }


def _config(opts: MonthOptions, paths: Paths) -> str:
    return "\n".join((
        "# Generated by firmware-sim/sim_month.py. Replay the stream with:",
        f"#   gateway replay {paths.stream} --config {paths.config}",
        f"site = {json.dumps(opts.site)}",
        f"site_file = {json.dumps(str(paths.site_file.resolve()))}",
        "",
        "[mqtt]",
        f"topic_prefix = {json.dumps(opts.prefix)}",
        "",
    ))


def _hours(text: str) -> tuple[float, float]:
    """``2`` or ``1-6``: a fixed or a random number of hours."""
    lo, sep, hi = text.partition("-")
    try:
        a, b = float(lo), float(hi) if sep else float(lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected H or H-H (hours)") from None
    if not 0 < a <= b:
        raise argparse.ArgumentTypeError(f"{text!r}: hours must be > 0, low before high")
    return a, b



def build_parser() -> argparse.ArgumentParser:
    """The command line (flags are documented in README.md)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--out", type=Path, default=Path("month"), help="folder for the four files (default ./month)")
    add("--stream", type=Path, help="the stream file (default OUT/stream.jsonl)")
    add("--site-file", type=Path, help="the site file (default OUT/site.toml)")
    add("--truth", type=Path, help="the ground truth (default OUT/truth.json)")
    add("--config-file", type=Path, help="the gateway configuration (default OUT/gateway.toml)")
    add("--site", default="demo", help="site topic segment (default demo)")
    add("--prefix", default="fm", help="topic prefix (default fm)")
    add("--devices", default=DEFAULT_DEVICES, help=f"KIND=N,... (default {DEFAULT_DEVICES})")
    add("--interval", type=int, default=60, help="seconds between two readings of one device (default 60)")
    add("--start", default=DEFAULT_START, help=f"ISO 8601 start; no offset: local to --timezone ({DEFAULT_START})")
    add("--days", type=positive, default=30.0, help="length of the stream in days (default 30)")
    add("--seed", type=int, default=1, help="the same seed gives the same files (default 1)")
    add("--timezone", default=DEFAULT_TIMEZONE)
    add("--lamp-schedule", default="18:00-06:00", help="lamps' hours, HH:MM-HH:MM local (default 18:00-06:00)")
    add("--lamp-failures", type=whole, default=5, help="lamps that fail one night (default 5)")
    add("--lamp-hours", type=_hours, default=(1.0, 6.0), help="how long a lamp failure lasts, H or H-H (1-6)")
    add("--offline", type=whole, default=2, help="devices that fall silent (default 2)")
    add("--offline-hours", type=positive, default=24.0, help="how long they stay silent (default 24)")
    add("--cover-events", type=whole, default=1, help="well covers left open (default 1)")
    add("--cover-hours", type=_hours, default=(0.25, 4.0), help="how long a cover stays open (0.25-4)")
    add("--pressure-faults", type=whole, default=0, help="extinguishers losing pressure (default 0)")
    add("--pressure-hours", type=_hours, default=(1.0, 24.0), help="how long until refilled (1-24)")
    add("--duplicates", type=whole, default=0, help="readings sent twice, same bytes (default 0)")
    add("--bad-payloads", type=whole, default=0, help="bad messages beside readings, cycling sim_bad's cases")
    add("--tick-s", type=positive, default=300.0, help="the replay's --tick-s the truth assumes (default 300)")
    add("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def options_from(args: argparse.Namespace) -> MonthOptions:
    """Validated options from parsed arguments; ValueError names what is wrong."""
    tz = ZoneInfo(args.timezone)
    moment = datetime.fromisoformat(args.start)
    start = (moment if moment.tzinfo else moment.replace(tzinfo=tz)).timestamp()
    if args.interval < 1:
        raise ValueError(f"--interval {args.interval}: must be a whole number of seconds >= 1")
    for name, value in (("--site", args.site), ("--prefix", args.prefix)):
        if not (1 <= len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in value)):
            raise ValueError(f"{name} {value!r}: segments must match [A-Za-z0-9_.-]{{1,64}}")
    return MonthOptions(
        site=args.site, prefix=args.prefix, devices=tuple(parse_devices(args.devices).items()),
        interval_s=args.interval, start=start, days=args.days, seed=args.seed, timezone=args.timezone,
        lamp_schedule=args.lamp_schedule, lamp_failures=args.lamp_failures, lamp_hours=args.lamp_hours,
        offline=args.offline, offline_hours=args.offline_hours, cover_events=args.cover_events,
        cover_hours=args.cover_hours, pressure_faults=args.pressure_faults, pressure_hours=args.pressure_hours,
        duplicates=args.duplicates, bad_payloads=args.bad_payloads, tick_s=args.tick_s,
    )


def paths_from(args: argparse.Namespace) -> Paths:
    out: Path = args.out
    return Paths(args.stream or out / "stream.jsonl", args.site_file or out / "site.toml",
                 args.truth or out / "truth.json", args.config_file or out / "gateway.toml")


def iter_stream(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a stream file, for tests and tools."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def main(argv: list[str] | None = None, stdout: TextIO | None = None) -> int:
    """Entry point; 0 when the files are written, 2 for a bad argument (one line naming it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        opts = options_from(args)
        paths = paths_from(args)
        t0 = time.monotonic()
        summary = generate(opts, paths)
    except (ValueError, ZoneInfoNotFoundError) as err:
        parser.error(str(err))
    summary["seconds"] = round(time.monotonic() - t0, 1)
    (stdout or sys.stdout).write(json.dumps(summary, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
