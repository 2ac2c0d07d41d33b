"""The durable outbox: lines in order, its bound, dead letters, seen keys; all across reopening."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.outbox import DeadLetter, Outbox

T0 = 1_763_712_000.0


@pytest.fixture
def open_outbox(tmp_path: Path) -> Iterator[Callable[..., Outbox]]:
    """Open Outboxes on one file (as a restarted gateway would); all closed at the end."""
    opened: list[Outbox] = []

    def make(max_bytes: int = 10**8, **kw: object) -> Outbox:
        ob = Outbox(tmp_path / "outbox.db", max_bytes, **kw)  # type: ignore[arg-type]
        opened.append(ob)
        return ob

    yield make
    for ob in opened:
        ob.close()


def lines(n: int, start: int = 0, width: int = 0) -> list[tuple[float, str]]:
    return [(T0 + i, f"m,device=d{i} v={i}.0 {i}".ljust(width, "x")) for i in range(start, start + n)]


def dead(reason: str = "schema", device: str | None = "lamp-1", at: float = T0, payload: bytes = b"{}") -> DeadLetter:
    return DeadLetter(at, f"fm/park1/streetlight/{device}/reading", device, reason, f"{reason} detail", len(payload),
                      payload)


def texts(rows: list[tuple[int, float, str]]) -> list[str]:
    return [line for _, _, line in rows]


# -- order and depth ------------------------------------------------------------------------------


def test_commit_then_peek_in_order(open_outbox) -> None:
    ob = open_outbox()
    batch1, batch2 = lines(3), lines(2, start=3)
    ob.commit(batch1, [], [])
    ob.commit(batch2, [], [])
    rows = ob.peek(10)
    assert texts(rows) == [line for _, line in batch1 + batch2]
    assert [at for _, at, _ in rows] == [at for at, _ in batch1 + batch2]
    ids = [row_id for row_id, _, _ in rows]
    assert ids == sorted(ids)
    assert texts(ob.peek(2)) == [line for _, line in batch1[:2]]


def test_depth_counts_bytes_and_oldest(open_outbox) -> None:
    ob = open_outbox()
    assert ob.depth() == (0, 0, None)
    batch = lines(4)
    ob.commit(batch, [], [])
    assert ob.depth() == (4, sum(len(line) for _, line in batch), T0)


def test_delete_upto_forgets_what_was_written(open_outbox) -> None:
    ob = open_outbox()
    batch = lines(5)
    ob.commit(batch, [], [])
    rows = ob.peek(3)
    ob.delete_upto(rows[-1][0], len(rows), sum(len(r[2]) for r in rows))
    assert texts(ob.peek(10)) == [line for _, line in batch[3:]]
    assert ob.depth() == (2, sum(len(line) for _, line in batch[3:]), T0 + 3)
    rows = ob.peek(10)
    ob.delete_upto(rows[-1][0], len(rows), sum(len(r[2]) for r in rows))
    assert ob.peek(10) == []
    assert ob.depth() == (0, 0, None)


def test_commit_with_nothing_is_harmless(open_outbox) -> None:
    ob = open_outbox()
    ob.commit([], [], [])
    assert ob.depth() == (0, 0, None)


def test_survives_reopening(open_outbox) -> None:
    first = open_outbox()
    batch = lines(6)
    first.commit(batch[:4], [], [])
    first.commit(batch[4:], [], [])
    rows = first.peek(1)
    first.delete_upto(rows[0][0], 1, len(rows[0][2]))
    first.close()
    again = open_outbox()
    assert texts(again.peek(10)) == [line for _, line in batch[1:]]
    assert again.depth() == (5, sum(len(line) for _, line in batch[1:]), T0 + 1)
    again.commit(lines(1, start=6), [], [])
    assert texts(again.peek(10))[-1] == lines(1, start=6)[0][1]


def test_commit_wakes_a_waiting_forwarder(open_outbox) -> None:
    ob = open_outbox()
    notified: list[bool] = []

    def forwarder() -> None:
        with ob.changed:
            notified.append(ob.changed.wait(10))

    t = threading.Thread(target=forwarder)
    t.start()
    deadline = time.monotonic() + 10
    while not notified and time.monotonic() < deadline:  # commit until the waiter has seen one
        ob.commit(lines(1), [], [])
        t.join(0.02)
    t.join(10)
    assert notified == [True]


# -- the bound ------------------------------------------------------------------------------------


def test_bound_drops_the_oldest_counts_and_warns(open_outbox, caplog: pytest.LogCaptureFixture) -> None:
    ob = open_outbox(max_bytes=1000)
    batch = lines(10, width=100)  # 10 x 100 bytes: exactly at the bound, nothing dropped yet
    ob.commit(batch, [], [])
    assert ob.dropped == 0
    assert ob.depth()[0] == 10
    caplog.clear()
    more = lines(1, start=10, width=100)
    ob.commit(more, [], [])  # 1100 > 1000: down to 90 % of the bound, oldest first
    kept = [line for _, line in batch[2:] + more]
    assert texts(ob.peek(100)) == kept
    assert ob.dropped == 2
    assert ob.depth() == (9, 900, T0 + 2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "gateway.outbox"]
    assert len(warnings) == 1
    assert "dropped the 2 oldest" in warnings[0].getMessage()
    ob.close()
    again = open_outbox(max_bytes=1000)
    assert again.dropped == 2
    assert texts(again.peek(100)) == kept
    again.commit(lines(2, start=11, width=100), [], [])  # 1100 again: two more go
    assert again.dropped == 4
    assert texts(again.peek(100))[0] == batch[4][1]


def test_bound_while_the_forwarder_holds_a_peeked_batch(open_outbox) -> None:
    ob = open_outbox(max_bytes=1000)
    ob.commit(lines(10, width=100), [], [])
    rows = ob.peek(5)
    ob.commit(lines(3, start=10, width=100), [], [])  # 1300 bytes: the 4 oldest go, all of them peeked
    ob.delete_upto(rows[-1][0], len(rows), sum(len(r[2]) for r in rows))
    remaining = ob.peek(100)
    assert texts(remaining) == [line for _, line in lines(8, start=5, width=100)]
    assert ob.depth() == (8, 800, T0 + 5)


# -- dead letters ----------------------------------------------------------------------------------


def test_dead_letters_listed_newest_first_with_filters(open_outbox) -> None:
    ob = open_outbox()
    ob.commit([], [], [dead("schema", "lamp-1", T0), dead("bad_json", "lamp-2", T0 + 1)])
    ob.commit(lines(1), [], [dead("schema", "lamp-2", T0 + 2, b'{"on": "\xff"}'), dead("bad_topic", None, T0 + 3)])
    everything = ob.dead_letters()
    assert [(d["reason"], d["device"]) for d in everything] == [
        ("bad_topic", None), ("schema", "lamp-2"), ("bad_json", "lamp-2"), ("schema", "lamp-1")]
    assert set(everything[0]) == {"id", "at", "source", "device", "reason", "detail", "size", "payload"}
    assert everything[1]["payload"] == '{"on": "\ufffd"}'
    assert everything[1]["size"] == len(b'{"on": "\xff"}')
    assert everything[-1]["at"] == T0
    assert [d["device"] for d in ob.dead_letters(reason="schema")] == ["lamp-2", "lamp-1"]
    assert [d["reason"] for d in ob.dead_letters(device="lamp-2")] == ["schema", "bad_json"]
    assert [d["reason"] for d in ob.dead_letters(reason="schema", device="lamp-1")] == ["schema"]
    assert len(ob.dead_letters(limit=1)) == 1
    page2 = ob.dead_letters(before_id=everything[1]["id"])
    assert [d["id"] for d in page2] == [everything[2]["id"], everything[3]["id"]]
    assert ob.dead_letter_counts() == {"bad_json": 1, "bad_topic": 1, "schema": 2}
    assert ob.depth()[0] == 1


def test_dead_letter_counts_outlive_pruning(open_outbox) -> None:
    ob = open_outbox(dead_letter_keep=100)
    ob.commit([], [], [dead("schema", at=T0 + i) for i in range(103)])
    ob.prune(seen_before=T0)
    kept = ob.dead_letters(limit=1000)
    assert len(kept) == 100
    assert kept[-1]["at"] == T0 + 3  # the oldest went
    assert ob.dead_letter_counts() == {"schema": 103}


def test_reject_batch(open_outbox) -> None:
    ob = open_outbox()
    batch = lines(5)
    ob.commit(batch, [], [])
    rows = ob.peek(3)
    ob.reject_batch(rows[-1][0], DeadLetter(T0 + 9, "influx:http://db:8086", None, "influx_rejected",
                                            "3 points refused: HTTP 400", 10, b"m v=1.0 1\n"))
    assert texts(ob.peek(10)) == [line for _, line in batch[3:]]
    assert ob.depth() == (2, sum(len(line) for _, line in batch[3:]), T0 + 3)
    assert ob.dead_letter_counts() == {"influx_rejected": 1}
    [letter] = ob.dead_letters(reason="influx_rejected")
    assert (letter["source"], letter["device"], letter["detail"]) == (
        "influx:http://db:8086", None, "3 points refused: HTTP 400")


# -- seen keys -------------------------------------------------------------------------------------


def test_seen_keys_persist_and_expire(open_outbox) -> None:
    ob = open_outbox()
    ob.commit([], [("lamp-1", 1, T0, T0)], [])
    ob.commit([], [("lamp-1", 2, T0 + 10, T0 + 10), ("well-3", 7, 99.0, T0 + 20)], [])
    assert list(ob.load_seen(T0 + 5)) == [("lamp-1", 2, T0 + 10, T0 + 10), ("well-3", 7, 99.0, T0 + 20)]
    ob.prune(seen_before=T0 + 15)
    ob.close()
    again = open_outbox()
    assert list(again.load_seen(0.0)) == [("well-3", 7, 99.0, T0 + 20)]
