"""The web pages' routes (issue 6), in-process: who is sent where, the security headers, the static
files (types, caching, nothing outside their folder), no inline code the CSP would block, every text
translated, and each page's weight. What the pages do in a browser is in ``test_web_browser.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.api_auth import COOKIE, auth_routes
from gateway.auth import AuthStore
from gateway.site import SiteInfo
from gateway.web import HOME, SECURITY_HEADERS, STATIC, web_routes

PASSWORD = "correct horse battery"
PAGES = ("/manager", "/maintenance", "/guard", "/assets")
BUDGET = 300 * 1024  # bytes per page: HTML, CSS and JS together
#: Who may open which page (admin: all); anyone else is sent to their own home page.
ALLOWED = {"admin": set(PAGES), "manager": set(PAGES), "maintenance": {"/maintenance", "/assets"},
           "guard": {"/guard"}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuthStore]:
    s = AuthStore(tmp_path / "auth.db")
    yield s
    s.close()


@pytest.fixture
def app(store: AuthStore) -> FastAPI:
    """The pages and the login routes on the real auth store; the site's name needs escaping."""
    app = FastAPI()
    app.state.auth = store
    site = SimpleNamespace(info=SiteInfo(name='阳光<花园> & "东区"', timezone="Asia/Shanghai"))
    app.include_router(auth_routes())
    app.include_router(web_routes(SimpleNamespace(site=site)))
    return app


def client(app: FastAPI) -> TestClient:
    return TestClient(app, follow_redirects=False)


def with_cookie(app: FastAPI, secret: str) -> TestClient:
    c = client(app)
    c.cookies.set(COOKIE, secret)
    return c


def logged_in(app: FastAPI, store: AuthStore, name: str, role: str, must_change: bool = False) -> TestClient:
    store.create_user(name, role, PASSWORD, by="test", must_change=must_change)
    c = client(app)
    r = c.post("/api/v1/auth/login", json={"user": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert c.cookies.get(COOKIE)
    return c


# -- who goes where -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_without_a_session_a_page_sends_to_the_login_with_its_path(app: FastAPI, page: str):
    r = client(app).get(page)
    assert (r.status_code, r.headers["location"]) == (303, f"/login?next={page}")
    r = with_cookie(app, "not-a-session").get(page)  # unknown, expired or revoked alike
    assert (r.status_code, r.headers["location"]) == (303, f"/login?next={page}")


def test_the_root_sends_to_the_login_or_the_users_home(app: FastAPI, store: AuthStore):
    r = client(app).get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    for role in ("admin", "manager", "maintenance", "guard"):
        r = logged_in(app, store, f"u-{role}", role).get("/")
        assert (r.status_code, r.headers["location"]) == (303, HOME[role]), role
    assert HOME == {"admin": "/manager", "manager": "/manager", "maintenance": "/maintenance", "guard": "/guard"}


def test_the_login_page_is_open_and_shows_the_form(app: FastAPI):
    r = client(app).get("/login")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert 'id="user"' in r.text and 'type="password"' in r.text and 'id="change"' in r.text


@pytest.mark.parametrize("role", ["admin", "manager", "maintenance", "guard"])
def test_each_role_opens_its_pages_and_is_sent_home_from_the_others(app: FastAPI, store: AuthStore, role: str):
    c = logged_in(app, store, f"user-{role}", role)
    for page in PAGES:
        r = c.get(page)
        if page in ALLOWED[role]:
            assert r.status_code == 200, (role, page)
            assert f'src="/static{page}.js?v=' in r.text, (role, page)
        else:
            assert (r.status_code, r.headers["location"]) == (303, HOME[role]), (role, page)


def test_a_password_to_change_sends_to_the_login_page(app: FastAPI, store: AuthStore):
    c = logged_in(app, store, "新保安", "guard", must_change=True)
    r = c.get("/guard")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/guard")
    assert c.get("/").headers["location"] == "/login"


def test_after_logout_the_pages_ask_for_a_login_again(app: FastAPI, store: AuthStore):
    c = logged_in(app, store, "王师傅", "maintenance")
    secret = c.cookies.get(COOKIE)
    assert c.get("/maintenance").status_code == 200
    assert c.post("/api/v1/auth/logout").status_code == 204
    r = with_cookie(app, secret).get("/maintenance")  # the old cookie, replayed
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/maintenance")


# -- headers and markup ---------------------------------------------------------------------------------


def test_pages_carry_the_security_headers_and_escape_the_site_name(app: FastAPI, store: AuthStore):
    c = logged_in(app, store, "经理", "manager")
    for page in ("/login", *PAGES):
        r = c.get(page)
        assert r.status_code == 200, page
        for header, value in SECURITY_HEADERS.items():
            assert r.headers[header] == value, (page, header)
        assert r.headers["cache-control"] == "no-store"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert "script-src 'self';" in r.headers["content-security-policy"]
        assert "阳光&lt;花园&gt; &amp; &quot;东区&quot;" in r.text and "<花园>" not in r.text
        assert '<meta name="tz" content="Asia/Shanghai">' in r.text
        assert "{{" not in r.text


def html_files() -> list[Path]:
    return sorted(STATIC.glob("*.html"))


@pytest.mark.parametrize("path", html_files(), ids=lambda p: p.name)
def test_no_inline_script_or_style_that_the_policy_would_block(path: Path):
    text = path.read_text(encoding="utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text) == []
    assert "<style" not in text
    assert re.findall(r"\sstyle=", text) == []
    assert re.findall(r"\son[a-z]+=", text) == []
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    labels = set(re.findall(r'<label for="([^"]+)"', text))
    inputs = set(re.findall(r'<(?:input|select|textarea) id="([^"]+)"', text))
    assert inputs <= labels, f"inputs without a label: {inputs - labels}"


def test_scripts_write_no_markup_from_strings():
    """Data is put in the page as text (el(), textContent): no innerHTML, no eval."""
    for path in STATIC.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"):
            assert bad not in text, (path.name, bad)


def dictionaries() -> dict[str, set[str]]:
    text = (STATIC / "i18n.js").read_text(encoding="utf-8")
    out = {}
    for lang in ("zh", "en"):
        body = re.search(rf"^const {lang} = \{{(.*?)^\}};", text, re.S | re.M)
        assert body, lang
        out[lang] = set(re.findall(r'(?:^|[\s,{])"?([\w.]+)"?:\s*"', body.group(1)))
    return out


def test_every_text_is_in_both_languages():
    d = dictionaries()
    assert d["zh"] == d["en"], f"only zh: {d['zh'] - d['en']}; only en: {d['en'] - d['zh']}"
    used = set()
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8") if path.suffix in (".js", ".html") else ""
        used |= set(re.findall(r'data-i18n(?:-placeholder|-label)?="([\w.]+)"', text))
        used |= set(re.findall(r'\bt\("([\w.]+)"', text))
        used |= {k for pair in re.findall(r'\bt\([^;()]*\? "([\w.]+)" : "([\w.]+)"\)', text) for k in pair}
    assert used, "no texts found: the pattern is wrong"
    assert used <= d["zh"], f"texts missing from the dictionaries: {sorted(used - d['zh'])}"


# -- static files -----------------------------------------------------------------------------------


def test_static_files_are_open_typed_cached_and_revalidated(app: FastAPI):
    c = client(app)
    for name, kind in (("app.css", "text/css; charset=utf-8"), ("common.js", "text/javascript; charset=utf-8"),
                       ("icon.svg", "image/svg+xml"), ("manifest.webmanifest", "application/manifest+json")):
        r = c.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"] == kind
        assert r.headers["cache-control"] == "public, max-age=3600"
        assert r.headers["x-content-type-options"] == "nosniff"
        again = c.get(f"/static/{name}", headers={"If-None-Match": r.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
    assert c.get("/static/app.css", headers={"If-None-Match": '"stale"'}).status_code == 200


def test_a_page_links_its_files_with_the_version_and_modules_import_it_too(app: FastAPI):
    c = client(app)
    page = c.get("/login").text
    [version] = set(re.findall(r'/static/[\w.]+\?v=(\w+)"', page))
    assert len(version) == 12
    login = c.get(f"/static/login.js?v={version}").text
    assert f'from "./common.js?v={version}"' in login
    assert 'from "./common.js"' not in login


@pytest.mark.parametrize("path", [
    "/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/..%2f__init__.py", "/static/%2e%2e%2f__init__.py",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/nothing.js", "/static/", "/static/static/app.css",
    "/static/app.css/", "/static/..%5c__init__.py", "/static/APP.CSS",
])
def test_nothing_outside_the_static_folder_is_served(app: FastAPI, path: str):
    r = client(app).get(path)
    assert r.status_code == 404, path
    assert "web_routes" not in r.text and "root:" not in r.text


def page_weight(c: TestClient, page: str) -> dict[str, int]:
    """Every byte a browser fetches for ``page``: the HTML, the files it links, the modules they import."""
    html = c.get(page)
    assert html.status_code == 200, page
    sizes = {page: len(html.content)}
    todo = re.findall(r'(?:href|src)="(/static/[^"]+)"', html.text)
    while todo:
        url = todo.pop()
        if url.split("?")[0] in {u.split("?")[0] for u in sizes}:
            continue
        r = c.get(url)
        assert r.status_code == 200, url
        sizes[url] = len(r.content)
        if url.split("?")[0].endswith(".js"):
            todo += [urljoin(url, m) for m in re.findall(r'(?:from|import)\s*\(?\s*"(\./[^"]+)"', r.text)]
    return sizes


def test_each_page_weighs_under_300_kb_with_everything_it_loads(app: FastAPI, store: AuthStore):
    c = logged_in(app, store, "管理员", "admin")
    for page in ("/login", *PAGES):
        sizes = page_weight(c, page)
        assert any(u.startswith("/static/common.js") for u in sizes), sizes  # the imports were followed
        assert any(u.startswith("/static/app.css") for u in sizes), sizes
        total = sum(sizes.values())
        assert total < BUDGET, f"{page} weighs {total} bytes: {sizes}"


# -- in the real app ----------------------------------------------------------------------------------


def test_the_gateways_app_serves_the_pages_outside_its_api_document(tmp_path: Path):
    from gateway.api import create_app
    from gateway.config import Settings
    from gateway.service import build
    from gateway.site import load_site

    site_file = tmp_path / "site.toml"
    site_file.write_text('[site]\nname = "翠湖花园"\n', encoding="utf-8")
    settings = Settings.model_validate({"data_dir": str(tmp_path / "data"), "site_file": str(site_file)})
    sv = build(settings, load_site(settings.site_file))
    try:
        app = create_app(sv)
        c = client(app)
        r = c.get("/login")
        assert r.status_code == 200 and "翠湖花园" in r.text
        assert r.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
        assert c.get("/manager").headers["location"] == "/login?next=/manager"
        assert c.get("/static/common.js").status_code == 200
        paths = set(app.openapi()["paths"])
        assert "/api/v1/dashboard" in paths
        assert not {p for p in paths if not p.startswith("/api/") and p != "/metrics"}, paths
    finally:
        for closing in (sv.auth.close, sv.tickets.close, sv.commitments.close, sv.registry.close, sv.outbox.close):
            closing()
