"""Is the wall clock right? Time-based decisions wait until it is.

A Raspberry Pi has no battery-backed clock: booted without network it starts at the last
saved time (fake-hwclock) or in 1970, and a deadline measured on that clock is wrong in
either direction. The kernel knows whether NTP disciplines the clock: ``adjtimex(2)``
returns ``TIME_ERROR`` while it is unsynchronised, and chrony or systemd-timesyncd clear
that once they have set the time.

With ``clock.require_sync`` on, the gateway holds its decisions on time (SLA escalations,
patrol rounds declared missed, devices declared silent by heartbeat) until the clock has
been synchronised once in this run; readings are still taken, stored and forwarded. Once
synchronised, a later loss of sync (a long internet outage lets the kernel's error
estimate grow past 16 s after about 9 hours) is logged but holds nothing: the clock has
been running from a right time and drifts by seconds a day at most.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
_TIMEX_BYTES = 512  # struct timex is 208 bytes on 64-bit Linux; modes = 0 (zeroed) only reads


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """What a probe says: synchronised or not, where that came from, and the words for a person."""

    synced: bool
    source: str  # "adjtimex", "file:/path"
    detail: str


Probe = Callable[[], ClockStatus]


def adjtimex_probe() -> ClockStatus:
    """The kernel's NTP status: ``adjtimex`` in read-only mode; TIME_ERROR means unsynchronised."""
    try:
        adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
    except (AttributeError, OSError):
        return ClockStatus(False, "adjtimex", "adjtimex(2) is not available on this system")
    buf = ctypes.create_string_buffer(_TIMEX_BYTES)
    state = adjtimex(buf)
    if state < 0:
        return ClockStatus(False, "adjtimex", f"adjtimex(2) failed: {os.strerror(ctypes.get_errno())}")
    if state == TIME_ERROR:
        return ClockStatus(False, "adjtimex", "the kernel says the clock is not NTP-synchronised")
    return ClockStatus(True, "adjtimex", "the kernel says the clock is NTP-synchronised")


def file_probe(path: Path) -> Probe:
    """A file whose first word is ``synced`` says the clock is right; anything else, or no file, says not.
    For tests, and for a site whose own check (a GPS receiver, a radio clock) writes the file."""
    source = f"file:{path}"

    def probe() -> ClockStatus:
        try:
            words = path.read_text(encoding="utf-8", errors="replace").split()
        except OSError as exc:
            return ClockStatus(False, source, f"cannot read {path}: {exc.strerror or exc}")
        if words[:1] == ["synced"]:
            return ClockStatus(True, source, f"{path} says synced")
        return ClockStatus(False, source, f"{path} says {' '.join(words[:3]) or 'nothing'!s}, not synced")

    return probe


def make_probe(spec: str) -> Probe:
    """The probe a ``clock.sync_probe`` setting names: ``adjtimex`` or ``file:/path``."""
    if spec.startswith("file:"):
        return file_probe(Path(spec[len("file:"):]))
    if spec == "adjtimex":
        return adjtimex_probe
    raise ValueError(f"unknown clock probe {spec!r}")


@dataclass(frozen=True, slots=True)
class ClockState:
    """The clock as the gateway last judged it."""

    status: ClockStatus
    held: bool  # time-based decisions are on hold
    synced_once: bool  # synchronised at some point in this run
    resumed_at: float  # wall time the last hold ended (0.0: none ended); silences are measured from here

    def as_json(self, require_sync: bool) -> dict[str, object]:
        return {"synced": self.status.synced, "held": self.held, "require_sync": require_sync,
                "source": self.status.source, "detail": self.status.detail}


@dataclass(frozen=True, slots=True)
class Note:
    """A change worth one log line."""

    level: int
    message: str


def next_state(prev: ClockState | None, status: ClockStatus, require_sync: bool, now: float
               ) -> tuple[ClockState, Note | None]:
    """The new judgement after a probe, and what to log about the change (once each way, not every tick)."""
    synced_once = status.synced or (prev is not None and prev.synced_once)
    held = require_sync and not synced_once
    was_held = prev is not None and prev.held
    resumed_at = now if was_held and not held else (prev.resumed_at if prev else 0.0)
    state = ClockState(status, held, synced_once, resumed_at)
    if held and not was_held:
        return state, Note(logging.WARNING, f"clock not synchronised ({status.detail}): SLA escalations, missed "
                                            f"rounds and silent-device checks are held until it is; readings are "
                                            f"still stored")
    if was_held and not held:
        return state, Note(logging.INFO, f"clock synchronised ({status.detail}): time-based decisions resume")
    if prev is None or prev.status.synced != status.synced:
        if status.synced:
            return state, (Note(logging.INFO, f"clock synchronised ({status.detail})") if prev else None)
        why = ("synchronised earlier in this run, so nothing is held" if held is False and synced_once
               else "clock.require_sync is off, so nothing is held")
        return state, Note(logging.WARNING, f"clock not synchronised ({status.detail}); {why}")
    return state, None


class ClockGuard:
    """The ingest thread probes the clock each tick (:meth:`check`); any thread reads :attr:`state`."""

    def __init__(self, probe: Probe, require_sync: bool) -> None:
        self.probe = probe
        self.require_sync = require_sync
        self._lock = threading.Lock()
        self._state: ClockState | None = None

    def check(self, now: float) -> ClockState:
        status = self.probe()
        with self._lock:
            state, note = next_state(self._state, status, self.require_sync, now)
            self._state = state
        if note is not None:
            _LOGGER.log(note.level, "%s", note.message)
        return state

    @property
    def state(self) -> ClockState:
        state = self._state
        return state if state is not None else self.check(0.0)

    @property
    def held(self) -> bool:
        return self.state.held
