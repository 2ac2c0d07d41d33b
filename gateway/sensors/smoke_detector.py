"""Smoke detectors (烟感): alarm, battery and tamper.

A detector taken off its base (防拆报警) or with a flat battery (电池电量低) no longer
protects anyone: both are fire equipment faults, emergencies. A smoke alarm is not a fault
of the detector but a fire emergency announced at once (``alarm_field``).
"""

from collections.abc import Mapping

from gateway.sensors.base import CheckContext, FaultSpec, FieldSpec, SensorKind, Value

FAULTS = {
    f.code: f
    for f in (
        FaultSpec("tamper", "emergency", "被拆/防拆报警", "tampered or removed"),
        FaultSpec("battery_low", "emergency", "电池电量低", "battery low"),
    )
}


def check(fields: Mapping[str, Value], ctx: CheckContext) -> frozenset[str]:
    failing: set[str] = set()
    if fields.get("tamper") is True:
        failing.add("tamper")
    battery, minimum = fields.get("battery_pct"), ctx.limits.get("battery_min_pct")
    if battery is not None and minimum is not None and battery < minimum:
        failing.add("battery_low")
    return frozenset(failing)


KIND = SensorKind(
    name="smoke_detector",
    category="fire",
    heartbeat_s=3600.0,
    doc="alarm, battery, tamper",
    fields={
        "alarm": FieldSpec(bool, required=True, doc="smoke alarm sounding"),
        "tamper": FieldSpec(bool, doc="removed from its base or opened"),
    },
    faults=FAULTS,
    limits={"battery_min_pct": 20.0},
    check=check,
    alarm_field="alarm",
)
