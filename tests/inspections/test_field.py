"""The Field, what the gateway's ingest thread runs for patrols, over a whole night on a test clock: taps
in as the readers deliver them, a tick every minute, the events in the events table at the instants their
windows close, the rounds written as visits once over, and 巡更完成率 from those visits; the same night
with the gateway restarted in the middle of a round gives the same events, each once, and the same rate.

The night is the one of ``test_patrol.py`` (hourly rounds 22:00-05:00, four checkpoints, garage skipped
at 01:00, pool 15 min late at 03:00), computed there by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import events
from gateway.commitments.model import Period
from gateway.commitments.monthly import Commitments
from gateway.inspections.field import Field
from gateway.inspections.patrol import TapFact
from gateway.inspections.records import Inspections, InspectionStore
from gateway.inspections.taps import TapLog
from gateway.sensors.checkpoint import Tap
from gateway.site import Site, SiteModel
from gateway.tickets import TicketStore
from tests.inspections.test_patrol import CHECKPOINTS, HOURLY, NIGHT_EVENTS, NIGHT_ROUTE, SH, at, local, night_taps

SITE = Site.from_model(SiteModel.model_validate({
    "site": {"name": "测试小区", "timezone": "Asia/Shanghai"},
    "checkpoints": [c.model_dump() for c in CHECKPOINTS],
    "guards": [{"id": "wang"}, {"id": "li"}],
    "readers": [{"id": "handheld-wang", "guard": "wang"}, {"id": "handheld-li", "guard": "li"}],
    "routes": [NIGHT_ROUTE.model_dump()],
    "schedules": [HOURLY.model_dump()],
}))
TAGS = {c.id: c.tag for c in CHECKPOINTS}
NIGHT = Period(at("2026-11-20 18:00"), at("2026-11-21 12:00"))


class Gateway:
    """The Field on its own connections to one database file, as a gateway process has them."""

    def __init__(self, db: Path, now: float) -> None:
        self.store = TicketStore(db, SH)
        self.taps = TapLog(db)
        self.inspections = Inspections(InspectionStore(db), self.store, SITE.assets, SH)
        self.field = Field(SITE, self.store, self.taps, self.inspections, now)
        self.pending: list[TapFact] = []  # what the readers recorded and have not delivered yet

    def deliver(self, tap_at: float) -> None:
        """Deliver the pending taps made up to ``tap_at``."""
        while self.pending and self.pending[0].at <= tap_at:
            t = self.pending.pop(0)
            self.field.on_tap(Tap(t.reader or "", TAGS[t.checkpoint], None, t.at, t.at), "test")

    def run(self, start: float, end: float, step: float = 60.0) -> None:
        now = start
        while now <= end:
            self.deliver(now)
            self.field.tick(now)
            now += step

    def close(self) -> None:
        self.taps.close()
        self.inspections.store.close()
        self.store.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "gateway.db"


def patrol_events(store: TicketStore) -> list[tuple[str, str, str, str | None]]:
    return [(e.type, local(e.at), e.data["round"], e.data["checkpoint"])
            for e in events.after(store.db, 0, 10_000) if e.type.startswith("patrol.")]


def completion(db: Path) -> dict:
    c = Commitments(db, SITE)
    try:
        body = c.compute(NIGHT, at("2026-11-21 12:00"))
    finally:
        c.db.close()
    return next(r for r in body["results"] if r["id"] == "patrol_completion")


def test_a_night_through_the_field_gives_the_events_at_their_instants_and_the_rate(db):
    g = Gateway(db, at("2026-11-20 21:40"))
    g.pending = night_taps()
    g.run(at("2026-11-20 21:40"), at("2026-11-21 06:30"))
    assert patrol_events(g.store) == NIGHT_EVENTS
    pc = completion(db)
    assert (pc["num"], pc["den"]) == (30, 32)
    assert {k: (v["num"], v["den"]) for k, v in pc["detail"]["per_guard"].items()} == {"li": (15, 16),
                                                                                        "wang": (15, 16)}
    assert pc["evidence"] == ["night@2026-11-21T01:00", "night@2026-11-21T03:00"]
    g.close()


def test_a_restart_in_the_middle_of_a_round_keeps_the_round(db):
    """Stopped at 01:30, while the 01:00 round (started 01:02, garage skipped) is under way; back at 03:50,
    the readers deliver what they kept meanwhile before the first tick. Garage's late event (01:22) was
    told before the stop; its missed event (01:42) and pool's late one (03:32) are told after, once."""
    g = Gateway(db, at("2026-11-20 21:40"))
    g.pending = night_taps()
    g.run(at("2026-11-20 21:40"), at("2026-11-21 01:30"))
    assert patrol_events(g.store) == NIGHT_EVENTS[:1]
    left = g.pending
    g.close()

    g = Gateway(db, at("2026-11-21 03:50"))
    g.pending = left
    g.deliver(at("2026-11-21 03:50"))
    g.run(at("2026-11-21 03:50"), at("2026-11-21 06:30"))
    assert patrol_events(g.store) == NIGHT_EVENTS
    pc = completion(db)
    assert (pc["num"], pc["den"]) == (30, 32)
    assert pc["evidence"] == ["night@2026-11-21T01:00", "night@2026-11-21T03:00"]
    g.close()


def test_a_new_site_in_the_middle_of_a_round_keeps_the_round(db):
    """A site file reloaded (or a checkpoint edited through the API) at 01:30 rebuilds the rounds."""
    g = Gateway(db, at("2026-11-20 21:40"))
    g.pending = night_taps()
    g.run(at("2026-11-20 21:40"), at("2026-11-21 01:30"))
    g.field.set_site(SITE, at("2026-11-21 01:30") + 0.5)
    g.run(at("2026-11-21 01:31"), at("2026-11-21 06:30"))
    assert patrol_events(g.store) == NIGHT_EVENTS
    assert (completion(db)["num"], completion(db)["den"]) == (30, 32)
    g.close()


def test_a_restart_soon_after_the_first_start_judges_no_round_the_gateway_never_saw(db):
    """First started at 01:30, after the 01:00 round's start window: that round is not the gateway's,
    before or after a restart at 01:35 (which plans again the rounds that could still be under way)."""
    g = Gateway(db, at("2026-11-21 01:30"))
    g.run(at("2026-11-21 01:30"), at("2026-11-21 01:31"))
    g.close()
    g = Gateway(db, at("2026-11-21 01:35"))
    g.pending = [t for t in night_taps() if t.at >= at("2026-11-21 01:35")]
    g.run(at("2026-11-21 01:35"), at("2026-11-21 02:50"))
    assert patrol_events(g.store) == []
    pc = completion(db)
    assert (pc["num"], pc["den"], pc["evidence"]) == (4, 4, [])  # the 02:00 round alone, walked on time
    g.close()
