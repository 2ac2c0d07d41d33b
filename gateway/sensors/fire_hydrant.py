"""Fire hydrants (消火栓): static water pressure of the main."""

from gateway.sensors.base import FieldSpec, SensorKind

KIND = SensorKind(
    name="fire_hydrant",
    category="fire",
    heartbeat_s=600.0,
    doc="static water pressure",
    fields={
        "pressure_mpa": FieldSpec(float, required=True, min=0, doc="static pressure, MPa"),
    },
)
