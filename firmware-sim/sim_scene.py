"""Running a scenario: the fleet's firmware on real time, the scenario's events on an accelerated clock.

Time design (README "Scenarios"): every reading and tap carries the real wall-clock ``ts``,
because the gateway judges silence, debounce, SLA deadlines, rounds and a lamp's expected
state against its own clock and refuses times ahead of it. What ``--speed`` accelerates is the
*scenario clock*: an event at "20:00" happens ``(20:00 - start) / speed`` real seconds after the
start, and the slow processes (a leak, a draining battery, rain filling a well, an ageing
ballast) progress on that clock. Lamps follow their schedule in real local time, the same
``schedule`` the site file gives the gateway, so a lamp is judged by the clock it is lit by.
"""

from __future__ import annotations

import heapq
import logging
import time
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sim_clock import SceneClock
from sim_patrol import Guard, PlannedTap, next_due, walk
from sim_run import Options, Publisher, Simulation
from sim_scenario import ANNOUNCES, Event, Scenario, apply
from sim_site import checkpoint_tag
from sim_values import DeviceState, encode, reading, reading_topic

_LOGGER = logging.getLogger(__name__)


class StatusPublisher(Publisher, Protocol):
    """A publisher that can also set a device's retained status (MqttPublisher)."""

    def status(self, device: str, online: bool) -> None: ...


class ScenarioSimulation(Simulation):
    """A ``Simulation`` whose devices also live through the scenario's events, and whose guards walk."""

    def __init__(self, devices: list[DeviceState], publisher: StatusPublisher, opts: Options, seed: int | None,
                 scenario: Scenario, speed: float, start: str, guards: list[Guard],
                 clock_origin: float | None = None) -> None:
        """``clock_origin``: the real epoch at which the scenario clock reads ``start`` (default: the run's
        start), so that other simulators can share the clock."""
        super().__init__(devices, publisher, opts, seed)
        self.status_publisher = publisher
        self.scenario, self.speed, self.guards = scenario, speed, guards
        self.fleet = {d.device: d for d in devices}
        self.tz = ZoneInfo(scenario.timezone)
        self.clock = SceneClock.starting(start, opts.sim_start if clock_origin is None else clock_origin, speed,
                                         self.tz)
        self.pending_events = self.clock.schedule(scenario.events)
        self.taps: list[tuple[float, int, PlannedTap]] = []
        self.next_round = next_due(opts.sim_start, scenario.patrol.every_min, self.tz)  # the first whole round
        self.happened: list[dict[str, Any]] = []
        self.tick_s = 0.25

    def scene(self, real: float) -> float:
        """Scenario-clock epoch at real epoch ``real``."""
        return self.clock.scene(real)

    def tick(self) -> None:
        real = time.time()
        scene = self.scene(real)
        while self.pending_events and self.pending_events[0][0] <= scene:
            _, _, event = self.pending_events.pop(0)
            self._happen(event, scene)
        if real >= self.next_round - 5.0:  # plan a round just before it is due, after the events up to then
            for guard in self.guards:
                if self.scene(self.next_round) < guard.asleep_until:
                    continue
                for tap in walk(guard, self.next_round, self.scenario.patrol):
                    heapq.heappush(self.taps, (tap.at, id(tap), tap))
            self.next_round += self.scenario.patrol.every_min * 60.0
        while self.taps and self.taps[0][0] <= real:
            self._tap(heapq.heappop(self.taps)[2])

    def _happen(self, event: Event, scene: float) -> None:
        local = self.clock.local(scene)
        if event.guard is not None:
            guard = next(g for g in self.guards if g.id == event.guard)
            if event.event == "skip":
                guard.skip.add(str(event.checkpoint))
            else:
                guard.asleep_until = scene + event.param("hours") * 3600.0
            touched = [guard.id]
        else:
            touched = apply(event, self.fleet, scene)
        if event.event == "broker_away" and event.device:
            self.status_publisher.status(event.device, False)  # the broker publishes its last will
        _LOGGER.info("scenario %s: %s %s (expect %s)", local, event.event, event.device or event.guard or "",
                     ANNOUNCES.get(event.event, "recovery"))
        self.happened.append({"at": local, "event": event.event, "devices": len(touched),
                              "expect": ANNOUNCES.get(event.event)})

    def _tap(self, tap: PlannedTap) -> None:
        tag = checkpoint_tag(self.opts.site, int(tap.checkpoint[3:]))
        payload = encode({"ts": round(tap.at, 3), "tag": tag, "badge": tap.guard})
        self.publisher.publish(tap.reader, reading_topic(self.opts.prefix, self.opts.site, "checkpoint", tap.reader),
                               payload)
        self.stats.generated += 1
        self.stats.by_kind["checkpoint"] += 1

    def emit(self, state: DeviceState, now: float) -> None:
        """One slot: nothing from a silent device, into the buffer while its broker is away."""
        if state.kind == "checkpoint" or state.cond.silent:
            return
        scene = self.scene(now)
        topic = reading_topic(self.opts.prefix, self.opts.site, state.kind, state.device)
        payload = reading(state.kind, state, now, scene=scene)
        if scene < state.cond.away_until:
            state.buffer.append(payload)
            return
        if state.buffer:  # reconnected: say so, then send what was kept, oldest first, then this
            self.status_publisher.status(state.device, True)
            _LOGGER.info("%s back: sending %d buffered reading(s)", state.device, len(state.buffer))
            for old in state.buffer:
                self.publisher.publish(state.device, topic, encode(old))
                self.stats.generated += 1
                self.stats.by_kind[state.kind] += 1
            state.buffer.clear()
        self.publisher.publish(state.device, topic, encode(payload))
        self.stats.generated += 1
        self.stats.by_kind[state.kind] += 1

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "events": self.happened}
