"""Fire extinguishers (灭火器): cylinder pressure and presence on the bracket."""

from gateway.sensors.base import FieldSpec, SensorKind

KIND = SensorKind(
    name="fire_extinguisher",
    category="fire",
    heartbeat_s=3600.0,
    doc="cylinder pressure, presence on its bracket",
    fields={
        "pressure_mpa": FieldSpec(float, required=True, min=0, doc="cylinder pressure, MPa"),
        "present": FieldSpec(bool, doc="on its bracket"),
    },
)
