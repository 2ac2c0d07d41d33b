"""Serial devices on pseudo-terminals for the demo: an NFC reader at the gate, a JSON-lines concentrator
and an RS-485 bus of Modbus RTU transmitters.

Each device is the master side of a pty; the gateway opens the slave path as it would a USB serial
adapter (``[[serial]]`` in its settings, CONTRACT.md "Serial"). The concentrator prints a reading per
field device each period and the transmitters' registers follow the same readings (``sim_field``:
they live through the scenario's events, on the MQTT simulator's clock). The gate reader is the gate
guard's (门岗): he taps it at every round of the gate route, as the guards walk theirs (``sim_patrol``),
so his taps count for a round. Lines written while nobody reads are dropped, as a real device's would be.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from sim_clock import SceneClock
from sim_field import BUS, CONCENTRATED, TRANSMITTERS, FieldFleet, image
from sim_field import site_lines as field_lines
from sim_modbus import Bus
from sim_patrol import next_due
from sim_pty import Pty
from sim_scenario import Patrol, Scenario

_LOGGER = logging.getLogger(__name__)
READER = "serial-gate"
"""The reader id of the pty NFC reader (``reader`` of its ``[[serial]]`` entry), carried by the gate guard."""
GATE = ("CP-GATE", "北门岗亭", "04A224B2C15E80")
"""The gate's checkpoint: id, name, NFC tag."""
GATE_GUARD = "G-GATE"
GATE_LAG_S = 10.0
"""The gate guard taps this long after his round is due (the patrolling guards' lag too)."""


def site_lines(patrol: Patrol, poll_s: float) -> str:
    """Site-file lines for the serial devices: the field devices' assets and Modbus maps, and the gate
    with its guard, his reader, a one-checkpoint route and its rounds every ``patrol.every_min``."""
    cp, name, tag = GATE
    gate = ["", "# The gate reader on a serial port (firmware-sim/sim_serial.py): the gate guard's rounds.",
            "", "[[checkpoints]]", f'id = "{cp}"', f'name = "{name}"', f'tag = "{tag}"',
            "", "[[guards]]", f'id = "{GATE_GUARD}"', 'name = "门岗保安"',
            "", "[[readers]]", f'id = "{READER}"', f'guard = "{GATE_GUARD}"',
            "", "[[routes]]", 'id = "GATE"', 'name = "门岗签到"', f'checkpoints = ["{cp}"]', "duration_min = 1.0",
            "", "[[schedules]]", 'route = "GATE"', 'start = "00:00"', 'end = "00:00"',
            f"every_min = {patrol.every_min}", f"tolerance_min = {patrol.tolerance_min!r}"]
    return field_lines(poll_s) + "\n".join(gate) + "\n"


class SerialSims:
    """The pty NFC reader, the JSON-lines concentrator and the Modbus bus (its stable name ``link``).

    A thread prints the concentrator's readings and sets the transmitters' registers every ``every_s``,
    and taps the gate on the gate route's rounds, until :meth:`stop`.
    """

    def __init__(self, scenario: Scenario, clock: SceneClock, every_s: float, link: Path) -> None:
        self.every_min, self.every_s = scenario.patrol.every_min, every_s
        self.fleet = FieldFleet(scenario, clock)
        self.nfc, self.concentrator = Pty(nonblocking=True), Pty(nonblocking=True)
        real = time.time()
        self.bus = Bus(link, {d.unit: image(d.kind, self.fleet.reading(d.device, real)) for d in TRANSMITTERS})
        self.lines = self.taps = 0
        self.tz = clock.tz
        self.next_tap = next_due(real, self.every_min, self.tz) + GATE_LAG_S
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-serial", daemon=True)

    def settings_toml(self) -> str:
        """The gateway's ``[[serial]]`` entries for the three ports."""
        return (f'[[serial]]\nport = {json.dumps(self.nfc.path)}\nmode = "nfc-lines"\nreader = "{READER}"\n\n'
                f'[[serial]]\nport = {json.dumps(self.concentrator.path)}\nmode = "json-lines"\n\n'
                f'[[serial]]\nport = {json.dumps(str(self.bus.link))}\nmode = "modbus-rtu"\nbus = "{BUS}"\n'
                'baudrate = 38400\nparity = "E"\n\n')

    def start(self) -> SerialSims:
        """Start the devices; returns self."""
        self._thread.start()
        _LOGGER.info("serial NFC reader on %s, JSON-lines concentrator on %s, Modbus bus %s on %s", self.nfc.path,
                     self.concentrator.path, BUS, self.bus.link)
        return self

    def measure(self, real: float) -> None:
        """One period: a line per concentrated device, fresh registers in every transmitter."""
        for d in CONCENTRATED:
            line = {"kind": d.kind, "device": d.device, **self.fleet.reading(d.device, real)}
            self.lines += self.concentrator.write_line(json.dumps(line).encode())
        for d in TRANSMITTERS:
            self.bus.slaves.set(d.unit, image(d.kind, self.fleet.reading(d.device, real)))

    def tap_gate(self) -> bool:
        """The gate guard taps the gate's tag; False if the reader's line was lost (nobody reading)."""
        ok = self.nfc.write_line(GATE[2].encode())
        self.taps += ok
        return ok

    def _run(self) -> None:
        next_measure = 0.0
        while not self._stop.wait(0.25):
            real = time.time()
            self.fleet.advance(real)
            if real >= next_measure:
                self.measure(real)
                next_measure = real + self.every_s
            if real >= self.next_tap:
                self.tap_gate()
                self.next_tap = next_due(real, self.every_min, self.tz) + GATE_LAG_S  # the next round's, even if late

    def stop(self) -> None:
        """Stop the devices and close their ports."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.nfc.close()
        self.concentrator.close()
        self.bus.close()
