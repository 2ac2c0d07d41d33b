"""Outgoing webhooks: events to maintenance teams' group bots (WeCom, DingTalk, Feishu) or any JSON receiver.

Each configured hook has a daemon thread of its own that reads events after its cursor
(the last event id it handled, kept in SQLite) and posts them one by one, in order. A
hook that is down retries with backoff and never delays the other hooks, nor whoever
records events: recording only calls :meth:`WebhookDispatcher.notify`.

Delivery is at least once: the cursor moves in the same transaction that records the
answer, so a crash between a bot's answer and that commit sends the event again.
A refused event (HTTP 4xx, a bot's error code such as a bad signature or a missing
keyword) is recorded as failed and logged, and the hook goes on with the next one.

The formatters and signatures are pure functions, following the platforms' documented
custom-robot APIs: 企业微信群机器人 ``markdown``, 钉钉自定义机器人 ``markdown`` (加签 in
the URL), 飞书自定义机器人 ``text`` (签名校验 in the body).

Webhook URLs carry credentials (WeCom ``?key=``, DingTalk ``?access_token=``, the
Feishu hook id in the path): logs, reasons and status show ``scheme://host/path``
only, with token-like path segments masked; the signing secret is never shown.
"""

from __future__ import annotations

import base64
import email.utils
import fnmatch
import hashlib
import hmac
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, urlsplit

import urllib3
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway import schema
from gateway.events import Event

_LOGGER = logging.getLogger(__name__)

Format = Literal["json", "wecom", "dingtalk", "feishu"]

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DELIVERIES_KEEP = 10_000  # rows of webhook_deliveries kept (the newest)
POLL_S = 1.0  # idle threads look for new events this often even without notify()
BATCH = 100  # events read from the source at a time
WECOM_MAX_BYTES = 4096  # 企业微信 markdown.content: at most 4096 bytes of UTF-8
BOT_MAX_BYTES = 16_000  # DingTalk / Feishu text: well inside Feishu's 20 KB request limit
REASON_CHARS = 300


# Bot error codes worth retrying: rate limits and "system busy". Everything else is final.
_RETRY_CODES: dict[str, frozenset[int]] = {
    "dingtalk": frozenset((130101, -1)),  # send too fast (20 a minute); 系统繁忙
    "wecom": frozenset((45009, -1)),  # api freq out of limit (20 a minute); 系统繁忙
    "feishu": frozenset((9499, 11232)),  # too many request; frequency limited
}


# -- settings ------------------------------------------------------------------------------------


class WebhookSettings(BaseModel):
    """One outgoing webhook. ``secret`` signs DingTalk and Feishu requests (加签 / 签名校验)."""

    # Inputs stay out of validation errors: a URL holds the bot's key, and the secret is a secret.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str
    url: str = Field(repr=False)
    format: Format = "json"
    secret: SecretStr = SecretStr("")
    events: list[str] = ["*"]  # fnmatch patterns on the event type, e.g. "ticket.*"
    timeout_s: float = Field(5.0, gt=0, le=300)
    retry_min_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    max_attempts: int = Field(0, ge=0)  # 0: keep trying forever

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not NAME.fullmatch(v):
            raise ValueError("must be 1-64 of A-Z a-z 0-9 _ . -")
        return v

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        check_url(v)
        return v

    @field_validator("events")
    @classmethod
    def _check_events(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError('no patterns: use ["*"] for every event, or remove the hook')
        if any(not p.strip() for p in v):
            raise ValueError("a pattern is empty")
        return v

    @model_validator(mode="after")
    def _check_model(self) -> WebhookSettings:
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        if self.secret.get_secret_value() and self.format not in ("dingtalk", "feishu"):
            raise ValueError(f"secret: only dingtalk and feishu robots sign requests; leave it empty for {self.format}")
        return self

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, p) for p in self.events)


def check_url(url: str) -> None:
    """An http:// or https:// URL with a host; raises ValueError with a readable reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        given = f"{parts.scheme}://" if parts.scheme else "missing"
        raise ValueError(f"must be an http:// or https:// URL, not {given}")
    if not parts.hostname:
        raise ValueError("no host in URL")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("bad port in URL") from None
    if parts.fragment or url.endswith("#"):
        raise ValueError("must not have a #fragment")
    if any(c.isspace() for c in url):
        raise ValueError("must not contain spaces")


_TOKENISH = re.compile(r"^(?=.*\d)[^/]{16,}$")


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path`` for logs: no user info, query or fragment, token-like segments masked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    path = "/".join(s[:4] + "***" if _TOKENISH.match(s) else s for s in parts.path.split("/"))
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{path}"


def _sensitive(url: str, secret: str) -> list[str]:
    """Substrings that must never reach a log line or a stored reason, longest first."""
    parts = urlsplit(url)
    found = {secret, parts.query, *(s for s in parts.path.split("/") if _TOKENISH.match(s))}
    found.update(v for _, v in parse_qsl(parts.query) if len(v) >= 8)  # keys and tokens, not "?type=json"
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def _scrub(text: str, sensitive: Sequence[str]) -> str:
    for s in sensitive:
        text = text.replace(s, "***")
    return text


# -- formatters and signatures (pure) ----------------------------------------------------------


def _cut(text: str, max_bytes: int) -> str:
    """At most ``max_bytes`` of UTF-8, cut on a character boundary, marked with an ellipsis."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - 3].decode("utf-8", "ignore") + "…"


def _joined(head: str, text: str) -> str:
    return f"{head}\n{text}" if text else head


def body(fmt: Format, event: Event) -> dict[str, Any]:
    """The request body for one event in one format (without Feishu's signature fields)."""
    if fmt == "json":
        return {"id": event.id, "type": event.type, "at": event.at, "title": event.title, "text": event.text,
                "data": dict(event.data)}
    if fmt == "wecom":
        return {"msgtype": "markdown",
                "markdown": {"content": _cut(_joined(f"**{event.title}**", event.text), WECOM_MAX_BYTES)}}
    if fmt == "dingtalk":
        return {"msgtype": "markdown",
                "markdown": {"title": event.title,
                             "text": _cut(_joined(f"#### {event.title}", event.text), BOT_MAX_BYTES)}}
    if fmt == "feishu":
        return {"msg_type": "text", "content": {"text": _cut(_joined(event.title, event.text), BOT_MAX_BYTES)}}
    raise ValueError(f"unknown webhook format {fmt!r}")


def dingtalk_sign(secret: str, now_ms: int) -> str:
    """DingTalk 加签: base64(HMAC-SHA256(key=secret, msg="{timestamp_ms}\\n{secret}")), not yet URL-encoded."""
    digest = hmac.new(secret.encode("utf-8"), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_url(url: str, secret: str, now_ms: int) -> str:
    """The robot URL with ``&timestamp=<ms>&sign=<urlencoded sign>`` appended; unchanged without a secret."""
    if not secret:
        return url
    sep = "" if url.endswith(("?", "&")) else "&" if urlsplit(url).query else "?"
    return f"{url}{sep}timestamp={now_ms}&sign={quote_plus(dingtalk_sign(secret, now_ms))}"


def feishu_sign(secret: str, now_s: int) -> str:
    """Feishu 签名校验: base64(HMAC-SHA256(key="{timestamp_s}\\n{secret}", msg=b""))."""
    digest = hmac.new(f"{now_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def request_for(hook: WebhookSettings, event: Event, now: float) -> tuple[str, dict[str, Any]]:
    """URL and body of one attempt, signed for ``now`` (epoch seconds) where the hook has a secret."""
    secret = hook.secret.get_secret_value()
    payload = body(hook.format, event)
    url = hook.url
    if secret and hook.format == "dingtalk":
        url = dingtalk_url(url, secret, round(now * 1000))
    elif secret and hook.format == "feishu":
        ts = int(now)
        payload = {"timestamp": str(ts), "sign": feishu_sign(secret, ts), **payload}
    return url, payload


def accepted(fmt: Format, status: int, body_bytes: bytes) -> tuple[bool, bool, str]:
    """What an answer means: ``(ok, retry, reason)``.

    The bots answer HTTP 200 with an error code in JSON (``errcode`` for DingTalk and
    WeCom, ``code`` for Feishu): non-zero is a failure. Rate limits (HTTP 429, DingTalk
    130101, WeCom 45009, Feishu 9499 / 11232), "system busy" (-1), 408 and 5xx are worth
    retrying; other 4xx and error codes (bad signature, missing keyword, bad key) are final.
    """
    snippet = body_bytes[:REASON_CHARS].decode("utf-8", "replace").strip()
    code: int | None = None
    msg = ""
    if fmt != "json":
        code, msg = _bot_code(fmt, body_bytes)
    if status == 429:
        return False, True, f"HTTP 429 rate limited: {msg or snippet}"[:REASON_CHARS]
    if code is not None and code in _RETRY_CODES[fmt] and not (
            fmt == "feishu" and code == 9499 and "bad request" in msg.lower()):  # 9499 "Bad Request" is final
        return False, True, f"HTTP {status} {_code_name(fmt)} {code} (rate limited or busy): {msg}"[:REASON_CHARS]
    if status >= 500 or status == 408:
        return False, True, f"HTTP {status}: {snippet}"[:REASON_CHARS]
    if not 200 <= status < 300:
        detail = f"{_code_name(fmt)} {code}: {msg}" if code is not None else snippet
        return False, False, f"HTTP {status}: {detail}"[:REASON_CHARS]
    if fmt == "json":
        return True, False, f"HTTP {status}"
    if code is None:
        return False, False, f"HTTP {status} without {_code_name(fmt)} in the answer: {snippet}"[:REASON_CHARS]
    if code != 0:
        return False, False, f"HTTP {status} {_code_name(fmt)} {code}: {msg}"[:REASON_CHARS]
    return True, False, f"HTTP {status} {_code_name(fmt)} 0"


def _code_name(fmt: str) -> str:
    return "code" if fmt == "feishu" else "errcode"


def _bot_code(fmt: str, body_bytes: bytes) -> tuple[int | None, str]:
    try:
        doc = json.loads(body_bytes)
    except ValueError:
        return None, ""
    if not isinstance(doc, dict):
        return None, ""
    if fmt == "feishu":  # "StatusCode" / "StatusMessage": the older answer, still sent alongside
        raw, msg = doc.get("code", doc.get("StatusCode")), doc.get("msg", doc.get("StatusMessage", ""))
    else:
        raw, msg = doc.get("errcode"), doc.get("errmsg", "")
    if isinstance(raw, bool):
        return None, ""
    try:
        code = int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None, ""
    return code, str(msg)[:200]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), at most a day."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), 86400.0)


# -- dispatcher ----------------------------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    schema.tune(conn)
    return conn


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    retry: bool
    status: int | None
    reason: str
    retry_after: float | None = None


_HEADERS = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "fm-gateway-webhooks"}


class _Worker(threading.Thread):
    """One hook: reads events after its cursor and posts them in order."""

    def __init__(self, hook: WebhookSettings, owner: WebhookDispatcher, cursor: int) -> None:
        super().__init__(name=f"webhook-{hook.name}", daemon=True)
        self.hook = hook
        self.owner = owner
        self.cursor = cursor
        self.target = safe_url(hook.url)
        self.sensitive = _sensitive(hook.url, hook.secret.get_secret_value())
        self.http = urllib3.PoolManager(num_pools=2, maxsize=1, retries=False, timeout=urllib3.Timeout(
            total=hook.timeout_s))
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.last_ok_at: float | None = None
        self.last_error: str | None = None
        self.pending: dict[str, Any] | None = None
        self._db: sqlite3.Connection | None = None

    # -- loop --------------------------------------------------------------------------------------
    def run(self) -> None:
        self._db = _connect(self.owner.db_path)
        try:
            self._loop()
        finally:
            self._db.close()
            self.http.clear()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                events = self.owner.source(self.cursor, BATCH)
            except (sqlite3.Error, OSError, ValueError) as exc:
                _LOGGER.warning("webhook %s: cannot read events after id %d: %s", self.hook.name, self.cursor, exc)
                self.stopping.wait(POLL_S)
                continue
            if not events:
                self.wake.wait(POLL_S)
                continue
            skipped_to = 0  # the last event of this batch that the hook's patterns leave out
            for ev in events:
                if self.stopping.is_set():
                    break
                if ev.id <= max(self.cursor, skipped_to):
                    continue
                if not self.hook.wants(ev.type):
                    skipped_to = ev.id
                    continue
                if not self._deliver(ev):
                    break  # stopping in the middle of retries: the event stays after the cursor
            if skipped_to > self.cursor:  # move the stored cursor past the events left out
                self._save(skipped_to, None)

    def _deliver(self, ev: Event) -> bool:
        """Post one event until it is taken, refused for good, or out of attempts; False if stopped first."""
        hook = self.hook
        backoff = hook.retry_min_s
        attempt = 0
        while True:
            attempt += 1
            out = self._post(ev)
            at = self.owner.clock()
            if out.ok:
                self._save(ev.id, (ev.id, at, attempt, True, out.status, out.reason))
                self.pending = None
                self.last_ok_at = at
                self.last_error = None
                if attempt > 1:
                    _LOGGER.info("webhook %s (%s): event %d (%s) delivered at attempt %d",
                                 hook.name, self.target, ev.id, ev.type, attempt)
                else:
                    _LOGGER.debug("webhook %s: event %d (%s) delivered", hook.name, ev.id, ev.type)
                return True
            out_of_attempts = hook.max_attempts and attempt >= hook.max_attempts
            if not out.retry or out_of_attempts:
                self._save(ev.id, (ev.id, at, attempt, False, out.status, out.reason))
                self.pending = None
                self.last_error = f"event {ev.id}: {out.reason}"
                why = "out of attempts" if out.retry else "refused"
                _LOGGER.error("webhook %s (%s): event %d (%s) not delivered, %s after %d attempt(s): %s; going on "
                              "with the next event", hook.name, self.target, ev.id, ev.type, why, attempt, out.reason)
                return True
            self._save(self.cursor, (ev.id, at, attempt, False, out.status, out.reason))
            self.last_error = f"event {ev.id}: {out.reason}"
            wait = max(hook.retry_min_s, out.retry_after) if out.retry_after is not None else backoff
            backoff = min(hook.retry_max_s, backoff * 2)
            self.pending = {"event_id": ev.id, "attempt": attempt, "next_at": at + wait, "reason": out.reason}
            log = _LOGGER.warning if attempt == 1 else _LOGGER.debug
            log("webhook %s (%s): event %d (%s) attempt %d failed: %s; retrying in %.1f s",
                hook.name, self.target, ev.id, ev.type, attempt, out.reason, wait)
            if self.stopping.wait(wait):
                return False

    def _post(self, ev: Event) -> _Outcome:
        hook = self.hook
        try:
            url, payload = request_for(hook, ev, self.owner.clock())
            data = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return _Outcome(False, False, None, f"cannot encode the event: {type(exc).__name__}: {exc}"[:REASON_CHARS])
        try:
            r = self.http.request("POST", url, body=data, headers=_HEADERS)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            reason = _scrub(f"{type(exc).__name__}: {exc}", self.sensitive)[:REASON_CHARS]
            return _Outcome(False, True, None, reason)
        ok, retry, reason = accepted(hook.format, r.status, r.data)
        retry_after = parse_retry_after(r.headers.get("Retry-After"), self.owner.clock()) if retry else None
        return _Outcome(ok, retry, r.status, _scrub(reason, self.sensitive), retry_after)

    def _save(self, cursor: int, delivery: tuple[int, float, int, bool, int | None, str] | None) -> None:
        """Record an attempt and move the cursor, in one transaction."""
        db = self._db
        assert db is not None
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if delivery is not None:
                    row_id = db.execute(
                        "INSERT INTO webhook_deliveries (hook, event_id, at, attempt, ok, status, reason)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)", (self.hook.name, *delivery),
                    ).lastrowid
                    if row_id is not None and row_id > self.owner.deliveries_keep:
                        db.execute("DELETE FROM webhook_deliveries WHERE id <= ?",
                                   (row_id - self.owner.deliveries_keep,))
                db.execute("INSERT INTO webhook_cursors (hook, last_id) VALUES (?, ?)"
                           " ON CONFLICT (hook) DO UPDATE SET last_id = excluded.last_id",
                           (self.hook.name, cursor))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            # The cursor still moves in memory: no repeats in this run; a restart may send an event again.
            _LOGGER.error("webhook %s: cannot record delivery state in %s: %s", self.hook.name,
                          self.owner.db_path, exc)
        self.cursor = cursor


class WebhookDispatcher:
    """Posts recorded events to every configured hook, each from a daemon thread of its own.

    ``source(after_id, limit)`` returns events with ``id > after_id`` in id order. A hook
    seen for the first time starts after the newest event (no history flood);
    ``newest_id()``, when given, says which that is without paging through the source.
    """

    def __init__(
        self,
        hooks: Sequence[WebhookSettings],
        db_path: Path,
        source: Callable[[int, int], list[Event]],
        clock: Callable[[], float] = time.time,
        *,
        newest_id: Callable[[], int] | None = None,
    ) -> None:
        names = [h.name for h in hooks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"webhook names must be unique: {', '.join(dupes)} used more than once")
        self.hooks = list(hooks)
        self.db_path = Path(db_path)
        self.source = source
        self.clock = clock
        self.deliveries_keep = DELIVERIES_KEEP
        self._newest_id = newest_id
        self._workers: list[_Worker] = []
        self._started = False
        with closing(_connect(self.db_path)) as db:
            schema.migrate(db, schema.GATEWAY)  # its tables: gateway/schema.py

    def start(self) -> None:
        if self._started:
            raise RuntimeError("WebhookDispatcher.start() called twice")
        self._started = True
        with closing(_connect(self.db_path)) as db:
            stored = dict(db.execute("SELECT hook, last_id FROM webhook_cursors").fetchall())
            newest: int | None = None
            for hook in self.hooks:
                if hook.name not in stored:
                    newest = self._newest() if newest is None else newest
                    db.execute("INSERT INTO webhook_cursors (hook, last_id) VALUES (?, ?)", (hook.name, newest))
                    stored[hook.name] = newest
                    _LOGGER.info("webhook %s (%s): new, starting after event %d", hook.name, safe_url(hook.url),
                                 newest)
            workers = []
            for hook in self.hooks:
                w = _Worker(hook, self, stored[hook.name])
                last_ok = db.execute("SELECT max(at) FROM webhook_deliveries WHERE hook = ? AND ok = 1",
                                     (hook.name,)).fetchone()[0]
                last = db.execute("SELECT ok, event_id, reason FROM webhook_deliveries WHERE hook = ?"
                                  " ORDER BY id DESC LIMIT 1", (hook.name,)).fetchone()
                w.last_ok_at = last_ok
                if last is not None and not last[0]:
                    w.last_error = f"event {last[1]}: {last[2]}"
                workers.append(w)
        self._workers = workers
        for w in workers:
            w.start()

    def _newest(self) -> int:
        if self._newest_id is not None:
            return int(self._newest_id())
        last = 0
        while True:
            page = self.source(last, 10_000)
            if not page:
                return last
            last = page[-1].id

    def notify(self) -> None:
        """A new event was recorded: wake the hooks that are idle (never blocks)."""
        for w in self._workers:
            w.wake.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop every hook thread within ``timeout`` s; True if all ended. Retries in progress resume after a
        restart (their event is still after the cursor)."""
        for w in self._workers:
            w.stopping.set()
            w.wake.set()
        end = time.monotonic() + timeout
        for w in self._workers:
            w.join(max(0.0, end - time.monotonic()))
        alive = [w.hook.name for w in self._workers if w.is_alive()]
        if alive:
            _LOGGER.warning("webhooks still finishing a request after %.1f s: %s", timeout, ", ".join(alive))
        return not alive

    def deliveries(self, hook: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Recorded attempts, newest first."""
        limit = max(0, min(int(limit), 1000))
        offset = max(0, int(offset))
        sql = "SELECT id, hook, event_id, at, attempt, ok, status, reason FROM webhook_deliveries"
        args: tuple[Any, ...] = ()
        if hook is not None:
            sql += " WHERE hook = ?"
            args = (hook,)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        with closing(_connect(self.db_path)) as db:
            rows = db.execute(sql, (*args, limit, offset)).fetchall()
        keys = ("id", "hook", "event_id", "at", "attempt", "ok", "status", "reason")
        return [dict(zip(keys, (*r[:5], bool(r[5]), *r[6:]), strict=True)) for r in rows]

    def status(self) -> list[dict[str, Any]]:
        """Per hook: name, format, target (no credentials), last_id, last_ok_at, last_error, pending_retry."""
        out = []
        by_name = {w.hook.name: w for w in self._workers}
        stored: dict[str, int] = {}
        if not by_name:
            with closing(_connect(self.db_path)) as db:
                stored = dict(db.execute("SELECT hook, last_id FROM webhook_cursors").fetchall())
        for hook in self.hooks:
            w = by_name.get(hook.name)
            p = w.pending if w is not None else None
            pending = dict(p) if p is not None else None
            out.append({
                "name": hook.name,
                "format": hook.format,
                "target": safe_url(hook.url),
                "events": list(hook.events),
                "running": bool(w is not None and w.is_alive()),
                "last_id": w.cursor if w is not None else stored.get(hook.name),
                "last_ok_at": w.last_ok_at if w is not None else None,
                "last_error": w.last_error if w is not None else None,
                "pending_retry": pending,
            })
        return out
