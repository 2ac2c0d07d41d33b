"""The HTTP API: ``create_app(services)``, no module-level state.

Health is open (for monitors and load balancers); ``/metrics`` takes the metrics token
or a loopback client; logging in and its page are open, and the pages' scripts and styles
(code, no data); every other route needs a login (a session or a token) with a role that may
use it (:func:`gateway.api_auth.require`; the table is in the README).
"""


import hmac
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api_auth import auth_routes, authenticated, require
from gateway.api_commitments import commitment_routes
from gateway.api_events import event_routes
from gateway.api_inspections import inspection_routes
from gateway.api_params import Limit, Offset
from gateway.api_tickets import ticket_routes
from gateway.api_views import view_routes
from gateway.sensors import KINDS
from gateway.web import web_routes

_LOGGER = logging.getLogger(__name__)


class MqttHealth(BaseModel):
    connected: bool
    connected_since: float | None
    last_disconnect: str | None


class InfluxHealth(BaseModel):
    reachable: bool
    url: str
    last_write: float | None
    last_error: str | None


class OutboxHealth(BaseModel):
    depth: int
    bytes: int
    oldest_age_s: float | None
    dropped: int


class ClockHealth(BaseModel):
    synced: bool  # the probe's answer now
    held: bool  # SLA escalations, missed rounds and silent-device checks wait for a synchronised clock
    require_sync: bool  # clock.require_sync
    source: str
    detail: str


class Health(BaseModel):
    status: str  # ok | degraded (held time decisions too)
    site: str
    gateway: str
    uptime_s: float
    mqtt: MqttHealth
    influx: InfluxHealth
    outbox: OutboxHealth
    dead_letters: dict[str, int]
    serial: list[dict[str, Any]] = []  # per configured port: open, lines, garbage, reopenings, last error
    clock: ClockHealth | None = None


class ErrorDetail(BaseModel):
    code: int
    message: str
    field: str | None = None  # the request field at fault, dotted (``results.seal_intact``)


class ErrorBody(BaseModel):
    """Every error the API answers, whatever its status: what went wrong, said for a person."""

    error: ErrorDetail


def _error_doc(why: str, example: str, field: str | None = None) -> dict[str, Any]:
    return {"model": ErrorBody, "description": why,
            "content": {"application/json": {"example": {"error": {"code": 0, "message": example, "field": field}}}}}


#: Documented on every route: the error shape, and when each status comes.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error_doc("no login, or a session or token unknown, expired or revoked",
                    "log in first (POST /api/v1/auth/login), or send a bearer token"),
    403: _error_doc("logged in, but not with a role this route is for (or a password to change first)",
                    "GET /api/v1/tickets is not for the role guard (allowed: maintenance, manager, admin)"),
    404: _error_doc("no such thing", "no ticket 999"),
    409: _error_doc("refused in the thing's present state", "ticket 12 is closed: acknowledge applies to open"),
    422: _error_doc("a request that cannot be taken, naming its field", "limit: Input should be greater than or "
                    "equal to 1", "limit"),
    429: _error_doc("too many wrong passwords: locked for a while", "locked after 5 wrong passwords: "
                    "try again in 15 minutes"),
    503: _error_doc("a server the gateway needs did not answer", "InfluxDB at http://127.0.0.1:8086 did not "
                    "answer"),
}


#: An example answer for each operation, recorded from the app (``python -m tests.test_api_examples``).
EXAMPLES_FILE = Path(__file__).with_name("api_examples.json")


def _with_examples(app: FastAPI) -> None:
    """Put the recorded examples into the OpenAPI document, where a route has none of its own."""
    examples = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8")) if EXAMPLES_FILE.exists() else {}
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        spec = plain()  # FastAPI builds it once and keeps it; filling it in again changes nothing
        for path, operations in spec["paths"].items():
            for method, op in operations.items():
                example = examples.get(f"{method.upper()} {path}")
                for code in ("200", "201", "202"):
                    media = op["responses"].get(code, {}).get("content", {}).get("application/json")
                    if example is not None and media is not None and "example" not in media:
                        media["example"] = example
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # not an IP address (a unix socket, a test client)
        return False


def create_app(services: Any) -> FastAPI:  # Services; typed loosely: the API imports no service code
    # The OpenAPI document is served behind a login like the rest, and no docs page: FastAPI's loads
    # its scripts from a CDN, which a site's LAN does not reach.
    app = FastAPI(title="Facility gateway", version="1", openapi_url=None, docs_url=None, redoc_url=None,
                  responses=ERRORS, description=__doc__)
    bearer = HTTPBearer(auto_error=False)
    sv = services
    if sv.auth is None:
        raise ValueError("the API needs the users and tokens (services.auth): it would let nobody in")
    app.state.auth = sv.auth  # read by the require() dependencies
    # Phones on a site's Wi-Fi: pages and lists go compressed (the event stream never is: Starlette leaves
    # text/event-stream alone, so events are not held back in a buffer).
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    manager = require("manager")

    @app.exception_handler(StarletteHTTPException)  # FastAPI's too, and the router's 404 and 405
    async def _error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        field = getattr(exc, "field", None)
        return JSONResponse({"error": {"code": exc.status_code, "message": exc.detail, "field": field}},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        """A bad request names the field and what is wrong with it, in the same shape as every error."""
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        message = f"{field}: {first.get('msg', 'invalid request')}" if field else first.get("msg", "invalid request")
        return JSONResponse({"error": {"code": 422, "message": message, "field": field}}, status_code=422)

    @app.get("/api/v1/openapi.json", include_in_schema=False, dependencies=[Depends(authenticated)])
    def openapi() -> JSONResponse:
        """The API's OpenAPI document, for anyone logged in (a device token aside)."""
        return JSONResponse(app.openapi())

    @app.get("/api/v1/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Is the gateway doing its job: broker, InfluxDB, backlog, refused input, a clock it may trust."""
        depth, size, oldest = sv.outbox.depth()
        fw, tr = sv.forwarder, sv.transport
        clock = sv.clock.state.as_json(sv.clock.require_sync) if sv.clock is not None else None
        ok = tr.connected and fw.last_error is None and not (clock and clock["held"])
        return Health(
            status="ok" if ok else "degraded",
            site=sv.settings.site,
            gateway=sv.settings.gateway_id,
            uptime_s=round(time.time() - sv.started_at, 1),
            mqtt=MqttHealth(connected=tr.connected, connected_since=tr.connected_since,
                            last_disconnect=tr.last_disconnect),
            influx=InfluxHealth(reachable=fw.last_error is None and (fw.last_ok is not None or fw.writer.ping()),
                                url=sv.settings.influx.url, last_write=fw.last_ok, last_error=fw.last_error),
            outbox=OutboxHealth(depth=depth, bytes=size, oldest_age_s=None if oldest is None else
                                round(time.time() - oldest, 3), dropped=sv.outbox.dropped),
            dead_letters=sv.outbox.dead_letter_counts(),
            serial=[{"port": r.settings.port, **r.stats.as_json()} for r in sv.serial],
            clock=ClockHealth.model_validate(clock) if clock else None,
        )

    @app.get("/metrics", response_class=PlainTextResponse, tags=["health"])
    def metrics(request: Request,
                creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        """Prometheus metrics: the metrics token, or any loopback client when none is set."""
        token = sv.settings.api.metrics_token
        if token:
            if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
                raise HTTPException(401, "the metrics token is required", headers={"WWW-Authenticate": "Bearer"})
        elif not (request.client and _is_loopback(request.client.host)):
            raise HTTPException(403, "set api.metrics_token to scrape metrics from another host")
        return sv.metrics.render()

    @app.get("/api/v1/devices", dependencies=[manager], tags=["devices"])
    def devices(unbound: bool | None = None, online: bool | None = None, kind: str | None = None,
                limit: Limit = 100, offset: Offset = 0
                ) -> dict[str, Any]:
        """Every device seen, whether it is alive and which asset it reports for."""
        bindings = sv.site.bindings
        page, total = sv.registry.select(
            lambda r: (unbound is None or (r.device not in bindings) == unbound)
            and (online is None or r.online == online) and (not kind or r.kind == kind), offset, limit)
        items = [{**d, "asset": b.asset if (b := bindings.get(str(d["device"]))) else None} for d in page]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @app.get("/api/v1/devices/{device}", dependencies=[manager], tags=["devices"])
    def device(device: str) -> dict[str, Any]:
        d = sv.registry.get(device)
        if d is None:
            raise HTTPException(404, f"no device {device!r} has been seen")
        b = sv.site.bindings.get(device)
        d["asset"] = b.asset if b else None
        return d

    @app.get("/api/v1/dead-letters", dependencies=[manager], tags=["devices"])
    def dead_letters(reason: str | None = None, device: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50,
                     before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> dict[str, Any]:
        """Refused messages, newest first, with the reason and a truncated payload."""
        return {"counts": sv.outbox.dead_letter_counts(),
                "items": sv.outbox.dead_letters(reason, device, limit, before_id)}

    @app.get("/api/v1/kinds", dependencies=[manager], tags=["devices"])
    def kinds() -> dict[str, Any]:
        """The payload schema of every sensor kind."""
        return {name: {"category": k.category, "heartbeat_s": k.heartbeat_s, "schema": k.json_schema()}
                for name, k in KINDS.items()}

    app.include_router(auth_routes())
    app.include_router(ticket_routes(sv))
    app.include_router(commitment_routes(sv))
    app.include_router(inspection_routes(sv))
    app.include_router(event_routes(sv))
    app.include_router(view_routes(sv))
    app.include_router(web_routes(sv))  # the pages
    _with_examples(app)
    return app


def serve(services: Any) -> Callable[[], None]:
    """Run the API with uvicorn in a thread; returns the function that stops it."""
    import uvicorn

    from gateway.config import parse_bind

    host, port = parse_bind(services.settings.api.bind)
    api = services.settings.api
    config = uvicorn.Config(
        create_app(services), host=host, port=port, log_level="warning", access_log=False,
        ssl_certfile=str(api.tls_cert_file) if api.tls_cert_file else None,
        ssl_keyfile=str(api.tls_key_file) if api.tls_key_file else None,
        timeout_graceful_shutdown=2,  # open event streams must not hold a stop up
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if server.started:
        sock = server.servers[0].sockets[0].getsockname()
        services.api_port = sock[1]
        (services.settings.data_dir / "api.port").write_text(f"{sock[1]}\n")
        _LOGGER.info("API listening on %s://%s:%d", "https" if api.tls_cert_file else "http", sock[0], sock[1])
    else:
        _LOGGER.error("API could not start on %s (port in use?); stopping", services.settings.api.bind)
        services.failed.set()

    def stop() -> None:
        services.stopping.set()  # the event streams end first: a page left open must not hold the stop up
        server.should_exit = True
        thread.join(5)

    return stop
