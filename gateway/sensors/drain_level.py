"""Rain wells, sewage wells and septic tanks (雨水井、污水井、化粪池): level and cover."""

from gateway.sensors.base import FieldSpec, SensorKind

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
)
