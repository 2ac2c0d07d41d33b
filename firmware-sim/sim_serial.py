"""Serial devices on pseudo-terminals for the demo: an NFC reader and a JSON-lines concentrator.

Each device is the master side of a pty (``os.openpty``); the gateway opens the slave path as it
would a USB serial adapter (``[[serial]]`` in its settings, CONTRACT.md "Serial"). The reader
prints the UID of the site's first checkpoint (a gate) now and then; the concentrator prints a
reading per RS-485 field device each period. Lines written while nobody reads are dropped, as a
real device's would be.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import tomllib
import tty
from dataclasses import dataclass
from pathlib import Path

_LOGGER = logging.getLogger("firmware-sim.serial")
READER = "serial-gate"
"""The reader id of the pty NFC reader (``reader`` of its ``[[serial]]`` entry)."""


@dataclass(frozen=True)
class FieldDevice:
    """A device behind the concentrator, and the asset it is bound to in the site file."""

    kind: str
    device: str
    asset: str
    name: str
    category: str
    rated: str = ""


FIELD_DEVICES = (
    FieldDevice("drain_level", "rs485-well-01", "RS-WELL-01", "RS485 1号井", "drainage",
                "rated = { depth_m = 3.0, alarm_level_m = 1.8 }"),
    FieldDevice("fire_hydrant", "rs485-hyd-01", "RS-HYD-01", "RS485 1号消火栓", "fire"),
)


class Pty:
    """A pseudo-terminal pair: the simulator writes on the master, the gateway opens ``path``."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no CR -> LF translation: bytes arrive as a device sent them
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def write_line(self, line: bytes) -> bool:
        """Write one CRLF-ended line; False if the pty's buffer is full (nobody reading)."""
        try:
            os.write(self.master, line + b"\r\n")
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        """Close both sides: the gateway's next read fails, as when a device is unplugged."""
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                _LOGGER.debug("pty fd %d already closed", fd)


def gate_tag(site_file: Path) -> str:
    """The tag of the site file's first checkpoint (the gate the pty reader is fixed at)."""
    site = tomllib.loads(site_file.read_text(encoding="utf-8"))
    points = site.get("checkpoints") or []
    if not points:
        raise ValueError(f"{site_file}: no [[checkpoints]] for the serial NFC reader")
    return str(points[0]["tag"])


def site_lines() -> str:
    """Site-file ``[[assets]]`` binding the concentrator's devices."""
    lines: list[str] = ["", "# Behind the JSON-lines concentrator on a serial port (firmware-sim/sim_serial.py)."]
    for d in FIELD_DEVICES:
        lines += ["", "[[assets]]", f'id = "{d.asset}"', f'name = "{d.name}"', f'category = "{d.category}"',
                  f'kind = "{d.kind}"', f'device = "{d.device}"', *((d.rated,) if d.rated else ())]
    return "\n".join(lines) + "\n"


class SerialSims:
    """The pty NFC reader and JSON-lines concentrator, printing every ``every_s`` seconds until ``stop``."""

    def __init__(self, tag: str, every_s: float, tap_every: int = 3, seed: int = 7) -> None:
        self.tag, self.every_s, self.tap_every = tag, every_s, max(1, tap_every)
        self.nfc, self.concentrator = Pty(), Pty()
        self.seq = 0
        self.taps = 0
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-serial", daemon=True)

    def settings_toml(self) -> str:
        """The gateway's ``[[serial]]`` entries for the two ptys."""
        return (f'[[serial]]\nport = {json.dumps(self.nfc.path)}\nmode = "nfc-lines"\nreader = "{READER}"\n\n'
                f'[[serial]]\nport = {json.dumps(self.concentrator.path)}\nmode = "json-lines"\n\n')

    def start(self) -> SerialSims:
        """Start printing; returns self."""
        self._thread.start()
        _LOGGER.info("serial NFC reader on %s, JSON-lines concentrator on %s", self.nfc.path,
                     self.concentrator.path)
        return self

    def _reading(self, dev: FieldDevice) -> dict[str, object]:
        if dev.kind == "drain_level":
            return {"level_m": round(0.3 + self._rng.gauss(0.0, 0.01), 3), "cover_open": False,
                    "cover_tilt_deg": round(abs(self._rng.gauss(0.5, 0.1)), 1)}
        return {"pressure_mpa": round(0.3 + self._rng.gauss(0.0, 0.004), 3)}

    def tick(self) -> None:
        """One period: a reading per field device, and every ``tap_every`` periods a tap at the gate."""
        self.seq += 1
        for dev in FIELD_DEVICES:
            line = {"kind": dev.kind, "device": dev.device, "ts": round(time.time(), 3), "seq": self.seq,
                    **self._reading(dev)}
            self.concentrator.write_line(json.dumps(line).encode())
        if self.seq % self.tap_every == 1 or self.tap_every == 1:
            self.taps += self.nfc.write_line(self.tag.encode())

    def _run(self) -> None:
        while True:
            self.tick()
            if self._stop.wait(self.every_s):
                return

    def stop(self) -> None:
        """Stop printing and close the ptys."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.nfc.close()
        self.concentrator.close()
