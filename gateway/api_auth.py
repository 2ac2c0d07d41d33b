"""Logging in, sessions, API tokens and users over HTTP; :func:`require` guards every other route.

A request is from whoever its ``Authorization: Bearer`` secret (a session's, an API token's, the
installer's) or, without that header, its session cookie names (:mod:`gateway.auth`). ``require``
refuses with 401 when nobody is named and 403 when the role may not; admin may do everything.
Until a user whose password must change has changed it, only the password change, ``/auth/me``
and logout answer; everything else is 403 saying so.

The session cookie is HttpOnly and SameSite=Strict (no other site's page can make the browser send
it), and Secure when the gateway serves HTTPS.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from gateway.api_params import Id, Limit, Offset
from gateway.auth import DEVICE, INSTALLER, ROLES, SESSION_MAX_S, AuthError, AuthStore, Principal, one_time_password

COOKIE = "gw_session"
_bearer = HTTPBearer(auto_error=False, description="a session's token (from login), an API token or the "
                                                   "installer's token")
_cookie = APIKeyCookie(name=COOKIE, auto_error=False, description="the session cookie set by login (the pages)")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Cookie = Annotated[str | None, Depends(_cookie)]


class ApiError(HTTPException):
    """An HTTP error that names the request field it is about (the error shape's ``field``)."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.field = field


def from_auth(exc: AuthError) -> ApiError:
    headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after is not None else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return ApiError(exc.status, exc.message, exc.field, headers)


def _store(request: Request) -> AuthStore:
    return request.app.state.auth  # type: ignore[no-any-return]


def _who(request: Request, creds: HTTPAuthorizationCredentials | None, cookie: str | None) -> Principal:
    secret = creds.credentials if creds is not None else cookie
    if not secret:
        raise ApiError(401, "log in first (POST /api/v1/auth/login), or send a bearer token",
                       headers={"WWW-Authenticate": "Bearer"})
    who = _store(request).authenticate(secret)
    if who is None:
        raise ApiError(401, "this session or token is unknown, expired or revoked: log in again",
                       headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = who
    return who


def authenticated(request: Request, creds: Bearer, cookie: Cookie) -> Principal:
    """Anyone logged in, devices aside, even before a required password change."""
    who = _who(request, creds, cookie)
    if who.role == DEVICE:
        raise ApiError(403, "a device token may only post taps (POST /api/v1/taps)")
    return who


def require(*roles: str) -> Any:
    """The dependency admitting ``roles`` (and admin, who may do everything): 401 without a login,
    403 for another role or a password that must be changed first. Use it as ``dependencies=[require(...)]``
    or as a parameter's ``Annotated[Principal, require(...)]``."""
    unknown = set(roles) - set(ROLES) - {DEVICE}
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    allowed = frozenset(roles) | {"admin"}
    shown = ", ".join(r for r in (*ROLES, DEVICE) if r in allowed)

    def dependency(request: Request, creds: Bearer, cookie: Cookie) -> Principal:
        who = _who(request, creds, cookie)
        if who.must_change:
            raise ApiError(403, "your password must be changed first (POST /api/v1/auth/password)", "password")
        if who.role not in allowed:
            raise ApiError(403, f"{request.method} {request.url.path} is not for the role {who.role} "
                                f"(allowed: {shown})")
        return who

    return Depends(dependency)


def actor(who: Principal, by: str | None) -> str:
    """The name an action is recorded under: a user's or device's own (``by`` is ignored); for the
    installer's token, which is nobody, the ``by`` the request gives."""
    if who.kind == INSTALLER:
        return by or INSTALLER
    return who.name


Me = Annotated[Principal, Depends(authenticated)]
Admin = require()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    user: str = Field(min_length=1, max_length=64, examples=["王师傅"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery staple"])


class PasswordBody(_Body):
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=1, max_length=1024)


class TokenBody(_Body):
    """A named API token: for yourself (neither ``user`` nor ``device``), a user (admin), or a device
    (manager, admin: a reader or concentrator posting taps)."""

    name: str = Field(min_length=1, max_length=64, examples=["北门读卡器"])
    user: str | None = Field(None, max_length=64)
    device: str | None = Field(None, max_length=64, examples=["reader-n1"])
    expires_days: float | None = Field(None, gt=0, le=3650)


class NewUser(_Body):
    name: str = Field(min_length=1, max_length=64, examples=["王师傅"])
    role: Literal["admin", "manager", "maintenance", "guard"]
    password: str | None = Field(None, max_length=1024,
                                 description="temporary (changed at first login); omitted: one is generated "
                                             "and returned once")


class UserChange(_Body):
    role: Literal["admin", "manager", "maintenance", "guard"] | None = None
    disabled: bool | None = None
    password: str | None = Field(None, max_length=1024, description="a temporary password (changed at next login)")
    reset_password: bool = Field(False, description="generate a temporary password, returned once")
    unlock: bool = Field(False, description="clear a lockout after wrong passwords")


def _me(store: AuthStore, who: Principal) -> dict[str, Any]:
    base: dict[str, Any] = {"kind": who.kind, "name": who.name, "role": who.role, "via": who.via,
                            "must_change": who.must_change}
    if who.user_id is not None:
        base["user"] = store.get_user(who.user_id)
    return base


def auth_routes() -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["auth"])

    @r.post("/auth/login")
    def login(request: Request, body: LoginBody) -> JSONResponse:
        """A session: the cookie for the pages, and ``token`` to send as ``Authorization: Bearer`` to the
        API. It ends after 8 hours unused, 7 days at most, or at logout. Five wrong passwords in a row
        lock the user for 15 minutes (429), each next lockout twice as long."""
        store = _store(request)
        try:
            who, secret, expires = store.login(body.user, body.password)
        except AuthError as exc:
            raise from_auth(exc) from None
        answer = JSONResponse({"token": secret, "token_type": "bearer", "expires_at": expires,
                               "must_change": who.must_change, **_me(store, who)})
        answer.set_cookie(COOKIE, secret, max_age=int(SESSION_MAX_S), path="/", httponly=True, samesite="strict",
                          secure=request.url.scheme == "https")
        return answer

    @r.post("/auth/logout", status_code=204)
    def logout(request: Request, creds: Bearer, cookie: Cookie) -> Response:
        """End this session (its cookie and its bearer token alike) and clear the cookie. An API token
        is not ended here: revoke it with DELETE /api/v1/auth/tokens/{id}."""
        secret = creds.credentials if creds is not None else cookie
        store = _store(request)
        who = store.authenticate(secret) if secret else None
        if who is not None and who.via == "session" and who.token_id is not None:
            store.end_session(who.token_id)
        answer = Response(status_code=204)
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                             secure=request.url.scheme == "https")
        return answer

    @r.get("/auth/me")
    def me(request: Request, who: Me) -> dict[str, Any]:
        """Who you are: name, role, and whether your password must be changed first."""
        return _me(_store(request), who)

    @r.post("/auth/password")
    def change_password(request: Request, who: Me, body: PasswordBody) -> dict[str, Any]:
        """Change your own password (the current one first). Your other sessions end."""
        if who.user_id is None:
            raise ApiError(422, "only a user has a password (this is the installer's token)")
        store = _store(request)
        try:
            store.change_password(who.user_id, body.current, body.new,
                                  who.token_id if who.via == "session" else None)
        except AuthError as exc:
            raise from_auth(exc) from None
        return store.get_user(who.user_id)

    # -- API tokens --------------------------------------------------------------------------------

    def may_manage(who: Principal, token: dict[str, Any]) -> bool:
        if who.role == "admin":
            return True
        if token["device"] is not None:
            return who.role == "manager"
        return token["user_id"] is not None and token["user_id"] == who.user_id

    @r.post("/auth/tokens", status_code=201)
    def new_token(request: Request, body: TokenBody, who: Annotated[Principal, require(*ROLES)]) -> dict[str, Any]:
        """A named token; its secret is in this answer only (stored as its SHA-256)."""
        store = _store(request)
        if body.user and body.device:
            raise ApiError(422, "name a user or a device, not both", "device")
        user_id = who.user_id
        if body.device:
            if who.role not in ("admin", "manager"):
                raise ApiError(403, "device tokens are made by a manager or an admin", "device")
            user_id = None
        elif body.user and body.user != who.name:
            if who.role != "admin":
                raise ApiError(403, "tokens for another user are made by an admin", "user")
            found = store.find_user(body.user)
            if found is None:
                raise ApiError(422, f"no user {body.user!r}", "user")
            user_id = found["id"]
        elif user_id is None:
            raise ApiError(422, "the installer's token is nobody: name a user or a device", "user")
        expires = store.clock() + body.expires_days * 86400 if body.expires_days else None
        try:
            token, secret = store.create_token(body.name, who.name, user_id, body.device or None, expires)
        except AuthError as exc:
            raise from_auth(exc) from None
        return {**token, "token": secret}

    @r.get("/auth/tokens")
    def tokens(request: Request, who: Annotated[Principal, require(*ROLES)],
               kind: Literal["user", "device"] | None = None, revoked: bool = False,
               limit: Limit = 100,
               offset: Offset = 0) -> dict[str, Any]:
        """API tokens you may revoke: your own; a manager's list adds the devices', an admin's every one
        (the installer's too). Secrets are never shown again."""
        items = _store(request).list_tokens(who.user_id, devices=who.role == "manager",
                                            everything=who.role == "admin", revoked=revoked)
        if kind is not None:
            items = [t for t in items if (t["device"] is not None) == (kind == "device")]
        return {"items": items[offset:offset + limit], "total": len(items), "limit": limit, "offset": offset}

    @r.delete("/auth/tokens/{token_id}")
    def revoke(request: Request, token_id: Id, who: Annotated[Principal, require(*ROLES)]) -> dict[str, Any]:
        """Revoke a token: refused from its next request on."""
        store = _store(request)
        try:
            token = store.get_token(token_id)
            if not may_manage(who, token):
                raise AuthError(404, f"no token {token_id}")
            return store.revoke_token(token_id, who.name)
        except AuthError as exc:
            raise from_auth(exc) from None

    # -- users (admin) -----------------------------------------------------------------------------

    @r.get("/users", dependencies=[Admin], tags=["users"])
    def users(request: Request, role: Literal["admin", "manager", "maintenance", "guard"] | None = None,
              disabled: bool | None = None, limit: Limit = 100,
              offset: Offset = 0) -> dict[str, Any]:
        items, total = _store(request).list_users(role, disabled, limit, offset)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @r.post("/users", status_code=201, tags=["users"])
    def new_user(request: Request, body: NewUser, who: Annotated[Principal, Admin]) -> dict[str, Any]:
        """A user with a temporary password, to be changed at the first login."""
        generated = body.password is None
        password = one_time_password() if generated else str(body.password)
        try:
            user = _store(request).create_user(body.name, body.role, password, who.name, must_change=True)
        except AuthError as exc:
            raise from_auth(exc) from None
        return {**user, "password": password} if generated else user

    @r.get("/users/{user_id}", dependencies=[Admin], tags=["users"])
    def user(request: Request, user_id: Id) -> dict[str, Any]:
        try:
            return _store(request).get_user(user_id)
        except AuthError as exc:
            raise from_auth(exc) from None

    @r.patch("/users/{user_id}", tags=["users"])
    def change_user(request: Request, user_id: Id, body: UserChange, who: Annotated[Principal, Admin]
                    ) -> dict[str, Any]:
        """Role, disabled, a temporary password (given, or generated with ``reset_password``), unlock.
        The last enabled admin cannot lose the role or be disabled."""
        if body.password is not None and body.reset_password:
            raise ApiError(422, "give a password or ask for reset_password, not both", "password")
        password = one_time_password() if body.reset_password else body.password
        try:
            user = _store(request).update_user(user_id, who.name, body.role, body.disabled, password, body.unlock)
        except AuthError as exc:
            raise from_auth(exc) from None
        return {**user, "password": password} if body.reset_password else user

    @r.delete("/users/{user_id}", status_code=204, tags=["users"])
    def delete_user(request: Request, user_id: Id, who: Annotated[Principal, Admin]) -> None:
        """Delete a user with their sessions and tokens (disabling keeps the history's name usable)."""
        try:
            _store(request).delete_user(user_id, who.name)
        except AuthError as exc:
            raise from_auth(exc) from None

    return r
