"""The gateway's own web pages (issue 6): login, the manager's dashboard, the maintenance queue, the
guard's patrol page and the assets page, served by the gateway itself because a site's LAN has no
internet. Everything they use is in ``static/``: plain JS modules, one stylesheet, no CDN, no build.

A page needs the session cookie of a role allowed for it (the API's own sessions,
:mod:`gateway.api_auth`); its data comes from the API, which checks the role again on every call.
Static files are open: they are code, with no site data in them (the login page needs them too).
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from gateway.api_auth import COOKIE
from gateway.auth import Principal

_LOGGER = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

#: Who may open each page besides admin (who may open them all).
PAGES: dict[str, frozenset[str]] = {
    "manager": frozenset({"manager"}),
    "maintenance": frozenset({"manager", "maintenance"}),
    "guard": frozenset({"manager", "guard"}),
    "assets": frozenset({"manager", "maintenance"}),
}
#: Where each role lands after logging in.
HOME = {"admin": "/manager", "manager": "/manager", "maintenance": "/maintenance", "guard": "/guard"}

#: No inline script or style anywhere: the pages load everything from their own files.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
}

# A module's imports of its neighbours (`from "./common.js"`) get the version too, so a browser that
# caches files for an hour never mixes an old module with a new page after an upgrade.
_IMPORT = re.compile(r"""((?:from|import)\s*\(?\s*["'])(\./[\w.-]+\.js)(["'])""")


@dataclass(frozen=True)
class _File:
    body: bytes
    media_type: str
    etag: str


def _load(folder: Path) -> tuple[dict[str, _File], str]:
    """Every file of ``folder`` in memory, keyed by its relative path, and their common version.
    Only these names are ever served, so no request path can leave the folder."""
    raw = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
           if p.is_file() and p.suffix in TYPES}
    version = hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in raw.values())).hexdigest()[:12]
    files = {}
    for name, body in raw.items():
        if name.endswith(".js"):
            body = _IMPORT.sub(lambda m: f"{m[1]}{m[2]}?v={version}{m[3]}", body.decode()).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        files[name] = _File(body, TYPES[Path(name).suffix], etag)
    return files, version


def principal(request: Request) -> Principal | None:
    """Who the session cookie names (expired, revoked or absent: nobody). Devices have no pages."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    who: Principal | None = request.app.state.auth.authenticate(secret)
    return who if who is not None and who.role in HOME else None


def _redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303, headers={"Cache-Control": "no-store"})


def web_routes(sv: Any) -> APIRouter:
    """The pages and their static files; ``sv.site`` gives the site's name and time zone (read at each
    request: a reloaded site file shows at once)."""
    r = APIRouter(include_in_schema=False)
    files, version = _load(STATIC)
    _LOGGER.debug("web pages: %d static files, version %s", len(files), version)

    def page(name: str) -> Response:
        info = sv.site.info
        text = files[f"{name}.html"].body.decode()
        for key, value in (("v", version), ("site", info.name), ("tz", info.timezone)):
            text = text.replace("{{" + key + "}}", html.escape(value))
        return Response(text, media_type=TYPES[".html"], headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})

    def guarded(name: str, request: Request) -> Response:
        who = principal(request)
        if who is None or who.must_change:  # the login page shows the password change when it must
            return _redirect(f"/login?next={quote(request.url.path, safe='/')}")
        if who.role != "admin" and who.role not in PAGES[name]:
            return _redirect(HOME[who.role])
        return page(name)

    @r.get("/")
    def root(request: Request) -> Response:
        """The logged-in user's own page, or the login."""
        who = principal(request)
        return _redirect("/login" if who is None or who.must_change else HOME[who.role])

    @r.get("/login")
    def login() -> Response:
        """The only page open to everybody."""
        return page("login")

    def guarded_page(name: str) -> Callable[[Request], Response]:
        def show(request: Request) -> Response:
            return guarded(name, request)
        return show

    for name in PAGES:  # /manager, /maintenance, /guard, /assets: each for the roles PAGES gives it
        r.add_api_route(f"/{name}", guarded_page(name), methods=["GET"], name=name)

    @r.get("/static/{path:path}")
    def static(path: str, request: Request) -> Response:
        """Open to all (code, no data); cached an hour (the pages link them with the version), or
        revalidated by ETag."""
        f = files.get(path)
        if f is None:
            return Response('{"error": {"code": 404, "message": "no such file", "field": null}}', status_code=404,
                            media_type="application/json")
        headers = {"ETag": f.etag, "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == f.etag:
            return Response(status_code=304, headers=headers)
        return Response(f.body, media_type=f.media_type, headers=headers)

    return r
