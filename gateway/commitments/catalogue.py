"""The commitment catalogue (承诺指标目录): which indicators a site promises, computed how,
over which assets, against which target. Configuration, not code: the defaults of
COMMITMENTS.md ship as ``catalogue.toml``; a site may load its own.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.config import ConfigError, Segment, format_validation_errors, read_toml
from gateway.sensors import check_asset_kind, check_category

DEFAULT = Path(__file__).with_name("catalogue.toml")
KIND = Literal["intact_rate", "repair_timeliness", "first_time_fix", "rework_rate", "callback_rate",
               "satisfaction", "patrol_completion", "inspection_coverage", "septic_cleanout"]
ASSET_KINDS = ("intact_rate", "inspection_coverage", "septic_cleanout")  # scoped by assets
TICKET_KINDS = ("repair_timeliness", "first_time_fix", "rework_rate", "callback_rate")  # scoped by tickets


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Model):
    """Which assets (or their tickets) an indicator counts; every given filter must match."""

    category: str | None = None
    kind: str | None = None
    building: str | None = None
    zone: str | None = None
    assets: tuple[str, ...] | None = None
    priority: Literal["emergency", "urgent", "general"] | None = None  # tickets only

    @field_validator("category")
    @classmethod
    def _check_category(cls, v: str | None) -> str | None:
        return v if v is None else check_category(v)

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, v: str | None) -> str | None:
        return check_asset_kind(v)

    def matches(self, category: str | None, kind: str | None = None, building: str = "", zone: str = "",
                asset: str | None = None) -> bool:
        return ((self.category is None or self.category == category) and (self.kind is None or self.kind == kind)
                and (self.building is None or self.building == building) and (self.zone is None or self.zone == zone)
                and (self.assets is None or asset in self.assets))


class Commitment(_Model):
    id: Segment
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    kind: KIND
    scope: Scope = Scope()
    target: float = Field(ge=0, le=1)
    direction: Literal[">=", "<="] = ">="
    per_month: int | None = Field(None, ge=1, le=31)  # inspection_coverage: inspections each asset needs

    @model_validator(mode="after")
    def _check_fits_kind(self) -> Commitment:
        if self.kind == "inspection_coverage" and self.per_month is None:
            raise ValueError("inspection_coverage needs per_month (inspections each asset needs a month)")
        if self.kind != "inspection_coverage" and self.per_month is not None:
            raise ValueError(f"per_month only applies to inspection_coverage, not {self.kind}")
        s = self.scope
        if self.kind not in ASSET_KINDS and self.kind not in TICKET_KINDS and s != Scope():
            raise ValueError(f"{self.kind} has no scope")
        if self.kind in ASSET_KINDS and s.priority is not None:
            raise ValueError("scope.priority only applies to ticket indicators")
        return self

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        slack = 1e-12  # 0.98 stored as a float must meet 0.98
        return value >= self.target - slack if self.direction == ">=" else value <= self.target + slack


class CatalogueModel(_Model):
    commitment: tuple[Commitment, ...] = ()


def load_catalogue(path: Path | None = None, asset_ids: set[str] | None = None) -> tuple[Commitment, ...]:
    """Read and validate a catalogue (the shipped defaults without ``path``); every problem at once."""
    path = path or DEFAULT
    source = str(path)
    data = read_toml(path, "commitment catalogue")
    problems: list[str] = []
    try:
        model = CatalogueModel.model_validate(data)
    except ValidationError as exc:
        problems += format_validation_errors(exc, {}, source)
        model = None
    # Checks across entries read the file itself, so they are reported beside the entries' own problems.
    items = data.get("commitment") if isinstance(data.get("commitment"), list) else []
    entries = [c if isinstance(c, dict) else {} for c in items]
    ids = [c.get("id") for c in entries]
    for ident, n in Counter(i for i in ids if isinstance(i, str)).items():
        if n > 1:
            problems.append(f"{source}: commitment id {ident!r} appears {n} times (must be unique)")
    if asset_ids is not None:
        for i, c in enumerate(entries):
            scope = c.get("scope")
            assets = scope.get("assets") if isinstance(scope, dict) else None
            for a in assets if isinstance(assets, list) else ():
                if isinstance(a, str) and a not in asset_ids:
                    problems.append(f"{source}: commitment.{i}.scope.assets: no asset {a!r} on this site "
                                    f"({c.get('id')})")
    if problems or model is None:
        raise ConfigError(problems)
    return model.commitment
