"""Smoke detectors (烟感): alarm, battery and tamper."""

from gateway.sensors.base import FieldSpec, SensorKind

KIND = SensorKind(
    name="smoke_detector",
    category="fire",
    heartbeat_s=3600.0,
    doc="alarm, battery, tamper",
    fields={
        "alarm": FieldSpec(bool, required=True, doc="smoke alarm sounding"),
        "tamper": FieldSpec(bool, doc="removed from its base or opened"),
    },
)
