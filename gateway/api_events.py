"""The live event stream (server-sent events): ticket, asset and patrol events as they are
recorded, for the pages to update without polling. Each role sees its own work: a guard the
patrol events, maintenance the tickets, assets and inspections, managers everything.

A client that reconnects sends ``Last-Event-ID`` (browsers do it by themselves) and gets
what it missed, from the events table, in order.
"""


import asyncio
import fnmatch
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from gateway.api_auth import require
from gateway.auth import Principal

#: What each role is shown (fnmatch patterns on the event type); admin and manager see all.
SHOWN = {"guard": ("patrol.*",),
         "maintenance": ("ticket.*", "callback.*", "asset.state", "inspection.*", "fire.alarm")}
POLL_S = 0.5
KEEPALIVE_S = 15.0


def shown(role: str, type_: str, wanted: list[str] | None) -> bool:
    patterns = SHOWN.get(role)
    if patterns is not None and not any(fnmatch.fnmatchcase(type_, p) for p in patterns):
        return False
    return not wanted or any(fnmatch.fnmatchcase(type_, p) for p in wanted)


def event_routes(sv: Any) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["events"])

    @r.get("/events/stream", response_class=StreamingResponse)
    async def stream(request: Request, who: Annotated[Principal, require("manager", "maintenance", "guard")],
                     type: Annotated[list[str] | None, Query(description="only these types, e.g. ticket.*")] = None,
                     after: int | None = None,
                     last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None
                     ) -> StreamingResponse:
        """``text/event-stream`` of the events a role may see; ``after`` (or Last-Event-ID) resumes."""
        start = after if after is not None else int(last_event_id) if (last_event_id or "").isdigit() else None
        cursor = start if start is not None else await run_in_threadpool(sv.tickets.newest_event_id)

        async def events() -> AsyncIterator[str]:
            last, quiet = cursor, 0.0
            yield ": connected\n\n"
            while not sv.stopping.is_set() and not await request.is_disconnected():
                batch = await run_in_threadpool(sv.tickets.events_after, last, 200)
                for e in batch:
                    last = e.id
                    if shown(who.role, e.type, type):
                        yield f"id: {e.id}\nevent: {e.type}\ndata: {json.dumps(e.as_json(), ensure_ascii=False)}\n\n"
                if batch:
                    quiet = 0.0
                    continue
                await asyncio.sleep(POLL_S)
                quiet += POLL_S
                if quiet >= KEEPALIVE_S:  # proxies close silent connections
                    quiet = 0.0
                    yield ": keepalive\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return r
