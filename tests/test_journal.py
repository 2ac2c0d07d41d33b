"""Structured logging to journald: what arrives on the journal's native socket, parsed back.

A real AF_UNIX datagram socket bound by the test stands in for journald's
(/run/systemd/journal/socket); each datagram is parsed with the native protocol's rules.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import journal


def parse(datagram: bytes) -> dict[str, str]:
    """The native protocol: ``KEY=value\\n``, or ``KEY\\n`` + 64-bit LE length + value + ``\\n``."""
    fields, pos = {}, 0
    while pos < len(datagram):
        end = datagram.index(b"\n", pos)
        line = datagram[pos:end]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            pos = end + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", datagram[end + 1:end + 9])
            value = datagram[end + 9:end + 9 + size]
            assert datagram[end + 9 + size:end + 10 + size] == b"\n"
            pos = end + 10 + size
        fields[key.decode()] = value.decode()
    return fields


@pytest.fixture
def journald(datagram_socket: tuple[str, socket.socket]) -> tuple[str, socket.socket]:
    """The stand-in for journald's native socket."""
    return datagram_socket


@pytest.fixture
def logger(journald: tuple[str, socket.socket]) -> Iterator[logging.Logger]:
    """A logger of its own, sending to the stand-in socket only."""
    log = logging.getLogger(f"gateway.test_journal.{uuid.uuid4().hex[:6]}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handler = journal.JournalHandler(journald[0])
    log.addHandler(handler)
    yield log
    log.removeHandler(handler)
    handler.close()


def test_a_record_with_its_fields(journald: tuple[str, socket.socket], logger: logging.Logger) -> None:
    logger.warning("device %s refused on %s", "lamp-1", "fm/t/streetlight/lamp-1/reading",
                   extra={"device": "lamp-1", "topic": "fm/t/streetlight/lamp-1/reading", "asset": "L-0001",
                          "ticket": 12})
    line = sys._getframe().f_lineno - 3
    got = parse(journald[1].recv(65536))
    assert got["MESSAGE"] == "device lamp-1 refused on fm/t/streetlight/lamp-1/reading"
    assert (got["PRIORITY"], got["SYSLOG_IDENTIFIER"], got["LOGGER"]) == ("4", "fm-gateway", logger.name)
    assert got["THREAD"] == "MainThread"
    assert got["CODE_FILE"] == __file__ and got["CODE_LINE"] == str(line)
    assert got["CODE_FUNC"] == "test_a_record_with_its_fields"
    assert (got["DEVICE"], got["TOPIC"], got["ASSET"], got["TICKET"]) == (
        "lamp-1", "fm/t/streetlight/lamp-1/reading", "L-0001", "12")


@pytest.mark.parametrize(("level", "priority"), [(logging.DEBUG, "7"), (logging.INFO, "6"), (logging.WARNING, "4"),
                                                 (logging.ERROR, "3"), (logging.CRITICAL, "2")])
def test_priorities(journald: tuple[str, socket.socket], logger: logging.Logger, level: int, priority: str,
                    caplog: pytest.LogCaptureFixture) -> None:
    logger.log(level, "x")
    caplog.clear()  # a CRITICAL line on purpose: not one the suite should fail for
    got = parse(journald[1].recv(65536))
    assert got["PRIORITY"] == priority and "DEVICE" not in got


def test_a_traceback_is_one_multi_line_message(journald: tuple[str, socket.socket], logger: logging.Logger,
                                               caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("it broke")
    caplog.clear()  # an exception logged on purpose
    data = journald[1].recv(65536)
    assert b"MESSAGE\n" in data  # the binary form: the value holds newlines
    got = parse(data)
    assert got["MESSAGE"].startswith("it broke\nTraceback")
    assert got["MESSAGE"].endswith("ValueError: bad\nthing") and got["PRIORITY"] == "3"


def test_url_passwords_are_masked(journald: tuple[str, socket.socket], logger: logging.Logger) -> None:
    logger.info("connecting to %s", "mqtts://gw:s3cret-pw@broker:8883", extra={"topic": "x://u:p4ss@h/t"})
    data = journald[1].recv(65536)
    assert b"s3cret-pw" not in data and b"p4ss" not in data
    assert parse(data)["MESSAGE"] == "connecting to mqtts://gw:***@broker:8883"
    record = logging.LogRecord("n", logging.INFO, __file__, 1, "url %s", ("mqtt://a:b@c",), None)
    assert "a:***@c" in journal.RedactingFormatter(journal.TEXT_FORMAT).format(record)


def test_a_huge_message_is_cut_not_lost(journald: tuple[str, socket.socket], logger: logging.Logger) -> None:
    logger.info("x" * 1_000_000, extra={"device": "d-1"})
    got = parse(journald[1].recv(1 << 20))
    assert got["MESSAGE"].endswith(" [cut]") and got["DEVICE"] == "d-1"


def test_auto_uses_the_journal_only_when_stderr_is_its_stream(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as f:
        st = os.fstat(f.fileno())
        mine = f"{st.st_dev}:{st.st_ino}"
        assert journal.choose("auto", {"JOURNAL_STREAM": mine}, f.fileno()) == "journal"
        assert journal.choose("auto", {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, f.fileno()) == "text"
        assert journal.choose("auto", {}, f.fileno()) == "text"
        assert journal.choose("auto", {"JOURNAL_STREAM": "garbage"}, f.fileno()) == "text"
        assert journal.choose("text", {"JOURNAL_STREAM": mine}, f.fileno()) == "text"
        assert journal.choose("journal", {}, f.fileno()) == "journal"


def test_journal_asked_for_without_a_socket_falls_back_to_text(tmp_path: Path,
                                                               journald: tuple[str, socket.socket]) -> None:
    handler, note = journal.handler_for("journal", {}, str(tmp_path / "none"))
    assert isinstance(handler, logging.StreamHandler) and note and "no journal socket" in note
    handler, note = journal.handler_for("journal", {}, journald[0])
    assert isinstance(handler, journal.JournalHandler) and note is None
    handler.close()
