"""Every operation's answer has an example in the OpenAPI document (issue 6), and the examples are
real: ``gateway/api_examples.json`` is recorded from the app answering a small site's day (run
``python -m tests.test_api_examples`` to record it again), and this test fails once an answer's
shape has moved away from its example's.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.api import EXAMPLES_FILE
from gateway.ingest import Message
from tests.test_auth import NOT_IN_TABLE, Env, make_env

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")
SITE = """
[site]
name = "翠湖花园"
timezone = "Asia/Shanghai"
latitude = 31.23
longitude = 121.47

[[assets]]
id = "FE-1"
name = "1号楼灭火器"
category = "fire"
kind = "fire_extinguisher"
device = "fe-1"
location = "1号楼大堂"

[[guards]]
id = "G01"
name = "王保安"

[[checkpoints]]
id = "CP-1"
name = "北门"
tag = "04A1000001"

[[checkpoints]]
id = "CP-2"
name = "南门"
tag = "04A1000002"

[[routes]]
id = "R1"
name = "大门"
checkpoints = ["CP-1", "CP-2"]

[[schedules]]
route = "R1"
at = ["{now}"]
tolerance_min = 30
"""


def _shape(value: Any) -> Any:
    """What an answer looks like, without its values: keys of objects (the first item of a list)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


SECRETS = ("token", "password")  # shown once to whoever made them: an example shows a placeholder


def _trim(value: Any) -> Any:
    """An example: lists cut to two items, secrets replaced."""
    if isinstance(value, dict):
        return {k: f"<the {k}, shown once>" if k in SECRETS and isinstance(v, str) else _trim(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_trim(v) for v in value[:2]]
    return value


def record(e: Env) -> dict[str, Any]:
    """A small site's day through the app: every operation's answer, keyed ``METHOD /path/{template}``."""
    sv = e.sv
    sv.ingest_submit = sv.ingestor.handle  # taps posted go through the ingestor and the rounds
    sv.apply_site = lambda site: setattr(sv, "site", site)  # a checkpoint edited is there to delete
    sv.reload_site = lambda: [setattr(sv.monitor, "watch", dict(sv.monitor.watch))][1:]  # reloaded at once
    admin, manager = e.user("root", "admin"), e.user("李经理", "manager")
    wang, guard = e.user("王师傅", "maintenance"), e.user("G01", "guard")
    now = time.time()
    sv.ingestor.handle([Message("mqtt", "fire_extinguisher", "fe-1", "reading",
                                json.dumps({"ts": now - 60, "seq": 1, "pressure_mpa": 0.2}).encode(), now),
                        Message("mqtt", "fire_extinguisher", "ghost-1", "reading", b"{not json", now)])
    out: dict[str, Any] = {}

    def call(key: str, path: str, token: str, body: object = None) -> Any:
        r = e.call(key.split()[0], path, token, body)
        assert r.status_code < 300, (key, r.status_code, r.text)
        out[key] = r.json() if r.content and r.headers["content-type"].startswith("application/json") else None
        return out[key]

    t = call("POST /api/v1/tickets", "/api/v1/tickets", guard,
             {"title": "1号楼灭火器压力低", "asset": "FE-1", "priority": "urgent", "photos": [base64.b64encode(
                 PNG).decode()]})
    tid = t["id"]
    entry = next(x for x in t["timeline"] if x["action"] == "photos")
    for action in ("acknowledge", "arrive"):
        call("POST /api/v1/tickets/{ticket_id}/{action}", f"/api/v1/tickets/{tid}/{action}", wang, {"note": ""})
    call("POST /api/v1/tickets/{ticket_id}/{action}", f"/api/v1/tickets/{tid}/resolve", wang,
         {"note": "换了新灭火器"})
    e.call("POST", f"/api/v1/tickets/{tid}/close", manager)
    call("POST /api/v1/tickets/{ticket_id}/callbacks", f"/api/v1/tickets/{tid}/callbacks", wang,
         {"channel": "phone", "score": 5, "note": "业主满意"})
    call("GET /api/v1/tickets", "/api/v1/tickets", wang)
    call("GET /api/v1/tickets/{ticket_id}", f"/api/v1/tickets/{tid}", wang)
    out["GET /api/v1/tickets/{ticket_id}/photos/{entry}/{name}"] = None
    assert e.call("GET", f"/api/v1/tickets/{tid}/photos/{entry['data']['entry']}/"
                         f"{entry['data']['photos'][0]['name']}", wang).status_code == 200
    tap = call("POST /api/v1/taps", "/api/v1/taps", guard, {"tag": "04:A1:00:00:01"})
    assert tap["checkpoint"] == "CP-1"
    e.call("POST", "/api/v1/taps", guard, {"tag": "04A1000002"})
    e.call("POST", "/api/v1/taps", guard, {"tag": "04A1000002"})  # again at once: flagged
    taps = call("GET /api/v1/taps", "/api/v1/taps", wang)
    flagged = next((x["id"] for x in taps["items"] if x["flagged"]), None)
    e.call("POST", "/api/v1/taps", guard, {"tag": "04A1FFFFFF"})
    if flagged is not None:
        call("POST /api/v1/taps/{tap_id}/accept", f"/api/v1/taps/{flagged}/accept", manager, {})
    call("GET /api/v1/tags/unknown", "/api/v1/tags/unknown", manager)
    call("GET /api/v1/rounds", "/api/v1/rounds", guard)
    call("GET /api/v1/checkpoints", "/api/v1/checkpoints", guard)
    call("PUT /api/v1/checkpoints/{ident}", "/api/v1/checkpoints/CP-3", manager,
         {"id": "CP-3", "name": "地库入口", "tag": "04A1000003"})
    out["DELETE /api/v1/checkpoints/{ident}"] = None
    assert e.call("DELETE", "/api/v1/checkpoints/CP-3", manager).status_code == 204
    call("GET /api/v1/plans", "/api/v1/plans", wang)
    ins = call("POST /api/v1/inspections", "/api/v1/inspections", wang,
               {"asset": "FE-1", "plan": "fire", "results": {"pressure_green": "pass", "seal_intact": "pass",
                                                     "in_service_life": "pass", "unobstructed": "pass"},
                "photos": [base64.b64encode(PNG).decode()]})
    out["GET /api/v1/inspections/{inspection_id}/photos/{name}"] = None
    assert e.call("GET", f"/api/v1/inspections/{ins['id']}/photos/{ins['photos'][0]['name']}", wang
                  ).status_code == 200
    call("GET /api/v1/inspections", "/api/v1/inspections", wang)
    call("GET /api/v1/inspections/due", "/api/v1/inspections/due", wang)
    call("GET /api/v1/assets", "/api/v1/assets", wang)
    call("GET /api/v1/assets/{asset}/states", "/api/v1/assets/FE-1/states", wang)
    call("GET /api/v1/devices", "/api/v1/devices", manager)
    call("GET /api/v1/devices/{device}", "/api/v1/devices/fe-1", manager)
    call("GET /api/v1/dead-letters", "/api/v1/dead-letters", manager)
    call("GET /api/v1/kinds", "/api/v1/kinds", manager)
    call("GET /api/v1/webhooks", "/api/v1/webhooks", manager)
    call("GET /api/v1/webhooks/deliveries", "/api/v1/webhooks/deliveries", manager)
    call("POST /api/v1/site/reload", "/api/v1/site/reload", manager)
    month = datetime.fromtimestamp(now, sv.site.tz).strftime("%Y-%m")
    call("GET /api/v1/commitments", "/api/v1/commitments", manager)
    call("GET /api/v1/commitments/report", f"/api/v1/commitments/report?month={month}&format=json", manager)
    call("GET /api/v1/dashboard", "/api/v1/dashboard", manager)
    call("GET /api/v1/auth/me", "/api/v1/auth/me", wang)
    tok = call("POST /api/v1/auth/tokens", "/api/v1/auth/tokens", manager, {"name": "北门读卡器",
                                                                           "device": "reader-n1"})
    call("GET /api/v1/auth/tokens", "/api/v1/auth/tokens", manager)
    call("DELETE /api/v1/auth/tokens/{token_id}", f"/api/v1/auth/tokens/{tok['id']}", manager)
    user = call("POST /api/v1/users", "/api/v1/users", admin, {"name": "张师傅", "role": "maintenance"})
    call("GET /api/v1/users", "/api/v1/users", admin)
    call("GET /api/v1/users/{user_id}", f"/api/v1/users/{user['id']}", admin)
    call("PATCH /api/v1/users/{user_id}", f"/api/v1/users/{user['id']}", admin, {"disabled": True})
    out["DELETE /api/v1/users/{user_id}"] = None
    assert e.call("DELETE", f"/api/v1/users/{user['id']}", admin).status_code == 204
    call("GET /api/v1/health", "/api/v1/health", "")
    call("POST /api/v1/auth/login", "/api/v1/auth/login", "", {"user": "王师傅", "password": "correct horse battery"})
    out["POST /api/v1/auth/logout"] = None
    return {k: _trim(v) for k, v in out.items()}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """The in-process app over a site with a round due now."""
    yield from site_env(tmp_path)


def site_env(tmp_path: Path) -> Iterator[Env]:
    hhmm = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%H:%M")
    (tmp_path / "site.toml").write_text(SITE.replace("{now}", hhmm), encoding="utf-8")
    yield from make_env(tmp_path)


def test_every_answer_has_an_example_shaped_like_it(env: Env) -> None:
    examples = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    live = record(env)
    moved = [k for k, v in live.items() if v is not None and k in examples and _shape(examples[k]) != _shape(v)]
    assert not moved, f"answers no longer shaped like their examples: {moved}; run python -m tests.test_api_examples"
    spec = env.app.openapi()
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            key = f"{method.upper()} {path}"
            ok = [op["responses"][c] for c in ("200", "201", "202") if c in op["responses"]]
            media = [m for r in ok for m in r.get("content", {}).values()]
            if media and not any("example" in m or "examples" in m for m in media) \
                    and (method.upper(), path) not in NOT_IN_TABLE:
                missing.append(key)
    assert not missing, f"operations with no example: {missing}"


def main() -> None:
    """Record the examples again (after an answer changed on purpose)."""
    with tempfile.TemporaryDirectory() as folder:
        gen = site_env(Path(folder))
        e = next(gen)
        try:
            examples = record(e)
        finally:
            gen.close()
    EXAMPLES_FILE.write_text(json.dumps(examples, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                             encoding="utf-8")
    sys.stderr.write(f"{len(examples)} examples written to {EXAMPLES_FILE}\n")


if __name__ == "__main__":
    main()
