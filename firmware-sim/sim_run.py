"""The simulation loop: schedules every device and publishes what each slot produces.

Kept apart from the command line so a test or a benchmark can drive a fleet with its
own publisher (see ``Publisher``).
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sim_bad import BAD_CASES, bad_message
from sim_values import DEFAULT_TIMEZONE, KINDS, DeviceState, encode, reading, reading_topic

_LOGGER = logging.getLogger(__name__)


@dataclass
class RunStats:
    """What the run did, for the final summary line."""

    generated: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    bad: int = 0
    faults: int = 0


@dataclass(frozen=True)
class Options:
    """Run settings the loop needs; defaults match the command line's."""

    prefix: str = "fm"
    site: str = "demo"
    ts_format: str = "epoch"
    tz: tzinfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    fault_ratio: float = 0.0
    bad_ratio: float = 0.0
    dup_ratio: float = 0.0
    tap_prob: float = 0.2
    count: int | None = None
    duration: float | None = None
    period: float = 10.0
    """Real seconds between two slots of one device."""
    speed: float = 1.0
    sim_start: float = field(default_factory=time.time)
    max_pending: int = 10000
    progress: float = 10.0


class Publisher(Protocol):
    """What the loop needs from a transport: MqttPublisher, or a fake in tests."""

    @property
    def pending(self) -> int: ...
    @property
    def published(self) -> int: ...
    @property
    def acked(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def connected(self) -> int: ...
    @property
    def clients(self) -> int: ...
    def publish(self, device: str, topic: str, payload: bytes, *, counted: bool = True) -> None: ...


class Simulation:
    """Schedules every device and turns each due slot into a published message.

    Device slots are kept in a heap of real (monotonic) due times; a reading's ``ts`` is
    the simulated time of its slot, so readings generated late (while paused for a slow
    or absent broker) carry the time the device took them, like a device's buffer.
    """

    def __init__(
        self, devices: list[DeviceState], publisher: Publisher, opts: Options, seed: int | None = None
    ) -> None:
        self.devices = devices
        self.publisher = publisher
        self.opts = opts
        self.rng = random.Random(f"{seed}/scheduler")
        self.stats = RunStats()
        self.max_lag = 0.0
        self._bad_index = 0
        self._last_pause_log = -1e9
        self.tick_s = float("inf")
        """Real seconds between two calls of ``tick`` (a scenario's clock); never in a plain run."""

    def run(self, stop: threading.Event) -> str:
        """Publish until count, duration or ``stop``; return why it stopped."""
        reason = self._loop(stop)
        if self.max_lag > 1.0:
            _LOGGER.warning(
                "ran up to %.1f s behind schedule: broker away, or slower than asked (paho tops out near 10k msgs/s)",
                self.max_lag,
            )
        return reason

    def _loop(self, stop: threading.Event) -> str:
        opts = self.opts
        mono0 = time.monotonic()
        n = len(self.devices)
        slots = list(range(n))
        self.rng.shuffle(slots)  # interleave kinds instead of firing all lamps first
        heap = [(mono0 + opts.period * pos / n, idx) for pos, idx in enumerate(slots)]
        heapq.heapify(heap)
        end = mono0 + opts.duration if opts.duration is not None else float("inf")
        next_log = mono0 + opts.progress
        next_tick = mono0
        while True:
            if stop.is_set():
                return "signal"
            if opts.count is not None and self.stats.generated >= opts.count:
                return "count"
            now = time.monotonic()
            if now >= end:
                return "duration"
            if now >= next_tick:
                self.tick()
                next_tick = now + self.tick_s
            if now >= next_log:
                self._log_progress()
                next_log = now + opts.progress
            due, idx = heap[0]
            if due > now:
                stop.wait(min(due, end, next_log, next_tick) - now)
                continue
            if self.publisher.pending >= opts.max_pending:
                self._wait_for_broker(stop, end, now - due)
                continue
            self.max_lag = max(self.max_lag, now - due)
            heapq.heapreplace(heap, (due + opts.period, idx))
            self.emit(self.devices[idx], opts.sim_start + (due - mono0) * opts.speed)

    def tick(self) -> None:
        """Called every ``tick_s`` real seconds; a scenario run applies its events here."""

    def _wait_for_broker(self, stop: threading.Event, end: float, lag: float) -> None:
        """Pause every device until half the backlog is acknowledged.

        Resuming at half (not just below the limit) keeps a broker that is merely slower
        than ``--rate`` from toggling the pause on every message.
        """
        began = time.monotonic()
        if began - self._last_pause_log >= 30.0:
            _LOGGER.warning(
                "%d messages unacknowledged, %.1f s behind schedule: devices buffer until the broker catches up",
                self.publisher.pending,
                lag,
            )
            self._last_pause_log = began
        low = self.opts.max_pending // 2
        while self.publisher.pending > low and time.monotonic() < end and not stop.wait(0.02):
            pass
        if time.monotonic() - began >= 5.0:
            _LOGGER.info("broker caught up after %.1f s", time.monotonic() - began)

    def emit(self, state: DeviceState, now: float) -> None:
        """Produce this slot's message for ``state`` at simulated time ``now``."""
        opts, rng, stats = self.opts, self.rng, self.stats
        kind = state.kind
        topic = reading_topic(opts.prefix, opts.site, kind, state.device)
        if kind == "checkpoint":
            if rng.random() >= opts.tap_prob:
                return  # nobody passed the reader in this slot
            payload = encode(reading(kind, state, now), opts.ts_format, opts.tz)
        elif opts.bad_ratio and rng.random() < opts.bad_ratio:
            case = BAD_CASES[self._bad_index % len(BAD_CASES)]
            self._bad_index += 1
            msg = bad_message(
                case, state, now, prefix=opts.prefix, site=opts.site, ts_format=opts.ts_format, tz=opts.tz
            )
            _LOGGER.debug("bad message %s on %s", case, msg.topic)
            self.publisher.publish(state.device, msg.topic, msg.payload)
            stats.generated += 1
            stats.bad += 1
            return
        else:
            fault = bool(opts.fault_ratio) and rng.random() < opts.fault_ratio
            payload = encode(reading(kind, state, now, fault=fault), opts.ts_format, opts.tz)
            stats.faults += fault
        self.publisher.publish(state.device, topic, payload)
        stats.generated += 1
        stats.by_kind[kind] += 1
        if opts.dup_ratio and rng.random() < opts.dup_ratio:
            self.publisher.publish(state.device, topic, payload)  # a device resending
            stats.duplicates += 1

    def _log_progress(self) -> None:
        pub = self.publisher
        _LOGGER.info(
            "generated %d, published %d, acked %d, pending %d, connected %d/%d",
            self.stats.generated,
            pub.published,
            pub.acked,
            pub.pending,
            pub.connected,
            pub.clients,
        )

    def summary(self) -> dict[str, Any]:
        """Return the final JSON summary; ``published``/``acked`` exclude status messages."""
        kinds = {dev.kind for dev in self.devices}
        return {
            "published": self.publisher.published,
            "acked": self.publisher.acked,
            "by_kind": {kind: self.stats.by_kind[kind] for kind in KINDS if kind in kinds},
            "duplicates": self.stats.duplicates,
            "bad": self.stats.bad,
            "faults": self.stats.faults,
            "dropped": self.publisher.dropped,
        }
