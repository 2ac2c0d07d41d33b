"""The live event stream: what each role is shown, and the stream itself through the gateway process
(a fault's ticket arriving as an event; a reconnect with Last-Event-ID resuming after it)."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.api_events import shown
from tests.conftest import Publisher

SITE = """
[[assets]]
id = "FE-SSE"
category = "fire"
kind = "fire_extinguisher"
device = "ext-sse"
"""


@pytest.mark.parametrize(("role", "type_", "wanted", "expected"), [
    ("manager", "patrol.missed", None, True),
    ("manager", "ticket.opened", ["ticket.*"], True),
    ("manager", "asset.state", ["ticket.*"], False),
    ("guard", "patrol.late", None, True),
    ("guard", "ticket.opened", None, False),
    ("guard", "ticket.opened", ["ticket.*"], False),  # asking does not widen what a role may see
    ("maintenance", "ticket.escalated", None, True),
    ("maintenance", "inspection.overdue", None, True),
    ("maintenance", "patrol.missed", None, False),
    ("admin", "callback.overdue", None, True),
])
def test_each_role_sees_its_own_work(role: str, type_: str, wanted: list[str] | None, expected: bool) -> None:
    assert shown(role, type_, wanted) is expected


def read_events(url: str, token: str, n: int, last_id: int | None = None, timeout: float = 20.0) -> list[dict]:
    """Open the stream, read ``n`` events (id, event, data), close it."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    conn.request("GET", "/api/v1/events/stream?type=ticket.*", headers=headers)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/event-stream")
    out: list[dict] = []
    current: dict = {}
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        line = resp.readline().decode().rstrip("\r\n")
        if not line:
            if current:
                out.append(current)
                current = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(": ")
        current[key] = json.loads(value) if key == "data" else int(value) if key == "id" else value
    conn.close()
    return out


def test_the_stream_carries_ticket_events_and_resumes(gateway_factory, publisher: Publisher, tmp_path: Path):
    (tmp_path / "site.toml").write_text(SITE)
    g = gateway_factory(GATEWAY_SITE_FILE=str(tmp_path / "site.toml")).start()
    now = time.time()
    for i, ts in enumerate((now - 61, now)):
        publisher.send("fm/t/fire_extinguisher/ext-sse/reading", {"ts": ts, "seq": i, "pressure_mpa": 0.5})
    [opened] = read_events(g.api_url, g.token, 1, last_id=0)
    assert opened["event"] == "ticket.opened" and opened["data"]["data"]["ticket"]["asset"] == "FE-SSE"
    ticket = opened["data"]["data"]["ticket"]["id"]
    req = f"/api/v1/tickets/{ticket}/acknowledge"
    conn = http.client.HTTPConnection(urlsplit(g.api_url).hostname, urlsplit(g.api_url).port, timeout=10)
    conn.request("POST", req, body=json.dumps({"by": "王师傅"}),
                 headers={"Authorization": f"Bearer {g.token}", "Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    conn.close()
    [acked] = read_events(g.api_url, g.token, 1, last_id=opened["id"])  # resumes after what it saw
    assert acked["event"] == "ticket.acknowledge" and acked["id"] > opened["id"]
    assert g.stop() == 0
