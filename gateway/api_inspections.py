"""API routes for patrols and inspections (巡更与巡检): a guard's phone posts taps, staff post
inspection results, managers read rounds, flagged taps and unknown tags, and edit checkpoints.

Taps go through the same decoding as a reader's (the ingest thread takes them); inspections are
recorded by the ingest thread too, which owns the asset states they may set.

Roles: a guard posts taps and sees his rounds and the checkpoints; a device token posts taps only,
as the reader of its name; maintenance reads taps, plans and inspections and records inspections;
a manager also accepts flagged taps, lists unknown tags and edits checkpoints. The person acting
is the one logged in (a body's ``by`` only counts for the installer's token).
"""


import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api_auth import Principal, actor, require
from gateway.api_params import Id, Limit, Offset, paged
from gateway.api_tickets import decode_photos
from gateway.ingest import Message
from gateway.inspections.checkpoints import CheckpointError
from gateway.inspections.records import InspectionError
from gateway.sensors.checkpoint import normalize_tag
from gateway.site import CheckpointModel


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TapBody(_Body):
    """A tap from a phone (Web NFC) or typed in by hand."""

    tag: str = Field(min_length=2, max_length=64, examples=["04:A2:24:B2:C1:5E:80"])
    by: str | None = Field(None, min_length=1, max_length=64, examples=["G017"],
                           description="ignored when a user or a device is logged in (their own name is used)")
    reader: str | None = Field(None, max_length=64, description="a device token's taps are its own reader's")
    badge: str | None = Field(None, max_length=64)
    ts: float | None = Field(None, description="when it was tapped (epoch seconds); default: now")


class InspectionBody(_Body):
    asset: str = Field(examples=["FE-017"])
    plan: str = Field(examples=["fire"])
    by: str | None = Field(None, min_length=1, max_length=64, description="ignored when a user is logged in")
    results: dict[str, Literal["pass", "fail"]] = Field(examples=[{"pressure_green": "pass", "seal_intact": "fail"}])
    note: str = Field("", max_length=2000)
    photos: list[str] = Field([], description="base64 JPEG, PNG or WebP; at most 5, 2 MB each")
    tag_at: float | None = None


class AcceptBody(_Body):
    by: str | None = Field(None, min_length=1, max_length=64, description="ignored when a user is logged in")


def inspection_routes(sv: Any) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["patrols and inspections"])
    manager = require("manager")
    maintenance = require("maintenance", "manager")
    Inspector = Annotated[Principal, maintenance]
    Manager = Annotated[Principal, manager]

    @r.post("/taps", status_code=202)
    def post_tap(body: TapBody, who: Annotated[Principal, require("guard", "manager", "device")]) -> dict[str, Any]:
        """A tap from a phone or a reader posting over HTTP: recorded and fed to the rounds like a reader's;
        says which checkpoint it is. A device token's taps are from the reader of its name."""
        tag = normalize_tag(body.tag)
        if not isinstance(tag, str):
            raise HTTPException(422, f"tag: {tag.detail}")
        if who.kind == "device":  # a reader or concentrator: nobody logged in; the badge or reader names the guard
            reader, source = who.name, f"device:{who.name}"
        else:
            by = actor(who, body.by)
            reader, source = body.reader or f"phone-{by}", f"api:{by}"
        payload = {"tag": tag, "ts": body.ts or time.time(), **({"badge": body.badge} if body.badge else {})}
        sv.ingest_submit([Message(source, "checkpoint", reader, "tap", json.dumps(payload).encode(), time.time())])
        return {"tag": tag, "checkpoint": sv.site.tags.get(tag), "reader": reader}

    @r.get("/taps", dependencies=[maintenance])
    def taps(since: float | None = None, until: float | None = None, guard: str | None = None,
             checkpoint: str | None = None, flagged: bool | None = None,
             limit: Limit = 100, offset: Offset = 0
             ) -> dict[str, Any]:
        items, total = sv.fieldwork.taps.list(since=since, until=until, guard=guard, checkpoint=checkpoint,
                                              flagged=flagged, limit=limit, offset=offset)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @r.post("/taps/{tap_id}/accept")
    def accept(tap_id: Id, who: Manager, body: AcceptBody | None = None) -> dict[str, Any]:
        """A manager accepts a flagged tap (too fast, or repeated): it then counts as its visit."""
        by = actor(who, body.by if body else None)
        t = sv.call(lambda: sv.fieldwork.accept(tap_id, by, time.time()))
        if t is None:
            raise HTTPException(404, f"no flagged tap {tap_id}")
        return t

    @r.get("/tags/unknown", dependencies=[manager])
    def unknown_tags(limit: Limit = 100,
                     offset: Offset = 0) -> dict[str, Any]:
        """Tags tapped that belong to no checkpoint: add them with PUT /checkpoints/{id}."""
        items, total = sv.fieldwork.taps.unknown_tags(limit, offset)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @r.get("/rounds")
    def rounds(who: Annotated[Principal, require("guard", "manager")], route: str | None = None,
               state: str | None = None, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        """The rounds planned and under way (today's and the next hours'), each visit with its verdict.
        A guard sees the rounds nobody has started yet and his own."""
        items = sv.call(lambda: sv.fieldwork.rounds(time.time()))
        if who.role == "guard":
            items = [r for r in items if r["guard"] in (None, who.name)]
        items = [r for r in items if (route is None or r["route"] == route) and (state is None or r["state"] == state)]
        return paged(items, limit, offset)

    @r.get("/checkpoints", dependencies=[require("guard", "manager")])
    def checkpoints(route: str | None = None, limit: Limit = 1000, offset: Offset = 0) -> dict[str, Any]:
        """The site's checkpoints (巡更点) with their tags, in the order of the site file; ``route`` keeps
        those of one route, in its order."""
        points = sv.site.checkpoints
        if route is not None:
            found = next((r for r in sv.site.routes if r.id == route), None)
            if found is None:
                raise HTTPException(404, f"no route {route!r} on this site")
            by_id = {c.id: c for c in points}
            points = [by_id[c] for c in found.checkpoints if c in by_id]
        return paged([c.model_dump() for c in points], limit, offset)

    @r.put("/checkpoints/{ident}")
    def put_checkpoint(ident: str, body: CheckpointModel, who: Manager, by: str | None = None) -> dict[str, Any]:
        """Add or change a checkpoint (kept over the site file's)."""
        if body.id != ident:
            raise HTTPException(422, f"id: the body's id {body.id!r} is not {ident!r}")
        try:
            site = sv.checkpoints.put(sv.site, body, actor(who, by), time.time())
        except CheckpointError as exc:
            raise HTTPException(409, str(exc)) from None
        sv.fieldwork.taps.forget_unknown(body.tag)
        sv.apply_site(site)
        return body.model_dump()

    @r.delete("/checkpoints/{ident}", status_code=204)
    def delete_checkpoint(ident: str, who: Manager, by: str | None = None) -> None:
        try:
            site = sv.checkpoints.delete(sv.site, ident, actor(who, by), time.time())
        except CheckpointError as exc:
            raise HTTPException(409, str(exc)) from None
        sv.apply_site(site)

    @r.get("/plans", dependencies=[maintenance])
    def plans(category: str | None = None, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        """Inspection plans (定检) with their checklists."""
        return paged([{"id": p.id, "zh": p.zh, "en": p.en, "category": p.category, "every": p.every,
                           "times": p.times, "checklist": [{"id": i.id, "zh": i.zh, "en": i.en, "kinds": i.kinds}
                                                           for i in p.checklist]}
                      for p in sv.inspections.plans.values() if category is None or p.category == category],
                     limit, offset)

    @r.get("/inspections/due", dependencies=[maintenance])
    def due(asset: str | None = None, overdue: bool | None = None, limit: Limit = 100, offset: Offset = 0
            ) -> dict[str, Any]:
        """Each asset's inspections this period: done, needed, next deadline, overdue."""
        items = sv.inspections.due_states(time.time(), asset)
        if overdue is not None:
            items = [i for i in items if bool(i.get("overdue")) == overdue]
        return paged(items, limit, offset)

    @r.get("/inspections", dependencies=[maintenance])
    def inspections(asset: str | None = None, plan: str | None = None,
                    limit: Limit = 100,
                    offset: Offset = 0) -> dict[str, Any]:
        items, total = sv.inspections.store.list(asset=asset, plan=plan, limit=limit, offset=offset)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @r.post("/inspections", status_code=201)
    def post_inspection(body: InspectionBody, who: Inspector) -> dict[str, Any]:
        """Record a checklist result: a failed item opens a ticket like a failed reading."""
        photos = decode_photos(body.photos)
        by = actor(who, body.by)
        try:
            record, effects = sv.call(lambda: sv.inspections.record(
                body.asset, body.plan, by, time.time(), body.results, body.note, photos, body.tag_at))
        except InspectionError as exc:
            raise HTTPException(404 if exc.code == "not_found" else 422, "; ".join(exc.problems)) from None
        return {**record, "effects": effects.as_json()}

    @r.get("/inspections/{inspection_id}/photos/{name}", response_class=FileResponse, dependencies=[maintenance])
    def photo(inspection_id: Id, name: str) -> FileResponse:
        path = sv.inspections.store.photo_path(inspection_id, name)
        if path is None:
            raise HTTPException(404, "no such photo")
        return FileResponse(path)

    return r
