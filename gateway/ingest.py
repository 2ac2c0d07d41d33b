"""From raw messages to durable outbox rows: classify, decode, dedupe, dead-letter, commit.

Transports (MQTT, serial) hand over batches of :class:`Message`; :meth:`Ingestor.handle`
returns only after the batch is durable, and the transport acknowledges it then. The
decisions themselves are the pure functions of :mod:`gateway.sensors`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from gateway.config import Settings
from gateway.dedupe import Deduper
from gateway.devices import DeviceRegistry, Transition
from gateway.lineprotocol import device_tags, reading_line, tap_line
from gateway.metrics import Metrics
from gateway.outbox import DeadLetter, Outbox
from gateway.sensors import KINDS
from gateway.sensors.base import Policy, Reading, Rejection, decode_reading
from gateway.sensors.checkpoint import Tap, decode_tap
from gateway.site import Site

_LOGGER = logging.getLogger(__name__)
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_LOG_EVERY_S = 600.0  # one log line per device and reason per this long


class Message(NamedTuple):
    """A message as a transport received it. ``source`` is the MQTT topic or the serial port.

    Immutable like the other domain values; a NamedTuple because one is made per message.
    """

    source: str
    kind: str
    device: str
    leaf: str  # reading | status | tap
    payload: bytes
    received_at: float
    problem: Rejection | None = None  # refused before decoding (a bad topic, a garbled line)


def classify_topic(topic: str, prefix: str, site: str) -> tuple[str, str, str] | Rejection | None:
    """(kind, device, leaf) of a device topic; ``None`` for the gateway's own topics."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or parts[1] != site:
        return Rejection("bad_topic", f"expected {prefix}/{site}/KIND/DEVICE/(reading|status|tap)")
    _, _, kind, device, leaf = parts
    if kind == "gateway":
        return None
    if kind not in KINDS:
        return Rejection("unknown_kind", f"unknown kind {kind[:64]!r} (known: {', '.join(KINDS)})")
    if not _SEGMENT.fullmatch(device):
        return Rejection("bad_topic", f"device segment {device[:80]!r} is not 1-64 of A-Z a-z 0-9 _ . -")
    expected = ("tap", "status") if kind == "checkpoint" else ("reading", "status")
    if leaf not in expected:
        return Rejection("bad_topic", f"a {kind} publishes on .../{' or .../'.join(expected)}, not {leaf[:64]!r}")
    return kind, device, leaf


class Ingestor:
    """Owned by one ingest thread; everything it touches is either its own or locked."""

    def __init__(
        self, settings: Settings, site: Site, outbox: Outbox, registry: DeviceRegistry, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.site_name = settings.site
        self.outbox = outbox
        self.registry = registry
        self.metrics = metrics
        self.policy = Policy(settings.ingest.max_skew_s, settings.ingest.max_age_s)
        self.max_payload = settings.mqtt.max_payload_bytes
        self.dl_bytes = settings.ingest.dead_letter_payload_bytes
        self.deduper = Deduper(settings.ingest.dedupe_window_s, settings.ingest.dedupe_max_keys)
        #: Sees each batch's readings before it is committed (the monitor); returns points to add.
        self.observer: Callable[[list[tuple[str, Reading | Tap]]], list[tuple[float, str]]] | None = None
        #: Sees each batch's taps with where they came from (the patrols); before the commit too.
        self.on_taps: Callable[[list[tuple[str, Tap]]], None] | None = None
        self.newest: dict[str, float] = registry.newest_ts()
        self._logged: dict[tuple[str, str], float] = {}
        self.transitions: list[Transition] = []
        self.set_site(site)

    def load_seen(self, now: float) -> None:
        self.deduper.load(self.outbox.load_seen(now - self.deduper.window_s))

    def set_site(self, site: Site) -> None:
        """A reloaded site file changes bindings from the next reading on."""
        self.site = site
        self._tags: dict[tuple[str, str], str] = {}

    def _tags_for(self, kind: str, device: str) -> str:
        tags = self._tags.get((kind, device))
        if tags is None:
            b = self.site.bindings.get(device)
            tags = device_tags(self.site_name, device, b.asset if b else None, KINDS[kind].category)
            self._tags[(kind, device)] = tags
        return tags

    def handle(self, batch: Sequence[Message]) -> None:
        """Decide every message, then make the whole batch durable in one commit."""
        lines: list[tuple[float, str]] = []
        seen: list[tuple[str, int, float, float]] = []
        dead: list[tuple[Message, DeadLetter]] = []
        pending: set[tuple[str, tuple[int, float]]] = set()
        accepted: list[tuple[Message, Reading | Tap]] = []
        statuses: list[tuple[Message, bool]] = []
        metrics = self.metrics
        deduper = self.deduper
        for msg in batch:
            metrics.received += 1
            if msg.problem is not None:
                dead.append(self._dead(msg, msg.problem))
                continue
            if len(msg.payload) > self.max_payload:
                dead.append(self._dead(msg, Rejection(
                    "too_large", f"payload of {len(msg.payload)} bytes is over the limit of {self.max_payload}")))
                continue
            if msg.leaf == "status":
                text = msg.payload.strip().lower()
                if text in (b"online", b"offline"):
                    statuses.append((msg, text == b"online"))
                else:
                    dead.append(self._dead(msg, Rejection("schema", "status must be 'online' or 'offline'")))
                continue
            newest = self.newest.get(msg.device)
            if msg.leaf == "tap":
                item: Reading | Tap | Rejection = decode_tap(
                    msg.device, msg.payload, msg.received_at, newest, self.policy)
            else:
                item = decode_reading(KINDS[msg.kind], msg.device, msg.payload, msg.received_at, newest, self.policy)
            if isinstance(item, Rejection):
                dead.append(self._dead(msg, item))
                continue
            key = item.key
            if key is not None:
                if deduper.is_repeat(msg.device, key, msg.received_at) or (msg.device, key) in pending:
                    metrics.duplicates += 1
                    continue
                pending.add((msg.device, key))
                seen.append((msg.device, key[0], key[1], msg.received_at))
            if "late" not in item.flags and (newest is None or item.ts > newest):
                self.newest[msg.device] = item.ts
            lines.append((msg.received_at, self._line(msg, item)))
            accepted.append((msg, item))
        if self.observer is not None and accepted:
            lines += self.observer([(m.kind, item) for m, item in accepted])  # asset states, with the readings
        if self.on_taps is not None:
            taps = [(m.source, item) for m, item in accepted if isinstance(item, Tap)]
            if taps:
                self.on_taps(taps)
        self.outbox.commit(lines, seen, [d for _, d in dead])
        for device, seq, k, at in seen:
            deduper.add(device, (seq, k), at)
        self._account(accepted, statuses, dead)

    def _line(self, msg: Message, item: Reading | Tap) -> str:
        if isinstance(item, Tap):
            return tap_line(self.site_name, item.reader, self.site.tags.get(item.tag), item.tag, item.badge, item.ts)
        return reading_line(msg.kind, self._tags_for(msg.kind, msg.device), item.fields, item.flags, item.ts)

    def _account(
        self,
        accepted: list[tuple[Message, Reading | Tap]],
        statuses: list[tuple[Message, bool]],
        dead: list[tuple[Message, DeadLetter]],
    ) -> None:
        metrics, registry = self.metrics, self.registry
        with registry.lock:
            for msg, item in accepted:
                metrics.accepted[msg.kind] += 1
                for flag in item.flags:
                    metrics.flagged[flag] += 1
                fields = item.fields if isinstance(item, Reading) else {}
                t = registry.saw_reading(msg.device, msg.kind, item.ts, fields, "late" in item.flags, msg.received_at)
                if t:
                    self.transitions.append(t)
            for msg, online in statuses:
                t = registry.saw_status(msg.device, msg.kind, online, msg.received_at)
                if t:
                    self.transitions.append(t)
                    _LOGGER.info("device %s (%s) on %s: %s", msg.device, msg.kind, msg.source,
                                 "online" if online else "offline",
                                 extra={"device": msg.device, "kind": msg.kind, "topic": msg.source})
            for msg, d in dead:
                metrics.rejected[d.reason] += 1
                if msg.kind and msg.device:
                    registry.saw_rejection(msg.device, msg.kind, d.at)

    def _dead(self, msg: Message, why: Rejection) -> tuple[Message, DeadLetter]:
        device = msg.device or None
        k = (msg.device or msg.source, why.reason)
        last = self._logged.get(k)
        if last is None or msg.received_at - last >= _LOG_EVERY_S:
            self._logged[k] = msg.received_at
            _LOGGER.warning("rejected message from device %s on %s: %s: %s (logged once per %d min)",
                            msg.device or "?", msg.source, why.reason, why.detail, _LOG_EVERY_S // 60,
                            extra={"device": msg.device or None, "topic": msg.source, "reason": why.reason})
        return msg, DeadLetter(msg.received_at, msg.source, device, why.reason, why.detail, len(msg.payload),
                               msg.payload[: self.dl_bytes])

    def take_transitions(self) -> list[Transition]:
        """Devices that came online or went offline since the last call."""
        out, self.transitions = self.transitions, []
        return out

    def tick(self, now: float, sweep: bool = True, since: float = 0.0) -> list[Transition]:
        """Periodic upkeep from the ingest thread: expiry, silent devices, persistence. ``sweep`` False: no
        device is declared silent (the clock is not trusted); ``since``: silences count from then at most."""
        if len(self._logged) > 10_000:
            self._logged = {k: t for k, t in self._logged.items() if now - t < _LOG_EVERY_S}
        self.outbox.prune(now - self.deduper.window_s)
        if sweep:
            self.transitions.extend(self.registry.sweep(now, since))
        self.registry.flush()
        return self.take_transitions()
