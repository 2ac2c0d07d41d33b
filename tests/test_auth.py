"""Users, roles, sessions and tokens (issue 6): the password hash, lockout and session expiry on an
injected clock, the first start's admin, every role against a table of routes, token revocation,
logout and the cookie's flags, in-process through the real app and services (FastAPI's TestClient);
then once end to end through the gateway process and the ``gateway token`` command.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway import auth
from gateway.api import create_app
from gateway.auth import AuthError, AuthStore, hash_password, needs_rehash, verify_password
from gateway.config import ConfigError, Settings
from gateway.ingest import Message
from gateway.service import Services, build, open_auth
from gateway.site import load_site
from tests.conftest import ROOT, GatewayProcess

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
PASSWORD = "correct horse battery"

SITE = """
[site]
name = "测试小区"
timezone = "Asia/Shanghai"
latitude = 31.23
longitude = 121.47

[[assets]]
id = "FE-1"
name = "灭火器 1"
category = "fire"
kind = "fire_extinguisher"
device = "fe-1"

[[guards]]
id = "G01"
name = "王保安"

[[checkpoints]]
id = "CP-1"
name = "北门"
tag = "04A1000001"
"""


class Clock:
    """A clock the test moves."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


# -- an app on real services, in-process ------------------------------------------------------------


@dataclass
class Env:
    sv: Services
    app: Any
    clock: Clock
    data_dir: Path
    submitted: list[Message] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # every password and token the test used: never logged

    def client(self, https: bool = False) -> TestClient:
        return TestClient(self.app, base_url="https://testserver" if https else "http://testserver")

    @property
    def store(self) -> AuthStore:
        assert self.sv.auth is not None
        return self.sv.auth

    def user(self, name: str, role: str, password: str = PASSWORD) -> str:
        """A user who has already chosen their password; their session's bearer token."""
        self.store.create_user(name, role, password, by="test", must_change=False)
        return self.login(name, password)

    def login(self, name: str, password: str = PASSWORD) -> str:
        r = self.client().post("/api/v1/auth/login", json={"user": name, "password": password})
        assert r.status_code == 200, r.text
        self.secrets += [password, r.json()["token"]]
        return str(r.json()["token"])

    def call(self, method: str, path: str, token: str | None = None, body: object = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client().request(method, path, headers=headers, json=body)


def settings_for(tmp_path: Path, **api: object) -> Settings:
    site_file = tmp_path / "site.toml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    if not site_file.exists():
        site_file.write_text(SITE, encoding="utf-8")
    return Settings.model_validate({"data_dir": str(tmp_path / "data"), "site_file": str(site_file), "api": api})


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """The gateway's services and API without its threads: calls for the ingest thread run at once,
    taps posted are collected, and the auth store runs on a clock the test moves."""
    yield from make_env(tmp_path)


def make_env(tmp_path: Path) -> Iterator[Env]:
    """:func:`env` outside pytest too (recording the API's examples)."""
    settings = settings_for(tmp_path)
    sv = build(settings, load_site(settings.site_file))
    assert sv.auth is not None
    sv.auth.close()
    clock = Clock(time.time())
    sv.auth = AuthStore(settings.data_dir / "gateway.db", clock, settings.data_dir / "admin-password")
    e = Env(sv, None, clock, settings.data_dir)
    sv.call = lambda fn: fn()
    sv.ingest_submit = e.submitted.extend
    sv.apply_site = lambda _site: None
    e.app = create_app(sv)
    e.secrets += [sv.api_token, (settings.data_dir / "admin-password").read_text().strip()]
    yield e
    for closing in (sv.auth.close, sv.tickets.close, sv.commitments.close, sv.registry.close, sv.outbox.close):
        closing()


@pytest.fixture
def no_secret_logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Register the secrets a test used; none may appear in anything logged."""
    used: list[str] = []
    yield used
    text = "\n".join(r.getMessage() for r in caplog.records)
    leaked = [s for s in used if s and s in text]
    assert not leaked, "a secret was logged"


def assert_refused(r: Any, status: int, words: str = "") -> None:
    """The API's error shape: {"error": {"code", "message", "field"}}."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["code"] == status and body["error"]["message"]
    assert words in body["error"]["message"], body
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"


# -- the password hash ----------------------------------------------------------------------------


def test_password_hash_round_trip_and_wrong_password():
    stored = hash_password("王师傅的密码 2026")
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(auth._unb64(salt)) == 16 and len(auth._unb64(key)) == 32
    assert verify_password("王师傅的密码 2026", stored)
    assert not verify_password("王师傅的密码 2025", stored)
    assert not verify_password("", stored)
    assert hash_password("王师傅的密码 2026") != stored  # a salt of its own each time
    assert not needs_rehash(stored)
    # Self-describing: a hash made with other parameters still verifies, and is to be redone.
    import hashlib
    salt_b = os.urandom(16)
    older = (f"scrypt$4096$8$1${auth._b64(salt_b)}$"
             f"{auth._b64(hashlib.scrypt(b'old one', salt=salt_b, n=4096, r=8, p=1, dklen=32))}")
    assert verify_password("old one", older) and not verify_password("old two", older) and needs_rehash(older)
    for broken in ("", "plain", "scrypt$16384$8$1$$", "bcrypt$16384$8$1$AAAA$AAAA", "scrypt$3$8$1$AAAA$AAAA",
                   stored.replace("scrypt$16384", "scrypt$abc"), stored[:-3] + "!!!"):
        assert not verify_password("王师傅的密码 2026", broken), broken


# -- lockout and sessions on an injected clock ----------------------------------------------------


def test_five_wrong_passwords_lock_for_15_minutes_then_30(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    clock = Clock(1_800_000_000.0)
    store = AuthStore(tmp_path / "gateway.db", clock)
    store.create_user("王师傅", "maintenance", PASSWORD, by="test", must_change=False)

    def attempt(password: str) -> int:
        try:
            store.login("王师傅", password)
        except AuthError as exc:
            return exc.status
        return 200

    assert [attempt("wrong") for _ in range(4)] == [401] * 4
    assert attempt(PASSWORD) == 200  # a success resets the count
    assert [attempt("wrong") for _ in range(5)] == [401] * 5
    assert attempt(PASSWORD) == 429  # locked: even the right password
    with pytest.raises(AuthError) as err:
        store.login("王师傅", PASSWORD)
    assert "locked for 15 more minute" in err.value.message and err.value.retry_after == pytest.approx(15 * MIN)
    assert store.find_user("王师傅")["locked_until"] == pytest.approx(clock.t + 15 * MIN)  # type: ignore[index]
    clock.advance(15 * MIN - 1)
    assert attempt(PASSWORD) == 429
    clock.advance(1)
    assert attempt("wrong") == 401  # the lock is over: counting again from zero
    assert [attempt("wrong") for _ in range(4)] == [401] * 4
    assert attempt(PASSWORD) == 429  # the second lockout in a row: twice as long
    clock.advance(30 * MIN - 1)
    assert attempt(PASSWORD) == 429
    clock.advance(1)
    assert attempt(PASSWORD) == 200
    assert store.find_user("王师傅")["lockouts"] == 0  # type: ignore[index]
    assert any("locked for 15 minutes after 5 wrong passwords" in r.getMessage() for r in caplog.records)
    assert PASSWORD not in caplog.text
    store.close()


def test_an_unknown_name_is_refused_like_a_wrong_password(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch):
    store = AuthStore(tmp_path / "gateway.db")
    store.create_user("li", "guard", PASSWORD, by="test")
    verified: list[str] = []  # the scrypt hashes checked: an unknown name costs one too, so takes as long

    def counting(password: str, stored: str) -> bool:
        verified.append(stored)
        return verify_password(password, stored)
    monkeypatch.setattr("gateway.auth.verify_password", counting)
    for name in ("nobody", "li"):
        verified.clear()
        with pytest.raises(AuthError) as err:
            store.login(name, "not the password")
        assert (err.value.status, err.value.message) == (401, "wrong user name or password")
        assert len(verified) == 1 and verified[0].startswith("scrypt$"), verified
    assert "nobody" not in caplog.text  # a password typed as a name would not be logged either
    store.close()


def test_sessions_end_after_8_hours_idle_and_7_days_at_most(tmp_path: Path):
    clock = Clock(1_800_000_000.0)
    store = AuthStore(tmp_path / "gateway.db", clock)
    store.create_user("zhang", "manager", PASSWORD, by="test", must_change=False)
    _, idle, _ = store.login("zhang", PASSWORD)
    clock.advance(8 * HOUR - MIN)
    assert store.authenticate(idle) is not None
    clock.advance(8 * HOUR - MIN)  # idle is counted from the last use
    assert store.authenticate(idle) is not None
    clock.advance(8 * HOUR)
    assert store.authenticate(idle) is None

    _, busy, expires = store.login("zhang", PASSWORD)
    assert expires == clock.t + 7 * DAY
    while clock.t + 4 * HOUR < expires:
        clock.advance(4 * HOUR)
        assert store.authenticate(busy) is not None
    clock.advance(4 * HOUR)
    assert store.authenticate(busy) is None  # used all along, but a week is the most
    store.close()


# -- the first start ------------------------------------------------------------------------------


def test_first_start_writes_a_one_time_password_that_must_be_changed(tmp_path: Path, caplog, no_secret_logged):
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir()
    store, installer = open_auth(settings)
    path = settings.data_dir / "admin-password"
    one_time = path.read_text().strip()
    no_secret_logged += [one_time, installer]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((settings.data_dir / "api-token").stat().st_mode) == 0o600
    assert len(one_time) >= 16
    assert any(str(path) in r.getMessage() and "one-time password" in r.getMessage() for r in caplog.records)
    [admin] = store.list_users()[0]
    assert (admin["name"], admin["role"], admin["must_change"]) == ("admin", "admin", True)
    store.close()

    sv = build(settings, load_site(settings.site_file))  # the second start: nothing new
    assert sv.api_token == installer and path.read_text().strip() == one_time
    app = create_app(sv)
    client = TestClient(app)
    r = client.post("/api/v1/auth/login", json={"user": "admin", "password": one_time})
    assert r.status_code == 200 and r.json()["must_change"] is True
    token = r.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    for path_ in ("/api/v1/tickets", "/api/v1/users", "/api/v1/auth/tokens"):
        r = client.get(path_, headers=bearer)
        assert_refused(r, 403, "password must be changed first")
        assert r.json()["error"]["field"] == "password"
    assert client.get("/api/v1/auth/me", headers=bearer).json()["must_change"] is True
    assert_refused(client.post("/api/v1/auth/password", headers=bearer,
                               json={"current": "guess", "new": "a new secret 1"}), 403, "current password")
    assert_refused(client.post("/api/v1/auth/password", headers=bearer, json={"current": one_time, "new": "short"}),
                   422, "at least 8")
    r = client.post("/api/v1/auth/password", headers=bearer, json={"current": one_time, "new": "a new secret 1"})
    assert r.status_code == 200 and r.json()["must_change"] is False
    no_secret_logged.append(token)
    assert not path.exists()  # one-time: gone once used
    assert client.get("/api/v1/tickets", headers=bearer).status_code == 200  # the session goes on
    assert TestClient(app).post("/api/v1/auth/login", json={"user": "admin", "password": one_time}).status_code == 401
    for closing in (sv.auth.close, sv.tickets.close, sv.commitments.close, sv.registry.close, sv.outbox.close):
        closing()
    store, _ = open_auth(settings)
    assert not path.exists() and len(store.list_users()[0]) == 1  # never another generated admin
    store.close()


def test_first_start_admin_from_a_password_file(tmp_path: Path, caplog, no_secret_logged):
    secret = tmp_path / "admin.pw"
    secret.write_text("site-admin secret 9\n")
    secret.chmod(0o600)
    no_secret_logged.append("site-admin secret 9")
    settings = settings_for(tmp_path, admin_user="李经理", admin_password_file=str(secret))
    settings.data_dir.mkdir()
    store, _ = open_auth(settings)
    who, _, _ = store.login("李经理", "site-admin secret 9")
    assert (who.role, who.must_change) == ("admin", False)
    assert not (settings.data_dir / "admin-password").exists()
    store.close()

    for content, words in (("short\n", "at least 8 characters"), (None, "cannot read")):
        other = settings_for(tmp_path / "other", admin_password_file=str(tmp_path / "other.pw"))
        if content is not None:
            (tmp_path / "other.pw").write_text(content)
        other.data_dir.mkdir(parents=True, exist_ok=True)
        with pytest.raises(ConfigError) as err:
            open_auth(other)
        assert err.value.problems[0].startswith("api.admin_password_file:") and words in err.value.problems[0]
        (tmp_path / "other.pw").unlink(missing_ok=True)
    assert "short" not in caplog.text


# -- every role against the routes ----------------------------------------------------------------

G, MT, MG, AD, DV = "guard", "maintenance", "manager", "admin", "device"
STAFF = {MT, MG, AD}
OFFICE = {MG, AD}
CHECKPOINT = {"id": "CP-Y", "name": "南门", "tag": "04A1000009"}

#: (method, path, body, the roles allowed). The installer's token acts as admin.
ROUTES: list[tuple[str, str, object, set[str]]] = [
    ("GET", "/api/v1/devices", None, OFFICE),
    ("GET", "/api/v1/devices/fe-1", None, OFFICE),
    ("GET", "/api/v1/dead-letters", None, OFFICE),
    ("GET", "/api/v1/kinds", None, OFFICE),
    ("GET", "/api/v1/tickets", None, STAFF),
    ("GET", "/api/v1/tickets/999", None, STAFF),
    ("POST", "/api/v1/tickets", {"title": "北门灯不亮"}, {G, MT, MG, AD}),
    ("POST", "/api/v1/tickets/999/acknowledge", {}, STAFF),
    ("POST", "/api/v1/tickets/999/resolve", None, STAFF),
    ("POST", "/api/v1/tickets/999/callbacks", {"score": 5}, STAFF),
    ("GET", "/api/v1/assets", None, STAFF),
    ("GET", "/api/v1/assets/FE-1/states", None, STAFF),
    ("GET", "/api/v1/assets/FE-1/readings?field=nope", None, STAFF),  # 422 past the role (no InfluxDB here)
    ("GET", "/api/v1/tickets/999/photos/1/1.jpg", None, STAFF),
    ("GET", "/api/v1/dashboard", None, OFFICE),
    ("GET", "/api/v1/webhooks", None, OFFICE),
    ("GET", "/api/v1/webhooks/deliveries", None, OFFICE),
    ("POST", "/api/v1/site/reload", None, OFFICE),
    ("GET", "/api/v1/commitments", None, OFFICE),
    ("GET", "/api/v1/commitments/report?month=2026-11&format=json", None, OFFICE),
    ("POST", "/api/v1/taps", {"tag": "04A1000001"}, {G, MG, AD, DV}),
    ("GET", "/api/v1/taps", None, STAFF),
    ("POST", "/api/v1/taps/999/accept", {}, OFFICE),
    ("GET", "/api/v1/tags/unknown", None, OFFICE),
    ("GET", "/api/v1/rounds", None, {G, MG, AD}),
    ("GET", "/api/v1/checkpoints", None, {G, MG, AD}),
    ("PUT", "/api/v1/checkpoints/CP-X", CHECKPOINT, OFFICE),  # the ids differ: 422 once past the role
    ("DELETE", "/api/v1/checkpoints/NOPE", None, OFFICE),
    ("GET", "/api/v1/plans", None, STAFF),
    ("GET", "/api/v1/inspections/due", None, STAFF),
    ("GET", "/api/v1/inspections", None, STAFF),
    ("POST", "/api/v1/inspections", {"asset": "NOPE", "plan": "fire", "results": {}}, STAFF),
    ("GET", "/api/v1/inspections/1/photos/a.jpg", None, STAFF),
    ("GET", "/api/v1/users", None, {AD}),
    ("POST", "/api/v1/users", {"name": "x", "role": "guard", "password": "short"}, {AD}),  # 422 past the role
    ("GET", "/api/v1/users/1", None, {AD}),
    ("PATCH", "/api/v1/users/999", {"disabled": True}, {AD}),
    ("DELETE", "/api/v1/users/999", None, {AD}),
    ("GET", "/api/v1/auth/me", None, {G, MT, MG, AD}),
    ("GET", "/api/v1/auth/tokens", None, {G, MT, MG, AD}),
    ("POST", "/api/v1/auth/tokens", {"name": "x", "device": "bad name!"}, {MG, AD}),  # 422 past the role
    ("DELETE", "/api/v1/auth/tokens/999", None, {G, MT, MG, AD}),
]


#: Routes the table leaves out, and where they are tested instead.
NOT_IN_TABLE = {
    ("GET", "/api/v1/health"): "open",
    ("GET", "/metrics"): "metrics token or loopback: test_metrics.py",
    ("POST", "/api/v1/auth/login"): "open: the lockout tests",
    ("POST", "/api/v1/auth/logout"): "ends the session it is sent with: test_logout_ends_the_session",
    ("POST", "/api/v1/auth/password"): "anyone's own: the first-start tests",
    ("GET", "/api/v1/openapi.json"): "anyone logged in: the end of the role test",
    ("GET", "/api/v1/events/stream"): "never ends: test_api_events.py",
}


def test_the_role_table_covers_every_api_route(env: Env):
    table = {(m, p.partition("?")[0]) for m, p, _, _ in ROUTES}
    documented = env.app.openapi()["paths"]
    missing = []
    for path, operations in documented.items():
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$")
        for method in (m.upper() for m in operations):
            if (method, path) not in NOT_IN_TABLE and not any(m == method and pattern.match(p) for m, p in table):
                missing.append(f"{method} {path}")
    assert len(documented) > 30 and not missing, f"routes with no line in ROUTES: {missing}"


def test_every_role_is_allowed_its_own_work_and_refused_the_rest(env: Env, no_secret_logged):
    tokens = {G: env.user("G01", "guard"), MT: env.user("王师傅", "maintenance"), MG: env.user("李经理", "manager"),
              AD: env.user("root", "admin")}
    device, secret = env.store.create_token("北门读卡器", "test", device="reader-n1")
    tokens[DV] = secret
    tokens["installer"] = env.sv.api_token
    no_secret_logged += [*env.secrets, secret]
    refused: list[str] = []
    for method, path, body, allowed in ROUTES:
        r = env.call(method, path, None, body)
        assert_refused(r, 401, "log in first")
        assert_refused(env.call(method, path, "not-a-token", body), 401, "unknown, expired or revoked")
        for role, token in tokens.items():
            r = env.call(method, path, token, body)
            if role in allowed or (role == "installer" and AD in allowed):
                assert r.status_code not in (401, 403) and r.status_code < 500, (role, method, path, r.text)
            else:
                assert_refused(r, 403)
                refused.append(f"{role} {method} {path}")
    # Spot checks of what the table proves.
    assert "guard GET /api/v1/tickets" in refused
    assert "maintenance GET /api/v1/users" in refused and "maintenance POST /api/v1/users" in refused
    assert "manager POST /api/v1/users" in refused and "manager PATCH /api/v1/users/999" in refused
    assert "guard GET /api/v1/taps" in refused and "maintenance POST /api/v1/taps" in refused
    assert all(f"device {m} {p}" in refused for m, p, _, _ in ROUTES if not p.startswith("/api/v1/taps")
               or m != "POST")
    assert "role guard" in env.call("GET", "/api/v1/tickets", tokens[G]).json()["error"]["message"]
    # Health is open; the API's document is for anyone logged in.
    assert env.call("GET", "/api/v1/health").status_code == 200
    assert_refused(env.call("GET", "/api/v1/openapi.json"), 401)
    assert_refused(env.call("GET", "/api/v1/openapi.json", tokens[DV]), 403)
    assert env.call("GET", "/api/v1/openapi.json", tokens[G]).json()["info"]["title"] == "Facility gateway"
    assert device["role"] == "device"


def test_the_logged_in_name_is_who_acts(env: Env):
    tokens = {"guard": env.user("G01", "guard"), "maintenance": env.user("王师傅", "maintenance")}
    r = env.call("POST", "/api/v1/tickets", tokens["guard"], {"title": "北门灯不亮", "by": "someone else"})
    assert r.status_code == 201 and r.json()["timeline"][0]["by"] == "G01"
    ticket = r.json()["id"]
    r = env.call("POST", f"/api/v1/tickets/{ticket}/acknowledge", tokens["maintenance"], {"by": "not me"})
    assert r.status_code == 200 and r.json()["timeline"][-1]["by"] == "王师傅"
    r = env.call("POST", f"/api/v1/tickets/{ticket}/arrive", tokens["maintenance"])  # no body at all
    assert r.status_code == 200 and r.json()["timeline"][-1]["by"] == "王师傅"
    # The installer's token is nobody: the body names the person, as before users.
    r = env.call("POST", f"/api/v1/tickets/{ticket}/resolve", env.sv.api_token, {"by": "主管 陈"})
    assert r.json()["timeline"][-1]["by"] == "主管 陈"
    # A guard's tap is his; a device's is from the reader of its name, whoever the body says.
    _, reader = env.store.create_token("北门读卡器", "test", device="reader-n1")
    assert env.call("POST", "/api/v1/taps", tokens["guard"], {"tag": "04A1000001", "by": "G99"}).status_code == 202
    r = env.call("POST", "/api/v1/taps", reader, {"tag": "04:a1:00:00:01", "by": "G99", "reader": "other"})
    assert r.status_code == 202 and r.json() == {"tag": "04A1000001", "checkpoint": "CP-1", "reader": "reader-n1"}
    assert [(m.source, m.device) for m in env.submitted] == [("api:G01", "phone-G01"),
                                                             ("device:reader-n1", "reader-n1")]


def test_tokens_are_revoked_at_once(env: Env, no_secret_logged):
    admin, manager = env.user("root", "admin"), env.user("李经理", "manager")
    guard = env.user("G01", "guard")
    r = env.call("POST", "/api/v1/auth/tokens", manager, {"name": "北门读卡器", "device": "reader-n1"})
    assert r.status_code == 201, r.text
    device = r.json()
    assert device["role"] == "device" and len(device["token"]) >= 43
    no_secret_logged += [*env.secrets, device["token"]]
    # Stored only as its SHA-256.
    rows = env.store.db.execute("SELECT hash FROM auth_tokens").fetchall()
    assert auth.secret_hash(device["token"]) in [h for (h,) in rows]
    assert device["token"] not in json.dumps(rows)
    assert env.call("POST", "/api/v1/taps", device["token"], {"tag": "04A1000001"}).status_code == 202
    assert_refused(env.call("GET", "/api/v1/taps", device["token"]), 403)
    assert "token" not in env.call("GET", "/api/v1/auth/tokens", manager).json()["items"][0]
    # A guard may not make device tokens nor revoke another's; his own he may.
    assert_refused(env.call("POST", "/api/v1/auth/tokens", guard, {"name": "x", "device": "r2"}), 403)
    assert_refused(env.call("DELETE", f"/api/v1/auth/tokens/{device['id']}", guard), 404)
    own = env.call("POST", "/api/v1/auth/tokens", guard, {"name": "手机"}).json()
    no_secret_logged.append(own["token"])
    assert env.call("GET", "/api/v1/rounds", own["token"]).status_code == 200
    assert [t["name"] for t in env.call("GET", "/api/v1/auth/tokens", guard).json()["items"]] == ["手机"]
    assert env.call("DELETE", f"/api/v1/auth/tokens/{own['id']}", guard).json()["revoked_by"] == "G01"
    assert_refused(env.call("GET", "/api/v1/rounds", own["token"]), 401)
    # The manager revokes the reader's.
    r = env.call("DELETE", f"/api/v1/auth/tokens/{device['id']}", manager)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert_refused(env.call("POST", "/api/v1/taps", device["token"], {"tag": "04A1000001"}), 401)
    # The installer's token is listed for an admin, who can revoke it.
    listed = env.call("GET", "/api/v1/auth/tokens", admin).json()["items"]
    [installer] = [t for t in listed if t["kind"] == "installer"]
    assert env.call("GET", "/api/v1/users", env.sv.api_token).status_code == 200
    assert env.call("DELETE", f"/api/v1/auth/tokens/{installer['id']}", admin).status_code == 200
    assert_refused(env.call("GET", "/api/v1/users", env.sv.api_token), 401)
    # A disabled user's sessions and tokens stop at once; the tokens work again once re-enabled.
    office = env.call("POST", "/api/v1/auth/tokens", manager, {"name": "办公室"}).json()["token"]
    no_secret_logged.append(office)
    ident = env.store.find_user("李经理")["id"]  # type: ignore[index]
    assert env.call("PATCH", f"/api/v1/users/{ident}", admin, {"disabled": True}).json()["disabled"] is True
    assert_refused(env.call("GET", "/api/v1/tickets", manager), 401)
    assert_refused(env.call("GET", "/api/v1/tickets", office), 401)
    assert_refused(env.client().post("/api/v1/auth/login", json={"user": "李经理", "password": PASSWORD}), 403,
                   "disabled")
    env.call("PATCH", f"/api/v1/users/{ident}", admin, {"disabled": False})
    assert env.call("GET", "/api/v1/tickets", office).status_code == 200
    assert_refused(env.call("GET", "/api/v1/tickets", manager), 401)  # the sessions ended for good


def test_users_are_managed_by_an_admin(env: Env, no_secret_logged):
    admin = env.user("root", "admin")
    r = env.call("POST", "/api/v1/users", admin, {"name": "王师傅", "role": "maintenance"})
    assert r.status_code == 201, r.text
    user = r.json()
    temporary = user.pop("password")
    no_secret_logged += [*env.secrets, temporary]
    assert user["must_change"] is True and "hash" not in json.dumps(user) and "scrypt" not in json.dumps(user)
    assert_refused(env.call("POST", "/api/v1/users", admin, {"name": "王师傅", "role": "guard"}), 409)
    assert_refused(env.call("POST", "/api/v1/users", admin, {"name": "li", "role": "guard", "password": "li"}), 422)
    session = env.login("王师傅", temporary)
    assert_refused(env.call("GET", "/api/v1/tickets", session), 403, "password must be changed")
    changed = env.call("POST", "/api/v1/auth/password", session, {"current": temporary, "new": "my own secret"})
    assert changed.status_code == 200
    no_secret_logged.append("my own secret")
    assert env.call("GET", "/api/v1/tickets", session).status_code == 200
    # Promote, lock out, unlock, reset, delete.
    assert env.call("PATCH", f"/api/v1/users/{user['id']}", admin, {"role": "manager"}).json()["role"] == "manager"
    assert env.call("GET", "/api/v1/commitments", session).status_code == 200  # the new role, at once
    for _ in range(5):
        env.client().post("/api/v1/auth/login", json={"user": "王师傅", "password": "nope nope"})
    assert env.client().post("/api/v1/auth/login", json={"user": "王师傅", "password": "my own secret"}
                             ).status_code == 429
    assert env.call("PATCH", f"/api/v1/users/{user['id']}", admin, {"unlock": True}).json()["locked_until"] is None
    reset = env.call("PATCH", f"/api/v1/users/{user['id']}", admin, {"reset_password": True}).json()
    no_secret_logged.append(reset["password"])
    assert reset["must_change"] is True
    assert_refused(env.call("GET", "/api/v1/tickets", session), 401)  # a reset ends the sessions
    assert env.call("DELETE", f"/api/v1/users/{user['id']}", admin).status_code == 204
    assert env.client().post("/api/v1/auth/login", json={"user": "王师傅", "password": reset["password"]}
                             ).status_code == 401
    # The last enabled admin stays one.
    [first] = [u for u in env.call("GET", "/api/v1/users?role=admin", admin).json()["items"] if u["name"] == "admin"]
    assert env.call("DELETE", f"/api/v1/users/{first['id']}", admin).status_code == 204
    [me] = env.call("GET", "/api/v1/users", admin).json()["items"]
    assert_refused(env.call("PATCH", f"/api/v1/users/{me['id']}", admin, {"role": "manager"}), 409, "last")
    assert_refused(env.call("PATCH", f"/api/v1/users/{me['id']}", admin, {"disabled": True}), 409, "last")
    assert_refused(env.call("DELETE", f"/api/v1/users/{me['id']}", admin), 409, "last")


def test_logout_ends_the_session_and_the_cookie_is_locked_down(env: Env, no_secret_logged):
    env.store.create_user("李经理", "manager", PASSWORD, by="test", must_change=False)
    for https in (False, True):
        client = env.client(https)
        r = client.post("/api/v1/auth/login", json={"user": "李经理", "password": PASSWORD})
        assert r.status_code == 200
        token = r.json()["token"]
        no_secret_logged.append(token)
        cookie = r.headers["set-cookie"]
        flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")}
        assert cookie.startswith(f"gw_session={token};")
        assert {"httponly", "path", "max-age"} <= flags and "samesite=strict" in cookie.lower()
        assert ("secure" in flags) == https
        # The cookie alone logs the pages in; the same secret works as a bearer token for the API.
        assert client.get("/api/v1/auth/me").json()["via"] == "session"
        assert env.call("GET", "/api/v1/tickets", token).status_code == 200
        r = client.post("/api/v1/auth/logout")
        assert r.status_code == 204 and 'gw_session=""' in r.headers["set-cookie"]
        assert_refused(client.get("/api/v1/auth/me"), 401)
        assert_refused(env.call("GET", "/api/v1/tickets", token), 401)
        stale = TestClient(env.app, base_url=str(client.base_url), cookies={"gw_session": token})
        assert_refused(stale.get("/api/v1/tickets"), 401)
    # A bearer token wins over a cookie, and a bad one is not rescued by a good cookie.
    client = env.client()
    assert client.post("/api/v1/auth/login", json={"user": "李经理", "password": PASSWORD}).status_code == 200
    assert client.get("/api/v1/tickets").status_code == 200
    assert_refused(client.get("/api/v1/tickets", headers={"Authorization": "Bearer nope"}), 401)
    assert_refused(client.post("/api/v1/auth/login", json={"user": "李经理", "password": "wrong one"}), 401,
                   "wrong user name or password")


# -- end to end: the gateway process --------------------------------------------------------------


def http(g: GatewayProcess, method: str, path: str, token: str | None = None, body: object = None
         ) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(g.api_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_end_to_end_first_admin_roles_taps_and_the_installer_token(gateway_factory: Callable[..., GatewayProcess]):
    g = gateway_factory().start()
    one_time_file = g.data_dir / "admin-password"
    one_time = one_time_file.read_text().strip()
    assert stat.S_IMODE(one_time_file.stat().st_mode) == 0o600
    assert f"one-time password in {one_time_file}" in g.log()
    installer = g.token
    assert http(g, "GET", "/api/v1/users", installer)[0] == 200  # the bootstrap token is an admin
    assert http(g, "GET", "/api/v1/users")[0] == 401

    status, body = http(g, "POST", "/api/v1/auth/login", body={"user": "admin", "password": one_time})
    assert status == 200 and body["must_change"] is True
    admin = body["token"]
    assert http(g, "GET", "/api/v1/users", admin)[0] == 403
    assert http(g, "POST", "/api/v1/auth/password", admin, {"current": one_time, "new": "admin secret 1"})[0] == 200
    assert not one_time_file.exists()
    status, guard = http(g, "POST", "/api/v1/users", admin, {"name": "G01", "role": "guard",
                                                             "password": "guard temp 1"})
    assert status == 201 and guard["must_change"] is True
    status, body = http(g, "POST", "/api/v1/auth/login", body={"user": "G01", "password": "guard temp 1"})
    session = body["token"]
    assert http(g, "POST", "/api/v1/auth/password", session, {"current": "guard temp 1", "new": "guard own 1"})[0] \
        == 200
    status, tap = http(g, "POST", "/api/v1/taps", session, {"tag": "04:AA:00:00:00:01", "by": "someone"})
    assert status == 202 and tap["reader"] == "phone-G01"
    assert http(g, "GET", "/api/v1/tickets", session)[0] == 403
    assert http(g, "GET", "/api/v1/taps", session)[0] == 403

    def the_tap() -> list[dict[str, Any]]:
        return http(g, "GET", "/api/v1/taps", admin)[1]["items"]

    deadline = time.monotonic() + 10
    while not the_tap() and time.monotonic() < deadline:
        time.sleep(0.05)
    [recorded] = the_tap()
    assert (recorded["tag"], recorded["guard"], recorded["reader"]) == (tap["tag"], "G01", "phone-G01")
    assert http(g, "POST", "/api/v1/auth/logout", session)[0] == 204
    assert http(g, "GET", "/api/v1/rounds", session)[0] == 401

    # `gateway token --revoke` takes effect in the running gateway at once, and the file is gone.
    env = dict(g.env)
    done = subprocess.run([sys.executable, "-m", "gateway", "token", "--revoke"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not (g.data_dir / "api-token").exists() and installer not in done.stdout
    assert http(g, "GET", "/api/v1/users", installer)[0] == 401
    g.stop()
    g.start()  # not generated again: revoked stays revoked
    assert not (g.data_dir / "api-token").exists()
    assert http(g, "GET", "/api/v1/auth/me", admin)[1]["name"] == "admin"
    done = subprocess.run([sys.executable, "-m", "gateway", "token", "--new"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert http(g, "GET", "/api/v1/users", g.token)[0] == 200
    log = g.log()
    for secret in (one_time, installer, g.token, admin, session, "admin secret 1", "guard temp 1", "guard own 1"):
        assert secret not in log and secret not in done.stdout
