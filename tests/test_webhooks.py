"""Outgoing webhooks: exact bodies, DingTalk / Feishu signatures, answer classification, and delivery
against a real local HTTP receiver (retries, Retry-After, refusals, a hook that is down, restarts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.webhooks import (
    WECOM_MAX_BYTES,
    Event,
    WebhookDispatcher,
    WebhookSettings,
    accepted,
    body,
    dingtalk_url,
    feishu_sign,
    parse_retry_after,
    request_for,
    safe_url,
)
from tests.conftest import wait_for

DING_SECRET = "SECf1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3"
FEISHU_SECRET = "feishu-secret-q7Zp2Lw9"
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "0c23deadbeef0c23deadbeef0c23deadbeef0c23deadbeef0c23deadbeef0c23"
FEISHU_HOOK = "2d5e1c8a-0f4b-4b1e-9c53-7a1f0e6d9b21"

EV = Event(7, "ticket.escalated", 1700000000.5, "工单 #12 已升级：3号楼电梯困人", "位置：3号楼 2号梯\n升级至：维修主管",
           {"ticket": 12, "level": 2})


# -- independent implementations of the platforms' documented algorithms -----------------------


def ding_sign_documented(secret: str, timestamp_ms: str) -> str:
    """DingTalk's documented Python sample: HmacSHA256(secret, timestamp + "\\n" + secret), base64, urlencode."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    hmac_code = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(hmac_code))


def feishu_sign_documented(secret: str, timestamp_s: str) -> str:
    """Feishu's documented Python sample: the key is timestamp + "\\n" + secret, the message is empty."""
    key_enc = f"{timestamp_s}\n{secret}".encode()
    hmac_code = hmac.new(key_enc, b"", digestmod=hashlib.sha256).digest()
    return base64.b64encode(hmac_code).decode("utf-8")


# -- formatters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "expected"), [
    ("json", {"id": 7, "type": "ticket.escalated", "at": 1700000000.5, "title": "工单 #12 已升级：3号楼电梯困人",
              "text": "位置：3号楼 2号梯\n升级至：维修主管", "data": {"ticket": 12, "level": 2}}),
    ("wecom", {"msgtype": "markdown",
               "markdown": {"content": "**工单 #12 已升级：3号楼电梯困人**\n位置：3号楼 2号梯\n升级至：维修主管"}}),
    ("dingtalk", {"msgtype": "markdown",
                  "markdown": {"title": "工单 #12 已升级：3号楼电梯困人",
                               "text": "#### 工单 #12 已升级：3号楼电梯困人\n位置：3号楼 2号梯\n升级至：维修主管"}}),
    ("feishu", {"msg_type": "text",
                "content": {"text": "工单 #12 已升级：3号楼电梯困人\n位置：3号楼 2号梯\n升级至：维修主管"}}),
])
def test_body(fmt: Any, expected: dict) -> None:
    assert body(fmt, EV) == expected
    json.dumps(body(fmt, EV))


@pytest.mark.parametrize(("fmt", "expected"), [
    ("wecom", {"msgtype": "markdown", "markdown": {"content": "**巡检漏检：B2 配电房**"}}),
    ("dingtalk", {"msgtype": "markdown",
                  "markdown": {"title": "巡检漏检：B2 配电房", "text": "#### 巡检漏检：B2 配电房"}}),
    ("feishu", {"msg_type": "text", "content": {"text": "巡检漏检：B2 配电房"}}),
])
def test_body_without_details(fmt: Any, expected: dict) -> None:
    ev = Event(1, "patrol.missed", 0.0, "巡检漏检：B2 配电房", "", {})
    assert body(fmt, ev) == expected


def test_json_body_copies_a_read_only_payload() -> None:
    ev = Event(1, "asset.state", 1.0, "t", "", MappingProxyType({"asset": "pump-1", "state": "fault"}))
    assert json.loads(json.dumps(body("json", ev)))["data"] == {"asset": "pump-1", "state": "fault"}


def test_wecom_content_cut_to_its_byte_limit() -> None:
    ev = Event(1, "ticket.opened", 0.0, "漏水", "楼" * 3000, {})
    content = body("wecom", ev)["markdown"]["content"]
    assert len(content.encode("utf-8")) <= WECOM_MAX_BYTES
    assert content.startswith("**漏水**\n楼") and content.endswith("…")


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown webhook format"):
        body("slack", EV)  # type: ignore[arg-type]


# -- signatures ----------------------------------------------------------------------------------


def test_dingtalk_url_known_answer() -> None:
    # Y/BvjJ3+4WLlwKX60Cmx1+G/gWRb+arQqdY1T/yeCEM= from `openssl dgst -sha256 -hmac`: '+', '/' and '=' encoded.
    url = dingtalk_url(f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}", DING_SECRET, 1700000000001)
    assert url == (f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}&timestamp=1700000000001"
                   "&sign=Y%2FBvjJ3%2B4WLlwKX60Cmx1%2BG%2FgWRb%2BarQqdY1T%2FyeCEM%3D")


@pytest.mark.parametrize("now_ms", [1700000000000, 1700000000002, 1712345678901, 1799999999999])
@pytest.mark.parametrize("secret", [DING_SECRET, "SECabc", "SEC带中文的密钥"])
def test_dingtalk_url_matches_documented_algorithm(secret: str, now_ms: int) -> None:
    base = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    expected = f"{base}&timestamp={now_ms}&sign={ding_sign_documented(secret, str(now_ms))}"
    assert dingtalk_url(base, secret, now_ms) == expected
    bare = "http://127.0.0.1:9/robot/send"
    signed = urllib.parse.urlsplit(dingtalk_url(bare, secret, now_ms))
    q = dict(urllib.parse.parse_qsl(signed.query))
    assert q["timestamp"] == str(now_ms)
    assert urllib.parse.quote_plus(q["sign"]) == ding_sign_documented(secret, str(now_ms))


def test_dingtalk_url_without_secret_is_unchanged() -> None:
    assert dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=abc", "", 1) == \
        "https://oapi.dingtalk.com/robot/send?access_token=abc"


def test_feishu_sign_known_answer() -> None:
    # From `openssl dgst -sha256 -mac HMAC -macopt hexkey:<"1700000000\nfeishu-secret-1">` over an empty message.
    assert feishu_sign("feishu-secret-1", 1700000000) == "O+NhcBzGQTPcmDxsV+GPHkM1FmChG6fUDNuJCOKB2pM="


@pytest.mark.parametrize("now_s", [1599360473, 1700000000, 1799999999])
@pytest.mark.parametrize("secret", [FEISHU_SECRET, "x", "飞书密钥"])
def test_feishu_sign_matches_documented_algorithm(secret: str, now_s: int) -> None:
    assert feishu_sign(secret, now_s) == feishu_sign_documented(secret, str(now_s))


def test_request_for_signs_only_where_asked() -> None:
    feishu = WebhookSettings(name="fs", url=f"https://open.feishu.cn/open-apis/bot/v2/hook/{FEISHU_HOOK}",
                             format="feishu", secret=FEISHU_SECRET)
    url, payload = request_for(feishu, EV, 1700000000.9)
    assert url == feishu.url
    assert payload == {"timestamp": "1700000000", "sign": feishu_sign_documented(FEISHU_SECRET, "1700000000"),
                       **body("feishu", EV)}
    ding = WebhookSettings(name="dd", url=f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
                           format="dingtalk", secret=DING_SECRET)
    url, payload = request_for(ding, EV, 1700000000.0015)
    assert url == dingtalk_url(ding.url, DING_SECRET, 1700000000002)
    assert payload == body("dingtalk", EV)
    plain = WebhookSettings(name="fs2", url=feishu.url, format="feishu")
    assert request_for(plain, EV, 1.0) == (plain.url, body("feishu", EV))
    wecom = WebhookSettings(name="wx", url=f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}",
                            format="wecom")
    assert request_for(wecom, EV, 1.0) == (wecom.url, body("wecom", EV))


# -- answers -------------------------------------------------------------------------------------


def j(doc: object) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("fmt", "status", "answer", "ok", "retry", "reason_has"), [
    ("json", 200, b"", True, False, "HTTP 200"),
    ("json", 204, b"", True, False, "HTTP 204"),
    ("json", 400, b"bad event", False, False, "bad event"),
    ("json", 404, b"", False, False, "HTTP 404"),
    ("json", 408, b"", False, True, "HTTP 408"),
    ("json", 429, b"", False, True, "rate limited"),
    ("json", 500, b"oops", False, True, "HTTP 500"),
    ("json", 503, b"", False, True, "HTTP 503"),
    ("json", 302, b"", False, False, "HTTP 302"),
    ("dingtalk", 200, j({"errcode": 0, "errmsg": "ok"}), True, False, "errcode 0"),
    ("dingtalk", 200, j({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}), False, True,
     "130101"),
    ("dingtalk", 200, j({"errcode": 310000, "errmsg": "sign not match"}), False, False, "sign not match"),
    ("dingtalk", 200, j({"errcode": 310000, "errmsg": "keywords not in content"}), False, False, "keywords"),
    ("dingtalk", 200, j({"errcode": 300001, "errmsg": "token is not exist"}), False, False, "300001"),
    ("dingtalk", 200, j({"errcode": -1, "errmsg": "系统繁忙"}), False, True, "-1"),
    ("dingtalk", 200, b"<html>proxy</html>", False, False, "without errcode"),
    ("dingtalk", 502, b"<html>bad gateway</html>", False, True, "HTTP 502"),
    ("wecom", 200, j({"errcode": 0, "errmsg": "ok"}), True, False, "errcode 0"),
    ("wecom", 200, j({"errcode": 45009, "errmsg": "api freq out of limit"}), False, True, "45009"),
    ("wecom", 200, j({"errcode": 93000, "errmsg": "invalid webhook url"}), False, False, "93000"),
    ("wecom", 200, j({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}), False, False, "40058"),
    ("wecom", 200, j({"errmsg": "ok"}), False, False, "without errcode"),
    ("wecom", 200, j(["errcode", 0]), False, False, "without errcode"),
    ("wecom", 200, j({"errcode": "0", "errmsg": "ok"}), True, False, "errcode 0"),
    ("feishu", 200, j({"code": 0, "msg": "success", "data": {}}), True, False, "code 0"),
    ("feishu", 200, j({"StatusCode": 0, "StatusMessage": "success", "Extra": None}), True, False, "code 0"),
    ("feishu", 200, j({"code": 11232, "msg": "frequency limited psm"}), False, True, "11232"),
    ("feishu", 200, j({"code": 9499, "msg": "too many request"}), False, True, "9499"),
    ("feishu", 400, j({"code": 9499, "msg": "too many request"}), False, True, "9499"),
    ("feishu", 400, j({"code": 9499, "msg": "Bad Request", "data": {}}), False, False, "Bad Request"),
    ("feishu", 200, j({"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}), False, False,
     "19021"),
    ("feishu", 200, j({"code": 19024, "msg": "Key Words Not Found"}), False, False, "Key Words"),
    ("feishu", 429, j({"code": 11232, "msg": "frequency limited"}), False, True, "rate limited"),
])
def test_accepted(fmt: Any, status: int, answer: bytes, ok: bool, retry: bool, reason_has: str) -> None:
    got = accepted(fmt, status, answer)
    assert got[:2] == (ok, retry), got
    assert reason_has in got[2]


def test_parse_retry_after() -> None:
    now = 1700000000.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("nan", now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("99999999", now) == 86400.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now) == pytest.approx(30.0)


# -- settings ------------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    s = WebhookSettings(name="ops", url="https://example.com/hook")
    assert (s.format, s.events, s.timeout_s, s.retry_min_s, s.retry_max_s, s.max_attempts) == \
        ("json", ["*"], 5.0, 1.0, 300.0, 0)
    assert s.secret.get_secret_value() == ""


@pytest.mark.parametrize(("fields", "reason"), [
    ({"name": "a b"}, "1-64 of A-Z"),
    ({"name": ""}, "1-64 of A-Z"),
    ({"name": "x" * 65}, "1-64 of A-Z"),
    ({"url": "ftp://example.com/x"}, "http:// or https:// URL, not ftp://"),
    ({"url": "example.com/hook"}, "http:// or https:// URL, not missing"),
    ({"url": "http:///hook"}, "no host"),
    ({"url": "http://example.com:99999/hook"}, "bad port"),
    ({"url": "http://example.com/hook#x"}, "#fragment"),
    ({"format": "slack"}, "Input should be"),
    ({"events": []}, "no patterns"),
    ({"events": ["ticket.*", ""]}, "pattern is empty"),
    ({"retry_min_s": 10, "retry_max_s": 5}, "retry_min_s must not exceed retry_max_s"),
    ({"timeout_s": 0}, "greater than 0"),
    ({"max_attempts": -1}, "greater than or equal to 0"),
    ({"secret": "s3cr3t-value", "format": "wecom"}, "only dingtalk and feishu"),
    ({"secret": "s3cr3t-value"}, "only dingtalk and feishu"),
    ({"token": "x"}, "Extra inputs are not permitted"),
])
def test_settings_refused_with_a_reason(fields: dict, reason: str) -> None:
    data = {"name": "ops", "url": "https://example.com/hook", **fields}
    with pytest.raises(ValidationError) as info:
        WebhookSettings(**data)
    assert reason in str(info.value)
    assert "s3cr3t-value" not in str(info.value)


def test_settings_hide_secret_and_url() -> None:
    s = WebhookSettings(name="dd", url=f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
                        format="dingtalk", secret=DING_SECRET)
    for text in (repr(s), str(s), json.dumps(s.model_dump(mode="json"))):
        assert DING_SECRET not in text
    assert DING_TOKEN not in repr(s)
    with pytest.raises(ValidationError) as info:
        WebhookSettings(name="bad name", url=f"ftp://x/?key={WECOM_KEY}", secret=DING_SECRET, format="dingtalk")
    assert DING_SECRET not in str(info.value) and WECOM_KEY not in str(info.value)


def test_events_patterns() -> None:
    s = WebhookSettings(name="t", url="http://h/x", events=["ticket.*", "asset.state"])
    assert s.wants("ticket.opened") and s.wants("ticket.escalated") and s.wants("asset.state")
    assert not s.wants("patrol.missed") and not s.wants("Ticket.opened") and not s.wants("asset.state.x")


def test_safe_url() -> None:
    assert safe_url(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}") == \
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    assert safe_url(f"https://open.feishu.cn/open-apis/bot/v2/hook/{FEISHU_HOOK}") == \
        "https://open.feishu.cn/open-apis/bot/v2/hook/2d5e***"
    assert safe_url("http://user:pw@10.0.0.5:8080/api/events#frag") == "http://10.0.0.5:8080/api/events"


# -- a real receiver -----------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float  # monotonic


Answer = tuple[int, dict[str, str], bytes]


class Receiver:
    """ThreadingHTTPServer on 127.0.0.1:0 recording every request. Answers: scripted ones per path first,
    then what the platform would say (DingTalk and Feishu check signatures like the real robots)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.scripts: dict[str, deque[Answer]] = {}
        self.ding_secret = DING_SECRET
        self.feishu_secret = FEISHU_SECRET
        self.always: dict[str, Answer] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = Seen("POST", parts.path, dict(urllib.parse.parse_qsl(parts.query)), dict(self.headers.items()),
                            json.loads(raw), time.monotonic())
                with receiver.lock:
                    receiver.seen.append(seen)
                    script = receiver.scripts.get(parts.path)
                    answer = script.popleft() if script else receiver.always.get(parts.path)
                status, headers, payload = answer or receiver.platform_answer(seen)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def platform_answer(self, seen: Seen) -> Answer:
        if seen.path.startswith("/dingtalk"):
            return 200, {}, j(self.dingtalk_check(seen))
        if seen.path.startswith("/wecom"):
            return 200, {}, j({"errcode": 0, "errmsg": "ok"} if seen.query.get("key") == WECOM_KEY else
                              {"errcode": 93000, "errmsg": "invalid webhook url"})
        if seen.path.startswith("/feishu"):
            return 200, {}, j(self.feishu_check(seen))
        return 200, {}, b"ok"

    def dingtalk_check(self, seen: Seen) -> dict:
        """As DingTalk does with 加签: timestamp (ms) within an hour of now, and the sign must match."""
        ts, sign = seen.query.get("timestamp", ""), seen.query.get("sign", "")
        if seen.query.get("access_token") != DING_TOKEN:
            return {"errcode": 300001, "errmsg": "token is not exist"}
        if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600_000:
            return {"errcode": 310000, "errmsg": "invalid timestamp"}
        if urllib.parse.quote_plus(sign) != ding_sign_documented(self.ding_secret, ts):
            return {"errcode": 310000, "errmsg": "sign not match"}
        return {"errcode": 0, "errmsg": "ok"}

    def feishu_check(self, seen: Seen) -> dict:
        ts, sign = str(seen.body.get("timestamp", "")), seen.body.get("sign", "")
        if not ts.isdigit() or abs(int(ts) - time.time()) > 3600 or sign != feishu_sign_documented(
                self.feishu_secret, ts):
            return {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
        return {"code": 0, "msg": "success", "data": {}}

    def script(self, path: str, *answers: Answer) -> None:
        with self.lock:
            self.scripts.setdefault(path, deque()).extend(answers)

    def at(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def ids(self, path: str) -> list[int]:
        """Event ids posted to a JSON path, in arrival order."""
        return [s.body["id"] for s in self.at(path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EventLog:
    """The events table, in memory: ``source(after_id, limit)`` as the dispatcher reads it."""

    def __init__(self) -> None:
        self.rows: list[Event] = []
        self.lock = threading.Lock()

    def add(self, type: str = "ticket.opened", title: str = "", text: str = "位置：1号楼", **data: Any) -> Event:
        with self.lock:
            ev = Event(len(self.rows) + 1, type, time.time(), title or f"事件 {len(self.rows) + 1}", text, data)
            self.rows.append(ev)
        return ev

    def source(self, after_id: int, limit: int) -> list[Event]:
        with self.lock:
            return [e for e in self.rows if e.id > after_id][:limit]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def dispatchers(tmp_path: Path, events: EventLog) -> Iterator[Callable[..., WebhookDispatcher]]:
    made: list[WebhookDispatcher] = []

    def make(*hooks: WebhookSettings, **kw: Any) -> WebhookDispatcher:
        d = WebhookDispatcher(hooks, tmp_path / "gateway.db", events.source, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop(5)


def hook(name: str, url: str, **kw: Any) -> WebhookSettings:
    kw = {"retry_min_s": 0.05, "retry_max_s": 0.2, "timeout_s": 2.0, **kw}
    return WebhookSettings(name=name, url=url, **kw)


def record(d: WebhookDispatcher, events: EventLog, type: str = "ticket.opened", **kw: Any) -> Event:
    ev = events.add(type, **kw)
    d.notify()
    return ev


def rows(d: WebhookDispatcher, name: str) -> list[tuple[int, int, bool, int | None]]:
    """(event_id, attempt, ok, status) of a hook's attempts, oldest first."""
    return [(r["event_id"], r["attempt"], r["ok"], r["status"]) for r in reversed(d.deliveries(name, limit=1000))]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- delivery ------------------------------------------------------------------------------------


def test_each_format_delivered(receiver: Receiver, events: EventLog, dispatchers: Callable[..., WebhookDispatcher],
                               ) -> None:
    b = receiver.base
    d = dispatchers(
        hook("plain", f"{b}/json"),
        hook("wx", f"{b}/wecom/cgi-bin/webhook/send?key={WECOM_KEY}", format="wecom"),
        hook("dd", f"{b}/dingtalk/robot/send?access_token={DING_TOKEN}", format="dingtalk", secret=DING_SECRET),
        hook("fs", f"{b}/feishu/open-apis/bot/v2/hook/{FEISHU_HOOK}", format="feishu", secret=FEISHU_SECRET),
    )
    d.start()
    ev = record(d, events, "ticket.escalated", title="工单 #12 已升级：3号楼电梯困人",
                text="位置：3号楼 2号梯\n升级至：维修主管", ticket=12)
    wait_for(lambda: len(receiver.seen) == 4, 10, what="one request per hook")
    wait_for(lambda: all(s["last_ok_at"] for s in d.status()), 10, what="every hook to record its delivery")
    by_path = {s.path.split("/")[1]: s for s in receiver.seen}
    assert by_path["json"].body == body("json", ev)
    assert by_path["wecom"].body == body("wecom", ev)
    assert by_path["wecom"].query == {"key": WECOM_KEY}
    assert by_path["dingtalk"].body == body("dingtalk", ev)
    assert set(by_path["dingtalk"].query) == {"access_token", "timestamp", "sign"}
    feishu = dict(by_path["feishu"].body)
    assert set(feishu) == {"timestamp", "sign", "msg_type", "content"}
    del feishu["timestamp"], feishu["sign"]
    assert feishu == body("feishu", ev)
    for s in receiver.seen:
        assert s.method == "POST"
        assert s.headers["Content-Type"] == "application/json; charset=utf-8"
    # Every robot accepted (DingTalk and Feishu checked the signatures): one successful attempt each.
    for name in ("plain", "wx", "dd", "fs"):
        assert rows(d, name) == [(ev.id, 1, True, 200)]
    assert all(s["last_id"] == ev.id and s["last_error"] is None and s["pending_retry"] is None
               for s in d.status())


def test_dingtalk_signature_refused_is_final(receiver: Receiver, events: EventLog,
                                             dispatchers: Callable[..., WebhookDispatcher],
                                             caplog: pytest.LogCaptureFixture) -> None:
    url = f"{receiver.base}/dingtalk/robot/send?access_token={DING_TOKEN}"
    d = dispatchers(hook("wrong-secret", url, format="dingtalk", secret="SECnot-the-right-one"),
                    hook("right-secret", url, format="dingtalk", secret=DING_SECRET))
    late = dispatchers(hook("late-clock", url, format="dingtalk", secret=DING_SECRET),
                       clock=lambda: time.time() - 7200)  # a gateway clock two hours behind
    d.start()
    late.start()
    ev1 = record(d, events)
    ev2 = record(d, events)
    late.notify()
    for name, disp in (("wrong-secret", d), ("right-secret", d), ("late-clock", late)):
        wait_for(lambda n=name, x=disp: len(rows(x, n)) == 2, 10, what=f"both events tried by {name}")
    # Refused for good: one attempt per event, and the next event still goes.
    assert rows(d, "wrong-secret") == [(ev1.id, 1, False, 200), (ev2.id, 1, False, 200)]
    assert "errcode 310000: sign not match" in d.deliveries("wrong-secret")[0]["reason"]
    assert rows(late, "late-clock") == [(ev1.id, 1, False, 200), (ev2.id, 1, False, 200)]
    assert "invalid timestamp" in late.deliveries("late-clock")[0]["reason"]
    assert rows(d, "right-secret") == [(ev1.id, 1, True, 200), (ev2.id, 1, True, 200)]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("wrong-secret" in m and f"event {ev1.id}" in m and "sign not match" in m for m in errors)
    status = {s["name"]: s for s in d.status()}
    assert status["wrong-secret"]["last_id"] == ev2.id and "310000" in status["wrong-secret"]["last_error"]
    assert status["right-secret"]["last_error"] is None


def test_retry_after_honoured_and_delivered_once(receiver: Receiver, events: EventLog,
                                                 dispatchers: Callable[..., WebhookDispatcher]) -> None:
    receiver.script("/json", (429, {"Retry-After": "1"}, b"slow down"))
    d = dispatchers(hook("ops", f"{receiver.base}/json"))
    d.start()
    ev = record(d, events)
    wait_for(lambda: len(receiver.at("/json")) == 2, 10, what="the retry after Retry-After")
    first, second = receiver.at("/json")
    assert second.at - first.at >= 0.9  # retry_min_s is 0.05: only Retry-After explains the wait
    ev2 = record(d, events)
    wait_for(lambda: receiver.ids("/json")[-1:] == [ev2.id], 10, what="the next event")
    assert receiver.ids("/json") == [ev.id, ev.id, ev2.id]  # the 429 answer took nothing: the group saw it once
    assert rows(d, "ops") == [(ev.id, 1, False, 429), (ev.id, 2, True, 200), (ev2.id, 1, True, 200)]


def test_server_error_retried_with_backoff(receiver: Receiver, events: EventLog,
                                           dispatchers: Callable[..., WebhookDispatcher],
                                           caplog: pytest.LogCaptureFixture) -> None:
    receiver.script("/json", (500, {}, b"oops"), (503, {}, b"busy"))
    d = dispatchers(hook("ops", f"{receiver.base}/json", retry_min_s=0.1, retry_max_s=1))
    d.start()
    ev = record(d, events)
    wait_for(lambda: rows(d, "ops")[-1:] == [(ev.id, 3, True, 200)], 10, what="delivery at the third attempt")
    t = [s.at for s in receiver.at("/json")]
    assert t[1] - t[0] >= 0.09 and t[2] - t[1] >= 0.19  # 0.1 s, then doubled
    assert rows(d, "ops") == [(ev.id, 1, False, 500), (ev.id, 2, False, 503), (ev.id, 3, True, 200)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ops" in m and f"event {ev.id}" in m and "HTTP 500" in m for m in warnings)


def test_refusals_are_final_and_the_next_event_goes(receiver: Receiver, events: EventLog,
                                                    dispatchers: Callable[..., WebhookDispatcher],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    receiver.script("/json", (400, {}, b"unknown event type"))
    receiver.script("/dingtalk/kw", (200, {}, j({"errcode": 310000, "errmsg": "keywords not in content"})))
    receiver.script("/dingtalk/kw", (200, {}, j({"errcode": 0, "errmsg": "ok"})))
    d = dispatchers(hook("plain", f"{receiver.base}/json"),
                    hook("dd-kw", f"{receiver.base}/dingtalk/kw?access_token={DING_TOKEN}", format="dingtalk"))
    d.start()
    ev1 = record(d, events)
    ev2 = record(d, events)
    wait_for(lambda: len(rows(d, "plain")) == 2 and len(rows(d, "dd-kw")) == 2, 10, what="both events, both hooks")
    assert rows(d, "plain") == [(ev1.id, 1, False, 400), (ev2.id, 1, True, 200)]
    assert rows(d, "dd-kw") == [(ev1.id, 1, False, 200), (ev2.id, 1, True, 200)]
    assert receiver.ids("/json") == [ev1.id, ev2.id]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("plain" in m and f"event {ev1.id}" in m and "unknown event type" in m for m in errors)
    assert any("dd-kw" in m and f"event {ev1.id}" in m and "keywords not in content" in m for m in errors)
    assert all(r.exc_info is None for r in caplog.records)


def test_max_attempts_then_next_event(receiver: Receiver, events: EventLog,
                                      dispatchers: Callable[..., WebhookDispatcher],
                                      caplog: pytest.LogCaptureFixture) -> None:
    receiver.script("/json", *[(503, {}, b"down")] * 3)
    d = dispatchers(hook("ops", f"{receiver.base}/json", max_attempts=3))
    d.start()
    ev1 = record(d, events)
    ev2 = record(d, events)
    wait_for(lambda: receiver.ids("/json")[-1:] == [ev2.id], 10, what="the next event after giving up")
    assert receiver.ids("/json") == [ev1.id] * 3 + [ev2.id]
    assert [r[:3] for r in rows(d, "ops")] == [(1, 1, False), (1, 2, False), (1, 3, False), (2, 1, True)]
    assert any("out of attempts" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_a_hook_that_is_down_blocks_nobody(receiver: Receiver, events: EventLog,
                                           dispatchers: Callable[..., WebhookDispatcher]) -> None:
    def blackhole() -> socket.socket:  # accepts connections (the kernel does) but never answers
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        return sock

    silent, stuck = blackhole(), blackhole()
    try:
        slow_retry = {"retry_min_s": 120, "retry_max_s": 120}
        d = dispatchers(
            hook("refused", f"http://127.0.0.1:{closed_port()}/hook", **slow_retry),
            hook("silent", f"http://127.0.0.1:{silent.getsockname()[1]}/hook", timeout_s=0.5, **slow_retry),
            hook("stuck", f"http://127.0.0.1:{stuck.getsockname()[1]}/hook", timeout_s=300, **slow_retry),
            hook("ok", f"{receiver.base}/json"),
        )
        d.start()
        evs = [record(d, events) for _ in range(5)]
        wait_for(lambda: receiver.ids("/json") == [e.id for e in evs], 10, what="every event at the working hook")
        # The stuck hook's first request is still waiting for an answer: neither recording the events nor
        # the working hook waited on it.
        status = {s["name"]: s for s in d.status()}
        assert (status["stuck"]["last_id"], status["stuck"]["last_error"], status["stuck"]["pending_retry"]) == (
            0, None, None)
        stuck.close()  # its waiting connection is reset: it fails and retries like the others
        wait_for(lambda: all(s["pending_retry"] for s in d.status() if s["name"] != "ok"), 10,
                 what="the three broken hooks retrying")
        status = {s["name"]: s for s in d.status()}
        assert status["ok"]["last_id"] == evs[-1].id and status["ok"]["pending_retry"] is None
        for name in ("refused", "silent", "stuck"):
            assert status[name]["last_id"] == 0 and status[name]["pending_retry"]["event_id"] == evs[0].id
            assert status[name]["last_ok_at"] is None and status[name]["running"]
        assert "ConnectionError" in status["refused"]["last_error"] or "Connection" in status["refused"]["last_error"]
        assert "timed out" in status["silent"]["last_error"].lower()
        assert {r[3] for r in rows(d, "refused")} == {None}
        assert d.stop(30)  # hooks waiting two minutes to retry stop at once, not after their backoff
    finally:
        silent.close()
        stuck.close()


def test_restart_does_not_resend(receiver: Receiver, events: EventLog, tmp_path: Path) -> None:
    h = hook("ops", f"{receiver.base}/json")
    d1 = WebhookDispatcher([h], tmp_path / "gateway.db", events.source)
    d1.start()
    for _ in range(3):
        record(d1, events)
    wait_for(lambda: d1.status()[0]["last_id"] == 3 and len(d1.deliveries()) == 3, 10, what="three deliveries")
    assert d1.stop(5)
    record(d1, events)  # recorded while the dispatcher is down
    d2 = WebhookDispatcher([h], tmp_path / "gateway.db", events.source)
    assert d2.status()[0]["last_id"] == 3
    d2.start()
    try:
        assert d2.status()[0]["last_ok_at"] is not None  # from the recorded deliveries
        record(d2, events)
        wait_for(lambda: receiver.ids("/json")[-1:] == [5], 10, what="the events recorded since")
        assert receiver.ids("/json") == [1, 2, 3, 4, 5]
    finally:
        d2.stop(5)


def test_stopped_during_retries_resumes_after_restart(receiver: Receiver, events: EventLog, tmp_path: Path) -> None:
    receiver.always["/json"] = (503, {}, b"maintenance")
    h = hook("ops", f"{receiver.base}/json")
    d1 = WebhookDispatcher([h], tmp_path / "gateway.db", events.source)
    d1.start()
    ev = record(d1, events)
    wait_for(lambda: len(receiver.at("/json")) >= 3, 10, what="a few attempts")
    assert d1.stop(5)
    assert d1.status()[0]["last_id"] == 0
    del receiver.always["/json"]
    n = len(receiver.at("/json"))
    d2 = WebhookDispatcher([h], tmp_path / "gateway.db", events.source)
    d2.start()
    try:
        wait_for(lambda: d2.status()[0]["last_id"] == ev.id, 10, what="delivery after the restart")
        assert receiver.ids("/json")[n:] == [ev.id]
    finally:
        d2.stop(5)


def test_new_hook_starts_after_the_newest_event(receiver: Receiver, events: EventLog,
                                                dispatchers: Callable[..., WebhookDispatcher]) -> None:
    for _ in range(3):
        events.add()
    d = dispatchers(hook("ops", f"{receiver.base}/json"))
    d.start()
    assert d.status()[0]["last_id"] == 3
    ev = record(d, events)
    wait_for(lambda: receiver.ids("/json"), 10, what="the new event")
    assert receiver.ids("/json") == [ev.id]


def test_new_hook_uses_newest_id_when_given(receiver: Receiver, events: EventLog,
                                            dispatchers: Callable[..., WebhookDispatcher]) -> None:
    for _ in range(3):
        events.add()
    d = dispatchers(hook("ops", f"{receiver.base}/json"), newest_id=lambda: 2)
    d.start()
    wait_for(lambda: receiver.ids("/json"), 10, what="the events after id 2")
    assert receiver.ids("/json") == [3]


def test_events_filter(receiver: Receiver, events: EventLog, dispatchers: Callable[..., WebhookDispatcher]) -> None:
    d = dispatchers(hook("tickets", f"{receiver.base}/json", events=["ticket.*"]),
                    hook("assets", f"{receiver.base}/assets", events=["asset.state", "patrol.*"]))
    d.start()
    a = record(d, events, "asset.state")
    t1 = record(d, events, "ticket.opened")
    p = record(d, events, "patrol.missed")
    t2 = record(d, events, "ticket.closed")
    wait_for(lambda: receiver.ids("/json") == [t1.id, t2.id], 10, what="the ticket events")
    wait_for(lambda: receiver.ids("/assets") == [a.id, p.id], 10, what="the asset and patrol events")
    wait_for(lambda: {s["last_id"] for s in d.status()} == {t2.id}, 10, what="both cursors past every event")
    assert [r[0] for r in rows(d, "tickets")] == [t1.id, t2.id]


def test_secret_and_keys_never_logged(receiver: Receiver, events: EventLog,
                                      dispatchers: Callable[..., WebhookDispatcher],
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.webhooks")
    b = receiver.base
    receiver.ding_secret = "SECthe-robot-has-another"  # every DingTalk signature fails
    receiver.feishu_secret = "another-feishu-secret"
    refused = (200, {}, j({"errcode": 93000, "errmsg": f"invalid webhook url, key {WECOM_KEY}"}))
    receiver.always[f"/wecom/{WECOM_KEY}"] = refused
    receiver.always["/wecom/cgi-bin/webhook/send"] = refused
    d = dispatchers(
        hook("dd", f"{b}/dingtalk/robot/send?access_token={DING_TOKEN}", format="dingtalk", secret=DING_SECRET),
        hook("dd-down", f"http://127.0.0.1:{closed_port()}/robot/send?access_token={DING_TOKEN}", format="dingtalk",
             secret=DING_SECRET),
        hook("fs", f"{b}/feishu/open-apis/bot/v2/hook/{FEISHU_HOOK}", format="feishu", secret=FEISHU_SECRET),
        hook("wx", f"{b}/wecom/cgi-bin/webhook/send?key={WECOM_KEY}", format="wecom"),
        hook("wx2", f"{b}/wecom/{WECOM_KEY}", format="wecom"),
    )
    d.start()
    record(d, events)
    wait_for(lambda: all(s["last_error"] for s in d.status()), 10, what="every hook to fail")
    wait_for(lambda: len(rows(d, "dd-down")) >= 3, 10, what="retries of the hook that is down")
    d.stop(5)
    assert "sign not match" in d.deliveries("dd")[0]["reason"]
    assert "19021" in d.deliveries("fs")[0]["reason"]
    stored = json.dumps([d.status(), d.deliveries(limit=1000)], ensure_ascii=False)
    for text in (caplog.text, stored):
        for secret in (DING_SECRET, FEISHU_SECRET, WECOM_KEY, DING_TOKEN, FEISHU_HOOK):
            assert secret not in text
    assert "/robot/send" in caplog.text  # the logs still say where


def test_deliveries_bounded_paged_and_filtered(receiver: Receiver, events: EventLog,
                                               dispatchers: Callable[..., WebhookDispatcher]) -> None:
    d = dispatchers(hook("a", f"{receiver.base}/json"))
    d.deliveries_keep = 5
    d.start()
    for _ in range(8):
        record(d, events)
    wait_for(lambda: d.status()[0]["last_id"] == 8, 10, what="eight deliveries")
    got = d.deliveries()
    assert [r["event_id"] for r in got] == [8, 7, 6, 5, 4]
    assert set(got[0]) == {"id", "hook", "event_id", "at", "attempt", "ok", "status", "reason"}
    assert got[0]["ok"] is True and got[0]["hook"] == "a" and got[0]["status"] == 200
    assert [r["event_id"] for r in d.deliveries(limit=2, offset=1)] == [7, 6]
    assert d.deliveries("nobody") == []


def test_duplicate_names_refused(tmp_path: Path, events: EventLog) -> None:
    with pytest.raises(ValueError, match="unique: x"):
        WebhookDispatcher([hook("x", "http://h/a"), hook("x", "http://h/b")], tmp_path / "db", events.source)
