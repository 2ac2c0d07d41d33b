"""Repair tickets (维修工单) and the asset ledger on a real SQLite file; every instant is passed in."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import sla
from gateway.tickets import ACTIONS, FINAL, LIVE, REWORK_WINDOW_S, STATUSES, TicketError, TicketStore

SH = ZoneInfo("Asia/Shanghai")
MIN = 60.0
HOUR = 3600.0
DAY = 24 * HOUR


def local(*args: int) -> float:
    return datetime(*args, tzinfo=SH).timestamp()


T0 = local(2024, 3, 1, 10, 0)  # a Friday morning in Shanghai


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TicketStore]:
    s = TicketStore(tmp_path / "gateway.db", SH)
    yield s
    s.close()


@pytest.fixture
def auto_store(tmp_path: Path) -> Iterator[TicketStore]:
    s = TicketStore(tmp_path / "auto.db", SH, self_cleared="auto")
    yield s
    s.close()


def open_fault(store: TicketStore, at: float = T0, *, subject: str | None = "asset:L1", fault: str = "lamp_out",
               priority: str = "general", asset: str | None = "L1", category: str | None = "lighting",
               title: str = "路灯不亮", by: str = "sensor", source: str = "sensor") -> tuple[dict[str, Any], str]:
    return store.open(subject=subject, fault=fault, priority=priority, title=title, at=at, by=by, source=source,
                      asset=asset, category=category)


def event_types(store: TicketStore, since: int = 0) -> list[str]:
    return [e.type for e in store.events_after(since)]


def ticket_count(store: TicketStore) -> int:
    return store.db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"]


# -- opening ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "opened_at"),
    [
        pytest.param("emergency", local(2024, 3, 1, 10, 0), id="emergency-morning-before-midnight"),
        pytest.param("emergency", local(2024, 3, 1, 17, 30), id="emergency-after-16h-plus-8h"),
        pytest.param("urgent", local(2024, 3, 1, 10, 0), id="urgent"),
        pytest.param("general", local(2024, 3, 1, 23, 59), id="general"),
    ],
)
def test_open_computes_deadlines_from_sla(store: TicketStore, priority: str, opened_at: float) -> None:
    t, what = open_fault(store, opened_at, priority=priority)
    assert what == "opened"
    d = sla.deadlines(priority, opened_at, SH)
    assert (t["respond_by"], t["arrive_by"], t["resolve_by"]) == (d.respond_by, d.arrive_by, d.resolve_by)
    assert t["status"] == "open" and t["opened_at"] == opened_at and t["last_occurrence_at"] == opened_at
    assert t["occurrences"] == 1 and t["reworks"] == 0 and t["self_cleared"] is False
    assert t["escalations"] == [] and t["callbacks"] == []
    assert t["timeline"] == [{"at": opened_at, "action": "open", "by": "sensor", "note": "", "data": {}}]


def test_open_uses_the_site_zone(store: TicketStore) -> None:
    t, _ = open_fault(store, local(2024, 3, 1, 10, 0), priority="emergency")
    assert t["resolve_by"] == local(2024, 3, 2, 0, 0)  # 急修不过夜: local midnight in Shanghai
    t, _ = open_fault(store, local(2024, 3, 1, 17, 0), priority="emergency", fault="power_fault")
    assert t["resolve_by"] == local(2024, 3, 2, 1, 0)
    assert t["respond_by"] == local(2024, 3, 1, 17, 15) and t["arrive_by"] == local(2024, 3, 1, 17, 30)


def test_open_uses_the_site_sla_table(tmp_path: Path) -> None:
    table = sla.sla_table({"general": sla.SlaRuleSettings(respond_min=30, resolve_h=12)})
    s = TicketStore(tmp_path / "custom.db", SH, sla_table=table)
    try:
        t, _ = open_fault(s)
        assert (t["respond_by"], t["arrive_by"], t["resolve_by"]) == (T0 + 30 * MIN, None, T0 + 12 * HOUR)
    finally:
        s.close()


def test_unknown_priority_is_refused(store: TicketStore) -> None:
    with pytest.raises(TicketError) as e:
        open_fault(store, priority="whenever")
    assert e.value.code == "invalid"
    assert ticket_count(store) == 0


def test_second_open_is_an_occurrence(store: TicketStore) -> None:
    first, _ = open_fault(store)
    second, what = open_fault(store, T0 + 5 * MIN)
    assert what == "occurrence"
    assert second["id"] == first["id"]
    assert second["occurrences"] == 2 and second["last_occurrence_at"] == T0 + 5 * MIN
    assert second["opened_at"] == T0 and second["respond_by"] == first["respond_by"]  # clocks keep running
    assert [e["action"] for e in second["timeline"]] == ["open", "occurrence"]
    assert ticket_count(store) == 1
    assert event_types(store) == ["ticket.opened"]  # an occurrence is no new notice


def test_other_fault_or_subject_is_another_ticket(store: TicketStore) -> None:
    a, _ = open_fault(store)
    b, what_b = open_fault(store, fault="power_fault")
    c, what_c = open_fault(store, subject="asset:L2", asset="L2")
    assert (what_b, what_c) == ("opened", "opened")
    assert len({a["id"], b["id"], c["id"]}) == 3


def test_manual_tickets_without_subject_never_collide(store: TicketStore) -> None:
    ids = set()
    for i in range(3):
        t, what = open_fault(store, T0 + i, subject=None, fault="other", by="张三", source="manual")
        assert what == "opened"
        ids.add(t["id"])
    assert len(ids) == 3
    assert all(t["occurrences"] == 1 for t in store.list()[0])


def _insert(store: TicketStore, subject: str | None, status: str = "open") -> None:
    store.db.execute(
        "INSERT INTO tickets (subject, fault, priority, status, title, source, opened_at, opened_by, clocks_from, "
        "last_occurrence_at) VALUES (?, 'lamp_out', 'general', ?, 'x', 'sensor', ?, 'sensor', ?, ?)",
        (subject, status, T0, T0, T0))


def test_partial_unique_index_refuses_a_second_live_ticket(store: TicketStore) -> None:
    open_fault(store)
    for status in LIVE:
        with pytest.raises(sqlite3.IntegrityError):
            _insert(store, "asset:L1", status)
    for status in FINAL:  # finished tickets are history: any number of them
        _insert(store, "asset:L1", status)
        _insert(store, "asset:L1", status)
    _insert(store, None)  # no subject: never unique
    _insert(store, None)
    assert ticket_count(store) == 7


def test_concurrent_opens_through_one_store_make_one_ticket(store: TicketStore) -> None:
    threads, each = 8, 20
    start = threading.Barrier(threads)

    def work(k: int) -> list[str]:
        start.wait()
        return [open_fault(store, T0 + k * each + i)[1] for i in range(each)]

    with ThreadPoolExecutor(threads) as pool:
        outcomes = [o for f in [pool.submit(work, k) for k in range(threads)] for o in f.result()]
    assert sorted(set(outcomes)) == ["occurrence", "opened"] and outcomes.count("opened") == 1
    items, total = store.list()
    assert total == 1
    assert items[0]["occurrences"] == threads * each
    assert len(store.get(items[0]["id"])["timeline"]) == threads * each
    assert event_types(store) == ["ticket.opened"]


def test_concurrent_opens_through_two_stores_on_one_file_make_one_ticket(tmp_path: Path) -> None:
    stores = [TicketStore(tmp_path / "shared.db", SH) for _ in range(2)]
    threads, each = 8, 10
    start = threading.Barrier(threads)

    def work(k: int) -> None:
        start.wait()
        for i in range(each):
            open_fault(stores[k % 2], T0 + k * each + i)

    try:
        with ThreadPoolExecutor(threads) as pool:
            for f in [pool.submit(work, k) for k in range(threads)]:
                f.result()
        items, total = stores[0].list()
        assert total == 1 and items[0]["occurrences"] == threads * each
    finally:
        for s in stores:
            s.close()


# -- lifecycle --------------------------------------------------------------------------------------

PATHS: dict[str, list[str]] = {
    "open": [],
    "acknowledged": ["acknowledge"],
    "on_site": ["acknowledge", "arrive"],
    "resolved": ["acknowledge", "arrive", "resolve"],
    "closed": ["acknowledge", "arrive", "resolve", "close"],
    "cancelled": ["cancel"],
}

# status x action -> new status, or "conflict"; written out by hand, not derived from ACTIONS
C = "conflict"
TRANSITIONS: dict[str, dict[str, str]] = {
    "open":         dict(acknowledge="acknowledged", arrive="on_site", resolve="resolved", close=C,
                         cancel="cancelled", reopen=C, assign="open"),
    "acknowledged": dict(acknowledge=C, arrive="on_site", resolve="resolved", close=C, cancel="cancelled",
                         reopen=C, assign="acknowledged"),
    "on_site":      dict(acknowledge=C, arrive=C, resolve="resolved", close=C, cancel="cancelled", reopen=C,
                         assign="on_site"),
    "resolved":     dict(acknowledge=C, arrive=C, resolve=C, close="closed", cancel="cancelled", reopen="open",
                         assign="resolved"),
    "closed":       dict(acknowledge=C, arrive=C, resolve=C, close=C, cancel=C, reopen="open", assign=C),
    "cancelled":    dict(acknowledge=C, arrive=C, resolve=C, close=C, cancel=C, reopen=C, assign=C),
}


def test_transition_table_covers_every_status_and_action() -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    assert all(set(row) == set(ACTIONS) for row in TRANSITIONS.values())


def in_status(store: TicketStore, status: str) -> dict[str, Any]:
    t, _ = open_fault(store)
    for i, action in enumerate(PATHS[status], start=1):
        t = store.act(t["id"], action, "李师傅", T0 + i * MIN)
    assert t["status"] == status
    return t


@pytest.mark.parametrize(
    ("status", "action", "expected"),
    [pytest.param(s, a, e, id=f"{s}-{a}-{e}") for s, row in TRANSITIONS.items() for a, e in row.items()],
)
def test_transition(store: TicketStore, status: str, action: str, expected: str) -> None:
    t = in_status(store, status)
    when = T0 + HOUR
    before_log, before_events = len(t["timeline"]), store.newest_event_id()
    if expected == C:
        with pytest.raises(TicketError) as e:
            store.act(t["id"], action, "王经理", when, note="试试", assignee="赵师傅")
        assert e.value.code == "conflict"
        after = store.get(t["id"])
        assert after["status"] == status and len(after["timeline"]) == before_log
        assert after["assignee"] == t["assignee"]  # whoever took it before (接单), unchanged
        assert store.newest_event_id() == before_events  # rolled back with the transaction
        return
    after = store.act(t["id"], action, "王经理", when, note="好的", assignee="赵师傅" if action == "assign" else None)
    assert after["status"] == expected
    entry = after["timeline"][-1]
    assert (entry["action"], entry["by"], entry["at"], entry["note"]) == (action, "王经理", when, "好的")
    assert store.newest_event_id() > before_events
    if action == "assign":
        assert after["assignee"] == "赵师傅" and entry["data"] == {"assignee": "赵师傅"}
    elif action in ("acknowledge", "arrive", "resolve"):  # the first to act on it takes it; a taker keeps it
        assert after["assignee"] == (t["assignee"] or "王经理")
    column = {"acknowledge": "acknowledged", "arrive": "on_site", "resolve": "resolved", "close": "closed",
              "cancel": "cancelled"}.get(action)
    if column:
        assert (after[f"{column}_at"], after[f"{column}_by"]) == (when, "王经理")
    if action == "reopen":
        assert after["reworks"] == 1
        assert after["resolved_at"] is None and after["closed_at"] is None and after["acknowledged_at"] is None


def test_arrive_sets_acknowledged_when_skipped(store: TicketStore) -> None:
    t, _ = open_fault(store, priority="urgent")
    t = store.act(t["id"], "arrive", "李师傅", T0 + 20 * MIN)
    assert (t["acknowledged_at"], t["acknowledged_by"]) == (T0 + 20 * MIN, "李师傅")
    assert (t["on_site_at"], t["on_site_by"]) == (T0 + 20 * MIN, "李师傅")


def test_arrive_keeps_an_earlier_acknowledgement(store: TicketStore) -> None:
    t, _ = open_fault(store, priority="urgent")
    store.act(t["id"], "acknowledge", "王经理", T0 + 5 * MIN)
    t = store.act(t["id"], "arrive", "李师傅", T0 + 20 * MIN)
    assert (t["acknowledged_at"], t["acknowledged_by"]) == (T0 + 5 * MIN, "王经理")
    assert t["on_site_at"] == T0 + 20 * MIN


def test_whole_lifecycle_is_logged_with_who_and_when(store: TicketStore) -> None:
    t, _ = open_fault(store)
    steps = [("assign", "王经理", "李师傅"), ("acknowledge", "李师傅", None), ("arrive", "李师傅", None),
             ("resolve", "李师傅", None), ("close", "王经理", None)]
    for i, (action, by, assignee) in enumerate(steps, start=1):
        t = store.act(t["id"], action, by, T0 + i * MIN, assignee=assignee)
    assert [(e["action"], e["by"], e["at"]) for e in t["timeline"]] == [
        ("open", "sensor", T0), *[(a, by, T0 + i * MIN) for i, (a, by, _) in enumerate(steps, start=1)]]
    assert t["closed_by"] == "王经理"
    assert t["callback_due"] == sla.callback_due("general", T0 + 5 * MIN)


def test_assign_needs_an_assignee(store: TicketStore) -> None:
    t, _ = open_fault(store)
    with pytest.raises(TicketError) as e:
        store.act(t["id"], "assign", "王经理", T0 + MIN)
    assert e.value.code == "invalid"
    assert len(store.get(t["id"])["timeline"]) == 1


def test_unknown_action_and_ticket(store: TicketStore) -> None:
    t, _ = open_fault(store)
    with pytest.raises(TicketError) as e:
        store.act(t["id"], "fix", "王经理", T0)
    assert e.value.code == "invalid"
    with pytest.raises(TicketError) as e:
        store.act(t["id"] + 100, "acknowledge", "王经理", T0)
    assert e.value.code == "not_found"
    with pytest.raises(TicketError) as e:
        store.get(t["id"] + 100)
    assert e.value.code == "not_found"


def test_reopening_an_old_ticket_while_a_new_one_is_live_is_a_conflict(store: TicketStore) -> None:
    old = in_status(store, "closed")
    new, what = open_fault(store, T0 + REWORK_WINDOW_S + DAY)  # past the rework window: a new ticket
    assert what == "opened" and new["id"] != old["id"]
    with pytest.raises(TicketError) as e:  # not a bare sqlite3.IntegrityError (a 500 from the API)
        store.act(old["id"], "reopen", "王经理", T0 + REWORK_WINDOW_S + 2 * DAY)
    assert e.value.code == "conflict"
    assert store.get(old["id"])["status"] == "closed"


# -- the sensor's word ------------------------------------------------------------------------------


def test_fault_cleared_closes_a_resolved_ticket(store: TicketStore) -> None:
    t = in_status(store, "resolved")
    at = T0 + 2 * HOUR
    closed = store.fault_cleared("asset:L1", "lamp_out", at)
    assert closed is not None and closed["id"] == t["id"]
    assert closed["status"] == "closed" and closed["closed_by"] == "sensor" and closed["closed_at"] == at
    assert closed["fault_cleared_at"] == at
    assert closed["callback_due"] == sla.callback_due("general", at)
    assert closed["timeline"][-1]["action"] == "close" and closed["timeline"][-1]["by"] == "sensor"
    assert store.live("asset:L1", "lamp_out") is None


def test_fault_cleared_marks_an_open_ticket_self_cleared(store: TicketStore) -> None:
    t, _ = open_fault(store)
    last = store.newest_event_id()
    with pytest.raises(TicketError):  # not cleared yet: a person cannot close an open ticket
        store.act(t["id"], "close", "王经理", T0 + MIN)
    t = store.fault_cleared("asset:L1", "lamp_out", T0 + 10 * MIN)
    assert t is not None
    assert t["status"] == "open" and t["self_cleared"] is True and t["fault_cleared_at"] == T0 + 10 * MIN
    assert (t["timeline"][-1]["action"], t["timeline"][-1]["by"]) == ("self_cleared", "sensor")
    assert event_types(store, last) == ["ticket.self_cleared"]
    t = store.act(t["id"], "close", "王经理", T0 + 20 * MIN, note="现场确认已恢复")
    assert t["status"] == "closed" and t["closed_by"] == "王经理"
    assert t["callback_due"] == sla.callback_due("general", T0 + 20 * MIN)


def test_a_new_occurrence_undoes_self_cleared(store: TicketStore) -> None:
    t, _ = open_fault(store)
    store.fault_cleared("asset:L1", "lamp_out", T0 + 10 * MIN)
    t, what = open_fault(store, T0 + 20 * MIN)
    assert what == "occurrence" and t["self_cleared"] is False and t["fault_cleared_at"] is None
    with pytest.raises(TicketError) as e:
        store.act(t["id"], "close", "王经理", T0 + 30 * MIN)
    assert e.value.code == "conflict"


def test_self_cleared_auto_closes(auto_store: TicketStore) -> None:
    t, _ = open_fault(auto_store, priority="emergency")
    at = T0 + 5 * MIN
    t = auto_store.fault_cleared("asset:L1", "lamp_out", at)
    assert t is not None
    assert t["status"] == "closed" and t["closed_by"] == "sensor" and t["self_cleared"] is True
    assert t["callback_due"] == sla.callback_due("emergency", at)
    assert [e["action"] for e in t["timeline"]] == ["open", "self_cleared", "close"]
    assert event_types(auto_store) == ["ticket.opened", "ticket.closed"]


@pytest.mark.parametrize("status", ["acknowledged", "on_site"])
def test_resolve_after_the_fault_already_cleared_closes_at_once(store: TicketStore, status: str) -> None:
    t = in_status(store, status)
    t = store.fault_cleared("asset:L1", "lamp_out", T0 + HOUR)
    assert t is not None and t["status"] == status and t["fault_cleared_at"] == T0 + HOUR
    assert t["timeline"][-1]["action"] == "fault_cleared"
    last = store.newest_event_id()
    t = store.act(t["id"], "resolve", "李师傅", T0 + 2 * HOUR)
    assert t["status"] == "closed" and t["closed_by"] == "sensor" and t["resolved_by"] == "李师傅"
    assert t["closed_at"] == t["resolved_at"] == T0 + 2 * HOUR
    assert t["callback_due"] == sla.callback_due("general", T0 + 2 * HOUR)
    assert event_types(store, last) == ["ticket.resolve", "ticket.closed"]


def test_resolve_without_the_sensors_word_stays_resolved(store: TicketStore) -> None:
    t = in_status(store, "resolved")
    assert t["closed_at"] is None and t["fault_cleared_at"] is None


def test_fault_cleared_or_persists_without_a_live_ticket(store: TicketStore) -> None:
    assert store.fault_cleared("asset:L1", "lamp_out", T0) is None
    assert store.fault_persists("asset:L1", "lamp_out", T0) is None
    assert store.newest_event_id() == 0


@pytest.mark.parametrize("status", ["open", "acknowledged", "on_site"])
def test_fault_persists_only_reopens_a_resolved_ticket(store: TicketStore, status: str) -> None:
    t = in_status(store, status)
    assert store.fault_persists("asset:L1", "lamp_out", T0 + HOUR) is None
    after = store.get(t["id"])
    assert after["status"] == status and after["reworks"] == 0 and after["timeline"] == t["timeline"]


def test_fault_persists_reopens_a_resolved_ticket_as_rework(store: TicketStore) -> None:
    t, _ = open_fault(store, priority="urgent")
    store.watch(T0 + 25 * MIN)  # respond at risk: escalated before the repair
    for i, action in enumerate(["acknowledge", "arrive", "resolve"], start=1):
        store.act(t["id"], action, "李师傅", T0 + i * 10 * MIN)
    at = T0 + 3 * HOUR
    last = store.newest_event_id()
    t = store.fault_persists("asset:L1", "lamp_out", at)
    assert t is not None
    assert t["status"] == "open" and t["reworks"] == 1 and t["occurrences"] == 2
    d = sla.deadlines("urgent", at, SH)
    assert (t["respond_by"], t["arrive_by"], t["resolve_by"]) == (d.respond_by, d.arrive_by, d.resolve_by)
    assert t["opened_at"] == T0  # the ticket's own age is kept
    assert t["acknowledged_at"] is None and t["on_site_at"] is None and t["resolved_at"] is None
    assert t["escalations"] == []
    assert (t["timeline"][-1]["action"], t["timeline"][-1]["by"]) == ("reopen", "sensor")
    assert event_types(store, last) == ["ticket.reopened"]


def test_the_same_fault_within_30_days_of_the_close_reopens_the_ticket(store: TicketStore) -> None:
    t = in_status(store, "closed")
    closed_at = t["closed_at"]
    at = closed_at + REWORK_WINDOW_S  # the 30th day still counts
    again, what = open_fault(store, at, priority="general")
    assert what == "reopened" and again["id"] == t["id"]
    assert again["status"] == "open" and again["reworks"] == 1 and again["closed_at"] is None
    assert again["callback_due"] is None
    d = sla.deadlines("general", at, SH)
    assert (again["respond_by"], again["resolve_by"]) == (d.respond_by, d.resolve_by)
    assert ticket_count(store) == 1


def test_the_same_fault_after_30_days_opens_a_new_ticket(store: TicketStore) -> None:
    t = in_status(store, "closed")
    fresh, what = open_fault(store, t["closed_at"] + REWORK_WINDOW_S + 1)
    assert what == "opened" and fresh["id"] != t["id"] and fresh["reworks"] == 0
    assert store.get(t["id"])["status"] == "closed"
    assert ticket_count(store) == 2


def test_a_cancelled_ticket_is_not_reopened(store: TicketStore) -> None:
    t = in_status(store, "cancelled")
    fresh, what = open_fault(store, T0 + DAY)
    assert what == "opened" and fresh["id"] != t["id"]


# -- callbacks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "closed"])
def test_callbacks_only_follow_a_closed_ticket(store: TicketStore, status: str) -> None:
    t = in_status(store, status)
    with pytest.raises(TicketError) as e:
        store.add_callback(t["id"], "客服小王", "phone", 5, "", T0 + DAY)
    assert e.value.code == "conflict"
    assert store.get(t["id"])["callbacks"] == []


@pytest.mark.parametrize("score", [0, 6, -1])
def test_callback_score_is_1_to_5(store: TicketStore, score: int) -> None:
    t = in_status(store, "closed")
    with pytest.raises(TicketError) as e:
        store.add_callback(t["id"], "客服小王", "phone", score, "", T0 + DAY)
    assert e.value.code == "invalid"


@pytest.mark.parametrize("score", [1, 5])
def test_callback_is_recorded(store: TicketStore, score: int) -> None:
    t = in_status(store, "closed")
    last = store.newest_event_id()
    t = store.add_callback(t["id"], "客服小王", "wechat", score, "住户满意", T0 + DAY)
    assert t["callbacks"] == [{"at": T0 + DAY, "by": "客服小王", "channel": "wechat", "score": score,
                               "note": "住户满意"}]
    entry = t["timeline"][-1]
    assert (entry["action"], entry["by"], entry["at"]) == ("callback", "客服小王", T0 + DAY)
    assert entry["data"] == {"channel": "wechat", "score": score}
    assert event_types(store, last) == ["callback.recorded"]


def test_watch_flags_an_overdue_callback_once(store: TicketStore) -> None:
    t = in_status(store, "closed")
    due = t["callback_due"]
    assert due == sla.callback_due("general", t["closed_at"])
    last = store.newest_event_id()
    assert store.watch(due) == 0  # due at that instant: not late yet
    assert store.watch(due + 1) == 1
    assert store.watch(due + 2) == 0
    assert store.watch(due + DAY) == 0
    evs = store.events_after(last)
    assert [e.type for e in evs] == ["callback.overdue"]
    assert evs[0].data["ticket"]["id"] == t["id"] and evs[0].at == due + 1


def test_watch_does_not_flag_a_callback_made(store: TicketStore) -> None:
    t = in_status(store, "closed")
    store.add_callback(t["id"], "客服小王", "phone", 4, "", t["closed_at"] + HOUR)
    last = store.newest_event_id()
    assert store.watch(t["callback_due"] + DAY) == 0
    assert event_types(store, last) == []


def test_watch_does_not_flag_a_late_callback_made_before_the_watch(store: TicketStore) -> None:
    t = in_status(store, "closed")
    store.add_callback(t["id"], "客服小王", "phone", 4, "", t["callback_due"] + HOUR)
    assert store.watch(t["callback_due"] + DAY) == 0


# -- watch(): SLA escalations -----------------------------------------------------------------------


def escalations(store: TicketStore, since: int) -> list[tuple[int, str, int, str, str]]:
    return [(e.data["ticket"]["id"], e.data["clock"], e.data["level"], e.data["reason"], e.data["to"])
            for e in store.events_after(since) if e.type == "ticket.escalated"]


def test_watch_escalates_at_80_percent_then_overdue_each_once(store: TicketStore) -> None:
    t, _ = open_fault(store, priority="general")  # respond 24 h, no arrive clock, resolve 48 h
    tid = t["id"]
    last = store.newest_event_id()
    assert store.watch(T0 + 0.8 * DAY - 1) == 0
    assert store.watch(T0 + 0.8 * DAY + 1) == 1
    assert store.watch(T0 + 0.8 * DAY + 2) == 0
    assert store.watch(T0 + DAY) == 0  # at the deadline itself: not overdue yet
    assert store.watch(T0 + DAY + 1) == 1
    assert store.watch(T0 + DAY + 2) == 0
    assert escalations(store, last) == [(tid, "respond", 1, "at_risk", "assignee"),
                                        (tid, "respond", 2, "overdue", "duty_manager")]
    t = store.get(tid)
    assert t["escalations"] == [["respond", 1], ["respond", 2]]
    assert [(e["action"], e["by"], e["at"], e["data"]) for e in t["timeline"] if e["action"] == "escalate"] == [
        ("escalate", "sla", T0 + 0.8 * DAY + 1, {"clock": "respond", "level": 1}),
        ("escalate", "sla", T0 + DAY + 1, {"clock": "respond", "level": 2})]
    # resolve: 80 % of 48 h, then overdue
    assert store.watch(T0 + 0.8 * 2 * DAY + 1) == 1
    assert store.watch(T0 + 2 * DAY + 1) == 1
    assert store.watch(T0 + 3 * DAY) == 0
    assert [e[1:3] for e in escalations(store, last)] == [("respond", 1), ("respond", 2), ("resolve", 1),
                                                          ("resolve", 2)]


def test_watch_owes_both_levels_when_first_seen_overdue(store: TicketStore) -> None:
    t, _ = open_fault(store, priority="urgent")  # respond 30 min, arrive 2 h, resolve 24 h
    last = store.newest_event_id()
    assert store.watch(T0 + 31 * MIN) == 2
    assert store.watch(T0 + 31 * MIN) == 0
    assert escalations(store, last) == [(t["id"], "respond", 1, "at_risk", "assignee"),
                                        (t["id"], "respond", 2, "overdue", "duty_manager")]


def test_watch_ignores_clocks_already_met(store: TicketStore) -> None:
    t, _ = open_fault(store, priority="urgent")
    store.act(t["id"], "acknowledge", "李师傅", T0 + 5 * MIN)
    store.act(t["id"], "arrive", "李师傅", T0 + 60 * MIN)
    last = store.newest_event_id()
    assert store.watch(T0 + 3 * HOUR) == 0  # respond and arrive met; resolve at 12 %
    assert store.watch(T0 + 20 * HOUR) == 1
    assert [e[1:3] for e in escalations(store, last)] == [("resolve", 1)]


@pytest.mark.parametrize("status", ["resolved", "closed", "cancelled"])
def test_watch_ignores_finished_work(store: TicketStore, status: str) -> None:
    t = in_status(store, status)
    last = store.newest_event_id()
    store.watch(T0 + 10 * DAY)
    assert escalations(store, last) == []
    assert store.get(t["id"])["escalations"] == []


def test_watch_escalates_again_after_a_reopen_from_the_reopen_time(store: TicketStore) -> None:
    t, _ = open_fault(store, priority="general")  # respond 24 h, resolve 48 h
    store.watch(T0 + 2 * DAY + 1)
    assert len(store.get(t["id"])["escalations"]) == 4
    store.act(t["id"], "resolve", "李师傅", T0 + 3 * DAY)
    at = T0 + 4 * DAY
    t = store.fault_persists("asset:L1", "lamp_out", at)
    assert t is not None and t["escalations"] == []
    assert t["respond_by"] == at + DAY and t["resolve_by"] == at + 2 * DAY
    last = store.newest_event_id()
    # the clocks start again at the reopen: nothing is at risk a minute later, nor before 80 % of 24 h
    assert store.watch(at + MIN) == 0
    assert store.watch(at + 0.8 * DAY - 1) == 0
    assert store.watch(at + 0.8 * DAY + 1) == 1
    assert [e[1:3] for e in escalations(store, last)] == [("respond", 1)]


# -- events -----------------------------------------------------------------------------------------


def test_events_follow_every_change_in_order(store: TicketStore) -> None:
    t, _ = open_fault(store, priority="urgent")
    tid = t["id"]
    store.watch(T0 + 25 * MIN)  # respond at risk
    store.act(tid, "acknowledge", "李师傅", T0 + 26 * MIN)
    store.act(tid, "arrive", "李师傅", T0 + 50 * MIN)
    store.act(tid, "resolve", "李师傅", T0 + 80 * MIN)
    store.fault_cleared("asset:L1", "lamp_out", T0 + 90 * MIN)
    store.add_callback(tid, "客服小王", "phone", 5, "", T0 + DAY)
    evs = store.events_after(0)
    assert [e.type for e in evs] == ["ticket.opened", "ticket.escalated", "ticket.acknowledge", "ticket.arrive",
                                     "ticket.resolve", "ticket.closed", "callback.recorded"]
    assert [e.at for e in evs] == [T0, T0 + 25 * MIN, T0 + 26 * MIN, T0 + 50 * MIN, T0 + 80 * MIN, T0 + 90 * MIN,
                                   T0 + DAY]
    assert [e.data["ticket"]["status"] for e in evs] == ["open", "open", "acknowledged", "on_site", "resolved",
                                                         "closed", "closed"]
    assert all(e.data["ticket"]["id"] == tid for e in evs)
    assert all("timeline" not in e.data["ticket"] for e in evs)
    assert [e.id for e in evs] == sorted({e.id for e in evs})
    assert evs[-1].id == store.newest_event_id()
    assert f"#{tid}" in evs[0].title and "紧急" in evs[0].title and "路灯不亮" in evs[0].title
    assert "设施：L1" in evs[0].text
    assert evs[0].as_json()["data"]["ticket"]["id"] == tid


def test_events_after_pages_by_id(store: TicketStore) -> None:
    for i in range(5):
        open_fault(store, T0 + i, subject=f"asset:L{i}", asset=f"L{i}")
    evs = store.events_after(0, limit=2)
    assert len(evs) == 2
    rest = store.events_after(evs[-1].id)
    assert [e.data["ticket"]["asset"] for e in evs + rest] == [f"L{i}" for i in range(5)]


def test_event_cursor_is_saved(store: TicketStore) -> None:
    assert store.event_cursor("mqtt") is None
    store.save_event_cursor("mqtt", 7)
    store.save_event_cursor("mqtt", 9)
    assert store.event_cursor("mqtt") == 9


# -- list -------------------------------------------------------------------------------------------


@pytest.fixture
def several(store: TicketStore) -> dict[str, int]:
    """Five tickets: two lamps, a hydrant, a well cover, a manual one; in several states."""
    ids = {}
    ids["lamp1"] = open_fault(store, T0, subject="asset:L1", asset="L1", priority="general")[0]["id"]
    ids["lamp2"] = open_fault(store, T0 + 1, subject="asset:L2", asset="L2", priority="urgent")[0]["id"]
    ids["hydrant"] = open_fault(store, T0 + 2, subject="asset:H1", asset="H1", category="fire",
                                fault="pressure_low", priority="emergency")[0]["id"]
    ids["well"] = open_fault(store, T0 + 3, subject="asset:W1", asset="W1", category="drainage",
                             fault="cover_displaced", priority="emergency")[0]["id"]
    ids["manual"] = open_fault(store, T0 + 4, subject=None, asset=None, category=None, fault="other",
                               priority="general", source="manual", by="张三")[0]["id"]
    store.act(ids["lamp2"], "acknowledge", "李师傅", T0 + 5 * MIN)
    store.act(ids["hydrant"], "arrive", "李师傅", T0 + 10 * MIN)
    store.act(ids["hydrant"], "resolve", "李师傅", T0 + 20 * MIN)
    store.act(ids["hydrant"], "close", "王经理", T0 + 30 * MIN)
    store.act(ids["manual"], "cancel", "张三", T0 + 40 * MIN)
    return ids


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, ["manual", "well", "hydrant", "lamp2", "lamp1"], id="all-newest-first"),
        pytest.param({"status": ["open"]}, ["well", "lamp1"], id="status-open"),
        pytest.param({"status": ["open", "acknowledged"]}, ["well", "lamp2", "lamp1"], id="status-several"),
        pytest.param({"status": ["closed", "cancelled"]}, ["manual", "hydrant"], id="status-final"),
        pytest.param({"priority": "emergency"}, ["well", "hydrant"], id="priority"),
        pytest.param({"category": "lighting"}, ["lamp2", "lamp1"], id="category"),
        pytest.param({"asset": "W1"}, ["well"], id="asset"),
        pytest.param({"asset": "nowhere"}, [], id="asset-none"),
        pytest.param({"priority": "emergency", "status": ["open"]}, ["well"], id="filters-combine"),
        # 15 min after opening the emergency well cover's respond clock has passed; the closed hydrant is done
        pytest.param({"overdue_at": T0 + 16 * MIN}, ["well"], id="overdue-respond"),
        # after 24 h: lamp2 (urgent, acknowledged) missed arrive and resolve; lamp1 (general) respond
        pytest.param({"overdue_at": T0 + DAY + 10}, ["well", "lamp2", "lamp1"], id="overdue-a-day-later"),
        pytest.param({"overdue_at": T0 - HOUR}, [], id="overdue-none-before"),
    ],
)
def test_list_filters(store: TicketStore, several: dict[str, int], kwargs: dict[str, Any], expected: list[str]
                      ) -> None:
    items, total = store.list(**kwargs)
    names = {v: k for k, v in several.items()}
    assert [names[t["id"]] for t in items] == expected
    assert total == len(expected)
    assert all("timeline" not in t and isinstance(t["self_cleared"], bool) for t in items)
    assert all(isinstance(t["escalations"], list) and "callback_overdue" not in t for t in items)


def test_list_pages(store: TicketStore) -> None:
    ids = [open_fault(store, T0 + i, subject=f"asset:L{i}", asset=f"L{i}")[0]["id"] for i in range(7)]
    newest_first = ids[::-1]
    pages = []
    for offset in range(0, 9, 3):
        items, total = store.list(limit=3, offset=offset)
        assert total == 7
        pages.append([t["id"] for t in items])
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:]]
    items, total = store.list(status=["open"], limit=2, offset=7)
    assert (items, total) == ([], 7)


# -- the ledger -------------------------------------------------------------------------------------


def test_ledger(store: TicketStore) -> None:
    store.record_state("L1", T0, "intact", [], "in_service", device="dev-1")
    store.record_state("W1", T0 + 1, "intact", [], "in_service")
    store.record_state("L1", T0 + 60, "faulty", ["lamp_out", "power_fault"], "reading", device="dev-1",
                       reading_ts=T0 + 59)
    store.record_state("L1", T0 + 120, "unknown", ["lamp_out", "power_fault"], "device_silent", device="dev-1")
    store.record_state("W1", T0 + 130, "faulty", ["cover_displaced"], "reading")
    store.record_state("L1", T0 + 180, "faulty", ["lamp_out"], "device_online")

    now = store.current_states()
    assert set(now) == {"L1", "W1"}
    assert (now["L1"]["state"], now["L1"]["faults"], now["L1"]["cause"], now["L1"]["at"]) == (
        "faulty", "lamp_out", "device_online", T0 + 180)
    assert (now["W1"]["state"], now["W1"]["faults"]) == ("faulty", "cover_displaced")

    history = store.state_history("L1")
    assert [(h["at"], h["state"]) for h in history] == [
        (T0, "intact"), (T0 + 60, "faulty"), (T0 + 120, "unknown"), (T0 + 180, "faulty")]
    assert history[1] == {"at": T0 + 60, "state": "faulty", "faults": "lamp_out,power_fault", "cause": "reading",
                          "device": "dev-1", "reading_ts": T0 + 59}
    assert history[0]["faults"] == ""
    assert [h["at"] for h in store.state_history("L1", since=T0 + 60)] == [T0 + 60, T0 + 120, T0 + 180]
    assert [h["at"] for h in store.state_history("L1", until=T0 + 120)] == [T0, T0 + 60, T0 + 120]
    assert [h["at"] for h in store.state_history("L1", since=T0 + 61, until=T0 + 180)] == [T0 + 120, T0 + 180]
    assert [h["at"] for h in store.state_history("L1", limit=2)] == [T0, T0 + 60]
    assert store.state_history("L1", since=T0 + 181) == []
    assert store.state_history("nowhere") == []


def test_ledger_history_orders_by_time_then_insertion(store: TicketStore) -> None:
    store.record_state("L1", T0 + 60, "faulty", ["lamp_out"], "reading")
    store.record_state("L1", T0, "intact", [], "in_service")  # recorded late, earlier instant
    store.record_state("L1", T0 + 60, "intact", [], "reading")  # same instant: insertion order
    assert [(h["at"], h["state"]) for h in store.state_history("L1")] == [
        (T0, "intact"), (T0 + 60, "faulty"), (T0 + 60, "intact")]


def test_ledger_is_empty_at_first(store: TicketStore) -> None:
    assert store.current_states() == {}


def test_tickets_survive_a_reopened_store(tmp_path: Path) -> None:
    s = TicketStore(tmp_path / "g.db", SH)
    t, _ = open_fault(s)
    s.record_state("L1", T0, "faulty", ["lamp_out"], "reading")
    s.close()
    s = TicketStore(tmp_path / "g.db", SH)
    try:
        assert s.get(t["id"])["status"] == "open"
        assert open_fault(s, T0 + 1)[1] == "occurrence"
        assert s.current_states()["L1"]["state"] == "faulty"
    finally:
        s.close()


def test_a_database_from_before_called_back_is_upgraded_from_its_callbacks(tmp_path: Path) -> None:
    import sqlite3

    old = TicketStore(tmp_path / "gateway.db", SH)
    called, waiting = (open_fault(old, T0, subject=f"asset:L{i}", asset=f"L{i}")[0]["id"] for i in (1, 2))
    for ticket in (called, waiting):
        for action in ("resolve", "close"):
            old.act(ticket, action, "李师傅", T0 + HOUR)
    old.add_callback(called, "客服", "phone", 5, "", T0 + 2 * HOUR)
    old.close()
    db = sqlite3.connect(tmp_path / "gateway.db")  # as the tables were before the column (and schema versions)
    db.executescript("DROP INDEX callbacks_waiting; ALTER TABLE tickets DROP COLUMN called_back; "
                     "PRAGMA user_version = 0;")
    db.close()
    store = TicketStore(tmp_path / "gateway.db", SH)
    try:
        items, total = store.list(callback_due=True)
        assert total == 1 and [t["id"] for t in items] == [waiting]
        store.add_callback(waiting, "客服", "phone", 4, "", T0 + 3 * HOUR)
        assert store.list(callback_due=True)[1] == 0
    finally:
        store.close()
