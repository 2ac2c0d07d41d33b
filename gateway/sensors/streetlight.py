"""Streetlights and corridor lights (路灯、楼道灯): a lamp controller per lamp.

A lamp fails when it should be lit and is dark or dim (灯具故障: drawing under 80% of its
rated current or power), or when its supply is out of range (供电异常). A lamp lit in
daylight (白天亮灯) is a controller fault: ticketed, but the lamp itself is intact.
"""

from collections.abc import Mapping

from gateway.sensors.base import CheckContext, FaultSpec, FieldSpec, SensorKind, Value

FAULTS = {
    f.code: f
    for f in (
        FaultSpec("lamp_out", "general", "灯具故障", "lamp out or dim"),
        FaultSpec("power_fault", "urgent", "供电异常", "supply voltage out of range"),
        FaultSpec("day_burning", "general", "白天亮灯", "lit in daylight", counts=False),
    )
}


def _low(fields: Mapping[str, Value], limits: Mapping[str, float]) -> bool:
    """Drawing too little to give light: under ``min_ratio`` of the rated current (or of the
    rated power), or, with no rating known, under the absolute floor ``min_current_a``."""
    ratio = limits.get("min_ratio")
    current = fields.get("current_a")
    if current is not None:
        rated = limits.get("current_a")
        floor = ratio * rated if rated is not None and ratio is not None else limits.get("min_current_a")
        if floor is not None and current < floor:
            return True
    power, rated_w = fields.get("power_w"), limits.get("power_w")
    return power is not None and rated_w is not None and ratio is not None and power < ratio * rated_w


def check(fields: Mapping[str, Value], ctx: CheckContext) -> frozenset[str]:
    failing: set[str] = set()
    on = fields.get("on")
    low = _low(fields, ctx.limits)
    if on is not None:
        if (ctx.lit_expected is True and (not on or low)) or (on and low):
            failing.add("lamp_out")
        if ctx.lit_expected is False and on and not low:
            failing.add("day_burning")
    volts, vmin, vmax = fields.get("voltage_v"), ctx.limits.get("voltage_min_v"), ctx.limits.get("voltage_max_v")
    if volts is not None and ((vmin is not None and volts < vmin) or (vmax is not None and volts > vmax)):
        failing.add("power_fault")
    return frozenset(failing)


KIND = SensorKind(
    name="streetlight",
    category="lighting",
    heartbeat_s=60.0,
    doc="lamp on/off, supply voltage, lamp current",
    fields={
        "on": FieldSpec(bool, required=True, doc="the controller drives the lamp"),
        "current_a": FieldSpec(float, required=True, min=0, doc="lamp current, A"),
        "voltage_v": FieldSpec(float, min=0, doc="supply voltage, V"),
        "power_w": FieldSpec(float, min=0, doc="lamp power, W"),
        "lux": FieldSpec(float, min=0, doc="ambient light, lx"),
    },
    faults=FAULTS,
    limits={"min_ratio": 0.8, "min_current_a": 0.05, "voltage_min_v": 180.0, "voltage_max_v": 265.0},
    rated=("current_a", "power_w"),
    check=check,
)
