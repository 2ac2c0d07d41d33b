"""Log records to journald in structured form, or as text lines on stderr.

Under systemd, stderr lines reach the journal as flat text: ``journalctl -p warning`` cannot
tell a warning from an info line, nor ``journalctl DEVICE=lamp-0001`` find a device's lines.
Sent through the journal's native socket, a record keeps its priority, logger, thread, code
location and the device, topic, asset or ticket a log call names with ``extra=``. The native
protocol (systemd's "Native Journal Protocol") is ``KEY=value`` lines in one datagram, or for a
value with a newline ``KEY``, a newline, its length as 64-bit little endian, the value and a newline.

URL credentials (``//user:password@``) are masked in every line, whichever format.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import struct
import sys
from collections.abc import Iterable, Mapping

_LOGGER = logging.getLogger(__name__)

SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "fm-gateway"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: ``extra=`` keys that become journal fields (``DEVICE=...``): what operators search for.
EXTRA_FIELDS = ("device", "topic", "asset", "ticket", "port", "kind", "reason")
_MAX_DATAGRAM = 200_000  # below the usual socket send buffer; a longer record's message is cut
_URL_SECRET = re.compile(r"(//[^:/@\s]*):[^@\s]*@")


def redact(text: str) -> str:
    """``mqtt://gw:secret@host`` as ``mqtt://gw:***@host``: a URL's password never reaches a log."""
    return _URL_SECRET.sub(r"\1:***@", text) if "@" in text else text


def priority(levelno: int) -> int:
    """syslog's priority for a logging level (journalctl -p)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def encode(fields: Iterable[tuple[str, str]]) -> bytes:
    """One datagram of the native protocol."""
    out = bytearray()
    for key, value in fields:
        raw = value.encode("utf-8", "replace")
        if b"\n" in raw:
            out += key.encode() + b"\n" + struct.pack("<Q", len(raw)) + raw + b"\n"
        else:
            out += key.encode() + b"=" + raw + b"\n"
    return bytes(out)


def record_fields(record: logging.LogRecord, message: str, identifier: str = IDENTIFIER) -> list[tuple[str, str]]:
    """The journal fields of a record (``message``: formatted, with any traceback)."""
    fields = [("MESSAGE", redact(message)), ("PRIORITY", str(priority(record.levelno))),
              ("SYSLOG_IDENTIFIER", identifier), ("LOGGER", record.name), ("THREAD", record.threadName or ""),
              ("CODE_FILE", record.pathname), ("CODE_LINE", str(record.lineno)), ("CODE_FUNC", record.funcName)]
    for name in EXTRA_FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            fields.append((name.upper(), redact(str(value))))
    return fields


class JournalHandler(logging.Handler):
    """Sends each record to journald's native socket (one datagram each)."""

    def __init__(self, path: str = SOCKET, identifier: str = IDENTIFIER) -> None:
        super().__init__()
        self.path, self.identifier = path, identifier
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            if record.stack_info:
                message += "\n" + record.stack_info
            data = encode(record_fields(record, message, self.identifier))
            if len(data) > _MAX_DATAGRAM:  # cut the message, keep the fields
                data = encode(record_fields(record, message[: _MAX_DATAGRAM // 2] + " [cut]", self.identifier))
            self._send(data)
        except (OSError, ValueError, TypeError):  # what logging.Handler.handleError is for
            self.handleError(record)

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.path)
        except OSError as exc:
            if exc.errno != errno.EMSGSIZE:
                raise
            self.sock.sendto(data[:65_000], self.path)  # a smaller send buffer: what fits beats nothing

    def close(self) -> None:
        self.sock.close()
        super().close()


class RedactingFormatter(logging.Formatter):
    """The text format, URL credentials masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def is_journal_stream(journal_stream: str | None, st_dev: int, st_ino: int) -> bool:
    """``$JOURNAL_STREAM`` is ``dev:inode`` of the journal's stream when systemd connected stdout/stderr to it;
    it names stderr only if stderr is that very file (not redirected by a shell since)."""
    if not journal_stream:
        return False
    dev, sep, ino = journal_stream.partition(":")
    return bool(sep) and dev.isdigit() and ino.isdigit() and (int(dev), int(ino)) == (st_dev, st_ino)


def choose(setting: str, env: Mapping[str, str], stderr_fd: int = 2) -> str:
    """``journal`` or ``text`` for a ``log_format`` setting (``auto``: journal when stderr is the journal's)."""
    if setting != "auto":
        return setting
    try:
        st = os.fstat(stderr_fd)
    except OSError:
        return "text"
    return "journal" if is_journal_stream(env.get("JOURNAL_STREAM"), st.st_dev, st.st_ino) else "text"


def handler_for(setting: str, env: Mapping[str, str] | None = None, path: str = SOCKET
                ) -> tuple[logging.Handler, str | None]:
    """The handler a ``log_format`` setting asks for in this environment, and why it is not that one
    (``journal`` asked for where there is no journal socket: text on stderr rather than nothing)."""
    note = None
    if choose(setting, os.environ if env is None else env) == "journal":
        if os.path.exists(path):
            return JournalHandler(path), None
        note = f"log_format {setting}: no journal socket at {path}; logging text lines to stderr"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(TEXT_FORMAT))
    return handler, note
