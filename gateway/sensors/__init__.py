"""The registry of sensor kinds: one module per kind, listed here explicitly.

Adding a kind is adding a module that declares ``KIND`` and one line below; nothing
is discovered by scanning folders or matching class names.
"""

from gateway.sensors import (
    checkpoint,
    drain_level,
    fire_extinguisher,
    fire_hydrant,
    smoke_detector,
    streetlight,
)
from gateway.sensors.base import SensorKind

KINDS: dict[str, SensorKind] = {
    m.KIND.name: m.KIND
    for m in (streetlight, fire_extinguisher, fire_hydrant, smoke_detector, drain_level, checkpoint)
}

#: Categories counted by intact-rate commitments (CONTRACT.md), with their Chinese names.
CATEGORIES: dict[str, str] = {
    "lighting": "路灯、楼道灯",
    "fire": "消防设施",
    "drainage": "化粪池、雨水井、污水井",
}



def check_category(v: str) -> str:
    """A validator's check: a category an intact-rate commitment counts."""
    if v not in CATEGORIES:
        raise ValueError(f"unknown category (known: {', '.join(CATEGORIES)})")
    return v


def check_asset_kind(v: str | None) -> str | None:
    """A validator's check: a kind of device that reports for an asset (checkpoints do not)."""
    if v is not None and (v not in KINDS or KINDS[v].category is None):
        raise ValueError(f"unknown sensor kind (known: {', '.join(k for k in KINDS if KINDS[k].category)})")
    return v


__all__ = ["CATEGORIES", "KINDS", "SensorKind", "check_asset_kind", "check_category"]
