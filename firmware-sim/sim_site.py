"""The simulated fleet and the files that describe it to the gateway.

A site file must bind exactly the devices the simulator runs, so both are derived
from the same inputs (device counts and site name); checkpoint tags are a hash of the
site name, not of ``--seed``, so a site file written once stays valid for every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim_values import (
    CATEGORY,
    KINDS,
    DeviceState,
    LampSchedule,
    new_device,
    reading_topic,
    status_topic,
)

CHECKPOINTS_PER_READER = 4
"""Patrol points per reader: a guard's route visits several tags."""

ASSET_PREFIX: dict[str, str] = {
    "streetlight": "L-",
    "fire_extinguisher": "E-",
    "fire_hydrant": "H-",
    "smoke_detector": "S-",
    "drain_level": "W-",
}
ASSET_NOUN: dict[str, str] = {
    "streetlight": "路灯",
    "fire_extinguisher": "灭火器",
    "fire_hydrant": "消火栓",
    "smoke_detector": "烟感探测器",
    "drain_level": "雨水井",
}


@dataclass(frozen=True)
class Checkpoint:
    """A patrol point: an NFC tag fixed on a wall, read by the guards' readers."""

    id: str
    name: str
    tag: str


def checkpoint_tag(site: str, index: int) -> str:
    """Return a stable 7-byte NFC UID (NXP manufacturer byte 04) for checkpoint ``index``."""
    digest = hashlib.sha256(f"{site}/CP-{index:04d}".encode()).hexdigest()
    return "04" + digest[:12].upper()


def make_checkpoints(site: str, readers: int) -> list[Checkpoint]:
    """Return the checkpoints patrolled by ``readers`` readers."""
    return [
        Checkpoint(f"CP-{i:04d}", f"{i}号巡更点", checkpoint_tag(site, i))
        for i in range(1, readers * CHECKPOINTS_PER_READER + 1)
    ]


def parse_devices(spec: str) -> dict[str, int]:
    """Parse ``streetlight=200,fire_extinguisher=80`` into counts; ValueError if malformed."""
    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, sep, number = item.partition("=")
        kind = kind.strip()
        if not sep or kind not in KINDS:
            raise ValueError(f"{item!r}: expected KIND=N with KIND one of {', '.join(KINDS)}")
        try:
            counts[kind] = int(number)
        except ValueError:
            raise ValueError(f"{item!r}: {number.strip()!r} is not a whole number") from None
        if counts[kind] < 0 or counts[kind] > 9999:
            raise ValueError(f"{item!r}: count must be 0..9999")
    return counts


def build_fleet(
    counts: dict[str, int],
    *,
    site: str,
    born: float,
    seed: int | str = 0,
    schedule: LampSchedule | None = None,
) -> tuple[list[DeviceState], list[Checkpoint]]:
    """Create every device in ``KINDS`` order, and the checkpoints the readers walk."""
    readers = counts.get("checkpoint", 0)
    points = make_checkpoints(site, readers)
    tags = [p.tag for p in points]
    devices: list[DeviceState] = []
    for kind in KINDS:
        for index in range(1, counts.get(kind, 0) + 1):
            start = (index - 1) * CHECKPOINTS_PER_READER
            route = tuple(tags[start:] + tags[:start]) if kind == "checkpoint" else ()
            devices.append(new_device(kind, index, born=born, seed=seed, schedule=schedule, route=route))
    return devices, points


def asset_for(kind: str, index: int) -> tuple[str, str]:
    """Asset id and Chinese name bound to device ``index`` of ``kind``."""
    return f"{ASSET_PREFIX[kind]}{index:04d}", f"{index}号{ASSET_NOUN[kind]}"


def manifest(devices: list[DeviceState], checkpoints: list[Checkpoint], *, site: str, prefix: str) -> dict[str, Any]:
    """JSON-ready description of the fleet: devices, their topics and bound assets."""
    rows: list[dict[str, Any]] = []
    for dev in devices:
        row: dict[str, Any] = {
            "device": dev.device,
            "kind": dev.kind,
            "topic": reading_topic(prefix, site, dev.kind, dev.device),
            "status_topic": status_topic(prefix, site, dev.kind, dev.device),
        }
        if dev.kind in CATEGORY:
            row["asset"], row["asset_name"] = asset_for(dev.kind, dev.index)
            row["category"] = CATEGORY[dev.kind]
        else:
            row["badge"] = dev.badge
        rows.append(row)
    return {
        "site": site,
        "prefix": prefix,
        "devices": rows,
        "checkpoints": [{"id": c.id, "name": c.name, "tag": c.tag} for c in checkpoints],
    }


def _toml_str(text: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(text, ensure_ascii=False)


#: Rated values of the simulated hardware, so the gateway's checks judge them as on a real site.
_RATED = {
    "streetlight": ("rated = { current_a = 0.42 }",),
    "drain_level": ("rated = { depth_m = 3.0, alarm_level_m = 1.8 }",),
}


def site_toml(
    devices: list[DeviceState],
    checkpoints: list[Checkpoint],
    *,
    site: str,
    timezone: str,
    latitude: float,
    longitude: float,
    schedule: str | None = None,
    schedules: dict[str, str | None] | None = None,
) -> str:
    """TOML site file binding each simulated device to an asset.

    ``schedule`` ("18:00-06:00") is written on every lamp: the gateway then judges a dark
    lamp by the same clock the simulator lights it by, not by sunset, so a generated
    stream's expected faults are exact. ``schedules`` gives some lamps their own (None: none).
    """
    own = schedules or {}
    lines = [
        "# Generated by firmware-sim/simulate.py: one asset per simulated device.",
        "[site]",
        f"name = {_toml_str(site)}",
        f"timezone = {_toml_str(timezone)}",
        f"latitude = {latitude!r}",
        f"longitude = {longitude!r}",
    ]
    for dev in devices:
        if dev.kind not in CATEGORY:
            continue
        asset_id, name = asset_for(dev.kind, dev.index)
        lines += [
            "",
            "[[assets]]",
            f"id = {_toml_str(asset_id)}",
            f"name = {_toml_str(name)}",
            f"category = {_toml_str(CATEGORY[dev.kind])}",
            f"kind = {_toml_str(dev.kind)}",
            f"device = {_toml_str(dev.device)}",
            *_RATED.get(dev.kind, ()),
            *((f"schedule = {_toml_str(lit)}",) if dev.kind == "streetlight" and (
                lit := own.get(dev.device, schedule)) else ()),
        ]
    for point in checkpoints:
        lines += [
            "",
            "[[checkpoints]]",
            f"id = {_toml_str(point.id)}",
            f"name = {_toml_str(point.name)}",
            f"tag = {_toml_str(point.tag)}",
        ]
    return "\n".join(lines) + "\n"


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` so that readers never see a half-written file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def patrol_toml(site: str, checkpoints: int, routes: list[tuple[str, ...]], every_min: int, duration_min: float,
                tolerance_min: float) -> str:
    """Site-file lines for a scenario's patrols: checkpoints, guards with their readers, a route each,
    and rounds every ``every_min`` all day (what ``sim_patrol`` walks)."""
    lines: list[str] = []
    for i in range(1, checkpoints + 1):
        lines += ["", "[[checkpoints]]", f'id = "CP-{i:04d}"', f'name = "{i}号巡更点"',
                  f'tag = "{checkpoint_tag(site, i)}"']
    for i, route in enumerate(routes, 1):
        cps = ", ".join(f'"{c}"' for c in route)
        lines += ["", "[[guards]]", f'id = "G{i:03d}"', f'name = "保安{i}"', f'badge = "G{i:03d}"',
                  "", "[[readers]]", f'id = "reader-{i:04d}"', f'guard = "G{i:03d}"',
                  "", "[[routes]]", f'id = "R{i}"', f'name = "{i}号巡更路线"', f"checkpoints = [{cps}]",
                  "ordered = true", f"duration_min = {duration_min!r}",
                  "", "[[schedules]]", f'route = "R{i}"', 'start = "00:00"', 'end = "00:00"',
                  f"every_min = {every_min}", f"tolerance_min = {tolerance_min!r}"]
    return "\n".join(lines) + "\n"
