"""Serial ports (CONTRACT.md "Serial"): NFC readers and concentrators on RS-485, UART or USB.

One :class:`SerialReader` per configured port, each in its own thread: it opens the port
with pyserial (``serial_for_url``, so a device path, a pseudo-terminal or an
``rfc2217://`` URL alike), reads what is there, frames it into lines
(:mod:`gateway.sensors.serial_lines`, pure), turns each line into a
:class:`~gateway.ingest.Message` and hands the batch to ``submit`` (the ingest loop's
queue). Everything refused on the way (garbage bytes, partial or over-long lines, a line
that is not a UID, bad JSON) becomes a message whose ``problem`` says why, with the port
as its ``source``: the ingestor dead-letters it like a bad MQTT payload.

A port that fails to open or disappears (a USB adapter unplugged, a cable pulled) is
reopened with backoff (:mod:`gateway.sensors.serial_port`, which also says why to
configure ``/dev/serial/by-id/...`` names), and reading resumes where the device is then.
Modbus RTU buses are polled by :class:`~gateway.sensors.serial_modbus.ModbusReader`.

Per port the reader counts lines, garbage, refused lines and reopenings
(:class:`PortStats`), exported as metrics by :func:`register_metrics`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import serial

from gateway.config import SerialPortSettings
from gateway.ingest import Message
from gateway.metrics import Metrics
from gateway.sensors.base import Rejection
from gateway.sensors.serial_lines import Frame, Garbage, LineFramer, json_line, nfc_line
from gateway.sensors.serial_port import BACKOFF_MAX_S, BACKOFF_MIN_S, Opener, PortOwner

_READ_WAIT_S = 0.2  # one read waits at most this long: how soon stop() and a stalled partial line are noticed
_READ_MAX = 65536


@dataclass
class PortStats:
    """What a port did since the gateway started; written by the reader's thread only."""

    lines: int = 0  # complete lines read (taps, readings, and lines the decoder refused)
    garbage: int = 0  # refused before decoding: noise, control bytes, not UTF-8, partial or over-long lines
    refused: int = 0  # lines the mode's decoder refused (not a UID, bad JSON)
    reopenings: int = 0  # opened again after it failed to open or was lost
    failures: int = 0  # failed opens and lost ports
    open: bool = False
    last_error: str | None = None

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


class SerialReader(PortOwner):
    """Reads one port in its own thread and hands batches of messages to ``submit``."""

    def __init__(
        self,
        port: SerialPortSettings,
        submit: Callable[[list[Message]], None],
        clock: Callable[[], float] = time.time,
        *,
        opener: Opener = serial.serial_for_url,
        backoff: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
    ) -> None:
        super().__init__(port, opener, backoff)
        self.submit = submit
        self.clock = clock
        self.stats = PortStats()
        self._framer = LineFramer(port.max_line)
        self._opened_at = 0.0
        self._last_byte = 0.0

    # -- the reader's thread -------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._port is None:
                    if not self._open(min(_READ_WAIT_S, self.settings.timeout)):
                        self._back_off()
                        continue
                    self._opened_at = self._last_byte = time.monotonic()
                self._read()
        finally:
            self._close("the gateway stopped")

    def _read(self) -> None:
        port = self._port
        assert port is not None
        try:
            data = port.read(max(1, min(port.in_waiting, _READ_MAX)))
        except (serial.SerialException, OSError) as exc:
            self._close("the port was lost")
            self._failed(f"lost: {exc}")
            self._back_off()
            return
        now = time.monotonic()
        if data:
            self._last_byte = now
            self._delay = self._backoff[0]  # the port works: a later loss starts the backoff over
            self._deliver(self._framer.feed(data))
        elif self._framer.pending and now - self._last_byte >= self.settings.timeout:
            self._deliver(self._framer.flush(f"no byte for {self.settings.timeout:g} s"))
        elif now - self._opened_at >= self._backoff[1]:
            self._delay = self._backoff[0]  # open and quiet for a while: as good as working

    def _close(self, why: str) -> None:
        self._release()
        self._deliver(self._framer.flush(why))

    def _deliver(self, frames: Sequence[Frame]) -> None:
        if not frames:
            return
        at = self.clock()
        out = []
        for f in frames:
            if isinstance(f, Garbage):
                self.stats.garbage += 1
                out.append(self._refused(Rejection(f.reason, f.detail), f.raw, at))
            else:
                self.stats.lines += 1
                out.append(self._message(f.text, f.raw, at))
        self.submit(out)

    def _message(self, text: str, raw: bytes, at: float) -> Message:
        if self.settings.mode == "nfc-lines":
            tag = nfc_line(text)
            if isinstance(tag, Rejection):
                self.stats.refused += 1
                return self._refused(tag, raw, at)
            payload = json.dumps({"tag": tag, "ts": at}).encode()
            return Message(self.name, "checkpoint", self.settings.reader or "", "tap", payload, at)
        decoded = json_line(text)
        if isinstance(decoded, Rejection):
            self.stats.refused += 1
            return self._refused(decoded, raw, at)
        kind, device, leaf, payload = decoded
        return Message(self.name, kind, device, leaf, payload, at)

    def _refused(self, why: Rejection, raw: bytes, at: float) -> Message:
        """A dead letter to be: an nfc-lines port's refusals count against its reader."""
        if self.settings.mode == "nfc-lines":
            return Message(self.name, "checkpoint", self.settings.reader or "", "", raw, at, problem=why)
        return Message(self.name, "", "", "", raw, at, problem=why)


def labels(**values: str) -> str:
    """Prometheus labels, escaped: ``{port="/dev/ttyUSB0"}``."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in values.items()) + "}"


def register_metrics(metrics: Metrics, readers: Sequence[PortOwner]) -> None:
    """Per-port series on /metrics: lines, garbage and refused lines (line ports); reopenings, whether open
    (every port)."""
    if not readers:
        return
    lines = [r for r in readers if isinstance(r, SerialReader)]
    for name, kind, help_text, value in (
        ("gateway_serial_lines_total", "counter", "Lines read from a serial port.", lambda r: r.stats.lines),
        ("gateway_serial_garbage_total", "counter", "Garbage, partial and over-long lines from a serial port.",
         lambda r: r.stats.garbage),
        ("gateway_serial_refused_total", "counter", "Serial lines refused by the port's mode (not a UID, bad JSON).",
         lambda r: r.stats.refused),
    ):
        if lines:
            metrics.series(name, kind, help_text,
                           lambda value=value: [(labels(port=r.name), float(value(r))) for r in lines])
    for name, kind, help_text, every in (
        ("gateway_serial_reopenings_total", "counter", "Times a serial port was opened again after a failure.",
         lambda r: r.stats.reopenings),
        ("gateway_serial_open", "gauge", "1 while a serial port is open.", lambda r: float(r.stats.open)),
    ):
        metrics.series(name, kind, help_text,
                       lambda every=every: [(labels(port=r.name), float(every(r))) for r in readers])
