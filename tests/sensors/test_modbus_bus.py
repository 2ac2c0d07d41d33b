"""The bus scheduler on a simulated clock: intervals, the inter-frame delay, retries, backoff of a silent
device without starving the others, counts, and the bus going silent and coming back."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from gateway.sensors.modbus_bus import (
    BusChange,
    BusScheduler,
    DeviceChange,
    DevicePlan,
    Send,
    Wait,
    char_time_s,
    frame_gap_s,
)
from gateway.sensors.modbus_rtu import Request, Response

GAP = 0.004
LATENCY = 0.02  # a slave answers this long after the request


def plan(device: str, unit: int, poll_s: float = 1.0, timeout_s: float = 0.1, retries: int = 1,
         requests: int = 1) -> DevicePlan:
    return DevicePlan(device, tuple(Request(unit, 3, 10 * i, 2) for i in range(requests)), poll_s, timeout_s, retries)


Outcome = str  # "answer", "timeout", "crc", "exception"


@dataclass
class Sim:
    """Drives a scheduler as the reader does; ``behaviour[device](now)`` says what its slave does."""

    sched: BusScheduler
    behaviour: dict[str, Callable[[float], Outcome]]
    plans: dict[str, DevicePlan]
    now: float = 0.0
    sent: list[Send] = field(default_factory=list)
    starts: list[tuple[float, str, int]] = field(default_factory=list)  # (time, device, attempt)
    readings: list[tuple[float, str]] = field(default_factory=list)
    events: list = field(default_factory=list)

    def run(self, until: float) -> Sim:
        while True:
            action = self.sched.next_action(self.now)
            if isinstance(action, Wait):
                if action.until > until:
                    self.now = until
                    return self
                assert action.until > self.now, "a wait must move time on"
                self.now = action.until
                continue
            self.sent.append(action)
            self.starts.append((self.now, action.device, action.attempt))
            outcome = self.behaviour[action.device](self.now)
            if outcome in ("timeout", "crc"):
                self.now = action.deadline
                self.sched.on_timeout(self.now, crc=outcome == "crc")
            elif outcome == "exception":
                self.now += LATENCY
                self.sched.on_exception(self.now, 2)
            else:
                self.now += LATENCY
                req = action.request
                polled = self.sched.on_response(self.now, Response(req, bytes(req.data_size), b""))
                if polled is not None:
                    self.readings.append((self.now, polled.device))
                    assert [r.request for r in polled.responses] == list(self.plans[polled.device].requests)
            self.events += self.sched.take_events()

    def polls(self, device: str) -> list[float]:
        return [t for t, d, attempt in self.starts if d == device and attempt == 1]


def bus(*plans: DevicePlan, silent_after: int = 3, backoff_max_s: float = 60.0, char_s: float = 0.0,
        **behaviour: Callable[[float], Outcome]) -> Sim:
    sched = BusScheduler(plans, char_s=char_s, gap_s=GAP, now=0.0, silent_after=silent_after,
                         backoff_max_s=backoff_max_s)
    return Sim(sched, {p.device: behaviour.get(p.device.replace("-", "_"), answers) for p in plans},
               {p.device: p for p in plans})


def answers(_now: float) -> Outcome:
    return "answer"


def dead(_now: float) -> Outcome:
    return "timeout"


def dead_between(start: float, end: float = float("inf")) -> Callable[[float], Outcome]:
    return lambda now: "timeout" if start <= now < end else "answer"


# -- timing ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("baud", "parity", "stopbits", "gap_ms"), [
    (9600, "N", 1, 3.5 * 10 / 9600 * 1000),
    (9600, "E", 1, 3.5 * 11 / 9600 * 1000),  # the Modbus default frame: 8E1, 11 bits
    (9600, "N", 2, 3.5 * 11 / 9600 * 1000),
    (19200, "E", 1, 3.5 * 11 / 19200 * 1000),
    (38400, "E", 1, 1.75),  # fixed above 19200 baud
    (115200, "N", 1, 1.75),
])
def test_inter_frame_delay(baud, parity, stopbits, gap_ms):
    assert frame_gap_s(baud, 8, parity, stopbits) * 1000 == pytest.approx(gap_ms)
    assert char_time_s(9600, 8, "E", 1) == pytest.approx(11 / 9600)


def test_a_device_is_polled_on_its_interval():
    sim = bus(plan("lvl-1", 1, poll_s=1.0)).run(10.5)
    assert sim.polls("lvl-1") == [float(i) for i in range(11)]
    c = sim.sched.counts["lvl-1"]
    assert (c.polls, c.answers, c.requests, c.timeouts, c.failing, c.silent) == (11, 11, 11, 0, 0, False)


def test_the_bus_is_quiet_between_frames_and_polls_go_one_at_a_time():
    sim = bus(plan("a", 1), plan("b", 2), plan("c", 3, requests=2)).run(0.5)
    assert [(d, round(t, 6)) for t, d, _ in sim.starts] == [
        ("a", 0.0), ("b", round(LATENCY + GAP, 6)), ("c", round(2 * (LATENCY + GAP), 6)),
        ("c", round(3 * (LATENCY + GAP), 6))]
    assert [d for _, d in sim.readings] == ["a", "b", "c"]  # c's reading only once both its reads are answered
    c = sim.sched.counts["c"]
    assert (c.polls, c.requests, c.answers) == (1, 2, 1)


def test_a_deadline_allows_for_the_frames_time_on_the_wire():
    char = char_time_s(9600, 8, "E", 1)
    sim = bus(plan("a", 1, timeout_s=0.1), char_s=char)
    send = sim.sched.next_action(0.0)
    assert isinstance(send, Send)
    assert send.deadline == pytest.approx(0.1 + char * (8 + 9))  # an 8-byte request, a 9-byte response


def test_timeouts_are_retried_then_the_poll_fails():
    sim = bus(plan("a", 1, poll_s=1.0, timeout_s=0.1, retries=2), a=dead).run(0.9)
    assert [(d, attempt) for _, d, attempt in sim.starts] == [("a", 1), ("a", 2), ("a", 3)]
    assert len({s.request for s in sim.sent}) == 1  # the same request again
    c = sim.sched.counts["a"]
    assert (c.polls, c.requests, c.timeouts, c.failing, c.answers, c.silent) == (1, 3, 3, 1, 0, False)
    assert sim.run(1.05).polls("a") == [0.0, 1.0]  # the next poll keeps the cadence


def test_crc_errors_and_exceptions_are_counted_apart():
    outcomes = iter(["crc", "answer", "exception", "answer"])
    sim = bus(plan("a", 1, poll_s=1.0, retries=1), a=lambda _now: next(outcomes)).run(2.5)
    c = sim.sched.counts["a"]
    assert (c.polls, c.requests, c.crc_errors, c.timeouts, c.exceptions, c.answers) == (3, 4, 1, 0, 1, 2)
    assert c.failing == 0, "an exception response is an answer: the device is alive"
    assert [t for t, _ in sim.readings] == pytest.approx([0.1 + LATENCY + 2 * 0, 2 + LATENCY], abs=0.01)


def test_a_silent_device_is_probed_with_a_doubling_capped_interval_and_comes_back():
    sim = bus(plan("a", 1, poll_s=1.0, timeout_s=0.1, retries=1), backoff_max_s=8.0, a=dead_between(0.5, 40))
    sim.run(45)
    polls = sim.polls("a")
    assert polls[:11] == [0, 1, 2, 3, 5, 9, 17, 25, 33, 41, 42]  # 3 failed: silent; 2, 4, 8, capped at 8; back
    tries: list[int] = []
    for _, _, attempt in sim.starts:
        tries = [*tries, 1] if attempt == 1 else [*tries[:-1], attempt]
    assert tries[1:10] == [2, 2, 2, 1, 1, 1, 1, 1, 1]  # a silent device: probed once, no retries
    kinds = [(type(e).__name__, e.silent) for e in sim.events]
    assert kinds == [("BusChange", False), ("DeviceChange", True), ("BusChange", True), ("DeviceChange", False),
                     ("BusChange", False)]
    c = sim.sched.counts["a"]
    assert (c.failing, c.silent, c.interval_s) == (0, False, 1.0)


def test_a_dead_device_does_not_starve_the_others():
    """b never answers (3 tries of 0.5 s); a, c and d keep their 1 s cadence."""
    sim = bus(plan("a", 1), plan("b", 2, timeout_s=0.5, retries=2), plan("c", 3), plan("d", 4),
              backoff_max_s=30.0, b=dead)
    sim.run(120.5)
    for healthy in ("a", "c", "d"):
        polls = sim.polls(healthy)
        assert sim.sched.counts[healthy].answers == len(polls) >= 119, healthy  # b's 4.5 s of tries may cost one
        later = [t for t in polls if t >= 10]  # b is silent by then: probed once in a while
        assert len(later) >= 110, healthy
        gaps = [b - a for a, b in itertools.pairwise(later)]
        assert max(gaps) < 1.0 + 0.5 + 0.05, "at most one of b's probes in front of it"
    b = sim.sched.counts["b"]
    assert b.silent and b.polls <= 10 and b.answers == 0  # 3 polls, then probes at 2, 4, 8, 16, 30, 30... s
    assert b.requests == 3 * 3 + (b.polls - 3)


def test_an_overloaded_bus_serves_every_device_in_turn():
    """Four devices that want a poll every 0.1 s, each transaction taking 0.024 s: nobody is left out."""
    sim = bus(*(plan(f"d{i}", i, poll_s=0.05) for i in range(1, 5))).run(30)
    answers_ = [sim.sched.counts[f"d{i}"].answers for i in range(1, 5)]
    assert max(answers_) - min(answers_) <= 1 and sum(answers_) >= 30 / (LATENCY + GAP) - 4


def test_the_bus_is_silent_once_every_device_is_and_answers_again_after_a_round():
    sim = bus(plan("a", 1), plan("b", 2), plan("c", 3, poll_s=2.0),
              a=dead_between(10, 100), b=dead_between(10, 60), c=dead_between(12, 100), backoff_max_s=16.0)
    sim.run(9.5)
    assert [(type(e).__name__, e.silent) for e in sim.events] == [("BusChange", False)]  # the first round, at start
    assert sim.events[0].failing == ()
    sim.events.clear()
    sim.run(59.9)
    silent = [e for e in sim.events if isinstance(e, BusChange)]
    assert len(silent) == 1 and silent[0].silent and silent[0].failing == ("a", "b", "c")
    assert silent[0].at > 12 + 2 * 2  # c (every 2 s) fails its third poll last
    assert sim.sched.bus_silent
    sim.events.clear()
    sim.run(100.5)
    back = [e for e in sim.events if isinstance(e, BusChange)]
    assert len(back) == 1 and not back[0].silent and back[0].failing == ("a", "c")  # b is back, a and c not yet
    b_back = next(e.at for e in sim.events if isinstance(e, DeviceChange) and e.device == "b" and not e.silent)
    assert [d for t, d, _ in sim.starts if b_back <= t <= back[0].at] == ["a", "c"]  # polled at once, not after
    assert back[0].at - b_back < 1.0                                                # their backoff
    assert not sim.sched.bus_silent


def test_a_closed_port_fails_the_polls_that_fall_due():
    sim = bus(plan("a", 1), plan("b", 2, poll_s=2.0)).run(0.5)
    sched = sim.sched
    for now in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        due = sched.fail_due(now)
        assert due > now
    assert (sched.counts["a"].unsent, sched.counts["b"].unsent) == (4, 3)  # a at 1, 2, 3, then 5 (backing off)
    assert sched.counts["a"].silent and sched.counts["b"].silent and sched.bus_silent
    assert [e for e in sched.take_events() if isinstance(e, BusChange)] == [BusChange(True, 6.0, ("a", "b"),
                                                                                      ("a", "b"))]
    assert sched.counts["a"].polls == 1, "an unsent poll is no poll on the wire"
    sched.port_back(6.5)
    send = sched.next_action(6.5 + GAP)
    assert isinstance(send, Send) and send.device == "a", "back: polled at once, not at the end of the backoff"


def test_a_port_lost_mid_poll_fails_that_poll():
    sched = bus(plan("a", 1, requests=2)).sched
    send = sched.next_action(0.0)
    sched.on_response(0.02, Response(send.request, bytes(4), b""))
    sched.next_action(0.03)
    sched.abort(0.04)
    c = sched.counts["a"]
    assert (c.polls, c.unsent, c.failing, c.answers) == (1, 1, 1, 0)
    assert isinstance(sched.next_action(0.05), Wait)


def test_refused_bytes_are_counted_against_the_device_they_came_with():
    sched = bus(plan("a", 1)).sched
    sched.on_rejected("a", "garbage", 7)
    sched.on_rejected("a", "crc", 9)
    sched.on_rejected("a", "wrong_unit", 9)
    sched.on_rejected(None, "garbage", 3)
    c = sched.counts["a"]
    assert (c.garbage_bytes, c.bad_frames) == (16, 1)


def test_new_devices_keep_the_counts_of_those_that_stay():
    sim = bus(plan("a", 1), plan("b", 2)).run(3.5)
    counts_a = sim.sched.counts["a"]
    sim.plans = {"a": plan("a", 1, poll_s=0.5), "c": plan("c", 3)}
    sim.sched.replace(list(sim.plans.values()), sim.now)
    assert sim.sched.devices == ("a", "c") and sim.sched.counts["a"] is counts_a
    sim.behaviour["c"] = answers
    sim.run(5.6)
    assert counts_a.answers == 4 + 4 and sim.sched.counts["c"].answers == 3  # a at 4, 4.5, 5, 5.5; c at 3.5...


def test_calls_out_of_turn_are_refused():
    sched = bus(plan("a", 1)).sched
    with pytest.raises(RuntimeError, match="no request is outstanding"):
        sched.on_timeout(0.0)
    sched.next_action(0.0)
    with pytest.raises(RuntimeError, match="still outstanding"):
        sched.next_action(0.01)
    with pytest.raises(ValueError, match="silent_after"):
        BusScheduler([], char_s=0, gap_s=0, now=0, silent_after=0)
