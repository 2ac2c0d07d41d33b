"""Inspection records on a real SQLite file: tickets from failed items, the ledger of assets without a
sensor, photos, overdue events and the commitments' ratios. Every instant is passed in."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.commitments.model import Period, Ratio
from gateway.inspections.plans import DEFAULT_PLANS, load_plans
from gateway.inspections.records import InspectionError, Inspections, InspectionStore
from gateway.photos import MAX_PHOTO_BYTES, MAX_PHOTOS, image_type
from gateway.site import AssetModel
from gateway.tickets import TicketStore

SH = ZoneInfo("Asia/Shanghai")
DAY = 86400.0


def local(*args: int) -> float:
    return datetime(*args, tzinfo=SH).timestamp()


T0 = local(2024, 3, 5, 10)

ASSETS = (
    AssetModel(id="E1", name="1号楼灭火器", category="fire", kind="fire_extinguisher"),  # no sensor
    AssetModel(id="E2", name="2号楼灭火器", category="fire", kind="fire_extinguisher", device="dev-e2"),
    AssetModel(id="H1", name="消火栓", category="fire", kind="fire_hydrant"),
    AssetModel(id="F0", name="消防器材", category="fire"),  # no kind
    AssetModel(id="W1", name="雨水井", category="drainage", kind="drain_level"),
    AssetModel(id="T1", name="1号化粪池", category="drainage"),
    AssetModel(id="L1", name="路灯", category="lighting", kind="streetlight"),
)
EXT_PASS = {"pressure_green": "pass", "seal_intact": "pass", "unobstructed": "pass", "in_service_life": "pass"}
EXT_LOW = {**EXT_PASS, "pressure_green": "fail"}
HYD_PASS = {"water_pressure": "pass", "valve_turns": "pass", "hose_nozzle": "pass", "unobstructed": "pass"}
WELL_PASS = {"cover_seated": "pass", "no_debris": "pass", "level_normal": "pass", "no_odour_overflow": "pass"}
CLEANED = {"cleaned_out": "pass", "hauler_receipt": "pass"}

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
WEBP = b"RIFF" + struct.pack("<I", 104) + b"WEBPVP8 " + b"\x00" * 96


class Ledger:
    """The monitor's side of ``set_state``: what was asked, written to the ticket store's ledger."""

    def __init__(self, tickets: TicketStore) -> None:
        self.tickets = tickets
        self.calls: list[tuple[str, float, str, list[str], str]] = []

    def __call__(self, asset: str, at: float, state: str, faults: Sequence[str], cause: str) -> None:
        self.calls.append((asset, at, state, list(faults), cause))
        self.tickets.record_state(asset, at, state, faults, cause)


@pytest.fixture
def tickets(tmp_path: Path) -> Iterator[TicketStore]:
    s = TicketStore(tmp_path / "gateway.db", SH)
    yield s
    s.close()


@pytest.fixture
def store(tmp_path: Path, tickets: TicketStore) -> Iterator[InspectionStore]:
    s = InspectionStore(tmp_path / "gateway.db")
    yield s
    s.close()


@pytest.fixture
def ledger(tickets: TicketStore) -> Ledger:
    return Ledger(tickets)


@pytest.fixture
def svc(store: InspectionStore, tickets: TicketStore, ledger: Ledger) -> Inspections:
    return Inspections(store, tickets, ASSETS, SH, set_state=ledger)


def all_tickets(tickets: TicketStore) -> list[dict[str, Any]]:
    return tickets.list(limit=1000)[0]


def event_types(tickets: TicketStore) -> list[str]:
    return [e.type for e in tickets.events_after(0)]


# -- recording --------------------------------------------------------------------------------------
def test_a_failed_item_opens_one_emergency_ticket(svc: Inspections, tickets: TicketStore, ledger: Ledger) -> None:
    inspection, effects = svc.record("E1", "fire", "张师傅", T0, EXT_LOW, note="指针在红区", tag_at=T0 - 30)
    assert inspection["asset"] == "E1" and inspection["plan"] == "fire" and inspection["by"] == "张师傅"
    assert inspection["results"] == EXT_LOW and inspection["failed"] == ["pressure_green"]
    assert inspection["tag_at"] == T0 - 30 and inspection["note"] == "指针在红区" and inspection["applied"]
    [t] = all_tickets(tickets)
    assert (t["subject"], t["fault"], t["priority"], t["status"]) == ("asset:E1", "inspection.pressure_green",
                                                                       "emergency", "open")
    assert (t["opened_by"], t["source"], t["asset"], t["category"]) == ("张师傅", "inspection", "E1", "fire")
    assert "压力在绿区" in t["title"]
    assert effects.opened == [{"item": "pressure_green", "ticket": t["id"], "what": "opened"}]
    # Recorded twice: still one ticket, a second occurrence of it.
    _, again = svc.record("E1", "fire", "张师傅", T0 + 600, EXT_LOW)
    [t] = all_tickets(tickets)
    assert t["occurrences"] == 2 and again.opened == [{"item": "pressure_green", "ticket": t["id"],
                                                       "what": "occurrence"}]
    # The asset has no sensor: the inspection sets its ledger state.
    assert ledger.calls == [("E1", T0, "faulty", ["inspection.pressure_green"], "inspection"),
                            ("E1", T0 + 600, "faulty", ["inspection.pressure_green"], "inspection")]
    assert tickets.current_states()["E1"]["state"] == "faulty"
    assert effects.state == "faulty" and effects.faults == ["inspection.pressure_green"]
    types = event_types(tickets)
    assert types.count("inspection.recorded") == 2 and types.count("ticket.opened") == 1


def test_a_later_passing_inspection_clears_it(svc: Inspections, tickets: TicketStore, ledger: Ledger) -> None:
    svc.record("E1", "fire", "张师傅", T0, EXT_LOW)
    [t] = all_tickets(tickets)
    _, effects = svc.record("E1", "fire", "李师傅", T0 + DAY, EXT_PASS)
    assert effects.cleared == [{"item": "pressure_green", "ticket": t["id"], "status": "open"}]
    assert effects.state == "intact" and effects.faults == [] and effects.opened == []
    t = tickets.get(t["id"])
    assert t["fault_cleared_at"] == T0 + DAY and t["self_cleared"]  # nobody acted: maintenance confirms the close
    assert ledger.calls[-1] == ("E1", T0 + DAY, "intact", [], "inspection")
    assert tickets.current_states()["E1"]["state"] == "intact"


def test_a_passing_inspection_after_the_repair_closes_the_ticket(svc: Inspections, tickets: TicketStore) -> None:
    svc.record("E1", "fire", "张师傅", T0, EXT_LOW)
    [t] = all_tickets(tickets)
    tickets.act(t["id"], "resolve", "维修工", T0 + 3600, "换了一瓶")
    svc.record("E1", "fire", "张师傅", T0 + 7200, EXT_PASS)
    t = tickets.get(t["id"])
    assert t["status"] == "closed" and t["closed_at"] == T0 + 7200


def test_a_failure_after_the_repair_reopens_as_rework(svc: Inspections, tickets: TicketStore) -> None:
    svc.record("E1", "fire", "张师傅", T0, EXT_LOW)
    [t] = all_tickets(tickets)
    tickets.act(t["id"], "resolve", "维修工", T0 + 3600)
    _, effects = svc.record("E1", "fire", "张师傅", T0 + 7200, EXT_LOW)
    t = tickets.get(t["id"])
    assert t["status"] == "open" and t["reworks"] == 1 and len(all_tickets(tickets)) == 1
    assert effects.opened == [{"item": "pressure_green", "ticket": t["id"], "what": "reopened"}]


def test_one_ticket_per_item(svc: Inspections, tickets: TicketStore) -> None:
    svc.record("E1", "fire", "张师傅", T0, {**EXT_LOW, "seal_intact": "fail"})
    assert sorted(t["fault"] for t in all_tickets(tickets)) == ["inspection.pressure_green",
                                                                  "inspection.seal_intact"]
    _, effects = svc.record("E1", "fire", "张师傅", T0 + DAY, EXT_LOW)  # the seal was replaced
    assert [c["item"] for c in effects.cleared] == ["seal_intact"]
    assert effects.faults == ["inspection.pressure_green"]


def test_an_asset_with_a_sensor_keeps_its_state(svc: Inspections, tickets: TicketStore, ledger: Ledger) -> None:
    _, effects = svc.record("E2", "fire", "张师傅", T0, EXT_LOW)
    [t] = all_tickets(tickets)
    assert t["device"] == "dev-e2" and t["priority"] == "emergency"
    assert effects.state is None and ledger.calls == []


def test_drainage_failures_are_urgent(svc: Inspections, tickets: TicketStore, ledger: Ledger) -> None:
    svc.record("W1", "wells", "王师傅", T0, {**WELL_PASS, "no_debris": "fail"})
    [t] = all_tickets(tickets)
    assert (t["fault"], t["priority"], t["category"]) == ("inspection.no_debris", "urgent", "drainage")
    assert ledger.calls == [("W1", T0, "faulty", ["inspection.no_debris"], "inspection")]


def test_a_cleanout_sets_no_ledger_state(svc: Inspections, tickets: TicketStore, ledger: Ledger) -> None:
    svc.record("T1", "septic_cleanout", "清运公司", T0, {**CLEANED, "hauler_receipt": "fail"})
    [t] = all_tickets(tickets)
    assert (t["fault"], t["priority"]) == ("inspection.hauler_receipt", "urgent")
    assert ledger.calls == []


# -- refused records --------------------------------------------------------------------------------
def nothing_stored(store: InspectionStore, tickets: TicketStore) -> bool:
    return store.list()[1] == 0 and all_tickets(tickets) == [] and "inspection.recorded" not in event_types(tickets)


def test_missing_and_unknown_items_refused(svc: Inspections, store: InspectionStore, tickets: TicketStore) -> None:
    results = {k: v for k, v in EXT_LOW.items() if k != "seal_intact"} | {"water_pressure": "pass", "colour": "fail"}
    with pytest.raises(InspectionError) as e:
        svc.record("E1", "fire", "张师傅", T0, results)
    assert e.value.code == "invalid"
    assert e.value.problems == [
        "checklist item 'seal_intact' (铅封完好) has no result",
        "unknown checklist item 'water_pressure' for plan 'fire' on asset 'E1' (its items: in_service_life, "
        "pressure_green, seal_intact, unobstructed)",
        "unknown checklist item 'colour' for plan 'fire' on asset 'E1' (its items: in_service_life, "
        "pressure_green, seal_intact, unobstructed)",
    ]
    with pytest.raises(InspectionError, match=r"checklist item 'pressure_green': result must be pass or fail "
                                              r"\(got 'ok'\)"):
        svc.record("E1", "fire", "张师傅", T0, {**EXT_PASS, "pressure_green": "ok"})
    assert nothing_stored(store, tickets)


def test_wrong_asset_or_plan_refused(svc: Inspections, store: InspectionStore, tickets: TicketStore) -> None:
    with pytest.raises(InspectionError, match="no asset 'X9'") as e:
        svc.record("X9", "fire", "张师傅", T0, EXT_PASS)
    assert e.value.code == "not_found"
    with pytest.raises(InspectionError, match="no plan 'patrol'"):
        svc.record("E1", "patrol", "张师傅", T0, EXT_PASS)
    with pytest.raises(InspectionError, match=r"plan 'septic_cleanout' does not apply to asset 'W1' .*its plans: "
                                              r"wells"):
        svc.record("W1", "septic_cleanout", "张师傅", T0, CLEANED)
    with pytest.raises(InspectionError, match=r"asset 'F0' has no kind.*give the asset its kind in the site file"):
        svc.record("F0", "fire", "张师傅", T0, EXT_PASS)
    with pytest.raises(InspectionError, match="by: who inspected is required"):
        svc.record("E1", "fire", "", T0, EXT_PASS)
    assert nothing_stored(store, tickets)


# -- photos -------------------------------------------------------------------------------------------
def test_photos_stored(svc: Inspections, store: InspectionStore, tmp_path: Path) -> None:
    inspection, _ = svc.record("E1", "fire", "张师傅", T0, EXT_PASS, photos=[JPEG, PNG, WEBP])
    folder = tmp_path / "photos" / str(inspection["id"])
    assert sorted(p.name for p in folder.iterdir()) == ["1.jpg", "2.png", "3.webp"]
    assert (folder / "1.jpg").read_bytes() == JPEG and (folder / "3.webp").read_bytes() == WEBP
    assert [(p["name"], p["type"], p["bytes"]) for p in inspection["photos"]] == [
        ("1.jpg", "image/jpeg", len(JPEG)), ("2.png", "image/png", len(PNG)), ("3.webp", "image/webp", len(WEBP))]
    assert store.get(inspection["id"])["photos"] == inspection["photos"]
    assert store.photo_path(inspection["id"], "2.png") == folder / "2.png"
    assert store.photo_path(inspection["id"], "../../gateway.db") is None
    assert store.photo_path(inspection["id"] + 1, "1.jpg") is None


def test_photo_types_by_magic_bytes_only() -> None:
    assert image_type(JPEG) == ("image/jpeg", "jpg")
    assert image_type(PNG) == ("image/png", "png")
    assert image_type(WEBP) == ("image/webp", "webp")
    assert image_type(b"GIF89a" + b"\x00" * 20) is None
    assert image_type(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert image_type(b"") is None


@pytest.mark.parametrize(("photos", "problem"), [
    ([JPEG + b"\x00" * MAX_PHOTO_BYTES], r"photo 1: \d+ bytes, over the limit of 2097152 \(2 MB\)"),
    ([JPEG] * (MAX_PHOTOS + 1), "6 photos: at most 5 at a time"),
    ([JPEG, b"%PDF-1.7 pretending to be a .jpg"], "photo 2: not a JPEG, PNG or WebP image"),
    ([b"GIF89a" + b"\x00" * 20], "photo 1: not a JPEG, PNG or WebP image"),
])
def test_bad_photos_refused(svc: Inspections, store: InspectionStore, tickets: TicketStore, tmp_path: Path,
                            photos: list[bytes], problem: str) -> None:
    with pytest.raises(InspectionError, match=problem) as e:
        svc.record("E1", "fire", "张师傅", T0, EXT_LOW, photos=photos)
    assert e.value.code == "invalid"
    assert nothing_stored(store, tickets)
    assert not (tmp_path / "photos").exists() or not any((tmp_path / "photos").iterdir())


def test_a_photo_at_the_limit_is_taken(svc: Inspections) -> None:
    photo = JPEG + b"\x00" * (MAX_PHOTO_BYTES - len(JPEG))
    inspection, _ = svc.record("E1", "fire", "张师傅", T0, EXT_PASS, photos=[photo] * MAX_PHOTOS)
    assert len(inspection["photos"]) == 5 and inspection["photos"][4]["bytes"] == MAX_PHOTO_BYTES


def test_a_folder_left_by_an_uncommitted_record_is_emptied(svc: Inspections, tmp_path: Path) -> None:
    stale = tmp_path / "photos" / "1"
    stale.mkdir(parents=True)
    (stale / "9.jpg").write_bytes(b"left over")
    inspection, _ = svc.record("E1", "fire", "张师傅", T0, EXT_PASS, photos=[PNG])
    assert inspection["id"] == 1 and [p.name for p in stale.iterdir()] == ["1.png"]


# -- a crash between the record and its effects ---------------------------------------------------------
def test_resume_applies_what_a_crash_left(svc: Inspections, store: InspectionStore, tickets: TicketStore,
                                          ledger: Ledger) -> None:
    r = store.add(asset="E1", plan="fire", at=T0, by="张师傅", tag_at=None, results=EXT_LOW, note="", photos=[])
    assert [p["id"] for p in store.pending()] == [r["id"]] and all_tickets(tickets) == []
    assert svc.resume() == 1
    [t] = all_tickets(tickets)
    assert t["fault"] == "inspection.pressure_green" and ledger.calls[-1][2] == "faulty"
    assert store.pending() == [] and svc.resume() == 0


# -- overdue ------------------------------------------------------------------------------------------
def overdue_events(tickets: TicketStore) -> list[tuple[str, str]]:
    return [(e.data["asset"], e.data["plan"]) for e in tickets.events_after(0) if e.type == "inspection.overdue"]


def test_overdue_events_emitted_once(store: InspectionStore, tickets: TicketStore, ledger: Ledger) -> None:
    svc = Inspections(store, tickets, [a for a in ASSETS if a.id != "F0"], SH, set_state=ledger)
    # February: everything kept (cleanout included), so nothing is overdue on March 1st.
    for day in (3, 20):
        for a, results in (("E1", EXT_PASS), ("E2", EXT_PASS), ("H1", HYD_PASS)):
            svc.record(a, "fire", "张师傅", local(2024, 2, day, 10), results)
    for a in ("W1", "T1"):
        svc.record(a, "wells", "王师傅", local(2024, 2, 3, 10), WELL_PASS)
    svc.record("T1", "septic_cleanout", "清运公司", local(2024, 1, 10), CLEANED)
    ledger.calls.clear()
    assert svc.overdue(local(2024, 3, 1, 8)) == []
    svc.record("E1", "fire", "张师傅", local(2024, 3, 10, 10), EXT_PASS)  # E1's first of March
    ledger.calls.clear()

    new = svc.overdue(local(2024, 3, 16))  # 16th 00:00: E2 and H1 missed the first of March
    assert sorted((o.asset, o.plan, o.due_at, o.unknown) for o in new) == [
        ("E2", "fire", local(2024, 3, 16), False),  # its sensor keeps telling its state
        ("H1", "fire", local(2024, 3, 16), True)]
    assert sorted(overdue_events(tickets)) == [("E2", "fire"), ("H1", "fire")]
    assert ledger.calls == [("H1", local(2024, 3, 16), "unknown", [], "inspection_overdue")]
    assert tickets.current_states()["H1"]["state"] == "unknown"
    e = next(e for e in tickets.events_after(0) if e.type == "inspection.overdue")
    assert e.title.startswith("巡检逾期") and e.data["due_at"] == local(2024, 3, 16) and e.data["needed"] == 2

    assert svc.overdue(local(2024, 3, 16, 0, 5)) == []  # once per asset, plan and deadline
    assert svc.overdue(local(2024, 3, 25)) == []
    assert len(overdue_events(tickets)) == 2 and len(ledger.calls) == 1

    # A late inspection verifies H1 again; on April 1st, E1 (one in March) is overdue, and the wells.
    svc.record("H1", "fire", "张师傅", local(2024, 3, 20, 10), HYD_PASS)
    assert tickets.current_states()["H1"]["state"] == "intact"
    new = svc.overdue(local(2024, 4, 1))
    assert sorted((o.asset, o.plan) for o in new) == [("E1", "fire"), ("E2", "fire"), ("H1", "fire"),
                                                       ("T1", "wells"), ("W1", "wells")]
    assert svc.overdue(local(2024, 4, 2)) == []
    # The cleanout of January 10th runs out 183 days later.
    new = svc.overdue(local(2024, 1, 10) + 183 * 86400)
    assert ("T1", "septic_cleanout") in {(o.asset, o.plan) for o in new}
    assert next(o for o in new if o.plan == "septic_cleanout").unknown is False  # its own indicator


def test_an_asset_that_cannot_be_inspected_stays_overdue(svc: Inspections) -> None:
    """F0 has no kind, so no fire checklist: overdue at each deadline until the site file names its kind."""
    assert ("F0", "fire") in {(o.asset, o.plan) for o in svc.overdue(local(2024, 3, 1, 8))}
    assert ("F0", "fire") in {(o.asset, o.plan) for o in svc.overdue(local(2024, 3, 16))}


def test_overdue_survives_a_restart(tmp_path: Path, tickets: TicketStore) -> None:
    first = InspectionStore(tmp_path / "gateway.db")
    assert len(Inspections(first, tickets, ASSETS[:1], SH).overdue(local(2024, 3, 16))) == 1
    first.close()
    second = InspectionStore(tmp_path / "gateway.db")
    assert Inspections(second, tickets, ASSETS[:1], SH).overdue(local(2024, 3, 16, 1)) == []
    second.close()


def test_a_cleanout_never_done_is_announced_once(svc: Inspections, tickets: TicketStore) -> None:
    new = [o for o in svc.overdue(local(2024, 3, 1, 8)) if o.plan == "septic_cleanout"]
    assert [(o.asset, o.due_at) for o in new] == [("T1", None)]
    assert not [o for o in svc.overdue(local(2024, 9, 1)) if o.plan == "septic_cleanout"]


# -- the commitments' ratios, by hand ---------------------------------------------------------------
MARCH = Period(local(2024, 3, 1), local(2024, 4, 1))


def test_fire_compliance(svc: Inspections) -> None:
    svc.record("E1", "fire", "张", local(2024, 3, 3, 10), EXT_PASS)
    svc.record("E1", "fire", "张", local(2024, 3, 18, 10), EXT_LOW)  # failed, but inspected
    svc.record("E2", "fire", "张", local(2024, 3, 3, 9), EXT_PASS)
    svc.record("E2", "fire", "张", local(2024, 3, 3, 16), EXT_PASS)  # the same day: counts once
    svc.record("H1", "fire", "张", local(2024, 2, 29, 23, 59), HYD_PASS)  # February
    svc.record("H1", "fire", "张", local(2024, 3, 31, 23, 59), HYD_PASS)
    svc.record("H1", "fire", "张", local(2024, 4, 1, 0, 0), HYD_PASS)  # April
    assert svc.compliance("fire", ["E1", "E2", "H1"], MARCH) == Ratio(1, 3)
    assert svc.compliance("fire", ["E1", "E1"], MARCH) == Ratio(1, 1)
    assert svc.compliance("fire", [], MARCH).value is None


def test_wells_compliance(svc: Inspections) -> None:
    svc.record("W1", "wells", "王", local(2024, 3, 31, 12), WELL_PASS)
    svc.record("T1", "wells", "王", local(2024, 2, 10, 12), WELL_PASS)
    r = svc.compliance("wells", ["W1", "T1"], MARCH)
    assert r == Ratio(1, 2) and r.value == 0.5


def test_cleanout_ratio(store: InspectionStore, tickets: TicketStore) -> None:
    assets = (*ASSETS, AssetModel(id="T2", name="2号化粪池", category="drainage"),
              AssetModel(id="T3", name="Septic tank 3", category="drainage"))
    svc = Inspections(store, tickets, assets, SH)
    end = MARCH.end
    svc.record("T1", "septic_cleanout", "清运", end - 100 * DAY, CLEANED)
    svc.record("T2", "septic_cleanout", "清运", end - 50 * DAY, {**CLEANED, "hauler_receipt": "fail"})  # unproven
    svc.record("T3", "septic_cleanout", "清运", end - 200 * DAY, CLEANED)  # too long ago
    assert svc.cleanout(["T1", "T2", "T3"], end) == Ratio(1, 3)
    assert svc.compliance("septic_cleanout", ["T1", "T2", "T3"], MARCH) == Ratio(1, 3)
    assert svc.cleanout(["T1", "T2", "T3"], end - 99 * DAY) == Ratio(2, 3)  # T3's was 101 days before
    assert svc.cleanout(["T1", "T2", "T3"], end - 100 * DAY) == Ratio(1, 3)  # T1's not yet (the end is excluded)
    assert svc.cleanout(["T1", "T2", "T3"], end + 84 * DAY) == Ratio(0, 3)  # 184 days after T1's cleanout


def test_overrides_reach_the_service(store: InspectionStore, tickets: TicketStore) -> None:
    plans = load_plans({"wells": {"checklist": [{"id": "cover_seated", "zh": "井盖完好"}]}, "fire": {"times": 1}})
    svc = Inspections(store, tickets, ASSETS, SH, plans)
    svc.record("W1", "wells", "王", T0, {"cover_seated": "pass"})
    with pytest.raises(InspectionError, match="unknown checklist item 'no_debris'"):
        svc.record("W1", "wells", "王", T0, {"cover_seated": "pass", "no_debris": "pass"})
    svc.record("E1", "fire", "张", T0, EXT_PASS)
    assert svc.compliance("fire", ["E1"], MARCH) == Ratio(1, 1)
    assert svc.plans["septic_cleanout"] == DEFAULT_PLANS["septic_cleanout"]


def test_list_and_due_states(svc: Inspections, store: InspectionStore) -> None:
    svc.record("E1", "fire", "张", T0, EXT_PASS)
    svc.record("W1", "wells", "王", T0 + 60, WELL_PASS)
    items, total = store.list()
    assert total == 2 and [i["asset"] for i in items] == ["W1", "E1"]
    assert [i["asset"] for i in store.list(plan="fire")[0]] == ["E1"]
    assert store.list(since=T0 + 1)[1] == 1
    states = {(s["asset"], s["plan"]): s for s in svc.due_states(local(2024, 3, 10))}
    assert states[("E1", "fire")]["done"] == 1 and not states[("E1", "fire")]["overdue"]
    assert states[("E1", "fire")]["next_due_at"] == local(2024, 4, 1)
    assert ("L1", "fire") not in states and ("T1", "septic_cleanout") in states
    assert [s["plan"] for s in svc.due_states(local(2024, 3, 10), asset="T1")] == ["wells", "septic_cleanout"]
