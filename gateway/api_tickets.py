"""API routes for tickets, callbacks and asset states (included by :func:`gateway.api.create_app`).

The person acting is the one logged in: a body's ``by`` is ignored for users and only names the
person when the installer's token (nobody) is used. Roles: a guard reports problems; maintenance
lists and works tickets, callbacks and assets; a manager also reads webhooks and reloads the site.
"""


import base64
import binascii
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api_auth import Principal, actor, require
from gateway.api_params import Id, Limit, Offset, paged
from gateway.photos import check_photos
from gateway.sla import clock_state
from gateway.tickets import ACTIONS, STATUSES, TicketError

_STATUS = {"not_found": 404, "conflict": 409, "invalid": 422}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


BY = "who acts: ignored when a user is logged in (their own name is used); for the installer's token"


class Action(_Body):
    by: str | None = Field(None, min_length=1, max_length=64, examples=["王师傅"], description=BY)
    note: str = Field("", max_length=2000)
    assignee: str | None = Field(None, max_length=64)


class NewTicket(_Body):
    """A problem reported by a person (a guard, a manager, an owner's call)."""

    by: str | None = Field(None, min_length=1, max_length=64, examples=["保安 G017"], description=BY)
    title: str = Field(min_length=1, max_length=200, examples=["3号楼楼道灯不亮"])
    priority: Literal["emergency", "urgent", "general"] = "general"
    asset: str | None = Field(None, max_length=64, examples=["L-017"])
    fault: str = Field("reported", max_length=64)
    note: str = Field("", max_length=2000)
    photos: list[str] = Field([], max_length=5, description="base64 JPEG, PNG or WebP; at most 5, 2 MB each")


class Callback(_Body):
    """A callback to the owner after a repair (回访)."""

    by: str | None = Field(None, min_length=1, max_length=64, description=BY)
    channel: Literal["phone", "visit", "wechat", "sms", "other"] = "phone"
    score: int = Field(ge=1, le=5, description="5 很满意 … 1 很不满意")
    note: str = Field("", max_length=2000)


def decode_photos(photos: list[str]) -> list[bytes]:
    """Photos as a JSON body carries them (base64); a bad one is refused naming the field."""
    try:
        return [base64.b64decode(p, validate=True) for p in photos]
    except (binascii.Error, ValueError):
        raise HTTPException(422, "photos: each must be base64") from None


def _fail(exc: TicketError) -> HTTPException:
    return HTTPException(_STATUS.get(exc.code, 400), str(exc))


def clocks(t: dict[str, Any], now: float) -> dict[str, str | None]:
    """Each SLA clock's state now: on_time, at_risk, overdue, met or missed. Once the ticket is resolved,
    a step that was skipped (arriving for a remote fix) is judged at the resolution."""
    start, until = t["clocks_from"], t["resolved_at"] or t["cancelled_at"] or now
    return {"respond": clock_state(start, t["respond_by"], t["acknowledged_at"], until),
            "arrive": clock_state(start, t["arrive_by"], t["on_site_at"], until),
            "resolve": clock_state(start, t["resolve_by"], t["resolved_at"], until)}


def ticket_routes(sv: Any) -> APIRouter:
    r = APIRouter(prefix="/api/v1")
    store = sv.tickets
    maintenance = require("maintenance", "manager")
    Reporter = Annotated[Principal, require("guard", "maintenance", "manager")]
    Worker = Annotated[Principal, maintenance]

    def shown(t: dict[str, Any]) -> dict[str, Any]:
        return {**t, "clocks": clocks(t, time.time())}

    @r.get("/tickets", tags=["tickets"])
    def list_tickets(who: Worker, status: Annotated[list[str] | None, Query(examples=[["open", "acknowledged"]])]
                     = None, priority: Literal["emergency", "urgent", "general"] | None = None,
                     category: str | None = None, asset: str | None = None,
                     assignee: Annotated[str | None, Query(description="a name, ``me``, or ``none`` (nobody has "
                                                                       "taken it yet)", examples=["me"])] = None,
                     overdue: bool = False, callback_due: bool = False,
                     sort: Literal["newest", "deadline"] = "newest",
                     limit: Limit = 100,
                     offset: Offset = 0) -> dict[str, Any]:
        """Newest first, or by the next deadline to meet (``sort=deadline``: a repairer's queue).
        ``status`` repeats (``?status=open&status=acknowledged``); ``assignee=me`` keeps your own (a
        ticket becomes yours when you assign it to yourself or act on it first: 接单);
        ``overdue`` keeps live tickets with a deadline already passed; ``callback_due`` keeps closed
        tickets whose owner is still to be called back (回访), the longest waiting first."""
        bad = [s for s in status or [] if s not in STATUSES]
        if bad:
            raise HTTPException(422, f"status: unknown status {bad[0]!r} (known: {', '.join(STATUSES)})")
        items, total = store.list(status=status or (), priority=priority, category=category, asset=asset,
                                  assignee={"me": who.name, "none": None}.get(assignee or "", assignee),
                                  unassigned=assignee == "none",
                                  overdue_at=time.time() if overdue else None, callback_due=callback_due,
                                  sort=sort, limit=limit, offset=offset)
        return {"items": [shown(t) for t in items], "total": total, "limit": limit, "offset": offset}

    @r.get("/tickets/{ticket_id}", dependencies=[maintenance], tags=["tickets"])
    def get_ticket(ticket_id: Id) -> dict[str, Any]:
        """One ticket with its whole timeline and callbacks."""
        try:
            return shown(store.get(ticket_id))
        except TicketError as exc:
            raise _fail(exc) from None

    @r.post("/tickets", status_code=201, tags=["tickets"])
    def new_ticket(body: NewTicket, who: Reporter) -> dict[str, Any]:
        """Report a problem by hand, with photos if any; naming an asset with a fault already ticketed adds
        to that ticket."""
        asset = next((a for a in sv.site.assets if a.id == body.asset), None)
        if body.asset and asset is None:
            raise HTTPException(422, f"asset: no asset {body.asset!r} on this site")
        photos = decode_photos(body.photos)
        problems = check_photos(photos)
        if problems:
            raise HTTPException(422, "photos: " + "; ".join(problems))
        t, what = store.open(subject=f"asset:{asset.id}" if asset else None, fault=body.fault,
                             priority=body.priority, title=body.title, at=time.time(), by=actor(who, body.by),
                             source="manual",
                             asset=asset.id if asset else None, category=asset.category if asset else None,
                             note=body.note)
        if photos:
            t = store.attach_photos(t["id"], photos, actor(who, body.by), time.time())
        return {**shown(t), "outcome": what}

    @r.get("/tickets/{ticket_id}/photos/{entry}/{name}", response_class=FileResponse, dependencies=[maintenance],
           tags=["tickets"])
    def photo(ticket_id: Id, entry: Id, name: str) -> FileResponse:
        """A photo of the problem, as named by the ticket's timeline (its ``photos`` entry)."""
        path = store.photo_path(ticket_id, entry, name)
        if path is None:
            raise HTTPException(404, "no such photo")
        return FileResponse(path)

    @r.post("/tickets/{ticket_id}/callbacks", status_code=201, tags=["tickets"])
    def callback(ticket_id: Id, body: Callback, who: Worker) -> dict[str, Any]:
        try:
            return shown(store.add_callback(ticket_id, actor(who, body.by), body.channel, body.score, body.note,
                                            time.time()))
        except TicketError as exc:
            raise _fail(exc) from None

    @r.post("/tickets/{ticket_id}/{action}", tags=["tickets"])
    def act(ticket_id: Id, action: str, who: Worker, body: Action | None = None) -> dict[str, Any]:
        """acknowledge, arrive, resolve, close, cancel, reopen or assign (with ``assignee``)."""
        if action not in ACTIONS:
            raise HTTPException(404, f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
        body = body or Action()
        try:
            return shown(store.act(ticket_id, action, actor(who, body.by), time.time(), body.note, body.assignee))
        except TicketError as exc:
            raise _fail(exc) from None

    @r.get("/assets", dependencies=[maintenance], tags=["assets"])
    def assets(category: str | None = None, state: Literal["intact", "faulty", "unknown"] | None = None,
               limit: Annotated[int, Query(ge=1, le=5000)] = 500,
               offset: Offset = 0) -> dict[str, Any]:
        """Every asset with its state now (intact, faulty, unknown) and confirmed faults."""
        items, total = sv.monitor.states(category, state, offset, limit)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @r.get("/assets/{asset}/states", dependencies=[maintenance], tags=["assets"])
    def asset_states(asset: str, since: float | None = None, until: float | None = None,
                     limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict[str, Any]:
        """The asset's state ledger: every transition with its time, faults and cause."""
        if asset not in sv.monitor.watch:
            raise HTTPException(404, f"no asset {asset!r} on this site")
        return {"asset": asset, "items": store.state_history(asset, since, until, limit)}

    @r.get("/webhooks", dependencies=[require("manager")], tags=["events"])
    def webhooks(limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        """Each configured hook: format, target (without its key), cursor, last success and error."""
        return paged(sv.webhooks.status(), limit, offset)

    @r.get("/webhooks/deliveries", dependencies=[require("manager")], tags=["events"])
    def deliveries(hook: str | None = None, limit: Limit = 100,
                   offset: Offset = 0) -> dict[str, Any]:
        """The delivery log, newest first: every attempt with its HTTP status and the bot's answer."""
        return {"items": sv.webhooks.deliveries(hook, limit, offset), "limit": limit, "offset": offset}

    @r.post("/site/reload", dependencies=[require("manager")], tags=["assets"])
    def reload_site() -> dict[str, Any]:
        """Re-read the site file (like SIGHUP); on problems the current one stays and they are listed."""
        applied = sv.monitor.watch
        problems = sv.reload_site() if sv.reload_site else ["this gateway cannot reload its site file"]
        if problems:
            raise HTTPException(422, "; ".join(problems))
        deadline = time.monotonic() + 5.0  # the ingest thread applies it at its next turn: answer once it has
        while sv.monitor.watch is applied and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"assets": len(sv.site.assets), "checkpoints": len(sv.site.checkpoints)}
    return r
