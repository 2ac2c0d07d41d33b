"""Streetlights and corridor lights (路灯、楼道灯): a lamp controller per lamp."""

from gateway.sensors.base import FieldSpec, SensorKind

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
)
