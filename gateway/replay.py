"""Replay a recorded or generated stream through the gateway's own pipeline, on a simulated clock.

A month of readings takes a month to arrive live; replayed, it takes a minute, so a site's
rules, ledger and tickets can be checked against a month of history, or recomputed after a
rule changed, without waiting and without touching the live gateway. The same
:class:`~gateway.ingest.Ingestor` (decoding, dedupe, dead letters), the same
:class:`~gateway.monitor.Monitor` (fault rules, debounce, asset state ledger) and the same
:class:`~gateway.tickets.TicketStore` run as in ``gateway run``; only the clock and the
transport differ.

The stream is JSON lines, ``{"topic": "fm/<site>/<kind>/<device>/reading", "payload": <JSON
object or string>, "received_at": <epoch seconds>}``: an object payload is sent as compact
JSON (no spaces, UTF-8, as pydantic-core writes it), a string as its UTF-8 bytes. A line that
is not such a record is counted and reported with its number (so a person can fix the file);
it never stops the replay.

The clock is each message's ``received_at``. Messages go in file order, in batches; the
periodic work of the live ingest loop (:meth:`IngestLoop.tick`: device sweep, transitions to
the ledger, ticket deadlines) runs at every multiple of ``tick_s`` of epoch time, after every
message received up to that instant, and once more at the end at the last message's time.
Batches are cut at those instants, so the result does not depend on the batch size.

Everything goes into a data folder of its own (never the live one unless it is empty),
readable by the same TicketStore and ledger code, so a report can be computed from it. Its
SQLite files skip the fsync per commit (``synchronous=NORMAL``): a replay is a recomputation,
and a crash in the middle means replaying again. Without InfluxDB the outbox keeps dedupe keys
and dead letters but drops the lines, so a month of millions of readings does not fill the
disk; with it they go through the normal Outbox and Forwarder and are drained at the end.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic_core import from_json, to_json

from gateway import schema
from gateway.config import Settings
from gateway.devices import DeviceRegistry, Transition
from gateway.influx import Forwarder, make_writer
from gateway.ingest import Ingestor, Message
from gateway.metrics import Metrics
from gateway.monitor import Monitor
from gateway.outbox import DeadLetter, Outbox
from gateway.sensors import serial_modbus
from gateway.sensors.base import Reading
from gateway.sensors.checkpoint import Tap
from gateway.sensors.mqtt import Inbound
from gateway.service import debounces, heartbeats, to_message
from gateway.site import Site
from gateway.tickets import TicketStore

_LOGGER = logging.getLogger(__name__)

MAX_JUMP_S = 366 * 86400.0  # a received_at this far past the clock is a typo, not a year of silence
BAD_LINES_KEPT = 100  # the first ones, with their numbers; the rest are counted
DRAIN_S = 600.0  # the longest wait for InfluxDB to take what is left at the end
STALL_S = 60.0  # InfluxDB taking nothing for this long stops a replay that writes to it
PROGRESS_S = 10.0


class ReplayError(Exception):
    """The replay cannot start (a bad argument or data folder); ``problems``: one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class InfluxStalled(Exception):
    """InfluxDB stopped taking the replay's points (it is unreachable, or refuses them)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of the stream that is not a record, and why, for the person fixing the file."""

    number: int
    reason: str


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did; ``records`` are the stream's valid records, fed to the gateway."""

    stream: str
    data_dir: str
    influx: bool
    tick_s: float
    records: int
    ignored: int  # the gateway's own topics, skipped as the live gateway skips them
    accepted: int
    accepted_by_kind: dict[str, int]
    duplicates: int
    rejected: dict[str, int]
    bad_lines: int
    bad_examples: tuple[BadLine, ...]
    tickets_opened: int
    tickets_by_fault: dict[str, int]
    ledger_entries: int
    state_changes: int
    first_at: float | None
    last_at: float | None
    ticks: int
    points: int  # lines for InfluxDB (readings and asset states): written, or dropped without --influx
    written: int
    left_in_outbox: int
    wall_s: float

    @property
    def rate(self) -> float:
        return self.records / self.wall_s if self.wall_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["bad_examples"] = [asdict(b) for b in self.bad_examples]
        out["readings_per_s"] = round(self.rate)
        return out

    def text(self, tz: Any = None) -> str:
        """The summary a person reads at the end of ``gateway replay``."""

        def when(t: float | None) -> str:
            return "-" if t is None else datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")

        span = (self.last_at - self.first_at) if self.first_at is not None and self.last_at is not None else 0.0
        rejected = ", ".join(f"{r} {n:,}" for r, n in sorted(self.rejected.items())) or "none"
        by_fault = ", ".join(f"{f} {n}" for f, n in sorted(self.tickets_by_fault.items()))
        lines = [
            f"replayed {self.stream} into {self.data_dir}",
            f"readings:          {self.records:,}" + (f" ({self.ignored:,} on the gateway's own topics)"
                                                      if self.ignored else ""),
            f"accepted:          {self.accepted:,}",
            f"duplicates:        {self.duplicates:,}",
            f"rejected:          {sum(self.rejected.values()):,} ({rejected})",
            f"bad lines:         {self.bad_lines:,}",
            *(f"  line {b.number}: {b.reason}" for b in self.bad_examples),
            *((f"  ... and {self.bad_lines - len(self.bad_examples):,} more",)
              if self.bad_lines > len(self.bad_examples) else ()),
            f"tickets opened:    {self.tickets_opened:,}" + (f" ({by_fault})" if by_fault else ""),
            f"state transitions: {self.state_changes:,} ({self.ledger_entries:,} ledger entries)",
            f"simulated span:    {when(self.first_at)} .. {when(self.last_at)} ({span / 86400:.2f} days, "
            f"{self.ticks:,} ticks of {self.tick_s:g} s)",
            f"InfluxDB:          {self.written:,} points written" + (
                f", {self.left_in_outbox:,} left in the outbox" if self.left_in_outbox else "")
            if self.influx else f"InfluxDB:          off ({self.points:,} points not kept)",
            f"wall seconds:      {self.wall_s:.1f}",
            f"readings/s:        {self.rate:,.0f}",
        ]
        return "\n".join(lines) + "\n"


class LinelessOutbox(Outbox):
    """An outbox that keeps dedupe keys and dead letters but drops the lines for InfluxDB.

    A replay without InfluxDB has nowhere to send them, and a month of them would be
    gigabytes; the seen keys and dead letters are what the pipeline itself reads back.
    """

    def __init__(self, path: Path, max_bytes: int, synchronous: str = "full", dead_letter_keep: int = 100_000):
        super().__init__(path, max_bytes, synchronous, dead_letter_keep)
        self.discarded = 0

    def commit(self, lines: Sequence[tuple[float, str]], seen: Sequence[tuple[str, int, float, float]],
               dead: Sequence[DeadLetter]) -> None:
        self.discarded += len(lines)
        if seen or dead:
            super().commit((), seen, dead)


class LinelessIngestor(Ingestor):
    """The live ingestor, less formatting the InfluxDB lines a :class:`LinelessOutbox` would drop.

    Formatting is a sixth of the replay's time; every decision (decoding, dedupe, dead
    letters, the monitor, the registry) is the inherited code, untouched.
    """

    def _line(self, msg: Message, item: Reading | Tap) -> str:
        return ""


def default_data_dir(stream: Path) -> Path:
    """``<stream without suffix>.replay`` beside the stream, or ``.replay-2`` … when that one is taken."""
    base = stream.with_suffix("").name + ".replay"
    for n in range(1, 1000):
        candidate = stream.parent / (base if n == 1 else f"{base}-{n}")
        if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
            return candidate
    raise ReplayError([f"{stream.parent}: no free name for a replay folder after {base}-999 (give --data-dir)"])


def check_data_dir(data_dir: Path, live: Path) -> list[str]:
    """A replay starts from nothing: its folder must be new or empty, and never the live gateway's."""
    if data_dir.exists() and not data_dir.is_dir():
        return [f"--data-dir {data_dir}: exists and is not a folder"]
    if data_dir.is_dir() and any(data_dir.iterdir()):
        if data_dir.resolve() == live.resolve():
            return [f"--data-dir {data_dir}: is the live gateway's data_dir and not empty; replay into a new folder"]
        return [f"--data-dir {data_dir}: not empty (a replay starts from nothing); give a new or empty folder"]
    return []


@dataclass
class _Counts:
    records: int = 0
    ignored: int = 0
    bad: int = 0
    examples: list[BadLine] = field(default_factory=list)
    ticks: int = 0

    def bad_line(self, number: int, reason: str) -> None:
        self.bad += 1
        if len(self.examples) < BAD_LINES_KEPT:
            self.examples.append(BadLine(number, reason))
            _LOGGER.warning("stream line %d skipped: %s", number, reason)


class Replay:
    """One replay of one stream into one data folder: build, :meth:`run`, read the summary."""

    def __init__(self, settings: Settings, site: Site, stream: Path, data_dir: Path, *, influx: bool = False,
                 tick_s: float = 300.0, batch: int = 2000) -> None:
        if not tick_s > 0:
            raise ReplayError([f"--tick-s {tick_s}: must be > 0"])
        if batch < 1:
            raise ReplayError([f"--batch {batch}: must be >= 1"])
        if not stream.is_file():
            raise ReplayError([f"{stream}: no such stream file"])
        problems = check_data_dir(data_dir, settings.data_dir)
        if problems:
            raise ReplayError(problems)
        self.stream, self.data_dir, self.influx, self.tick_s, self.batch = stream, data_dir, influx, tick_s, batch
        self.site = site
        self.settings = settings.model_copy(update={
            "data_dir": data_dir, "outbox": settings.outbox.model_copy(update={"synchronous": "normal"})})
        self.metrics = Metrics()
        self.counts = _Counts()
        self.forwarder: Forwarder | None = None
        self.writer = make_writer(self.settings.influx) if influx else None
        if self.writer is not None and not self.writer.ping():  # before anything is read or written
            self.writer.close()
            raise InfluxStalled(f"InfluxDB at {self.settings.influx.url} does not answer; nothing was replayed")
        self._built = False

    # -- the gateway's parts, as service.build wires them ---------------------------------------
    def _build(self, now: float) -> None:
        """Wire the pipeline as :func:`gateway.service.build` does, with the clock at ``now``."""
        s, site = self.settings, self.site
        self.data_dir.mkdir(parents=True, exist_ok=True)
        schema.migrate_data_dir(self.data_dir)  # as the gateway's start does
        kind = Outbox if self.influx else LinelessOutbox
        self.outbox = kind(self.data_dir / "outbox.db", int(s.outbox.max_mb * 1e6), "normal",
                           s.ingest.dead_letter_keep)
        self.registry = DeviceRegistry(self.data_dir / "gateway.db", heartbeats(s), s.ingest.heartbeat_misses,
                                       synchronous="normal")
        self.registry.device_heartbeat_s = serial_modbus.heartbeats(site.modbus)  # a bus's poll cadence
        self.ingestor = (Ingestor if self.influx else LinelessIngestor)(s, site, self.outbox, self.registry,
                                                                        self.metrics)
        self.ingestor.load_seen(now)
        self.tickets = TicketStore(self.data_dir / "gateway.db", site.tz, site.sla, site.callbacks,
                                   site.tickets.self_cleared, synchronous="normal")
        self.monitor = Monitor(self.tickets, s.site, debounces(s))
        self.outbox.commit(self.monitor.set_site(site, self.registry.online(), now), [], [])
        self.ingestor.observer = self.monitor.observe
        if self.writer is not None:
            self.forwarder = Forwarder(self.outbox, self.writer, s.influx, self.metrics)
            self.forwarder.start()
        self._built = True

    # -- the periodic work of IngestLoop, on the simulated clock --------------------------------
    def _handle(self, batch: list[Message]) -> None:
        self.ingestor.handle(batch)
        self._devices(self.ingestor.take_transitions())
        if self.forwarder is not None:
            self._backpressure()

    def _tick(self, now: float) -> None:
        """What :meth:`IngestLoop.tick` does, less relaying events to MQTT and webhooks (history, not news)."""
        self.counts.ticks += 1
        self._devices(self.ingestor.tick(now))
        self.tickets.watch(now)

    def _devices(self, transitions: list[Transition]) -> None:
        if transitions:
            lines = self.monitor.devices(transitions)
            if lines:
                self.outbox.commit(lines, [], [])

    def _backpressure(self) -> None:
        """Past half the outbox bound, wait for the forwarder: a replay must not make the bound drop readings."""
        high = self.outbox.max_bytes // 2
        if self.outbox.depth()[1] <= high:
            return
        assert self.forwarder is not None
        low = high // 2
        last, since = self.outbox.depth()[1], time.monotonic()
        while (size := self.outbox.depth()[1]) > low:
            if size < last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since > STALL_S or not self.forwarder.is_alive():
                raise InfluxStalled(f"InfluxDB at {self.settings.influx.url} took nothing for {STALL_S:.0f} s"
                                    f" ({self.forwarder.last_error or 'no error reported'})")
            time.sleep(0.02)

    # -- the stream ----------------------------------------------------------------------------
    def run(self) -> ReplaySummary:
        """Feed the whole stream, then the final tick (and the drain to InfluxDB); close everything."""
        started = time.monotonic()
        try:
            first, last = self._feed()
            if not self._built:
                self._build(time.time())  # an empty stream: a valid, empty data folder all the same
            written, left = self._finish(last)
            return self._summary(first, last, written, left, time.monotonic() - started)
        finally:
            self.close()

    def _feed(self) -> tuple[float | None, float | None]:
        # pydantic-core parses a line and writes the payload back as compact JSON four times faster than
        # the json module (a quarter of the replay's time); same values, same UTF-8, no spaces.
        loads, compact = from_json, to_json
        isfinite = math.isfinite
        prefix, site = self.settings.mqtt.topic_prefix, self.settings.site
        topics: dict[str, Any] = {}
        counts, tick_s, size = self.counts, self.tick_s, self.batch
        batch: list[Message] = []
        first: float | None = None
        clock = -math.inf
        next_tick = math.inf
        shown = time.monotonic()
        with open(self.stream, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    rec = loads(raw)
                except ValueError as exc:
                    if raw.strip():
                        counts.bad_line(number, f"not JSON: {exc}")
                    continue
                if type(rec) is not dict:
                    counts.bad_line(number, f"a record is a JSON object, not {type(rec).__name__}")
                    continue
                topic, payload, at = rec.get("topic"), rec.get("payload"), rec.get("received_at")
                if type(topic) is not str:
                    counts.bad_line(number, "topic: missing or not a string")
                    continue
                if type(payload) is dict:
                    body = compact(payload)
                elif type(payload) is str:
                    try:
                        body = payload.encode()
                    except UnicodeEncodeError:
                        counts.bad_line(number, "payload: a string that is not valid Unicode (lone surrogate)")
                        continue
                else:
                    counts.bad_line(number, "payload: missing, or neither a JSON object nor a string")
                    continue
                if (type(at) is not float and type(at) is not int) or not isfinite(at) or at < 0:
                    counts.bad_line(number, "received_at: missing, or not epoch seconds (a number >= 0)")
                    continue
                if at > clock:
                    if at - clock > MAX_JUMP_S and first is not None:
                        counts.bad_line(number, f"received_at {at!r} is {(at - clock) / 86400:.0f} days past the "
                                                f"previous record (a typo?)")
                        continue
                    if first is None:
                        first, next_tick = at, (math.floor(at / tick_s) + 1) * tick_s
                        self._build(at)
                    if at > next_tick:
                        if batch:
                            self._handle(batch)
                            batch = []
                        while at > next_tick:
                            self._tick(next_tick)
                            next_tick += tick_s
                    clock = at
                counts.records += 1
                where = topics.get(topic)  # what to_message does for a topic it has classified before
                if where is not None:
                    msg: Message | None = Message(topic, where[0], where[1], where[2], body, float(at))
                else:
                    msg = to_message(Inbound(topic, body, float(at), 0, 0, 0), prefix, site, topics)
                    if msg is None:
                        counts.ignored += 1
                        continue
                batch.append(msg)
                if len(batch) >= size:
                    self._handle(batch)
                    batch = []
                    if time.monotonic() - shown >= PROGRESS_S:
                        shown = time.monotonic()
                        _LOGGER.info("replayed %d records, simulated clock at %s", counts.records,
                                     datetime.fromtimestamp(clock, self.site.tz).isoformat(timespec="seconds"))
        if batch:
            self._handle(batch)
        return first, (clock if first is not None else None)

    def _finish(self, last: float | None) -> tuple[int, int]:
        if last is not None:
            self._tick(last)
        self.registry.flush()
        if self.forwarder is None:
            return 0, 0
        self.forwarder.stop(DRAIN_S)
        left = self.outbox.depth()[0]
        if left:
            _LOGGER.error("%d points left in %s: InfluxDB at %s did not take them (%s)", left,
                          self.outbox.path, self.settings.influx.url, self.forwarder.last_error or "timed out")
        return self.metrics.written, left

    def _summary(self, first: float | None, last: float | None, written: int, left: int,
                 wall_s: float) -> ReplaySummary:
        db = self.tickets.db
        with self.tickets.transaction():
            by_fault = {r["fault"]: r["n"] for r in db.execute(
                "SELECT fault, count(*) AS n FROM tickets GROUP BY fault ORDER BY fault")}
            entries = db.execute("SELECT count(*) AS n FROM asset_states").fetchone()["n"]
            changes = db.execute(
                "SELECT count(*) AS n FROM (SELECT state, lag(state) OVER (PARTITION BY asset ORDER BY at, id) AS prev"
                " FROM asset_states) WHERE prev IS NULL OR prev != state").fetchone()["n"]
        m, c = self.metrics, self.counts
        points = written + left if self.influx else self.outbox.discarded  # type: ignore[attr-defined]
        return ReplaySummary(
            stream=str(self.stream), data_dir=str(self.data_dir), influx=self.influx, tick_s=self.tick_s,
            records=c.records, ignored=c.ignored, accepted=sum(m.accepted.values()),
            accepted_by_kind=dict(m.accepted), duplicates=m.duplicates, rejected=dict(m.rejected), bad_lines=c.bad,
            bad_examples=tuple(c.examples), tickets_opened=sum(by_fault.values()), tickets_by_fault=by_fault,
            ledger_entries=entries, state_changes=changes, first_at=first, last_at=last, ticks=c.ticks,
            points=points, written=written, left_in_outbox=left, wall_s=wall_s)

    def close(self) -> None:
        if not self._built:
            if self.writer is not None:
                self.writer.close()
            return
        self._built = False
        if self.forwarder is not None and self.forwarder.is_alive():
            self.forwarder.stop(0.0)
        if self.writer is not None:
            self.writer.close()
        self.registry.close()
        self.tickets.close()
        self.outbox.close()


def write_record(summary: ReplaySummary) -> None:
    """``replay.json`` in the data folder: what was replayed, how, and the outcome, for whoever reads it later."""
    path = Path(summary.data_dir) / "replay.json"
    try:
        path.write_text(json.dumps({"replayed_at": time.time(), **summary.as_json()}, ensure_ascii=False,
                                   indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        _LOGGER.warning("could not write %s: %s", path, exc)


def replay(settings: Settings, site: Site, stream: Path, data_dir: Path | None = None, *, influx: bool = False,
           tick_s: float = 300.0, batch: int = 2000) -> ReplaySummary:
    """Replay ``stream`` into ``data_dir`` (default: a new folder named after the stream); see the module doc."""
    target = data_dir if data_dir is not None else default_data_dir(stream)
    summary = Replay(settings, site, stream, target, influx=influx, tick_s=tick_s, batch=batch).run()
    write_record(summary)
    return summary


__all__ = ["BadLine", "InfluxStalled", "LinelessIngestor", "LinelessOutbox", "Replay", "ReplayError", "ReplaySummary",
           "replay"]
