"""Lines from a serial port (CONTRACT.md "Serial"), framed and decoded without any I/O.

:class:`LineFramer` is fed whatever a read brought (a byte at a time, a whole burst,
a line cut anywhere) and returns the frames it completed, in the style of the pymodbus
framers: the same bytes give the same frames however they were chunked. Its frames are
:class:`Line` (a line of text, without its line end and surrounding blanks) and
:class:`Garbage` (bytes refused before decoding, with a reason):

- a line ends at CR, LF or CRLF (any run of them: blank lines are skipped);
- a line with control bytes (other than TAB) or bytes that are not UTF-8 is garbage;
  NUL and 0xFF bytes before a line's first character are line noise (a reader powering
  up, an RS-485 bus turning around): they are refused as garbage and the line of text
  after them is kept;
- a line longer than ``max_line`` bytes is refused once (``too_large``, with its first
  ``max_line`` bytes) and everything up to the next line end is skipped: the framer
  resynchronises there, and never holds more than ``max_line`` bytes;
- a partial line is carried over to the next :meth:`LineFramer.feed`; :meth:`LineFramer.flush`
  refuses it (the port closed, or no line end came in time).

The decoders turn a line's text into what the ingestor takes: :func:`nfc_line` a tag UID,
:func:`json_line` a concentrator's reading or tap. Both return a
:class:`~gateway.sensors.base.Rejection` for a line they refuse.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from gateway.config import SEGMENT
from gateway.sensors import KINDS
from gateway.sensors.base import Rejection, parse_object
from gateway.sensors.checkpoint import normalize_tag

MAX_LINE = 4096
_END = re.compile(rb"[\r\n]")
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")  # TAB is a blank; CR and LF never reach a line
_NOISE = re.compile(rb"^[\x00\xff]+")
_BLANKS = b" \t"


class Line(NamedTuple):
    """A complete line of text: ``text`` without blanks around it (never empty), ``raw`` its bytes."""

    text: str
    raw: bytes


class Garbage(NamedTuple):
    """Bytes refused before decoding: ``reason`` is the dead-letter reason code (``garbage`` or
    ``too_large``), ``raw`` the bytes refused (at most ``max_line`` of them)."""

    reason: str
    detail: str
    raw: bytes


Frame = Line | Garbage


class LineFramer:
    """Splits a byte stream into lines; pure and deterministic (see the module's docstring)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False  # inside an over-long line, already refused: drop up to its end

    @property
    def pending(self) -> int:
        """Bytes of a partial line held for the next feed."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by ``data`` (possibly none); a partial line is kept for later."""
        buf = self._buf
        scan = len(buf)  # what is held has no line end: search the new bytes only
        buf += data
        out: list[Frame] = []
        pos = 0
        while (m := _END.search(buf, max(pos, scan))) is not None:
            end = m.start()
            if self._skipping:
                self._skipping = False
            elif end > pos:
                out += self._frames(bytes(buf[pos:end]))
            pos = end + 1
        del buf[:pos]
        if self._skipping:
            buf.clear()
        elif len(buf) > self.max_line:
            out.append(self._too_long(bytes(buf[: self.max_line])))
            self._skipping = True
            buf.clear()
        return out

    def flush(self, why: str) -> list[Frame]:
        """Refuse the partial line held (``why``: "the port closed"); the next byte starts a new line."""
        raw = bytes(self._buf)
        self._buf.clear()
        self._skipping = False
        if not raw.strip(_BLANKS):
            return []
        return [Garbage("garbage", f"partial line without a line end: {why}", raw)]

    def _too_long(self, head: bytes) -> Garbage:
        return Garbage("too_large", f"line longer than {self.max_line} bytes; skipped up to its line end", head)

    def _frames(self, raw: bytes) -> list[Frame]:
        if len(raw) > self.max_line:
            return [self._too_long(raw[: self.max_line])]
        noise = _NOISE.match(raw)
        start = noise.end() if noise else 0
        why = _not_text(raw, start)
        if why is not None:
            return [Garbage("garbage", f"not a line of text: {why}", raw)]
        out: list[Frame] = []
        if start:  # noise before a good line (or before nothing): refuse the noise, keep the line
            out.append(Garbage("garbage", f"{start} noise bytes (NUL or 0xFF) before a line", raw[:start]))
        text = raw[start:].decode("utf-8").strip(" \t")
        if text:
            out.append(Line(text, raw[start:]))
        return out


def _not_text(raw: bytes, start: int) -> str | None:
    """Why ``raw[start:]`` is not a line of text, or None when it is."""
    bad = _CONTROL.search(raw, start)
    if bad is not None:
        return f"control byte 0x{raw[bad.start()]:02x} at offset {bad.start()}"
    try:
        raw[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        return f"{exc.reason} at offset {at} (0x{raw[at]:02x})"
    return None


# -- decoders of a line's text, one per port mode ------------------------------------------------

_UID = re.compile(r"[0-9A-Fa-f]{2}(?:[:\- ]?[0-9A-Fa-f]{2})*")
#: UID lengths of the tags patrol readers read: ISO 14443 (4, 7, 10 bytes), EM4100 (5), ISO 15693 and
#: FeliCa (8). A shorter run of hex digits is a line cut short, not a tag.
UID_BYTES = range(4, 11)


def nfc_line(text: str) -> str | Rejection:
    """A reader's line as a tag UID (upper-case hex, no separators), or why it is not one.

    Hex digits in either case, in pairs, optionally separated by ``:``, ``-`` or a space
    (``04A224B2C15E80``, ``04:a2:24:b2:c1:5e:80``, ``04 A2 24 B2 C1 5E 80``).
    """
    if not _UID.fullmatch(text):
        return Rejection("schema", f"line {text[:80]!r} is not a hex NFC UID (e.g. 04A224B2C15E80 or "
                                   f"04:A2:24:B2:C1:5E:80)")
    tag = normalize_tag(text.replace("-", ":").replace(" ", ":"))
    if isinstance(tag, Rejection):
        return tag
    size = len(tag) // 2
    if size not in UID_BYTES:
        return Rejection("schema", f"line {text[:80]!r} is a UID of {size} bytes; tags have "
                                   f"{UID_BYTES.start} to {UID_BYTES.stop - 1} (a line cut short?)")
    return tag


def json_line(text: str) -> tuple[str, str, str, bytes] | Rejection:
    """A concentrator's line as (kind, device, leaf, payload), or why not.

    The line is a reading payload plus ``"kind"`` and ``"device"``; a tap is ``"tap": true``
    (or ``"kind": "checkpoint"``) with ``"tag"``, ``device`` being the reader. The payload
    handed on is the object without those three keys; the ingestor validates it as it does
    an MQTT payload.
    """
    obj = parse_object(text.encode())
    if isinstance(obj, Rejection):
        return obj
    kind = obj.pop("kind", None)
    device = obj.pop("device", None)
    tap = obj.pop("tap", False)
    if not isinstance(tap, bool):
        return Rejection("schema", f'"tap" must be true or false, got {tap!r}'[:200])
    if tap:
        if kind not in (None, "checkpoint"):
            return Rejection("schema", f'a tap ("tap": true) comes from a checkpoint reader, not kind {kind!r}'[:200])
        kind = "checkpoint"
    elif kind is None:
        return Rejection("schema", 'a line needs "kind" (the device\'s kind) or "tap": true')
    if not isinstance(kind, str) or kind not in KINDS:
        return Rejection("unknown_kind", f"unknown kind {str(kind)[:64]!r} (known: {', '.join(KINDS)})")
    if device is None:
        return Rejection("schema", 'a line needs "device" (the device id, or the reader of a tap)')
    if not isinstance(device, str) or not SEGMENT.fullmatch(device):
        return Rejection("schema", f'"device" must be 1-64 of A-Z a-z 0-9 _ . -, got {device!r}'[:200])
    leaf = "tap" if kind == "checkpoint" else "reading"
    return kind, device, leaf, json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
