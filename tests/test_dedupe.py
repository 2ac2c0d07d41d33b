"""Deduper: which (device, key) pairs are repeats (CONTRACT.md "seq")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.dedupe import Deduper
from gateway.devices import DeviceRegistry
from gateway.ingest import Ingestor, Message
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.site import Site

T0 = 1_763_712_000.0
HOUR = 3600.0


def test_first_sight_is_not_a_repeat_then_it_is() -> None:
    d = Deduper(HOUR)
    assert not d.is_repeat("lamp-1", (7, T0), T0)
    d.add("lamp-1", (7, T0), T0)
    assert d.is_repeat("lamp-1", (7, T0), T0)
    assert len(d) == 1


def test_keys_are_per_device() -> None:
    d = Deduper(HOUR)
    d.add("lamp-1", (7, T0), T0)
    assert not d.is_repeat("lamp-2", (7, T0), T0)


def test_reboot_same_seq_other_ts_is_not_a_repeat() -> None:
    d = Deduper(HOUR)
    d.add("well-3", (0, T0 - 600), T0 - 600)
    d.add("well-3", (1, T0 - 540), T0 - 540)
    # the device restarted and counts from 0 again, with a new time
    assert not d.is_repeat("well-3", (0, T0), T0)
    assert d.is_repeat("well-3", (0, T0 - 600), T0)


def test_window_expiry() -> None:
    d = Deduper(HOUR)
    d.add("lamp-1", (1, 1.0), T0)
    d.add("lamp-1", (2, 2.0), T0 + HOUR)  # exactly one window later: the first is still in it
    assert d.is_repeat("lamp-1", (1, 1.0), T0)
    d.add("lamp-1", (3, 3.0), T0 + HOUR + 1)  # now the first is older than the window
    assert not d.is_repeat("lamp-1", (1, 1.0), T0)
    assert d.is_repeat("lamp-1", (2, 2.0), T0)
    assert d.is_repeat("lamp-1", (3, 3.0), T0)
    assert len(d) == 2


def test_expiry_of_one_device_leaves_others_alone() -> None:
    d = Deduper(HOUR)
    d.add("lamp-1", (1, 1.0), T0)
    d.add("lamp-2", (1, 1.0), T0 + 2 * HOUR)
    assert d.is_repeat("lamp-2", (1, 1.0), T0)
    d.add("lamp-1", (2, 2.0), T0 + 2 * HOUR)
    assert not d.is_repeat("lamp-1", (1, 1.0), T0)


def test_cap_forgets_the_oldest_of_any_device() -> None:
    d = Deduper(HOUR, max_keys=3)
    d.add("quiet", (0, 0.0), T0)
    for seq in range(4):
        d.add("chatty", (seq, float(seq)), T0 + 1 + seq)
    assert not d.is_repeat("quiet", (0, 0.0), T0 + 5)
    assert [d.is_repeat("chatty", (s, float(s)), T0 + 5) for s in range(4)] == [False, True, True, True]
    assert len(d) == 3


def test_load_rebuilds_from_persisted_rows() -> None:
    d = Deduper(HOUR)
    d.load([
        ("lamp-1", 1, T0 - 2 * HOUR, T0 - 2 * HOUR),  # expired by the later rows of the same device
        ("lamp-1", 2, T0 - 60, T0 - 60),
        ("well-3", 9, 12345.0, T0 - 30),
        ("lamp-1", 3, T0 - 1, T0 - 1),
    ])
    assert not d.is_repeat("lamp-1", (1, T0 - 2 * HOUR), T0)
    assert d.is_repeat("lamp-1", (2, T0 - 60), T0)
    assert d.is_repeat("lamp-1", (3, T0 - 1), T0)
    assert d.is_repeat("well-3", (9, 12345.0), T0)
    assert not d.is_repeat("well-3", (9, 12346.0), T0)
    assert len(d) == 3


def test_load_of_nothing() -> None:
    d = Deduper(HOUR)
    d.load([])
    assert len(d) == 0


# -- the window as the ingestor applies it --------------------------------------------------------


@pytest.fixture
def ingestor(tmp_path: Path) -> Iterator[Ingestor]:
    outbox = Outbox(tmp_path / "outbox.db", 10**8)
    registry = DeviceRegistry(tmp_path / "devices.db", {}, 3)
    try:
        yield Ingestor(Settings(data_dir=tmp_path), Site.empty(), outbox, registry, Metrics())
    finally:
        registry.close()
        outbox.close()


def reading(payload: bytes, at: float) -> Message:
    return Message("fm/site/drain_level/well-3/reading", "drain_level", "well-3", "reading", payload, at)


def test_ingestor_drops_a_repeat_within_the_window(ingestor: Ingestor) -> None:
    payload = b'{"seq": 0, "level_m": 0.35}'
    ingestor.handle([reading(payload, T0)])
    ingestor.handle([reading(payload, T0 + 60)])
    assert ingestor.outbox.depth()[0] == 1
    assert ingestor.metrics.duplicates == 1


def test_ingestor_keeps_same_bytes_after_the_window(ingestor: Ingestor) -> None:
    """Without ``ts``, identical bytes are a repeat only within the dedupe window (default 1 h).

    A device that restarts its counter after a quiet spell longer than the window sends the
    same bytes again; that is a new reading even when nothing else arrived in between.
    """
    payload = b'{"seq": 0, "level_m": 0.35}'
    ingestor.handle([reading(payload, T0)])
    ingestor.handle([reading(payload, T0 + 2 * HOUR)])
    assert ingestor.metrics.duplicates == 0
    assert ingestor.outbox.depth()[0] == 2
