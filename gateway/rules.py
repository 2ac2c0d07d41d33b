"""From failing checks to confirmed faults and the asset's state (设施状态): pure functions.

A kind's check says which fault codes fail in one reading. Here those are debounced
(a fault opens after ``n`` consecutive failing readings spanning ``seconds``) and cleared
with the same hysteresis, so a flapping sensor never opens a stream of tickets. The
asset's state follows: ``unknown`` while its monitoring is lost, else ``faulty`` while a
fault that counts against intact is confirmed, else ``intact``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.sensors.base import Debounce, FaultSpec

INTACT, FAULTY, UNKNOWN = "intact", "faulty", "unknown"
STATES = (INTACT, FAULTY, UNKNOWN)


@dataclass(frozen=True, slots=True)
class Run:
    """A run of consecutive readings agreeing on one fault: since when, how many."""

    since: float
    count: int

    def extended(self) -> Run:
        return Run(self.since, self.count + 1)

    def long_enough(self, at: float, d: Debounce) -> bool:
        return self.count >= d.n and at - self.since >= d.seconds


@dataclass(frozen=True)
class Track:
    """Debounce progress of one asset: confirmed faults, failing runs not yet confirmed, and
    healthy runs of confirmed faults not yet cleared."""

    active: frozenset[str] = frozenset()
    failing: Mapping[str, Run] = field(default_factory=dict)
    healing: Mapping[str, Run] = field(default_factory=dict)

    @property
    def quiet(self) -> bool:
        """Nothing confirmed and nothing in progress: a healthy reading changes nothing."""
        return not (self.active or self.failing or self.healing)


@dataclass(frozen=True)
class Step:
    track: Track
    opened: frozenset[str]
    cleared: frozenset[str]


def step(track: Track, failing_now: frozenset[str], at: float, debounce: Debounce) -> Step:
    """One reading at ``at`` whose checks failed ``failing_now``."""
    if track.quiet and not failing_now:
        return Step(track, frozenset(), frozenset())
    active = set(track.active)
    failing: dict[str, Run] = {}
    healing: dict[str, Run] = {}
    opened: set[str] = set()
    cleared: set[str] = set()
    for code in failing_now:
        if code in active:
            continue  # still failing: a healing run, if any, is broken
        run = track.failing[code].extended() if code in track.failing else Run(at, 1)
        if run.long_enough(at, debounce):
            active.add(code)
            opened.add(code)
        else:
            failing[code] = run
    for code in track.active - failing_now:
        run = track.healing[code].extended() if code in track.healing else Run(at, 1)
        if run.long_enough(at, debounce):
            active.discard(code)
            cleared.add(code)
        else:
            healing[code] = run
    return Step(Track(frozenset(active), failing, healing), frozenset(opened), frozenset(cleared))


def state_of(active: frozenset[str], faults: Mapping[str, FaultSpec], monitored: bool) -> str:
    """The ledger state: an asset whose monitoring is lost is not known to be intact."""
    if not monitored:
        return UNKNOWN
    return FAULTY if any(faults[c].counts for c in active if c in faults) else INTACT

