"""An RS-485 bus of Modbus RTU slaves on pseudo-terminals: pymodbus's RTU server as the transmitters,
the gateway's end, and a cable between them. The demo polls level and pressure transmitters on it; the
tests pull the cable out, plug it back in, or make a slave on it fall silent, or noisy.

pymodbus's server opens a serial port by its path, and so does the gateway; a pseudo-terminal has a
path on one side only. So each end gets a pseudo-terminal of its own and the cable relays bytes
between their master sides, as a wire would. It is an independent implementation of Modbus RTU: the
gateway's framing and CRC are checked against it, not against themselves. pymodbus is in the
gateway's ``test`` extra (``make demo`` installs it).
"""

from __future__ import annotations

import asyncio
import functools
import os
import select
import struct
import threading
from collections import Counter
from pathlib import Path

from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils
from sim_pty import Pty

Image = tuple[list[int], list[int], list[bool]]
"""A slave's holding registers, input registers and coils, each from address 0."""


class Cable(threading.Thread):
    """Relays bytes between the gateway's pseudo-terminal and the slaves'; counts the requests per unit
    that reached the slaves."""

    def __init__(self, slaves_side: Pty) -> None:
        super().__init__(name="modbus cable", daemon=True)
        self.slaves_side = slaves_side
        self.gateway_side: Pty | None = None
        self.muted: set[int] = set()  # units whose requests never reach them (a dead transmitter)
        self.noise = b""  # written to the gateway before the next response
        self.corrupt = 0  # this many next responses get a data byte flipped
        self.delivered: Counter[int] = Counter()
        self._pending = bytearray()
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def plug(self, gateway_side: Pty) -> None:
        with self._lock:
            self.gateway_side = gateway_side
            self._pending.clear()

    def unplug(self) -> Pty | None:
        with self._lock:
            side, self.gateway_side = self.gateway_side, None
            return side

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        while not self._halt.is_set():
            with self._lock:
                gw = self.gateway_side
            fds = [self.slaves_side.master] + ([gw.master] if gw else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.05)
                with self._lock:
                    if gw is not self.gateway_side:
                        continue  # unplugged meanwhile
                    for fd in ready:
                        data = os.read(fd, 4096)
                        if fd == self.slaves_side.master:
                            self._to_gateway(gw, data)
                        else:
                            self._to_slaves(data)
            except OSError:  # a side was closed under us: being unplugged, or the bus shutting down
                continue

    def _to_slaves(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= 8:  # the gateway only sends reads: 8 bytes each
            request = bytes(self._pending[:8])
            del self._pending[:8]
            if request[0] in self.muted:
                continue
            self.delivered[request[0]] += 1
            os.write(self.slaves_side.master, request)

    def _to_gateway(self, gw: Pty | None, data: bytes) -> None:
        if gw is None:
            return
        if self.corrupt and len(data) > 3:
            self.corrupt -= 1
            data = data[:3] + bytes([data[3] ^ 0x5A]) + data[4:]
        data, self.noise = self.noise + data, b""
        os.write(gw.master, data)


def registers(*values: int) -> list[int]:
    """Whole numbers as 16-bit registers (negative ones as two's complement)."""
    return [v & 0xFFFF for v in values]


def float_registers(value: float) -> list[int]:
    """A float32 as two registers, high word first (ABCD)."""
    return list(struct.unpack(">HH", struct.pack(">f", value)))


class Slaves:
    """pymodbus's RTU server answering for several units on one pseudo-terminal path.

    ``units`` maps a unit to its image (holding registers, input registers, coils from address 0).
    :meth:`set` gives a unit new values while the server runs (a transmitter measuring), of the same
    lengths; every read answers with the latest.
    """

    def __init__(self, path: str, units: dict[int, Image]) -> None:
        self._images = {unit: _padded(image) for unit, image in units.items()}
        self._lock = threading.Lock()
        devices = [SimDevice(unit, action=functools.partial(self._latest, unit), simdata=(
            [SimData(0, values=coils, datatype=DataType.BITS)],
            [SimData(0, values=[False], datatype=DataType.BITS)],
            [SimData(0, values=holding, datatype=DataType.REGISTERS)],
            [SimData(0, values=inputs, datatype=DataType.REGISTERS)],
        )) for unit, (holding, inputs, coils) in self._images.items()]
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: ModbusSerialServer | None = None
        self._thread = threading.Thread(target=self._run, args=(devices, path), name="modbus slaves", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("pymodbus's server did not start")

    def set(self, unit: int, image: Image) -> None:
        """The unit's registers now read ``image`` (same lengths as at the start)."""
        new = _padded(image)
        with self._lock:
            if [len(part) for part in new] != [len(part) for part in self._images[unit]]:
                raise ValueError(f"unit {unit}: an image of other lengths than its first")
            self._images[unit] = new

    async def _latest(self, unit: int, function: int, start: int, address: int, count: int,
                      block: list[int], values: list[int] | list[bool] | None) -> None:
        """pymodbus's hook before it answers: copy the unit's latest image into the block it reads."""
        del start, address, count
        if values is not None or function not in (1, 3, 4):
            return
        with self._lock:
            holding, inputs, coils = self._images[unit]
        if function == 1:
            packed = SimUtils.bitsToRegisters(coils + [False] * (-len(coils) % 16))
            block[:len(packed)] = packed
        else:
            words = holding if function == 3 else inputs
            block[:len(words)] = words

    def _run(self, devices: list[SimDevice], path: str) -> None:
        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            self._server = ModbusSerialServer(devices, port=path, baudrate=38400)
            self.loop.call_later(0.2, self._ready.set)
            await self._server.serve_forever()

        self.loop.run_until_complete(serve())

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self.loop).result(10)
        self._thread.join(10)
        self.loop.close()


def _padded(image: Image) -> Image:
    """pymodbus wants at least one value in each table."""
    holding, inputs, coils = image
    return list(holding) or [0], list(inputs) or [0], list(coils) or [False]


class Bus:
    """The whole line: slaves, cable, and the gateway's end under a stable name (a by-id link)."""

    def __init__(self, link: Path, units: dict[int, Image]) -> None:
        self.link = link
        self.slaves_side = Pty()
        self.slaves = Slaves(self.slaves_side.path, units)
        self.cable = Cable(self.slaves_side)
        self.cable.start()
        self.plug()

    def plug(self) -> None:
        """An adapter plugged in: a new pseudo-terminal appears under the stable name."""
        side = Pty()
        self.link.unlink(missing_ok=True)  # a stale link left by a run that was killed
        self.link.symlink_to(side.path)
        self.cable.plug(side)

    def unplug(self) -> None:
        """The adapter pulled: its pseudo-terminal is gone, and so is the stable name."""
        side = self.cable.unplug()
        self.link.unlink()
        if side is not None:
            side.close()

    def close(self) -> None:
        side = self.cable.unplug()
        if side is not None:
            side.close()
        self.cable.stop()
        self.slaves.stop()
        self.slaves_side.close()
