#!/usr/bin/env python3
"""Facility device simulator: streetlights, fire equipment, drain wells and patrol readers.

Publishes realistic readings and taps over MQTT exactly as CONTRACT.md describes, with
optional faults, bad messages and duplicates, so the gateway can be exercised end to
end without hardware. See README.md beside this file for usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import ssl
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime, tzinfo
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The sim_* modules beside this file are plain scripts, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_args import positive, whole
from sim_mqtt import BrokerUrl, MqttPublisher, parse_mqtt_url
from sim_patrol import make_guards
from sim_raw import BurstError, burst, streetlight_burst
from sim_run import Options, Simulation
from sim_scenario import ScenarioError
from sim_scenario import load as load_scenario
from sim_scene import ScenarioSimulation
from sim_site import Checkpoint, build_fleet, manifest, parse_devices, patrol_toml, site_toml, write_atomic
from sim_values import (
    DEFAULT_LATITUDE,
    DEFAULT_LONGITUDE,
    DEFAULT_TIMEZONE,
    DeviceState,
    LampSchedule,
    status_topic,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_DEVICES = "streetlight=10,fire_extinguisher=5,fire_hydrant=2,smoke_detector=5,drain_level=3,checkpoint=2"
BURST_DEVICES = "streetlight=1000"
PER_DEVICE_WARN = 500


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1")
    return value



def _window(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: must be 1..65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the command line parser (flags are documented in README.md)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add(
        "--mqtt-url",
        default=os.environ.get("GATEWAY_MQTT_URL", "mqtt://127.0.0.1:1883"),
        help="mqtt://[user:pass@]host:port or mqtts://... (default $GATEWAY_MQTT_URL or 127.0.0.1:1883)",
    )
    add("--ca-file", help="CA bundle for mqtts://")
    add("--site", default=os.environ.get("GATEWAY_SITE", "demo"), help="site topic segment (default demo)")
    add("--prefix", default="fm", help="topic prefix (default fm)")
    add("--devices", help=f"KIND=N,... (default {DEFAULT_DEVICES}; with --burst {BURST_DEVICES})")
    add("--connections", choices=("shared", "per-device"), default="shared")
    add("--qos", type=int, choices=(0, 1, 2), default=1)
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--interval",
        type=positive,
        default=10.0,
        help="simulated seconds between two readings of one device (default 10)",
    )
    pace.add_argument("--rate", type=positive, help="total slots per real second across all devices")
    add("--count", type=whole, help="stop after N readings/taps (duplicates not counted)")
    add("--duration", type=positive, help="stop after S real seconds")
    add("--speed", type=positive, default=1.0, help="simulated clock runs X times real time")
    add("--start", help="simulated start time, ISO 8601 (default now); with --scenario HH:MM of the scenario clock")
    add("--timezone", default=DEFAULT_TIMEZONE)
    add("--latitude", type=float, default=DEFAULT_LATITUDE)
    add("--longitude", type=float, default=DEFAULT_LONGITUDE)
    add("--lamp-schedule", help="HH:MM-HH:MM local time, or 'sun' (photocell); default 18:00-06:00 or the scenario's")
    add("--scenario", help="run a scenario file (TOML): its site and its day of events; see README 'Scenarios'")
    add("--clock-origin", type=float, metavar="EPOCH",
        help="with --scenario: the real epoch at which the scenario clock reads --start (default: the run's start)")
    add("--ts-format", choices=("epoch", "rfc3339"), default="epoch")
    add("--no-ts", action="store_true", help="omit ts from every payload")
    add("--fault-ratio", type=_ratio, default=0.0)
    add("--bad-ratio", type=_ratio, default=0.0)
    add("--dup-ratio", type=_ratio, default=0.0)
    add("--tap-prob", type=_ratio, default=0.2, help="chance a reader slot produces a tap (default 0.2)")
    add("--seed", type=int, help="seed for reproducible values")
    add("--manifest", help="write the device list (JSON) to FILE")
    add("--site-file", help="write a TOML site file binding each device to an asset")
    add("--files-only", action="store_true", help="write --manifest/--site-file and exit")
    add("--burst", type=whole, help="raw-socket benchmark: N streetlight readings as fast as possible")
    add("--window", type=_window, default=1000, help="--burst: max unacknowledged PUBLISHes (default 1000)")
    add("--max-pending", type=int, default=10000, help="pause devices beyond this many unacked messages")
    add("--ack-timeout", type=positive, default=60.0, help="max wait for acks at the end (default 60)")
    add("--connect-timeout", type=positive, default=15.0)
    add("--progress", type=positive, default=10.0, help="seconds between progress log lines")
    add("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def _write_summary(summary: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()


def _run_burst(args: argparse.Namespace, url: BrokerUrl, devices: list[DeviceState], stop: threading.Event) -> int:
    """``--burst``: the raw publisher; rate is acked messages per second."""
    lamps = [d.device for d in devices if d.kind == "streetlight"]
    if not lamps:
        _LOGGER.error("--burst needs streetlight devices (--devices streetlight=N)")
        return 2
    context = ssl.create_default_context(cafile=args.ca_file) if url.tls else None
    messages = streetlight_burst(args.prefix, args.site, lamps, args.burst)
    try:
        sent, acked, seconds = burst(
            url.host,
            url.port,
            messages,
            args.window,
            username=url.username,
            password=url.password,
            ssl_context=context,
            stop=stop,
        )
        code = 0
    except (BurstError, OSError) as err:
        _LOGGER.error("burst to %s failed: %s", url.redacted(), err)
        sent, acked, seconds = (err.sent, err.acked, err.seconds) if isinstance(err, BurstError) else (0, 0, 0.0)
        code = 1
    rate = acked / seconds if seconds > 0 else 0.0
    _LOGGER.info("burst: %d sent, %d acked in %.3f s = %.0f msgs/s", sent, acked, seconds, rate)
    _write_summary(
        {
            "published": sent,
            "acked": acked,
            "by_kind": {"streetlight": sent},
            "duplicates": 0,
            "bad": 0,
            "faults": 0,
            "seconds": round(seconds, 3),
            "rate": round(rate),
        }
    )
    return code


def _write_files(args: argparse.Namespace, devices: list[DeviceState], checkpoints: list[Checkpoint]) -> None:
    """Write ``--manifest`` and ``--site-file`` (atomically, so a reader never sees half a file)."""
    if args.manifest:
        doc = manifest(devices, checkpoints, site=args.site, prefix=args.prefix)
        write_atomic(args.manifest, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    if args.site_file:
        text = site_toml(
            devices,
            checkpoints,
            site=args.site,
            timezone=args.timezone,
            latitude=args.latitude,
            longitude=args.longitude,
        )
        write_atomic(args.site_file, text)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 run failed, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Before anything slow: a stop asked for while the fleet is built still ends with a summary.
    stop, abort = _install_signals()
    if args.scenario:
        return _run_scenario(parser, args, stop, abort)
    try:
        counts = parse_devices(args.devices or (BURST_DEVICES if args.burst is not None else DEFAULT_DEVICES))
        tz = ZoneInfo(args.timezone)
        url = parse_mqtt_url(args.mqtt_url)
        schedule = LampSchedule.parse(args.lamp_schedule or "18:00-06:00", tz, args.latitude, args.longitude)
        sim_start = _parse_start(args.start, tz)
        for name, value in (("--site", args.site), *(("--prefix", s) for s in args.prefix.split("/"))):
            _check_segment(name, value)
    except (ValueError, ZoneInfoNotFoundError) as err:
        parser.error(str(err))
    if not any(counts.values()):
        parser.error("--devices: no devices to simulate")
    devices, checkpoints = build_fleet(counts, site=args.site, born=sim_start, seed=args.seed, schedule=schedule)
    _write_files(args, devices, checkpoints)
    if args.files_only:
        return 0
    if args.burst is not None:
        return _run_burst(args, url, devices, stop)
    if args.connections == "per-device" and len(devices) > PER_DEVICE_WARN:
        _LOGGER.warning("%d per-device connections: one thread each; shared mode scales better", len(devices))
    period = len(devices) / args.rate if args.rate else args.interval / args.speed
    opts = Options(
        prefix=args.prefix,
        site=args.site,
        ts_format="none" if args.no_ts else args.ts_format,
        tz=tz,
        fault_ratio=args.fault_ratio,
        bad_ratio=args.bad_ratio,
        dup_ratio=args.dup_ratio,
        tap_prob=args.tap_prob,
        count=args.count,
        duration=args.duration,
        period=period,
        speed=args.speed,
        sim_start=sim_start,
        max_pending=args.max_pending,
        progress=args.progress,
    )
    publisher = _connect(args, url, devices, per_device=args.connections == "per-device")
    if publisher is None:
        return 1
    sim = Simulation(devices, publisher, opts, args.seed)
    _LOGGER.info(
        "simulating %d device(s) on %s/%s, one slot per device every %.3f s",
        len(devices),
        args.prefix,
        args.site,
        period,
    )
    reason = sim.run(stop)
    _LOGGER.info("stopping (%s); waiting for acknowledgements", reason)
    complete = publisher.stop(args.ack_timeout, abort)
    _write_summary(sim.summary())
    return 0 if complete else 1


def _connect(args: argparse.Namespace, url: BrokerUrl, devices: list[DeviceState], per_device: bool = False
             ) -> MqttPublisher | None:
    """The publisher connected; None (said why) if the broker could not be reached."""
    statuses = {d.device: status_topic(args.prefix, args.site, d.kind, d.device) for d in devices}
    publisher = MqttPublisher(url, statuses, per_device=per_device, qos=args.qos,
                              client_id=f"fm-sim-{args.site}-{os.getpid()}", ca_file=args.ca_file)
    try:
        publisher.start(args.connect_timeout)
    except ConnectionError as err:
        _LOGGER.error("%s", err)
        return None
    return publisher


def _run_scenario(parser: argparse.ArgumentParser, args: argparse.Namespace, stop: threading.Event,
                  abort: threading.Event) -> int:
    """``--scenario``: the scenario's fleet on real time, its events on a clock ``--speed`` times faster."""
    try:
        sc = load_scenario(args.scenario)
        tz = ZoneInfo(sc.timezone)
        url = parse_mqtt_url(args.mqtt_url)
        lamps = args.lamp_schedule or sc.lamp_schedule
        schedule = LampSchedule.parse(lamps, tz, sc.latitude, sc.longitude)
        own = LampSchedule.parse(sc.lamp_schedule, tz, sc.latitude, sc.longitude)
        start = args.start or sc.start
        datetime.strptime(start, "%H:%M")
    except ScenarioError as err:
        parser.error(str(err))
    except ValueError as err:
        parser.error(f"--start/--lamp-schedule: {err}")
    counts = {**dict(sc.devices), "checkpoint": sc.guards}
    devices, _ = build_fleet(counts, site=args.site, born=time.time(), seed=args.seed, schedule=schedule)
    # A day-burning lamp keeps the file's own schedule (its real night) whatever --lamp-schedule lights the
    # others by, so that its burning by day shows in a demo whose lamps are lit around the clock.
    day_lamps = {e.device for e in sc.events if e.event == "day_burning"}
    for d in devices:
        if d.device in day_lamps:
            d.schedule = own
    guards = make_guards(sc.checkpoints, sc.guards)
    if args.site_file:
        text = site_toml(devices, [], site=args.site, timezone=sc.timezone, latitude=sc.latitude,
                         longitude=sc.longitude, schedule=None if schedule.sun else lamps,
                         schedules={str(d): None if own.sun else sc.lamp_schedule for d in day_lamps})
        text += patrol_toml(args.site, sc.checkpoints, [g.route for g in guards], **asdict(sc.patrol))
        write_atomic(args.site_file, text + '\n[tickets]\nself_cleared = "auto"  # a fault gone by itself closes\n')
    if args.files_only:
        return 0
    publisher = _connect(args, url, devices)
    if publisher is None:
        return 1
    opts = Options(prefix=args.prefix, site=args.site, tz=tz, count=args.count, duration=args.duration,
                   period=args.interval, sim_start=time.time(), progress=args.progress)
    sim = ScenarioSimulation(devices, publisher, opts, args.seed, sc, args.speed, start, guards, args.clock_origin)
    _LOGGER.info("scenario %s: %d device(s), %d guard(s), clock from %s at %gx, a reading every %g s",
                 sc.name, len(devices), len(guards), start, args.speed, args.interval)
    reason = sim.run(stop)
    _LOGGER.info("stopping (%s); waiting for acknowledgements", reason)
    complete = publisher.stop(args.ack_timeout, abort)
    _write_summary(sim.summary())
    return 0 if complete else 1


def _parse_start(text: str | None, tz: tzinfo) -> float:
    """Return the simulated start epoch; a naive ISO time is local to the site's timezone."""
    if text is None:
        return time.time()
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).timestamp()


def _check_segment(name: str, value: str) -> None:
    """Reject topic segments the gateway would dead-letter (CONTRACT.md)."""
    ok = 1 <= len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in value)
    if not ok:
        raise ValueError(f"{name} {value!r}: segments must match [A-Za-z0-9_.-]{{1,64}}")


def _install_signals() -> tuple[threading.Event, threading.Event]:
    """The stop and abort events: the first SIGINT/SIGTERM stops cleanly, a second one stops waiting for acks."""
    stop, abort = threading.Event(), threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        if stop.is_set():
            _LOGGER.warning("second %s: giving up on pending acknowledgements", signal.Signals(signum).name)
            abort.set()
        else:
            _LOGGER.info("%s received, stopping", signal.Signals(signum).name)
            stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop, abort


if __name__ == "__main__":
    sys.exit(main())
