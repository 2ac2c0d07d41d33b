"""The RS-485 field devices of the demo site: behind the JSON-lines concentrator, and Modbus RTU
transmitters the gateway polls. They live through the scenario like the MQTT fleet, on the same clock:
rain raises the wells' level, a drop of the hydrant main lowers its pressure, ``restore`` brings it back.
Values come from ``sim_values`` (the same models as the MQTT devices); events naming an MQTT device
leave them alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sim_clock import SceneClock
from sim_modbus import Image, float_registers
from sim_scenario import Event, Scenario, apply
from sim_values import DeviceState, LampSchedule, new_device, reading

BUS = "pump-room"
"""The Modbus bus's name: its ``[[serial]]`` port and its site-file devices name it."""


@dataclass(frozen=True)
class FieldDevice:
    """A serial field device and the asset it is bound to; ``unit`` 0 is behind the concentrator."""

    kind: str
    device: str
    asset: str
    name: str
    category: str
    unit: int = 0


CONCENTRATED = (
    FieldDevice("drain_level", "rs485-well-01", "RS-WELL-01", "RS485 1号井", "drainage"),
    FieldDevice("fire_hydrant", "rs485-hyd-01", "RS-HYD-01", "RS485 1号消火栓", "fire"),
)
TRANSMITTERS = (
    FieldDevice("drain_level", "mb-well-01", "MB-WELL-01", "泵房1号集水井（液位变送器）", "drainage", unit=1),
    FieldDevice("drain_level", "mb-well-02", "MB-WELL-02", "泵房2号集水井（液位变送器）", "drainage", unit=2),
    FieldDevice("fire_hydrant", "mb-main-01", "MB-MAIN-01", "消防给水主管（压力变送器）", "fire", unit=3),
)
FIELD_DEVICES = CONCENTRATED + TRANSMITTERS

_RATED = {"drain_level": "rated = { depth_m = 3.0, alarm_level_m = 1.8 }"}
_REGISTERS = {  # what the transmitters' manuals would list; images() writes them so
    "drain_level": '[\n  { address = 0, function = 4, type = "uint16", scale = 0.001, field = "level_m" },\n'
                   '  { address = 1, function = 4, type = "uint16", scale = 0.1, field = "cover_tilt_deg" },\n'
                   '  { address = 0, function = 1, type = "bool", field = "cover_open" },\n]',
    "fire_hydrant": '[{ address = 0, function = 3, type = "float32", field = "pressure_mpa" }]',
}


def image(kind: str, values: dict[str, Any]) -> Image:
    """A transmitter's registers holding a reading: level in mm and tilt in 0.1° (input registers) and
    the cover switch (coil 0), or the pressure as a float32 (holding registers, ABCD)."""
    if kind == "drain_level":
        level, tilt = round(values["level_m"] * 1000), round(values["cover_tilt_deg"] * 10)
        return [0], [max(0, min(level, 0xFFFF)), max(0, min(tilt, 0xFFFF))], [bool(values["cover_open"])]
    return float_registers(float(values["pressure_mpa"])), [0], [False]


def site_lines(poll_s: float) -> str:
    """Site-file ``[[assets]]`` for every field device, and ``[[modbus]]`` for the transmitters."""
    lines = ["", "# RS-485 field devices (firmware-sim/sim_field.py): a concentrator and Modbus transmitters."]
    for d in FIELD_DEVICES:
        lines += ["", "[[assets]]", f'id = "{d.asset}"', f'name = "{d.name}"', f'category = "{d.category}"',
                  f'kind = "{d.kind}"', f'device = "{d.device}"', *((_RATED[d.kind],) if d.kind in _RATED else ())]
    for d in TRANSMITTERS:
        lines += ["", "[[modbus]]", f'device = "{d.device}"', f'bus = "{BUS}"', f'kind = "{d.kind}"',
                  f"unit = {d.unit}", f"poll_s = {poll_s:g}", f"registers = {_REGISTERS[d.kind]}"]
    return "\n".join(lines) + "\n"


class FieldFleet:
    """The field devices' states; :meth:`advance` applies the scenario's site-wide events as they fall due."""

    def __init__(self, scenario: Scenario, clock: SceneClock, seed: int = 7) -> None:
        schedule = LampSchedule.parse("18:00-06:00", clock.tz, scenario.latitude, scenario.longitude)
        self.clock = clock
        self.states: dict[str, DeviceState] = {}
        for n, d in enumerate(FIELD_DEVICES, 901):  # indices no MQTT device has: seeds of their own
            state = new_device(d.kind, n, born=clock.real0, seed=seed, schedule=schedule)
            state.device = d.device
            self.states[d.device] = state
        self.pending = [(when, i, e) for when, i, e in clock.schedule(scenario.events)
                        if e.guard is None and (e.device is None or e.device in self.states)]
        self.happened: list[Event] = []
        self._lock = threading.Lock()

    def advance(self, real: float) -> float:
        """Apply the events due by real epoch ``real``; returns its scenario time."""
        scene = self.clock.scene(real)
        with self._lock:
            while self.pending and self.pending[0][0] <= scene:
                when, _, event = self.pending.pop(0)
                apply(event, self.states, when)  # at its own time: rain falls from 08:00 however late we look
                self.happened.append(event)
        return scene

    def reading(self, device: str, real: float) -> dict[str, Any]:
        """The device's next reading (``ts``, ``seq`` and its fields) at real epoch ``real``."""
        scene = self.advance(real)
        state = self.states[device]
        with self._lock:
            return reading(state.kind, state, real, scene=scene)
