"""Fire extinguishers (灭火器): cylinder pressure and presence on the bracket.

Fire equipment must be 100% intact (消防设备设施完好率), so every fault is an emergency (急修):
a needle outside the gauge's green zone, or a cylinder taken off its bracket (离位).
"""

from collections.abc import Mapping

from gateway.sensors.base import CheckContext, FaultSpec, FieldSpec, SensorKind, Value

FAULTS = {
    f.code: f
    for f in (
        FaultSpec("pressure_low", "emergency", "压力不足", "pressure below green zone"),
        FaultSpec("pressure_high", "emergency", "压力过高", "pressure above green zone"),
        FaultSpec("removed", "emergency", "离位", "removed from bracket"),
    )
}


def check(fields: Mapping[str, Value], ctx: CheckContext) -> frozenset[str]:
    failing: set[str] = set()
    pressure, low, high = fields.get("pressure_mpa"), ctx.limits.get("green_min_mpa"), ctx.limits.get("green_max_mpa")
    if pressure is not None and low is not None and pressure < low:
        failing.add("pressure_low")
    if pressure is not None and high is not None and pressure > high:
        failing.add("pressure_high")
    if fields.get("present") is False:
        failing.add("removed")
    return frozenset(failing)


KIND = SensorKind(
    name="fire_extinguisher",
    category="fire",
    heartbeat_s=3600.0,
    doc="cylinder pressure, presence on its bracket",
    fields={
        "pressure_mpa": FieldSpec(float, required=True, min=0, doc="cylinder pressure, MPa"),
        "present": FieldSpec(bool, doc="on its bracket"),
    },
    faults=FAULTS,
    limits={"green_min_mpa": 1.0, "green_max_mpa": 1.4},
    check=check,
)
