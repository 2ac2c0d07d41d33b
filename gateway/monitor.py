"""Watches every asset: readings through its kind's checks and the debounce, device health,
the asset state ledger, and the tickets that follow (the thin layer around the pure rules).

Runs in the ingest thread. For a batch, :meth:`Monitor.observe` commits the ledger and
ticket changes first and returns the ``asset_state`` points, which go to InfluxDB in the
same outbox commit as the readings. A crash in between can only make the redelivered
readings count twice toward a debounce, never lose a transition.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway import events, rules
from gateway.devices import Transition
from gateway.inspections.taps import guard_of
from gateway.lineprotocol import asset_state_line
from gateway.sensors import KINDS
from gateway.sensors.base import CheckContext, Debounce, FaultSpec, Reading
from gateway.sensors.checkpoint import Tap
from gateway.sensors.sun import SunClock, parse_schedule
from gateway.site import AssetModel, Site
from gateway.tickets import TicketStore

_LOGGER = logging.getLogger(__name__)

#: Monitoring lost (device silent or offline): a ticket of its own, not a facility fault.
DEVICE_LOST = FaultSpec("device_lost", "general", "监测设备离线", "monitoring device lost", counts=False)
#: Every lamp of a lighting circuit out at once (整路不亮): one emergency for the circuit (COMMITMENTS.md).
CIRCUIT_DARK = FaultSpec("circuit_dark", "emergency", "整路路灯不亮", "whole lighting circuit dark")
#: Every device of a Modbus RTU bus silent at once (a cut cable, an unplugged adapter): one ticket for the bus,
#: in place of its devices' own; several assets lose monitoring at once, hence urgent.
BUS_SILENT = FaultSpec("bus_silent", "urgent", "总线无响应", "serial bus silent", counts=False)


@dataclass
class AssetWatch:
    """What the monitor keeps per asset between readings."""

    asset: AssetModel
    kind: str | None
    limits: dict[str, float]
    schedule: Any  # (start, end) times or None
    track: rules.Track
    state: str
    monitored: bool
    alarm: bool = False
    since: float = float("-inf")  # time of its latest ledger entry: the ledger never runs backwards


class Monitor:
    def __init__(self, store: TicketStore, site_name: str, debounce: Mapping[str, Debounce] | None = None) -> None:
        self.store = store
        self.site_name = site_name
        self.debounce = {k: kind.debounce for k, kind in KINDS.items()} | dict(debounce or {})
        self.circuits: dict[str, list[str]] = {}  # circuit -> its lamps (assets)
        self.dark: set[str] = set()  # circuits with a live circuit_dark ticket
        self.watch: dict[str, AssetWatch] = {}
        self.by_device: dict[str, str] = {}
        self.bus_of: dict[str, str] = {}  # Modbus device -> its bus
        self.silent_buses: set[str] = set()  # buses with a live bus_silent ticket
        self.offline: set[str] = set()  # devices last known offline

    # -- set-up ---------------------------------------------------------------------------------
    def set_site(self, site: Site, online: Mapping[str, bool], now: float) -> list[tuple[float, str]]:
        """(Re)build the watch list, keeping the state of assets that stay; new assets enter service unknown."""
        self.site = site
        self.sun = SunClock(site.info.latitude, site.info.longitude, site.tz)
        self.priorities = {code: o.priority for code, o in site.faults.items()}
        self.checkpoints = {c.tag: c for c in site.checkpoints}
        self.guards, self.readers = {g.id: g for g in site.guards}, {r.id: r for r in site.readers}
        self.circuits = {}
        for a in site.assets:
            if a.circuit:
                self.circuits.setdefault(a.circuit, []).append(a.id)
        self.dark = {c for c in self.circuits if self.store.live(f"circuit:{c}", CIRCUIT_DARK.code)}
        self.bus_of = {d.device: d.bus for d in site.modbus}
        self.silent_buses = {b for b in site.buses if self.store.live(f"bus:{b}", BUS_SILENT.code)}
        self.offline = {d for d, up in online.items() if not up}
        ledger = self.store.current_states()
        lines: list[tuple[float, str]] = []
        with self.store.transaction():
            lines += self._build(site, online, now, ledger, self.watch)
        return lines

    def _build(self, site: Site, online: Mapping[str, bool], now: float, ledger: Mapping[str, Mapping[str, Any]],
               old: Mapping[str, AssetWatch]) -> list[tuple[float, str]]:
        lines: list[tuple[float, str]] = []
        watch: dict[str, AssetWatch] = {}
        by_device: dict[str, str] = {}
        for a in site.assets:
            kind = a.kind
            limits = {**(KINDS[kind].limits if kind else {}), **a.rated, **a.thresholds}
            schedule = parse_schedule(a.schedule) if a.schedule else None
            if a.id in old:
                w = old[a.id]
                w.asset, w.kind, w.limits, w.schedule = a, kind or w.kind, limits, schedule
            else:
                last = ledger.get(a.id)
                active = frozenset(f for f in (last or {}).get("faults", "").split(",") if f)
                w = AssetWatch(a, kind, limits, schedule, rules.Track(active=active),
                               last["state"] if last else rules.UNKNOWN, False)
                if last is not None:
                    w.since = last["at"]
                if last is None:
                    lines += self._record(w, now, rules.UNKNOWN, "in_service")
            if a.device:
                by_device[a.device] = a.id
            w.monitored = bool(a.device and online.get(a.device))
            watch[a.id] = w
        self.watch, self.by_device = watch, by_device  # swapped whole: the API never sees a half-built list
        return lines

    # -- readings -------------------------------------------------------------------------------
    def observe(self, readings: Sequence[tuple[str, Reading | Tap]]) -> list[tuple[float, str]]:
        """(kind, reading or tap) pairs of one batch; returns the asset_state points to store."""
        lines: list[tuple[float, str]] = []
        by_device, watch = self.by_device, self.watch
        with self.store.transaction():
            for kind_name, r in readings:
                if isinstance(r, Tap):
                    self._tap(r)
                    continue
                asset_id = by_device.get(r.device)
                if asset_id is None or "late" in r.flags:
                    continue  # unbound, or older than what the state already reflects
                w = watch[asset_id]
                kind = KINDS[kind_name]
                if w.kind is None:
                    w.kind = kind_name
                    w.limits = {**kind.limits, **w.limits}
                if kind.alarm_field:
                    self._alarm(w, bool(r.fields.get(kind.alarm_field)), r)
                if kind.check is None:
                    continue
                lit = self.sun.lit_expected(r.ts, w.schedule) if kind_name == "streetlight" else None
                failing = kind.check(r.fields, CheckContext(w.limits, lit))
                if not w.monitored:
                    w.monitored = True
                if not failing and w.track.quiet:
                    if w.state != rules.INTACT:
                        lines += self._record(w, r.ts, rules.INTACT, "reading", r)
                    continue
                lines += self._step(w, kind.faults, failing, r, kind_name)
        return lines

    def _step(self, w: AssetWatch, faults: Mapping[str, FaultSpec], failing: frozenset[str], r: Reading,
              kind_name: str) -> list[tuple[float, str]]:
        debounce = self.debounce[kind_name]
        step = rules.step(w.track, failing, r.ts, debounce)
        w.track = step.track
        subject = f"asset:{w.asset.id}"
        for code in sorted(step.opened):
            spec = faults[code]
            priority = self.priorities.get(code, spec.priority)
            title = f"{w.asset.name or w.asset.id} {spec.zh}"
            self.store.open(subject=subject, fault=code, priority=priority, title=title, at=r.ts, by="sensor",
                            source="sensor", asset=w.asset.id, device=r.device, category=w.asset.category,
                            data={"fields": dict(r.fields), "reading_ts": r.ts, "seq": r.seq})
        for code in sorted(step.cleared):
            self.store.fault_cleared(subject, code, r.ts)
        for code in sorted(failing & step.track.active - step.opened):
            live = self.store.live(subject, code)
            if live and live["status"] == "resolved" and r.ts - live["resolved_at"] >= debounce.seconds:
                self.store.fault_persists(subject, code, r.ts)
        if w.asset.circuit and (step.opened | step.cleared) & {"lamp_out"}:
            self._circuit(w.asset.circuit, r)
        state = rules.state_of(step.track.active, faults, True)
        if state != w.state or step.opened or step.cleared:
            return self._record(w, r.ts, state, "reading", r)
        return []

    def _circuit(self, circuit: str, r: Reading) -> None:
        """Opened when the last lamp of a circuit goes out, cleared when one comes back."""
        lamps = self.circuits.get(circuit, [])
        dark = len(lamps) >= 2 and all("lamp_out" in self.watch[a].track.active for a in lamps)
        if dark and circuit not in self.dark:
            self.store.open(subject=f"circuit:{circuit}", fault=CIRCUIT_DARK.code,
                            priority=self.priorities.get(CIRCUIT_DARK.code, CIRCUIT_DARK.priority),
                            title=f"回路 {circuit} {CIRCUIT_DARK.zh}（{len(lamps)} 盏）", at=r.ts, by="sensor",
                            source="sensor", category="lighting", data={"lamps": lamps})
            self.dark.add(circuit)
        elif not dark and circuit in self.dark:
            self.store.fault_cleared(f"circuit:{circuit}", CIRCUIT_DARK.code, r.ts)
            self.dark.discard(circuit)

    def _tap(self, tap: Tap) -> None:
        """Tapping an asset's own tag proves the repairer is on site: its live tickets are marked arrived,
        by the guard the badge (or the reader carried) names, else by the badge or the reader."""
        checkpoint = self.checkpoints.get(tap.tag)
        if checkpoint is None or checkpoint.asset is None:
            return
        by = guard_of(tap.badge, tap.reader, self.guards, self.readers) or tap.badge or f"reader:{tap.reader}"
        items, _ = self.store.list(status=("open", "acknowledged"), asset=checkpoint.asset, limit=100)
        for t in items:
            self.store.act(t["id"], "arrive", by, tap.ts, f"tapped {checkpoint.id} ({tap.tag})")

    def _alarm(self, w: AssetWatch, alarm: bool, r: Reading) -> None:
        """A smoke alarm is announced at once, on its rising edge (an emergency, not a fault)."""
        if alarm and not w.alarm:
            title = f"火警 {w.asset.name or w.asset.id}（{w.asset.location or w.asset.building}）"
            events.record(self.store.db, "fire.alarm", r.ts, title, f"设备：{r.device}",
                          {"asset": w.asset.id, "device": r.device, "location": w.asset.location})
        w.alarm = alarm

    # -- device health --------------------------------------------------------------------------
    def devices(self, transitions: Sequence[Transition]) -> list[tuple[float, str]]:
        """A device silent or offline makes its asset unknown and opens a device ticket; back, it clears."""
        lines: list[tuple[float, str]] = []
        with self.store.transaction():
            for t in transitions:
                asset_id = self.by_device.get(t.device)
                if not t.online:
                    self.offline.add(t.device)
                    if self.bus_of.get(t.device) not in self.silent_buses:  # else the bus's ticket says it
                        self._lost(t.device, t.at, t.reason)
                else:
                    self.offline.discard(t.device)
                    self.store.fault_cleared(f"device:{t.device}", DEVICE_LOST.code, t.at)
                if asset_id is None:
                    continue
                w = self.watch[asset_id]
                w.monitored = t.online
                faults = KINDS[w.kind].faults if w.kind else {}
                state = rules.state_of(w.track.active, faults, t.online)
                if state != w.state:
                    lines += self._record(w, t.at, state, "device_online" if t.online else f"device_{t.reason}")
        return lines

    def _lost(self, device: str, at: float, reason: str | None) -> None:
        title = f"{device} {DEVICE_LOST.zh}（{'无心跳' if reason == 'silent' else '离线'}）"
        self.store.open(subject=f"device:{device}", fault=DEVICE_LOST.code,
                        priority=self.priorities.get(DEVICE_LOST.code, DEVICE_LOST.priority), title=title, at=at,
                        by="sensor", source="device", asset=self.by_device.get(device), device=device,
                        data={"reason": reason})

    def bus(self, name: str, silent: bool, at: float, failing: Sequence[str] = (), port: str = "") -> None:
        """Every device of a Modbus bus silent is one ticket (``bus:<name>``) that takes the place of its
        devices' own ``device_lost`` tickets; when the bus answers again it clears, and a device that is
        still lost (in ``failing`` and offline) gets its own ticket back. The assets go unknown (and come
        back) through their devices' heartbeats, as always."""
        subject = f"bus:{name}"
        devices = sorted(d for d, b in self.bus_of.items() if b == name)
        with self.store.transaction():
            if silent and name not in self.silent_buses:
                self.silent_buses.add(name)
                ticket, _ = self.store.open(
                    subject=subject, fault=BUS_SILENT.code,
                    priority=self.priorities.get(BUS_SILENT.code, BUS_SILENT.priority),
                    title=f"总线 {name} {BUS_SILENT.zh}（{len(devices)} 台设备）", at=at, by="sensor",
                    source="device", data={"port": port, "devices": devices})
                for d in devices:
                    live = self.store.live(f"device:{d}", DEVICE_LOST.code)
                    if live is not None:
                        self.store.act(live["id"], "cancel", "sensor", at,
                                       f"the whole bus {name} is silent: ticket {ticket['id']} takes its place")
                _LOGGER.warning("bus %s (%s) silent: one %s ticket for its %d devices", name, port,
                                BUS_SILENT.code, len(devices), extra={"port": port})
            elif not silent and name in self.silent_buses:
                self.silent_buses.discard(name)
                self.store.fault_cleared(subject, BUS_SILENT.code, at)
                for d in failing:
                    if d in self.offline and self.bus_of.get(d) == name:
                        self._lost(d, at, "silent")
                _LOGGER.info("bus %s (%s) answers again%s", name, port,
                             f"; still lost: {', '.join(failing)}" if failing else "")

    def set_state(self, asset: str, at: float, state: str, faults: Sequence[str], cause: str
                  ) -> list[tuple[float, str]]:
        """A state decided by a person's inspection (an asset without a sensor), not by a reading."""
        w = self.watch.get(asset)
        if w is None:
            return []
        w.track = rules.Track(active=frozenset(faults))
        w.monitored = state != rules.UNKNOWN
        with self.store.transaction():
            return self._record(w, at, state, cause)

    # -- the ledger -----------------------------------------------------------------------------
    def _record(self, w: AssetWatch, at: float, state: str, cause: str, r: Reading | None = None
                ) -> list[tuple[float, str]]:
        if at < w.since:  # news older than the last entry (a reading buffered across an outage or from before
            at = max(r.received_at if r else at, w.since)  # the asset entered service) counts from its arrival
        w.since = at
        faults = ",".join(sorted(w.track.active))
        self.store.record_state(w.asset.id, at, state, sorted(w.track.active), cause,
                                r.device if r else w.asset.device, r.ts if r else None)
        changed = state != w.state
        w.state = state
        if changed or cause == "in_service":
            data = {"asset": w.asset.id, "category": w.asset.category, "state": state, "faults": faults,
                    "cause": cause}
            events.record(self.store.db, "asset.state", at, f"设施状态 {w.asset.name or w.asset.id}：{state}",
                          faults, data)
        return [(at, asset_state_line(self.site_name, w.asset.id, w.asset.category, state, faults, at))]

    def states(self, category: str | None = None, state: str | None = None, offset: int = 0,
               limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """A page of the assets with their state now, and how many match (only the page is built)."""
        found = [w for w in self.watch.values()
                 if (category is None or w.asset.category == category) and (state is None or w.state == state)]
        page = found[offset:None if limit is None else offset + limit]
        return [{"asset": w.asset.id, "name": w.asset.name, "category": w.asset.category, "kind": w.kind,
                 "device": w.asset.device, "location": w.asset.location, "building": w.asset.building,
                 "zone": w.asset.zone, "state": w.state, "faults": sorted(w.track.active),
                 "monitored": w.monitored} for w in page], len(found)

