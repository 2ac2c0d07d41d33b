"""The forwarder: outbox lines to InfluxDB in order, exactly once, through errors and retries.

The HTTP receivers here are small local servers scripted per test; they check what the
gateway sends and what it does with each answer. They are not InfluxDB.
"""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.config import InfluxSettings
from gateway.influx import Forwarder, V1Writer, V2Writer, WriteError, classify_status, make_writer
from gateway.metrics import Metrics
from gateway.outbox import Outbox

# -- classify_status -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "cause", "retryable", "wait"),
    [
        pytest.param(429, "0", "http_429", True, 0.0, id="429-retry-after-0"),
        pytest.param(429, "7", "http_429", True, 7.0, id="429-retry-after-7"),
        pytest.param(429, "1.5", "http_429", True, 1.5, id="429-retry-after-fraction"),
        pytest.param(429, None, "http_429", True, None, id="429-without-retry-after"),
        pytest.param(429, "Wed, 21 Oct 2026 07:28:00 GMT", "http_429", True, None, id="429-http-date"),
        pytest.param(429, "-5", "http_429", True, 0.0, id="429-negative"),
        pytest.param(500, None, "http_5xx", True, None, id="500"),
        pytest.param(503, "3", "http_5xx", True, 3.0, id="503-retry-after"),
        pytest.param(401, None, "auth", True, None, id="401"),
        pytest.param(403, None, "auth", True, None, id="403"),
        pytest.param(404, None, "not_found", True, None, id="404"),
        pytest.param(400, None, "rejected", False, None, id="400"),
    ],
)
def test_classify_status(status: int, retry_after: str | None, cause: str, retryable: bool,
                         wait: float | None) -> None:
    err = classify_status(status, '{"error":"something"}', retry_after)
    assert isinstance(err, WriteError)
    assert (err.cause, err.retryable, err.retry_after) == (cause, retryable, wait)
    assert err.detail.startswith(f"HTTP {status}: ")
    assert "something" in err.detail


def test_classify_status_shortens_long_bodies() -> None:
    err = classify_status(400, "x" * 10_000, None)
    assert len(err.detail) < 400


# -- a scripted local receiver -------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the receiver answered

    @property
    def lines(self) -> list[str]:
        return self.body.decode().splitlines()


@dataclass
class Receiver:
    """A local HTTP server: answers /write (and /api/v2/write) from a script, /query and /ping with success."""

    url: str = ""
    script: deque[tuple[int, dict[str, str], bytes]] = field(default_factory=deque)
    query_script: deque[tuple[int, dict[str, str], bytes]] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *answers: int | tuple[int, dict[str, str], bytes]) -> None:
        for a in answers:
            self.script.append(a if isinstance(a, tuple) else (a, {}, b""))

    def writes(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/write")]

    def delivered(self) -> list[str]:
        """Lines of the writes that were answered with success, in arrival order."""
        return [line for r in self.writes() if r.status < 300 for line in r.lines]


def _handler(rx: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            parts = urlsplit(self.path)
            if parts.path.endswith("/write"):
                with rx.lock:
                    status, headers, reply = rx.script.popleft() if rx.script else (204, {}, b"")
            elif parts.path == "/query":
                with rx.lock:
                    status, headers, reply = rx.query_script.popleft() if rx.query_script else (
                        200, {"Content-Type": "application/json"}, b'{"results":[{"statement_id":0}]}')
            else:
                status, headers, reply = 204, {}, b""
            with rx.lock:
                rx.requests.append(Request(self.command, parts.path, parse_qs(parts.query),
                                           {k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(rx))
    server.daemon_threads = True
    server.block_on_close = False
    rx.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    yield rx
    server.shutdown()
    server.server_close()
    thread.join(10)


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass
class Rig:
    outbox: Outbox
    forwarder: Forwarder
    metrics: Metrics

    def put(self, *lines: str) -> None:
        now = time.time()
        self.outbox.commit([(now, line) for line in lines], [], [])


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[[InfluxSettings], Rig]]:
    made: list[Rig] = []

    def make(settings: InfluxSettings) -> Rig:
        outbox = Outbox(tmp_path / f"outbox{len(made)}.db", 10**8)
        metrics = Metrics()
        forwarder = Forwarder(outbox, make_writer(settings), settings, metrics)
        r = Rig(outbox, forwarder, metrics)
        made.append(r)
        forwarder.start()
        return r

    yield make
    for r in made:
        r.forwarder.stop(drain_s=0)
        assert not r.forwarder.is_alive()
        r.forwarder.writer.close()
        r.outbox.close()


def fast(url: str, **kw: object) -> InfluxSettings:
    return InfluxSettings(**{"url": url, "batch_age_s": 0.02, "retry_min_s": 0.01, "retry_max_s": 0.05,
                             "timeout_s": 5, **kw})


def points(first: int, n: int, measurement: str = "streetlight") -> list[str]:
    return [f"{measurement},site=park1,device=lamp-{i} on=true,current_a=0.4{i % 10} {1763712000000000 + i}"
            for i in range(first, first + n)]


# -- v1 ------------------------------------------------------------------------------------------


def test_v1_retries_until_every_line_arrives_once_in_order(receiver: Receiver, rig) -> None:
    receiver.answer(503, (429, {"Retry-After": "0"}, b'{"error":"slow down"}'), 204)
    r = rig(fast(receiver.url, db="fm_park1"))
    assert isinstance(r.forwarder.writer, V1Writer)
    first, second = points(0, 3), points(3, 4)
    r.put(*first)
    wait_until(lambda: r.outbox.depth()[0] == 0, "the first batch to leave the outbox")
    r.put(*second)
    wait_until(lambda: r.outbox.depth()[0] == 0 and len(receiver.delivered()) == 7, "the second batch")

    assert receiver.delivered() == first + second
    writes = receiver.writes()
    assert [w.status for w in writes[:3]] == [503, 429, 204]
    assert writes[0].lines == writes[1].lines == writes[2].lines == first  # the same batch, retried whole
    for w in writes:
        assert w.method == "POST"
        assert w.path == "/write"
        assert w.query == {"db": ["fm_park1"], "precision": ["u"]}
    queries = [rq for rq in receiver.requests if rq.path == "/query"]
    assert queries
    assert queries[0].query["q"] == ['CREATE DATABASE "fm_park1"']
    assert r.outbox.depth() == (0, 0, None)
    assert r.metrics.written == 7
    assert dict(r.metrics.influx_errors) == {"http_5xx": 1, "http_429": 1}
    assert r.forwarder.reachable


def test_v1_rejected_batch_is_dead_lettered_and_the_rest_goes_on(receiver: Receiver, rig) -> None:
    receiver.answer((400, {"Content-Type": "application/json"}, b'{"error":"unable to parse \'bad line\'"}'), 204)
    r = rig(fast(receiver.url))
    refused, good = points(0, 3), points(3, 2)
    r.put(*refused)
    wait_until(lambda: r.outbox.dead_letter_counts().get("influx_rejected") == 1, "the refused batch")
    r.put(*good)
    wait_until(lambda: receiver.delivered() == good, "the next batch")
    wait_until(lambda: r.outbox.depth()[0] == 0, "an empty outbox")

    [letter] = r.outbox.dead_letters(reason="influx_rejected")
    assert letter["source"] == f"influx:{receiver.url}"
    assert "3 points" in str(letter["detail"])
    assert "HTTP 400" in str(letter["detail"])
    assert "unable to parse" in str(letter["detail"])
    assert str(letter["payload"]).splitlines() == refused
    assert [w.status for w in receiver.writes()] == [400, 204]
    assert r.metrics.influx_errors["rejected"] == 1
    assert r.metrics.written == 2


def test_v1_writes_when_the_user_may_not_create_databases(receiver: Receiver, rig) -> None:
    """A write-only InfluxDB 1.x user (least privilege): CREATE DATABASE is refused with 403, /write works.

    The database exists (an administrator made it); the readings must still get there.
    """
    forbidden = (403, {"Content-Type": "application/json"},
                 b'{"error":"error authorizing query: gw not authorized to execute statement '
                 b'\'CREATE DATABASE facility\', requires admin privilege"}')
    receiver.query_script.extend([forbidden] * 1000)
    r = rig(fast(receiver.url, username="gw", password="pw"))
    r.put(*points(0, 2))
    wait_until(lambda: receiver.delivered() == points(0, 2), "the write despite the refused CREATE DATABASE",
               timeout=5)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_v1_unreachable_keeps_the_lines(rig) -> None:
    """Nothing listening: the lines wait in the outbox, none lost, the forwarder says why."""
    r = rig(fast(f"http://127.0.0.1:{closed_port()}", timeout_s=1))
    r.put(*points(0, 2))
    wait_until(lambda: sum(r.metrics.influx_errors.values()) >= 2, "failed attempts")
    assert r.outbox.depth()[0] == 2
    assert not r.forwarder.reachable
    assert "Connection refused" in str(r.forwarder.last_error)


def test_refused_connection_is_a_connection_error_not_a_timeout() -> None:
    """The error counter's cause label tells "InfluxDB is down" from "InfluxDB is slow"."""
    writer = V1Writer(fast(f"http://127.0.0.1:{closed_port()}", timeout_s=1))
    try:
        with pytest.raises(WriteError) as info:
            writer.write(b"m v=1.0 1")
    finally:
        writer.close()
    assert info.value.retryable
    assert info.value.cause == "connection"


def test_v1_basic_auth_header(receiver: Receiver, rig) -> None:
    r = rig(fast(receiver.url, username="gw", password="pw"))
    r.put(*points(0, 1))
    wait_until(lambda: receiver.delivered(), "the write")
    assert receiver.writes()[0].headers["authorization"] == "Basic Z3c6cHc="


# -- v2 ------------------------------------------------------------------------------------------
# No InfluxDB 2 can be installed here, so this receiver stands in for one: it checks the
# request influxdb-client makes (path, org and bucket, precision, token, body) and scripts
# the answers. It shows what the gateway sends, not that a real InfluxDB 2 takes it.


def test_v2_write_request_and_retry_after(receiver: Receiver, rig, tmp_path: Path) -> None:
    receiver.answer((429, {"Retry-After": "0"}, b'{"code":"too many requests","message":"slow down"}'), 204)
    (tmp_path / "influx-token").write_text("s3cret-token\n")  # the installer keeps it out of the settings
    r = rig(fast(receiver.url, api="v2", org="acme", token_file=tmp_path / "influx-token", db="facility_b"))
    assert isinstance(r.forwarder.writer, V2Writer)
    batch = points(0, 5, measurement="drain_level")
    r.put(*batch)
    wait_until(lambda: r.outbox.depth()[0] == 0 and receiver.delivered(), "the batch to be delivered")

    writes = receiver.writes()
    assert [w.status for w in writes] == [429, 204]
    assert receiver.delivered() == batch
    for w in writes:
        assert w.method == "POST"
        assert w.path == "/api/v2/write"
        assert w.query["org"] == ["acme"]
        assert w.query["bucket"] == ["facility_b"]
        assert w.query["precision"] == ["us"]
        assert w.headers["authorization"] == "Token s3cret-token"
        assert w.lines == batch
    assert not [rq for rq in receiver.requests if rq.path == "/query"]  # v2: the bucket must exist already
    assert r.metrics.written == 5
    assert dict(r.metrics.influx_errors) == {"http_429": 1}


def test_v2_rejected_batch_is_dead_lettered(receiver: Receiver, rig) -> None:
    receiver.answer((400, {"Content-Type": "application/json"}, b'{"code":"invalid","message":"bad line"}'))
    r = rig(fast(receiver.url, api="v2", org="acme", token="t", db="b"))
    r.put(*points(0, 2))
    wait_until(lambda: r.outbox.dead_letter_counts().get("influx_rejected") == 1, "the refused batch")
    assert r.outbox.depth()[0] == 0
    [letter] = r.outbox.dead_letters()
    assert "HTTP 400" in str(letter["detail"])
