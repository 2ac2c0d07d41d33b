"""Drain the outbox into InfluxDB: batches in order, retried with backoff, across restarts.

Two wire modes (CONTRACT.md): ``v1`` posts line protocol to ``/write`` of InfluxDB 1.x;
``v2`` goes through influxdb-client (org, bucket, token). A batch leaves the outbox
only once InfluxDB has taken it, or refused it for good (HTTP 400), in which case it
is dead-lettered with InfluxDB's reason.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol
from urllib.parse import urlencode

import urllib3

from gateway.config import InfluxSettings
from gateway.metrics import Metrics
from gateway.outbox import DeadLetter, Outbox

_LOGGER = logging.getLogger(__name__)


class WriteError(Exception):
    """A failed write. ``retryable``: keep the batch and try again later."""

    def __init__(self, cause: str, detail: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def classify_status(status: int, body: str, retry_after: str | None) -> WriteError:
    """What an HTTP answer means for the batch: 5xx, 429, 401/403/404 wait; 400 is final."""
    detail = f"HTTP {status}: {body[:300]}"
    if status == 429:
        return WriteError("http_429", detail, True, _retry_after(retry_after))
    if status >= 500:
        return WriteError("http_5xx", detail, True, _retry_after(retry_after))
    if status in (401, 403):
        return WriteError("auth", detail, True)
    if status == 404:
        return WriteError("not_found", detail, True)
    return WriteError("rejected", detail, False)


class Writer(Protocol):
    def ensure_database(self) -> None: ...
    def write(self, body: bytes) -> None: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


def http_to(s: InfluxSettings, connections: int = 1) -> tuple[urllib3.PoolManager, dict[str, str]]:
    """Keep-alive HTTP to InfluxDB with the settings' timeouts and TLS check, and its credentials as
    headers (a 1.x user, or a 2.x/3.x token on the v1-compatible API)."""
    http = urllib3.PoolManager(
        num_pools=1, maxsize=connections, retries=False,
        timeout=urllib3.Timeout(connect=min(5.0, s.timeout_s), read=s.timeout_s),
        cert_reqs="CERT_REQUIRED" if s.verify_tls else "CERT_NONE",
    )
    headers: dict[str, str] = {}
    if s.username:
        headers.update(urllib3.make_headers(basic_auth=f"{s.username}:{s.password}"))
    elif token := s.api_token():
        headers["Authorization"] = f"Token {token}"
    return http, headers


class V1Writer:
    """InfluxDB 1.x HTTP API over one keep-alive connection."""

    def __init__(self, s: InfluxSettings) -> None:
        self.s = s
        self.http, auth = http_to(s)
        self.headers = {"Content-Type": "text/plain; charset=utf-8", **auth}

    def _post(self, path: str, body: bytes | None = None) -> None:
        try:
            r = self.http.request("POST", self.s.url + path, body=body, headers=self.headers)
        except urllib3.exceptions.NewConnectionError as exc:
            raise WriteError("connection", str(exc), True) from None
        except urllib3.exceptions.TimeoutError as exc:
            raise WriteError("timeout", str(exc), True) from None
        except urllib3.exceptions.HTTPError as exc:
            raise WriteError("connection", str(exc), True) from None
        if r.status >= 300:
            raise classify_status(r.status, r.data.decode("utf-8", "replace"), r.headers.get("Retry-After"))

    def ensure_database(self) -> None:
        self._post("/query?" + urlencode({"q": f'CREATE DATABASE "{self.s.db}"'}))

    def write(self, body: bytes) -> None:
        self._post("/write?" + urlencode({"db": self.s.db, "precision": "u"}), body)

    def ping(self) -> bool:
        try:
            return self.http.request("GET", self.s.url + "/ping", timeout=2.0).status == 204
        except urllib3.exceptions.HTTPError:
            return False

    def close(self) -> None:
        self.http.clear()


class V2Writer:
    """InfluxDB 2.x / 3.x / Cloud through influxdb-client; the bucket must exist."""

    def __init__(self, s: InfluxSettings) -> None:
        from influxdb_client import InfluxDBClient  # imported here: v1 sites never pay for it
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.s = s
        self.client = InfluxDBClient(
            url=s.url, token=s.api_token(), org=s.org, timeout=int(s.timeout_s * 1000), verify_ssl=s.verify_tls,
            retries=False,
        )
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def ensure_database(self) -> None:
        """Nothing to create: a v2 token usually may not create buckets."""

    def write(self, body: bytes) -> None:
        from influxdb_client.rest import ApiException

        try:
            self.api.write(bucket=self.s.db, org=self.s.org, record=body, write_precision="us")
        except ApiException as exc:
            headers = exc.headers or {}
            raise classify_status(exc.status or 0, str(exc.body or exc.reason), headers.get("Retry-After")) from None
        except urllib3.exceptions.NewConnectionError as exc:
            raise WriteError("connection", str(exc), True) from None
        except urllib3.exceptions.TimeoutError as exc:
            raise WriteError("timeout", str(exc), True) from None
        except urllib3.exceptions.HTTPError as exc:
            raise WriteError("connection", str(exc), True) from None

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except urllib3.exceptions.HTTPError:
            return False

    def close(self) -> None:
        self.client.close()


def make_writer(s: InfluxSettings) -> Writer:
    return V1Writer(s) if s.api == "v1" else V2Writer(s)


class Forwarder(threading.Thread):
    """The one thread that writes to InfluxDB, oldest readings first."""

    def __init__(self, outbox: Outbox, writer: Writer, s: InfluxSettings, metrics: Metrics) -> None:
        super().__init__(name="forwarder", daemon=True)
        self.outbox, self.writer, self.s, self.metrics = outbox, writer, s, metrics
        self._stop_evt = threading.Event()
        self._drain_until: float | None = None
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self._db_ready = False

    @property
    def reachable(self) -> bool:
        return self.last_error is None and self.last_ok is not None

    def stop(self, drain_s: float) -> None:
        """Write what can be written within ``drain_s``, then stop; the rest waits in the outbox."""
        self._drain_until = time.monotonic() + drain_s
        with self.outbox.changed:
            self.outbox.changed.notify_all()
        self._stop_evt.set()
        self.join(drain_s + self.s.timeout_s + 1)

    def _sleep(self, seconds: float) -> bool:
        """Wait, unless stopping; True if the thread should go on."""
        if self._drain_until is not None:
            return time.monotonic() < self._drain_until and not self._stop_evt.wait(min(seconds, 0.2))
        return not self._stop_evt.wait(seconds)

    def run(self) -> None:
        backoff = self.s.retry_min_s
        while True:
            draining = self._drain_until is not None
            if draining and time.monotonic() >= self._drain_until:
                return
            rows = self.outbox.peek(self.s.batch_size)
            if not rows:
                if draining:
                    return
                self.outbox.wait(self.s.batch_age_s)
                continue
            age = time.time() - rows[0][1]
            if not draining and len(rows) < self.s.batch_size and age < self.s.batch_age_s:
                self.outbox.wait(self.s.batch_age_s - age)
                continue
            try:
                self._write(rows)
            except WriteError as exc:
                self.metrics.influx_errors[exc.cause] += 1
                if not exc.retryable:
                    self._reject(rows, exc)
                    continue
                if self.last_error is None:
                    _LOGGER.warning("InfluxDB at %s: %s; keeping %d readings in the outbox and retrying",
                                    self.s.url, exc, self.outbox.depth()[0])
                self.last_error = str(exc)
                if exc.cause == "not_found":
                    self._db_ready = False
                wait = exc.retry_after if exc.retry_after is not None else backoff
                backoff = min(self.s.retry_max_s, backoff * 2)
                if not self._sleep(wait):
                    return
                continue
            if self.last_error is not None:
                _LOGGER.info("InfluxDB at %s is back; %d readings still in the outbox",
                             self.s.url, self.outbox.depth()[0])
            self.last_error = None
            backoff = self.s.retry_min_s

    def _write(self, rows: list[tuple[int, float, str]]) -> None:
        if not self._db_ready:
            try:
                self.writer.ensure_database()
            except WriteError as exc:
                if exc.cause in ("connection", "timeout"):
                    raise
                # A write-only user may not create databases: write anyway; a missing one answers 404.
                _LOGGER.warning("could not create database %r on %s (%s); writing anyway", self.s.db, self.s.url,
                                exc.detail)
            self._db_ready = True
        body = "\n".join(line for _, _, line in rows).encode()
        t0 = time.perf_counter()
        self.writer.write(body)
        self.metrics.observe_write(time.perf_counter() - t0)
        self.metrics.written += len(rows)
        self.last_ok = time.time()
        self.outbox.delete_upto(rows[-1][0], len(rows), sum(len(r[2]) for r in rows))

    def _reject(self, rows: list[tuple[int, float, str]], exc: WriteError) -> None:
        _LOGGER.error("InfluxDB refused a batch of %d readings for good (%s); dead-lettered", len(rows), exc.detail)
        sample = "\n".join(r[2] for r in rows[:5]).encode()
        dl = DeadLetter(time.time(), f"influx:{self.s.url}", None, "influx_rejected",
                        f"{len(rows)} points refused: {exc.detail}", len(sample), sample)
        self.outbox.reject_batch(rows[-1][0], dl)
