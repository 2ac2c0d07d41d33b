"""Fire hydrants (消火栓): static water pressure of the main.

Below its minimum static pressure (default 0.10 MPa; GB 50974 asks 0.07–0.15 MPa by building
type) a hydrant cannot fight a fire: 水压不足 is an emergency (急修).
"""

from collections.abc import Mapping

from gateway.sensors.base import CheckContext, FaultSpec, FieldSpec, SensorKind, Value

FAULTS = {"pressure_low": FaultSpec("pressure_low", "emergency", "水压不足", "static pressure low")}


def check(fields: Mapping[str, Value], ctx: CheckContext) -> frozenset[str]:
    pressure, minimum = fields.get("pressure_mpa"), ctx.limits.get("min_pressure_mpa")
    if pressure is not None and minimum is not None and pressure < minimum:
        return frozenset(("pressure_low",))
    return frozenset()


KIND = SensorKind(
    name="fire_hydrant",
    category="fire",
    heartbeat_s=600.0,
    doc="static water pressure",
    fields={
        "pressure_mpa": FieldSpec(float, required=True, min=0, doc="static pressure, MPa"),
    },
    faults=FAULTS,
    limits={"min_pressure_mpa": 0.10},
    check=check,
)
