"""What every serial port owner does alike: a thread of its own, and opening the port again with backoff.

A port that fails to open or disappears (a USB adapter unplugged, a cable pulled) is
reopened with backoff, 1 s doubling to 30 s; this never stops the gateway. Name USB
adapters by their stable names: ``/dev/ttyUSB0`` is whichever adapter the kernel saw
first and may come back as ``/dev/ttyUSB1`` after re-plugging, whereas
``/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1XYZ-if00-port0`` (udev's link, by
vendor, model and serial number) or ``/dev/serial/by-path/...`` (by USB socket) name the
same adapter every time, appear when it is plugged in and vanish when it is pulled:
configure that, and hot-plugging just works. The gateway's user needs read-write access
to the device (the ``dialout`` group on Debian).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

import serial

from gateway.config import SerialPortSettings

_LOGGER = logging.getLogger(__name__)
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
_REMIND_S = 600.0  # a port that stays missing is logged again this often

Opener = Callable[..., serial.SerialBase]
Spawn = Callable[[str, Callable[[], None]], threading.Thread]


class OpenStats(Protocol):
    """The part of a port's stats this class keeps."""

    reopenings: int
    failures: int
    open: bool
    last_error: str | None

    def as_json(self) -> dict[str, object]: ...


class PortOwner(ABC):
    """Owns one port in a thread of its own; subclasses read or poll it in :meth:`run`."""

    stats: OpenStats

    def __init__(self, port: SerialPortSettings, opener: Opener, backoff: tuple[float, float]) -> None:
        self.settings = port
        self.name = port.port
        self._opener = opener
        self._backoff = backoff
        self._delay = backoff[0]
        self._stop = threading.Event()
        self._port: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._ever_failed = False
        self._logged_failure = 0.0  # monotonic time of the last failure logged at warning level

    @abstractmethod
    def run(self) -> None:
        """The owner's thread: open the port, read or poll it until stopped, reopen it when it fails."""

    # -- any thread ----------------------------------------------------------------------------
    def start(self, spawn: Spawn | None = None) -> None:
        """Start in a thread of its own (``spawn(name, target)`` makes it; default a daemon thread)."""
        name = f"serial {self.name}"
        self._thread = spawn(name, self.run) if spawn else threading.Thread(target=self.run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop: what is held is handed on, the port closed. True if the thread ended within ``timeout``
        (a backoff is cut short; only a read or a transaction under way is waited for)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- the owner's thread --------------------------------------------------------------------
    def _back_off(self) -> None:
        self._stop.wait(self._delay)
        self._next_delay()

    def _next_delay(self) -> None:
        self._delay = min(self._delay * 2, self._backoff[1])

    def _open(self, read_timeout: float) -> bool:
        s = self.settings
        try:
            port = self._opener(s.port, baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity,
                                stopbits=s.stopbits, timeout=read_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._failed(f"cannot open: {exc}")
            return False
        self._port = port
        self.stats.open = True
        if self._ever_failed:
            self.stats.reopenings += 1
            _LOGGER.info("serial port %s open again (%s, %d baud %d%s%g); reading resumes", s.port, s.mode,
                         s.baudrate, s.bytesize, s.parity, s.stopbits)
        else:
            _LOGGER.info("serial port %s open (%s, %d baud %d%s%g)", s.port, s.mode, s.baudrate, s.bytesize,
                         s.parity, s.stopbits)
        self.stats.last_error = None
        return True

    def _failed(self, why: str) -> None:
        now = time.monotonic()
        first = self.stats.last_error is None
        self.stats.failures += 1
        self.stats.last_error = why
        self._ever_failed = True
        if first or now - self._logged_failure >= _REMIND_S:
            self._logged_failure = now
            _LOGGER.warning("serial port %s: %s; trying again in %.3g s (backoff up to %.3g s)", self.name, why,
                            self._delay, self._backoff[1])
        else:
            _LOGGER.debug("serial port %s: %s; trying again in %.3g s", self.name, why, self._delay)

    def _release(self) -> None:
        """Close the port, if open (it may be gone already)."""
        port, self._port = self._port, None
        self.stats.open = False
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                _LOGGER.debug("serial port %s: closing: %s", self.name, exc)
