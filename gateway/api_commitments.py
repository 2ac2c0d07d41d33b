"""API routes for the service commitments (物业服务承诺): figures as JSON, the monthly report as
CSV or a printable public notice (included by :func:`gateway.api.create_app`)."""


import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from gateway.api_auth import require
from gateway.commitments import notice
from gateway.commitments.periods import is_month, month_of, parse_period


def commitment_routes(sv: Any) -> APIRouter:
    r = APIRouter(prefix="/api/v1", dependencies=[require("manager")], tags=["commitments"])

    @r.get("/commitments")
    def figures(period: Annotated[str | None, Query(examples=["2026-11", "2026-Q4", "2026", "2026-11-21",
                                                              "2026-11-01..2026-11-15"])] = None,
                at: Annotated[datetime | None, Query(description="snapshot instant (ISO 8601; site local time "
                                                                "when it has no offset)")] = None
                ) -> dict[str, Any]:
        """Every indicator for a period in site local time (default: the running month): value, target,
        met, numerator and denominator, evidence; intact rates with snapshot, known-only, lowest day,
        ranking and, for the running month, the forecast. A month that is over comes frozen. Without
        ``period`` and ``at``, the running month as last computed (at most a minute ago, ``computed_at``;
        the gateway recomputes it every 30 s); naming the period computes it now."""
        now = time.time()
        if period is None and at is None:
            return sv.commitments.running(now)
        label = period or month_of(now, sv.site.tz)
        instant = None if at is None else (at if at.tzinfo else at.replace(tzinfo=sv.site.tz)).timestamp()
        try:
            if instant is not None:
                return sv.commitments.compute(parse_period(label, sv.site.tz), now, label, instant)
            if is_month(label):
                return sv.commitments.month(label, now)
            return sv.commitments.compute(parse_period(label, sv.site.tz), now, label)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @r.get("/commitments/report", response_model=None, responses={200: {
        "description": "the report as asked: a printable page, a spreadsheet, or the figures",
        "content": {"text/html": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}}}}})
    def report(month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])],
               format: Literal["html", "csv", "json"] = "html", lang: Literal["zh", "en"] = "zh"
               ) -> HTMLResponse | PlainTextResponse | dict[str, Any]:
        """The monthly report as posted for the owners (物业服务承诺公示): HTML ready to print on A4, or CSV."""
        try:
            data = sv.commitments.month(month, time.time())
        except ValueError as exc:  # a month the calendar cannot hold (year 0)
            raise HTTPException(422, f"month: {exc}") from None
        if format == "json":
            return data
        if format == "csv":
            return PlainTextResponse(notice.to_csv(data, lang), media_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="commitments-{month}.csv"'})
        return HTMLResponse(notice.to_html(data, sv.site.info.name, sv.site.tz, lang))

    return r
