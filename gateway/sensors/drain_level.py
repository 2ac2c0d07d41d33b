"""Rain wells, sewage wells and septic tanks (雨水井、污水井、化粪池): level and cover.

An open or displaced cover (井盖移位/丢失) is a hole in the road and a full well (满溢)
floods it: both are emergencies. Water above the asset's alarm level means a blockage
(堵塞) building up: urgent, until it overflows and the emergency takes its place.
"""

from collections.abc import Mapping

from gateway.sensors.base import CheckContext, FaultSpec, FieldSpec, SensorKind, Value

FAULTS = {
    f.code: f
    for f in (
        FaultSpec("cover_displaced", "emergency", "井盖移位/丢失", "cover open or displaced"),
        FaultSpec("overflow", "emergency", "满溢", "overflowing"),
        FaultSpec("level_high", "urgent", "水位超警戒/堵塞", "level above alarm (blockage)"),
    )
}


def check(fields: Mapping[str, Value], ctx: CheckContext) -> frozenset[str]:
    failing: set[str] = set()
    limits = ctx.limits
    tilt, max_tilt = fields.get("cover_tilt_deg"), limits.get("max_tilt_deg")
    tilted = tilt is not None and max_tilt is not None and abs(tilt - limits.get("tilt_baseline_deg", 0.0)) > max_tilt
    if fields.get("cover_open") is True or tilted:
        failing.add("cover_displaced")
    level, depth, alarm = fields.get("level_m"), limits.get("depth_m"), limits.get("alarm_level_m")
    if level is not None and depth is not None and level >= depth:
        failing.add("overflow")
    elif level is not None and alarm is not None and level > alarm:
        failing.add("level_high")
    return frozenset(failing)


KIND = SensorKind(
    name="drain_level",
    category="drainage",
    heartbeat_s=600.0,
    doc="water level, cover tilt/open",
    fields={
        "level_m": FieldSpec(float, required=True, min=0, doc="water depth above the well floor, m"),
        "cover_tilt_deg": FieldSpec(float, min=0, max=180, doc="cover tilt, degrees"),
        "cover_open": FieldSpec(bool, doc="cover lifted or missing"),
    },
    faults=FAULTS,
    limits={"max_tilt_deg": 10.0, "tilt_baseline_deg": 0.0},
    rated=("depth_m", "alarm_level_m"),
    check=check,
)
