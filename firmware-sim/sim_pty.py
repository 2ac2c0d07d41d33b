"""Pseudo-terminals standing in for serial devices (the demo's and the tests').

A pty has a path on its slave side only: the gateway opens that path as it would a USB serial
adapter, and the simulated device works on the master side.
"""

from __future__ import annotations

import logging
import os
import tty

_LOGGER = logging.getLogger(__name__)


class Pty:
    """A pseudo-terminal pair; ``path`` is the slave side a serial port opens.

    ``nonblocking``: writes to the master never wait (a device printing while nobody reads loses its
    lines, as a real one's would).
    """

    def __init__(self, nonblocking: bool = False) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # as pyserial will: no echo, no CR -> LF, bytes as the device sent them
        os.set_blocking(self.master, not nonblocking)
        self.path = os.ttyname(self.slave)
        self.closed = False

    def write_line(self, line: bytes) -> bool:
        """Write one CRLF-ended line; False if the pty's buffer is full (nobody reading)."""
        try:
            os.write(self.master, line + b"\r\n")
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        """Close both sides: the reader's next read fails, as when a device is unplugged."""
        if self.closed:
            return
        self.closed = True
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                _LOGGER.debug("pty fd %d already closed", fd)
