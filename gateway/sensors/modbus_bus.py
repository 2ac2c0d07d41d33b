"""The owner of one RS-485 bus, pure: which poll goes on the wire next, and what the answers mean.

A Modbus RTU bus carries one transaction at a time, so one scheduler per bus decides
them all. It is told the time (``now``, monotonic seconds) and what happened, and
answers with the next :class:`Send` or how long to :class:`Wait`:

- each device is polled every ``poll_s``; a poll is one request per contiguous block of
  its register map, sent in turn; the device whose poll is due earliest goes first, so
  a bus with more work than time serves every device in turn instead of starving some;
- between two frames the bus stays quiet for the inter-frame delay (3.5 characters at
  the port's baud rate, 1.75 ms above 19200 baud, as the Modbus serial line spec says);
- a request not answered within the device's ``timeout_s`` (plus the frames' own time
  on the wire) is sent again, ``retries`` times; then the poll has failed;
- after ``silent_after`` failed polls in a row a device is *silent*: it is probed once
  (no retries) at a doubling interval, capped at ``backoff_max_s``, so a dead transmitter
  costs the others almost no bus time; its first answer puts it back on ``poll_s``;
- when every device of the bus is silent the bus is (:class:`BusChange` ``silent``);
  when one answers again, every device is polled at once, and once each has had its
  turn the bus is reported answering again, with the devices that still fail.

Counts per device (:class:`DeviceCounts`) are kept here, where the outcomes are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from gateway.sensors.modbus_rtu import Request, Response

SILENT_AFTER = 3
BACKOFF_MAX_S = 60.0
_IDLE_S = 60.0  # a bus without devices looks again this often


def char_time_s(baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: float = 1) -> float:
    """Seconds one character takes on the wire: start bit, data bits, parity bit, stop bits."""
    return (1 + bytesize + (parity != "N") + stopbits) / baudrate


def frame_gap_s(baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: float = 1) -> float:
    """The silence between frames: 3.5 characters, fixed at 1.75 ms above 19200 baud (Modbus over serial
    line v1.02, 2.5.1.1)."""
    if baudrate > 19200:
        return 0.00175
    return 3.5 * char_time_s(baudrate, bytesize, parity, stopbits)


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """What to poll on a device and how patiently."""

    device: str
    requests: tuple[Request, ...]
    poll_s: float
    timeout_s: float
    retries: int


@dataclass
class DeviceCounts:
    """What polling one device came to since the gateway started."""

    polls: int = 0  # polls started on the wire
    answers: int = 0  # polls answered in full: a reading
    requests: int = 0  # request frames sent, retries included
    timeouts: int = 0  # requests without a good response in time
    crc_errors: int = 0  # requests whose response had a bad CRC
    exceptions: int = 0  # exception responses (the device refused a read)
    bad_frames: int = 0  # good CRC but another unit's, or another length than asked
    garbage_bytes: int = 0  # bytes around its responses that were no response
    unsent: int = 0  # polls failed because the port was closed or lost
    failing: int = 0  # failed polls in a row (0 while it answers)
    silent: bool = False  # failed ``silent_after`` polls in a row: probed with backoff
    interval_s: float = 0.0  # until its next poll: poll_s, or longer while silent

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Send:
    """Put ``request`` on the wire now; an answer is due by ``deadline``."""

    device: str
    request: Request
    attempt: int  # 1 for the first try, 2 for the first retry...
    deadline: float


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to send before ``until``."""

    until: float


@dataclass(frozen=True, slots=True)
class Polled:
    """A poll answered in full: one response per request of the device's plan."""

    device: str
    responses: tuple[Response, ...]


@dataclass(frozen=True, slots=True)
class DeviceChange:
    """A device went silent (``silent_after`` failed polls) or answers again."""

    device: str
    silent: bool
    at: float


@dataclass(frozen=True, slots=True)
class BusChange:
    """Every device of the bus is silent, or the bus answers again (``failing``: who still does not)."""

    silent: bool
    at: float
    devices: tuple[str, ...]
    failing: tuple[str, ...]


Event = DeviceChange | BusChange


@dataclass
class _Device:
    plan: DevicePlan
    order: int
    due: float
    counts: DeviceCounts
    responses: list[Response] = field(default_factory=list)
    index: int = 0  # the request of the current poll
    attempt: int = 0


class BusScheduler:
    """Decides the transactions of one bus (see the module's docstring). Not thread-safe: one owner."""

    def __init__(self, plans: Sequence[DevicePlan], *, char_s: float, gap_s: float, now: float,
                 silent_after: int = SILENT_AFTER, backoff_max_s: float = BACKOFF_MAX_S) -> None:
        if silent_after < 1:
            raise ValueError("silent_after must be at least 1")
        self.char_s, self.gap_s = char_s, gap_s
        self.silent_after, self.backoff_max_s = silent_after, backoff_max_s
        self._devices: dict[str, _Device] = {}
        self._current: _Device | None = None  # the device whose poll is under way
        self._sent: Send | None = None
        self._free_at = now
        self._reported: bool | None = None  # the bus's last reported state: None before the first
        self._round: set[str] | None = None  # devices still to poll before the bus is reported answering
        self._events: list[Event] = []
        self._counts: dict[str, DeviceCounts] = {}
        self.replace(plans, now)

    # -- the plan -------------------------------------------------------------------------------
    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(self._devices)

    @property
    def counts(self) -> dict[str, DeviceCounts]:
        """Per device; a new dict when the devices change, so a reader in another thread can iterate it."""
        return self._counts

    @property
    def bus_silent(self) -> bool:
        return bool(self._devices) and all(d.counts.silent for d in self._devices.values())

    def replace(self, plans: Sequence[DevicePlan], now: float) -> None:
        """A new device list (the site file was reloaded): devices that stay keep their counts and schedule."""
        if self._sent is not None:
            raise RuntimeError("the devices of a bus change between transactions, not during one")
        old = self._devices
        self._devices = {}
        for i, plan in enumerate(plans):
            kept = old.get(plan.device)
            if kept is not None:
                kept.plan, kept.order = plan, i
                self._devices[plan.device] = kept
            else:
                self._devices[plan.device] = _Device(plan, i, now, DeviceCounts(interval_s=plan.poll_s))
        if self._current is not None and self._devices.get(self._current.plan.device) is not self._current:
            self._current = None
        elif self._current is not None:  # its requests may have changed: the poll starts over
            self._current.responses, self._current.index, self._current.attempt = [], 0, 0
        self._counts = {d: s.counts for d, s in self._devices.items()}
        self._round = None
        self._reported = None if self._devices.keys() != old.keys() else self._reported

    # -- what to do -----------------------------------------------------------------------------
    def next_action(self, now: float) -> Send | Wait:
        """The next request to send now, or how long to wait for one; call between transactions."""
        if self._sent is not None:
            raise RuntimeError(f"a request to {self._sent.device} is still outstanding")
        dev = self._current or self._next_due()
        if dev is None:
            return Wait(now + _IDLE_S)
        at = self._free_at if self._current is not None else max(self._free_at, dev.due)
        if at > now:
            return Wait(at)
        if self._current is None:
            self._current = dev
            dev.responses, dev.index, dev.attempt = [], 0, 0
            dev.counts.polls += 1
        dev.attempt += 1
        req = dev.plan.requests[dev.index]
        dev.counts.requests += 1
        wire = self.char_s * (8 + req.response_size)  # the request and its response take time on the wire too
        self._sent = Send(dev.plan.device, req, dev.attempt, now + dev.plan.timeout_s + wire)
        return self._sent

    def fail_due(self, now: float) -> float:
        """The port is closed: every poll due now fails unsent. Returns when the next one is due."""
        for dev in list(self._devices.values()):
            if dev.due <= now and dev is not self._current:
                dev.counts.unsent += 1
                self._ended(dev, now, answered=False)
        if self._current is not None:
            self._current.counts.unsent += 1
            self._ended(self._current, now, answered=False)
        dev = self._next_due()
        return dev.due if dev is not None else now + _IDLE_S

    def abort(self, now: float) -> None:
        """The port was lost: the poll under way fails, whatever was sent."""
        dev, self._sent = self._current, None
        if dev is not None:
            dev.counts.unsent += 1
            self._free_at = now + self.gap_s
            self._ended(dev, now, answered=False)

    def port_back(self, now: float) -> None:
        """The port is open again: poll every device at once instead of waiting out their backoff."""
        for dev in self._devices.values():
            dev.due = min(dev.due, now)
        self._free_at = now + self.gap_s

    # -- what happened --------------------------------------------------------------------------
    def on_response(self, now: float, response: Response) -> Polled | None:
        """The outstanding request was answered; a poll answered in full is returned."""
        dev = self._done(now)
        dev.responses.append(response)
        dev.index += 1
        dev.attempt = 0
        if dev.index < len(dev.plan.requests):
            return None  # the poll's next request follows
        polled = Polled(dev.plan.device, tuple(dev.responses))
        dev.counts.answers += 1
        self._ended(dev, now, answered=True)
        return polled

    def on_exception(self, now: float, code: int) -> None:
        """The device refused the request: it is alive, but this poll makes no reading."""
        dev = self._done(now)
        dev.counts.exceptions += 1
        self._ended(dev, now, answered=True)

    def on_timeout(self, now: float, crc: bool = False) -> None:
        """No good response in time (``crc``: one came with a bad CRC); retried, or the poll fails."""
        dev = self._done(now)
        if crc:
            dev.counts.crc_errors += 1
        else:
            dev.counts.timeouts += 1
        tries = 1 if dev.counts.silent else 1 + dev.plan.retries
        if dev.attempt >= tries:
            self._ended(dev, now, answered=False)

    def on_rejected(self, device: str | None, reason: str, size: int) -> None:
        """Bytes around a device's responses that were none (``device`` None: nobody was being polled)."""
        counts = self._counts.get(device or "")
        if counts is None:
            return
        if reason in ("garbage", "crc"):
            counts.garbage_bytes += size
        else:
            counts.bad_frames += 1

    def take_events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    # -- bookkeeping ----------------------------------------------------------------------------
    def _next_due(self) -> _Device | None:
        return min(self._devices.values(), key=lambda d: (d.due, d.order), default=None)

    def _done(self, now: float) -> _Device:
        if self._sent is None or self._current is None:
            raise RuntimeError("no request is outstanding")
        self._sent = None
        self._free_at = now + self.gap_s
        return self._current

    def _ended(self, dev: _Device, now: float, answered: bool) -> None:
        """A poll is over: the device's next one, its silence, and the bus's."""
        if self._current is dev:
            self._current = None
        c = dev.counts
        if answered:
            if c.silent:
                self._events.append(DeviceChange(dev.plan.device, False, now))
            c.failing, c.silent, c.interval_s = 0, False, dev.plan.poll_s
        else:
            c.failing += 1
            if c.failing >= self.silent_after:
                if not c.silent:
                    self._events.append(DeviceChange(dev.plan.device, True, now))
                c.silent = True
                doubled = dev.plan.poll_s * 2 ** (c.failing - self.silent_after + 1)
                c.interval_s = min(doubled, max(self.backoff_max_s, dev.plan.poll_s))
        # Its own cadence: a poll that had to wait for the others costs no poll; but never more than one
        # interval behind, so a bus with more work than time builds no backlog (and still serves all in turn).
        dev.due = max(dev.due + c.interval_s, now - c.interval_s)
        self._bus(dev, now, answered)

    def _bus(self, dev: _Device, now: float, answered: bool) -> None:
        names = tuple(self._devices)
        if self.bus_silent:
            self._round = None
            if self._reported is not True:
                self._reported = True
                self._events.append(BusChange(True, now, names, names))
            return
        if answered and self._reported is not False and self._round is None:
            self._round = set(names) - {dev.plan.device}
            if self._reported:  # back from silence: everyone's turn now, not at the end of their backoff
                for other in self._devices.values():
                    if other is not dev:
                        other.due = min(other.due, now)
        if self._round is not None:
            self._round.discard(dev.plan.device)
            if not self._round:
                self._round = None
                self._reported = False
                failing = tuple(d for d, s in self._devices.items() if s.counts.failing)
                self._events.append(BusChange(False, now, names, failing))
