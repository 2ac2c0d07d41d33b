"""The ``modbus-rtu`` port mode: the gateway polls the Modbus RTU slaves of one RS-485 bus.

One :class:`ModbusReader` per bus owns its port in a thread of its own. It drives
pyserial directly with the pure pieces: :class:`~gateway.sensors.modbus_bus.BusScheduler`
decides each transaction, :class:`~gateway.sensors.modbus_rtu.ResponseFramer` finds the
response, :func:`~gateway.sensors.modbus_map.decode` makes the fields. pymodbus's client
is not used: it has its own retries, timeouts and reconnection, would hide the CRC
errors and garbage this bus must count per device, and cannot share one schedule
between the devices of a bus.

A poll answered in full becomes a :class:`~gateway.ingest.Message` like a json-lines
concentrator's reading (the device's kind and id, a JSON payload with ``ts``, ``seq`` and
the fields), handed to ``submit``: it goes through dedupe, InfluxDB and the fault checks
like an MQTT reading. Garbage, bad CRCs, other units' frames, exception responses and
values that are no number are dead-lettered with the port as their source and the
device named, but do not count as hearing from the device. A device that stops
answering simply makes no readings: the device registry finds it silent after three
of its heartbeats (derived from its ``poll_s``, see :func:`heartbeats`) and its asset
becomes unknown. When every device of the bus is silent, ``on_bus`` hears it once
(:class:`BusStatus`): the monitor opens one ticket for the bus instead of one per device.

The port is reopened with backoff like any serial port (:mod:`gateway.sensors.serial_port`);
while it is closed the polls that fall due fail, so an unplugged adapter is a silent bus.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import serial

from gateway.config import SerialPortSettings
from gateway.ingest import Message
from gateway.metrics import Metrics
from gateway.sensors.base import Rejection
from gateway.sensors.modbus_bus import (
    BusChange,
    BusScheduler,
    DeviceChange,
    DeviceCounts,
    Send,
    Wait,
    char_time_s,
    frame_gap_s,
)
from gateway.sensors.modbus_map import Register, decode
from gateway.sensors.modbus_rtu import ExceptionResponse, Frame, Rejected, Response, ResponseFramer
from gateway.sensors.modbus_site import ModbusDeviceModel
from gateway.sensors.serial import labels
from gateway.sensors.serial_port import BACKOFF_MAX_S, BACKOFF_MIN_S, Opener, PortOwner

_LOGGER = logging.getLogger(__name__)
_READ_WAIT_S = 0.01  # one read waits at most this long: the precision of a response's deadline
_IDLE_SLICE_S = 0.5  # between polls the port is looked at this often (a lost port is noticed)


@dataclass(frozen=True, slots=True)
class BusStatus:
    """Every device of bus ``bus`` is silent, or it answers again (``failing``: devices that still do not)."""

    bus: str
    port: str
    silent: bool
    at: float
    devices: tuple[str, ...]
    failing: tuple[str, ...]


@dataclass
class ModbusStats:
    """What a bus did since the gateway started; written by its reader's thread only."""

    bus: str
    open: bool = False
    reopenings: int = 0
    failures: int = 0  # failed opens and lost ports
    last_error: str | None = None
    bus_silent: bool = False
    garbage_bytes: int = 0  # bytes no device's poll can be blamed for
    devices: dict[str, DeviceCounts] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {k: v for k, v in self.__dict__.items() if k != "devices"}
        return out | {"mode": "modbus-rtu", "devices": {d: c.as_json() for d, c in self.devices.items()}}


@dataclass(frozen=True, slots=True)
class _Device:
    model: ModbusDeviceModel
    registers: tuple[Register, ...]


class ModbusReader(PortOwner):
    """Polls the devices of one bus in its own thread; readings and dead letters go to ``submit``."""

    def __init__(
        self,
        port: SerialPortSettings,
        devices: Sequence[ModbusDeviceModel],
        submit: Callable[[list[Message]], None],
        on_bus: Callable[[BusStatus], None] | None = None,
        clock: Callable[[], float] = time.time,
        *,
        opener: Opener = serial.serial_for_url,
        backoff: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(port, opener, backoff)
        self.bus = port.bus or port.port
        self.submit = submit
        self.on_bus = on_bus
        self.clock = clock
        self.monotonic = monotonic
        self.stats = ModbusStats(self.bus)
        self._char_s = char_time_s(port.baudrate, port.bytesize, port.parity, port.stopbits)
        self.scheduler = BusScheduler([], char_s=self._char_s, gap_s=frame_gap_s(port.baudrate, port.bytesize,
                                      port.parity, port.stopbits), now=monotonic(),
                                      silent_after=port.silent_after, backoff_max_s=port.backoff_max_s)
        self._devices: dict[str, _Device] = {}
        self._pending: tuple[ModbusDeviceModel, ...] | None = tuple(devices)
        self._wake = threading.Event()
        self._framer = ResponseFramer()
        self._seq: dict[str, int] = {}
        self._last: str | None = None  # the device polled last: stray bytes after its response are its
        self._out: list[Message] = []
        self._take_devices()

    # -- any thread ----------------------------------------------------------------------------
    def set_devices(self, devices: Sequence[ModbusDeviceModel]) -> None:
        """A reloaded site file: the bus polls these from its next transaction on."""
        self._pending = tuple(devices)
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop.set()
        self._wake.set()
        return super().stop(timeout)

    # -- the reader's thread -------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self._stop.is_set():
                self._take_devices()
                if self._port is None:
                    if not self._open(_READ_WAIT_S):
                        self._wait_closed()
                        continue
                    self.scheduler.port_back(self.monotonic())
                action = self.scheduler.next_action(self.monotonic())
                if isinstance(action, Wait):
                    self._idle(action.until)
                else:
                    self._transact(action)
                self._deliver()
        finally:
            self._close("the gateway stopped")
            self._deliver()

    def _take_devices(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self._wake.clear()
        self.scheduler.replace([d.plan() for d in pending], self.monotonic())
        self._devices = {d.device: _Device(d, d.register_map()) for d in pending}
        self.stats.devices = self.scheduler.counts
        if not pending:
            _LOGGER.warning("serial port %s (modbus-rtu bus %s): no [[modbus]] device in the site file names this "
                            "bus; nothing to poll", self.name, self.bus)

    def _wait_closed(self) -> None:
        """Until the next try to open the port: the polls falling due fail (a closed port is a silent bus)."""
        end = self.monotonic() + self._delay
        while not self._stop.is_set():
            now = self.monotonic()
            due = self.scheduler.fail_due(now)
            self._events()
            if now >= end:
                break
            self._stop.wait(max(0.0, min(due, end) - now))
        self._next_delay()

    def _idle(self, until: float) -> None:
        """Nothing to send before ``until``: read what strays in (refused before the next request)."""
        while not self._stop.is_set() and self._pending is None:
            left = until - self.monotonic()
            if left <= 0 or not self._read_stray():
                return
            self._wake.wait(min(left, _IDLE_SLICE_S))

    def _read_stray(self) -> bool:
        port = self._port
        assert port is not None
        try:
            waiting = port.in_waiting
            data = port.read(waiting) if waiting else b""
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)
            return False
        if data:
            self._handle(*self._framer.feed(data))
        return True

    def _transact(self, send: Send) -> None:
        """One request and its response (or its timeout)."""
        port = self._port
        assert port is not None
        if not self._read_stray():
            return
        self._refused(self._framer.expect(send.request), self._last)
        self._last = send.device
        crc = False
        try:
            port.write(send.request.encode())
            while True:
                data = port.read(max(1, port.in_waiting))
                if data:
                    frames, rejected = self._framer.feed(data)
                    crc |= self._handle(frames, rejected)
                    if frames:
                        break
                if self.monotonic() >= send.deadline:
                    frames, rejected = self._framer.flush(f"no good response to {send.request} in time")
                    crc |= self._handle(frames, rejected)
                    if not frames:
                        self.scheduler.on_timeout(self.monotonic(), crc=crc)
                    break
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)
        self._events()

    def _handle(self, frames: list[Frame], rejected: list[Rejected]) -> bool:
        """Hand frames to the scheduler and refusals to the dead letters; True if a bad CRC was among them."""
        self._refused(rejected, self._last)
        for frame in frames:
            now, at = self.monotonic(), self.clock()
            if isinstance(frame, ExceptionResponse):
                self.scheduler.on_exception(now, frame.code)
                self._dead(Rejection("modbus_exception", f"unit {frame.request.unit} refused {frame.request}: "
                                     f"exception {frame.code} ({frame.name})"), frame.raw, self._last)
                continue
            polled = self.scheduler.on_response(now, frame)
            if polled is not None:
                self._reading(polled.device, polled.responses, at)
        return any(r.reason == "crc" for r in rejected)

    def _reading(self, device: str, responses: tuple[Response, ...], at: float) -> None:
        dev = self._devices[device]
        fields = decode(dev.registers, responses)
        if isinstance(fields, str):
            self._dead(Rejection("schema", f"{device}: {fields}"), b"".join(r.raw for r in responses), device)
            return
        seq = self._seq[device] = self._seq.get(device, -1) + 1
        payload = json.dumps({"ts": round(at, 6), "seq": seq, **fields}, separators=(",", ":")).encode()
        self._out.append(Message(self.name, dev.model.kind, device, "reading", payload, at))

    def _refused(self, rejected: list[Rejected], device: str | None) -> None:
        for r in rejected:
            if device is None:
                self.stats.garbage_bytes += r.size
            self.scheduler.on_rejected(device, r.reason, r.size)
            self._dead(Rejection(r.reason, r.detail), r.raw, device)

    def _dead(self, why: Rejection, raw: bytes, device: str | None) -> None:
        """A dead letter naming the device, without a kind: refused bytes are not hearing from it."""
        self._out.append(Message(self.name, "", device or "", "", raw, self.clock(), problem=why))

    def _events(self) -> None:
        for ev in self.scheduler.take_events():
            if isinstance(ev, DeviceChange):
                dev = self._devices.get(ev.device)
                unit = dev.model.unit if dev else 0
                if ev.silent:
                    c = self.scheduler.counts[ev.device]
                    _LOGGER.warning("modbus device %s (unit %d) on %s (bus %s) stopped answering: %d polls failed in "
                                    "a row; probed once at a doubling interval, up to %.0f s", ev.device, unit,
                                    self.name, self.bus, c.failing, self.settings.backoff_max_s)
                else:
                    _LOGGER.info("modbus device %s (unit %d) on %s (bus %s) answers again", ev.device, unit,
                                 self.name, self.bus)
            elif isinstance(ev, BusChange):
                self._bus_changed(ev)

    def _bus_changed(self, ev: BusChange) -> None:
        self.stats.bus_silent = ev.silent
        if ev.silent:
            _LOGGER.warning("serial port %s: modbus bus %s is silent: none of its %d devices (%s) answers", self.name,
                            self.bus, len(ev.devices), ", ".join(ev.devices))
        else:
            _LOGGER.info("serial port %s: modbus bus %s answers%s", self.name, self.bus,
                         f"; still silent: {', '.join(ev.failing)}" if ev.failing else "")
        if self.on_bus is not None:
            self.on_bus(BusStatus(self.bus, self.name, ev.silent, self.clock(), ev.devices, ev.failing))

    def _lost(self, exc: BaseException) -> None:
        self._close("the port was lost")
        self.scheduler.abort(self.monotonic())
        self._failed(f"lost: {exc}")
        self._events()

    def _close(self, why: str) -> None:
        self._release()
        frames, rejected = self._framer.flush(why)
        self._handle(frames, rejected)

    def _deliver(self) -> None:
        if self._out:
            out, self._out = self._out, []
            self.submit(out)


def register_modbus_metrics(metrics: Metrics, readers: Sequence[PortOwner]) -> None:
    """Per-device series of every Modbus bus on /metrics, and whether each bus is silent."""
    buses = [r for r in readers if isinstance(r, ModbusReader)]
    if not buses:
        return
    for name, help_text, attr in (
        ("gateway_modbus_polls_total", "Polls of a Modbus device started on the wire.", "polls"),
        ("gateway_modbus_answers_total", "Polls of a Modbus device answered in full (readings).", "answers"),
        ("gateway_modbus_timeouts_total", "Modbus requests without a good response in time.", "timeouts"),
        ("gateway_modbus_crc_errors_total", "Modbus responses with a bad CRC.", "crc_errors"),
        ("gateway_modbus_exceptions_total", "Modbus exception responses (a read refused).", "exceptions"),
        ("gateway_modbus_garbage_bytes_total", "Bytes around a Modbus device's responses that were none.",
         "garbage_bytes"),
    ):
        metrics.series(name, "counter", help_text, lambda attr=attr: [
            (labels(port=r.name, device=d), float(getattr(c, attr)))
            for r in buses for d, c in r.stats.devices.items()])
    metrics.series("gateway_modbus_bus_silent", "gauge", "1 while every device of a Modbus bus is silent.",
                   lambda: [(labels(port=r.name, bus=r.bus), float(r.stats.bus_silent)) for r in buses])


def bus_problems(ports: Sequence[SerialPortSettings], devices: Sequence[ModbusDeviceModel], source: str
                 ) -> list[str]:
    """The site file's (``source``) Modbus devices each name a bus the settings file has a modbus-rtu port for."""
    buses = {p.bus for p in ports if p.mode == "modbus-rtu"}
    return [f"{source}: modbus.{i}.bus: no [[serial]] port with mode \"modbus-rtu\" and bus = \"{d.bus}\" in the "
            f"settings (device {d.device})" for i, d in enumerate(devices) if d.bus not in buses]


def heartbeats(devices: Sequence[ModbusDeviceModel]) -> dict[str, float]:
    """Each Modbus device's heartbeat for the device registry: its poll interval, or the bus's round when
    every device times out if that is longer (a poll waits for the others' transactions), plus its own tries.

    The registry finds a device lost after ``ingest.heartbeat_misses`` of these, later than the bus finds
    it silent (``silent_after`` failed polls, no more than the misses): so a whole bus going silent opens
    the bus's ticket before any of its devices' own.
    """
    rounds: dict[str, float] = {}
    for d in devices:
        rounds[d.bus] = rounds.get(d.bus, 0.0) + d.tries_s
    return {d.device: max(d.poll_s, rounds[d.bus]) + d.tries_s for d in devices}
