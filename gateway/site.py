"""The site file (``GATEWAY_SITE_FILE``): the property, its assets and the device bound to each.

Validated like the configuration: every problem listed at once, one line each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.commitments.catalogue import Commitment, load_catalogue
from gateway.config import ConfigError, Segment, format_validation_errors, read_toml, without_invalid
from gateway.inspections.model import (
    DEFAULT_SCHEDULES,
    GuardModel,
    PatrolSettings,
    ReaderModel,
    RouteModel,
    ScheduleModel,
)
from gateway.inspections.plans import Plan, load_plans, override_problems
from gateway.sensors import KINDS, check_asset_kind, check_category
from gateway.sensors.checkpoint import normalize_tag
from gateway.sensors.modbus_site import ModbusDeviceModel
from gateway.sensors.sun import parse_schedule
from gateway.sla import PRIORITIES, SlaRule, SlaRuleSettings, callback_table, sla_table


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteInfo(_Model):
    name: str = "site"
    timezone: str = "Asia/Shanghai"
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Shanghai)") from None
        return v


class AssetModel(_Model):
    """A facility the commitments count (设施): a lamp, an extinguisher, a well."""

    id: Segment
    name: str = ""
    category: str
    kind: str | None = None
    device: Segment | None = None
    location: str = ""
    building: str = ""
    zone: str = ""
    rated: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    schedule: str | None = None  # a lamp's own hours, "18:30-06:00"; else sunset to sunrise
    circuit: Segment | None = None  # the lighting circuit: all its lamps dark at once is an emergency

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, v: str | None) -> str | None:
        if v is not None:
            parse_schedule(v)
        return v

    @field_validator("category")
    @classmethod
    def _check_category(cls, v: str) -> str:
        return check_category(v)

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, v: str | None) -> str | None:
        return check_asset_kind(v)


class CheckpointModel(_Model):
    """A patrol checkpoint (巡更点): a place or an asset's own tag."""

    id: str
    name: str = ""
    tag: str
    asset: str | None = None
    x_m: float | None = None  # position on the site plan, metres: the walking-time plausibility check
    y_m: float | None = None

    @field_validator("tag")
    @classmethod
    def _check_tag(cls, v: str) -> str:
        tag = normalize_tag(v)
        if not isinstance(tag, str):
            raise ValueError(tag.detail)
        return tag


class FaultOverride(_Model):
    """A site's own priority for a fault (the SLA table's "when")."""

    priority: str

    @field_validator("priority")
    @classmethod
    def _check_priority(cls, v: str) -> str:
        if v not in PRIORITIES:
            raise ValueError(f"unknown priority (known: {', '.join(PRIORITIES)})")
        return v


class TicketPolicy(_Model):
    #: A fault that cleared before anyone acted: closed once maintenance confirms, or at once.
    self_cleared: Literal["confirm", "auto"] = "confirm"


class SiteModel(_Model):
    site: SiteInfo = SiteInfo()
    assets: list[AssetModel] = []
    checkpoints: list[CheckpointModel] = []
    faults: dict[str, FaultOverride] = {}
    sla: dict[str, SlaRuleSettings] = {}
    callbacks_h: dict[str, float] = {}
    tickets: TicketPolicy = TicketPolicy()
    commitments_file: Path | None = None  # the site's own catalogue; relative to the site file
    guards: list[GuardModel] = []
    readers: list[ReaderModel] = []
    routes: list[RouteModel] = []
    schedules: list[ScheduleModel] = []
    patrol: PatrolSettings = PatrolSettings()
    plans: dict[str, Any] = {}  # inspection plan overrides (gateway.inspections.plans)
    modbus: list[ModbusDeviceModel] = []  # slaves on Modbus RTU buses and their register maps


@dataclass(frozen=True, slots=True)
class Binding:
    """Which asset a device reports for, as stored in InfluxDB tags."""

    asset: str
    category: str


@dataclass(frozen=True)
class Site:
    """The validated site file, with the lookups the hot path needs."""

    info: SiteInfo
    assets: tuple[AssetModel, ...]
    checkpoints: tuple[CheckpointModel, ...]
    bindings: dict[str, Binding]
    tags: dict[str, str]
    faults: dict[str, FaultOverride]
    sla: dict[str, SlaRule]
    callbacks: dict[str, float]
    tickets: TicketPolicy
    commitments: tuple[Commitment, ...]
    guards: tuple[GuardModel, ...]
    readers: tuple[ReaderModel, ...]
    routes: tuple[RouteModel, ...]
    schedules: tuple[ScheduleModel, ...]
    patrol: PatrolSettings
    plans: dict[str, Plan]
    modbus: tuple[ModbusDeviceModel, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.info.timezone)

    @property
    def buses(self) -> dict[str, tuple[ModbusDeviceModel, ...]]:
        """The Modbus devices of each bus named in the site file, in file order."""
        out: dict[str, list[ModbusDeviceModel]] = {}
        for d in self.modbus:
            out.setdefault(d.bus, []).append(d)
        return {bus: tuple(devices) for bus, devices in out.items()}

    @classmethod
    def empty(cls) -> Site:
        return cls.from_model(SiteModel())

    @classmethod
    def from_model(cls, m: SiteModel, commitments: tuple[Commitment, ...] | None = None) -> Site:
        bindings = {a.device: Binding(a.id, a.category) for a in m.assets if a.device}
        tags = {c.tag: c.id for c in m.checkpoints}
        return cls(m.site, tuple(m.assets), tuple(m.checkpoints), bindings, tags, m.faults, sla_table(m.sla),
                   callback_table(m.callbacks_h), m.tickets,
                   load_catalogue() if commitments is None else commitments, tuple(m.guards), tuple(m.readers),
                   *_patrols(m), m.patrol, load_plans(m.plans), tuple(m.modbus))


def _patrols(m: SiteModel) -> tuple[tuple[RouteModel, ...], tuple[ScheduleModel, ...]]:
    """The site's routes and schedules; with checkpoints but no schedules, the defaults over all places."""
    if m.schedules or not m.checkpoints:
        return tuple(m.routes), tuple(m.schedules)
    places = tuple(c.id for c in m.checkpoints if c.asset is None) or tuple(c.id for c in m.checkpoints)
    every = RouteModel(id="all", name="全部巡更点", checkpoints=places, ordered=False)
    return (*m.routes, every), DEFAULT_SCHEDULES


def _cross_checks(m: SiteModel, source: str, raw: dict[str, Any] | None = None) -> list[str]:
    """Checks across entries; positions refer to the file (``raw``), even when invalid entries were left out."""
    problems = []

    def position(section: str, ident: str, fallback: int) -> int:
        items = (raw or {}).get(section)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict) and item.get("id") == ident:
                    return i
        return fallback

    for what, ids in (
        ("asset id", [a.id for a in m.assets]),
        ("device", [a.device for a in m.assets if a.device]),
        ("checkpoint id", [c.id for c in m.checkpoints]),
        ("checkpoint tag", [c.tag for c in m.checkpoints]),
    ):
        for value, n in Counter(ids).items():
            if n > 1:
                problems.append(f"{source}: {what} {value!r} appears {n} times (must be unique)")
    for i, a in enumerate(m.assets):
        if a.kind and KINDS[a.kind].category != a.category:
            problems.append(
                f"{source}: assets.{position('assets', a.id, i)}.kind: a {a.kind} reports for category "
                f"{KINDS[a.kind].category!r}, not {a.category!r} (asset {a.id})"
            )
    for i, a in enumerate(m.assets):
        kinds = [KINDS[a.kind]] if a.kind else [k for k in KINDS.values() if k.category == a.category]
        known = {n for k in kinds for n in (*k.limits, *k.rated)}
        for section in ("rated", "thresholds"):
            for key in getattr(a, section):
                if key not in known:
                    problems.append(f"{source}: assets.{position('assets', a.id, i)}.{section}.{key}: unknown "
                                    f"for {a.kind or a.category} (known: {', '.join(sorted(known))})")
    codes = {c for k in KINDS.values() for c in k.faults} | {"device_lost", "circuit_dark", "bus_silent"}
    for code in m.faults:
        if code not in codes:
            problems.append(f"{source}: faults.{code}: unknown fault (known: {', '.join(sorted(codes))})")
    for section, keys in (("sla", m.sla), ("callbacks_h", m.callbacks_h)):
        for key in keys:
            if key not in PRIORITIES:
                problems.append(f"{source}: {section}.{key}: unknown priority (known: {', '.join(PRIORITIES)})")
    problems += override_problems(m.plans, source)
    problems += _modbus_checks(m, source)
    checkpoint_ids = {c.id for c in m.checkpoints}
    for what, ids in (("guard id", [g.id for g in m.guards]), ("guard badge", [g.badge for g in m.guards if g.badge]),
                      ("reader id", [r.id for r in m.readers]), ("route id", [r.id for r in m.routes])):
        for value, n in Counter(ids).items():
            if n > 1:
                problems.append(f"{source}: {what} {value!r} appears {n} times (must be unique)")
    guard_ids = {g.id for g in m.guards}
    for i, r in enumerate(m.readers):
        if r.guard and r.guard not in guard_ids:
            problems.append(f"{source}: readers.{i}.guard: no guard {r.guard!r} in this file")
    for i, route in enumerate(m.routes):
        for cp in route.checkpoints:
            if cp not in checkpoint_ids:
                problems.append(f"{source}: routes.{i}.checkpoints: no checkpoint {cp!r} in this file ({route.id})")
    route_ids = {r.id for r in m.routes}
    for i, sch in enumerate(m.schedules):
        if sch.route not in route_ids:
            problems.append(f"{source}: schedules.{i}.route: no route {sch.route!r} in this file")
    asset_ids = {a.id for a in m.assets}
    for i, c in enumerate(m.checkpoints):
        if c.asset and c.asset not in asset_ids:
            at = position("checkpoints", c.id, i)
            problems.append(f"{source}: checkpoints.{at}.asset: no asset {c.asset!r} in this file")
    return problems


def _modbus_checks(m: SiteModel, source: str) -> list[str]:
    """Modbus devices are unique, one per slave address of a bus, and report as the asset they are bound to."""
    problems = []
    for what, ids in (("modbus device", [d.device for d in m.modbus]),
                      ("modbus unit", [f"{d.unit} on bus {d.bus}" for d in m.modbus])):
        for value, n in Counter(ids).items():
            if n > 1:
                problems.append(f"{source}: {what} {value} appears {n} times (must be unique)")
    kinds = {a.device: (a.id, a.kind) for a in m.assets if a.device}
    for i, d in enumerate(m.modbus):
        asset, kind = kinds.get(d.device, (None, None))
        if asset is not None and kind is not None and kind != d.kind:
            problems.append(f"{source}: modbus.{i}.kind: {d.device} reports as {d.kind}, but asset {asset} it is "
                            f"bound to is a {kind}")
    return problems


def load_site(path: Path | None) -> Site:
    """Read and validate a site file; raise ConfigError listing every problem."""
    if path is None:
        return Site.empty()
    source = str(path)
    data = read_toml(path, "site file")
    try:
        model = SiteModel.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_errors(exc, {}, source)
        remainder, error = data, exc
        for _ in range(3):  # cross-check what is valid: every problem in one pass
            remainder = without_invalid(remainder, error)
            try:
                problems += _cross_checks(SiteModel.model_validate(remainder), source, data)
                break
            except ValidationError as again:
                error = again
        raise ConfigError(problems) from None
    problems = _cross_checks(model, source)
    commitments = None
    if model.commitments_file is not None:
        try:
            commitments = load_catalogue(Path(path).parent / model.commitments_file, {a.id for a in model.assets})
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return Site.from_model(model, commitments)
