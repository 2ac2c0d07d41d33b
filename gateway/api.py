"""The HTTP API: ``create_app(services)``, no module-level state.

Health is open (for monitors and load balancers); ``/metrics`` takes the metrics token
or a loopback client; logging in is open; every other route needs a login (a session or a
token) with a role that may use it (:func:`gateway.api_auth.require`; the table is in the README).
"""


import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api_auth import auth_routes, require
from gateway.api_commitments import commitment_routes
from gateway.api_events import event_routes
from gateway.api_inspections import inspection_routes
from gateway.api_tickets import ticket_routes
from gateway.sensors import KINDS

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


class Health(BaseModel):
    status: str  # ok | degraded
    site: str
    gateway: str
    uptime_s: float
    mqtt: MqttHealth
    influx: InfluxHealth
    outbox: OutboxHealth
    dead_letters: dict[str, int]
    serial: list[dict[str, Any]] = []  # per configured port: open, lines, garbage, reopenings, last error


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # not an IP address (a unix socket, a test client)
        return False


def create_app(services: Any) -> FastAPI:  # Services; typed loosely: the API imports no service code
    app = FastAPI(title="Facility gateway", version="1", openapi_url="/api/v1/openapi.json",
                  docs_url="/api/v1/docs", redoc_url=None)
    bearer = HTTPBearer(auto_error=False)
    sv = services
    if sv.auth is None:
        raise ValueError("the API needs the users and tokens (services.auth): it would let nobody in")
    app.state.auth = sv.auth  # read by the require() dependencies
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

    @app.get("/api/v1/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Is the gateway doing its job: broker, InfluxDB, backlog, refused input."""
        depth, size, oldest = sv.outbox.depth()
        fw, tr = sv.forwarder, sv.transport
        ok = tr.connected and fw.last_error is None
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
                limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0
                ) -> dict[str, Any]:
        """Every device seen, whether it is alive and which asset it reports for."""
        bindings = sv.site.bindings
        items = []
        for d in sv.registry.snapshot():
            b = bindings.get(d["device"])
            d["asset"] = b.asset if b else None
            if unbound is not None and (d["asset"] is None) != unbound:
                continue
            if online is not None and d["online"] != online:
                continue
            if kind and d["kind"] != kind:
                continue
            items.append(d)
        return {"total": len(items), "items": items[offset: offset + limit]}

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
                     before_id: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
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
        server.should_exit = True
        thread.join(5)

    return stop
