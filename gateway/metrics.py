"""Counters and a latency histogram, rendered in the Prometheus text format.

Each counter is incremented by the one thread that owns it, so plain integers under
the GIL are enough; no client library is needed for a dozen series.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.received = 0
        self.accepted: dict[str, int] = defaultdict(int)  # by kind
        self.rejected: dict[str, int] = defaultdict(int)  # by reason
        self.duplicates = 0
        self.flagged: dict[str, int] = defaultdict(int)  # late, clock_skew
        self.written = 0
        self.influx_errors: dict[str, int] = defaultdict(int)  # by cause
        self.write_buckets = [0] * len(LATENCY_BUCKETS)
        self.write_count = 0
        self.write_sum = 0.0
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        #: Labelled families read when rendered: name -> (type, help, () -> [('{label="v"}', value)]).
        self.families: dict[str, tuple[str, str, Callable[[], list[tuple[str, float]]]]] = {}

    def observe_write(self, seconds: float) -> None:
        self.write_count += 1
        self.write_sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.write_buckets[i] += 1

    def gauge(self, name: str, help_text: str, fn: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, fn)

    def series(self, name: str, kind: str, help_text: str, fn: Callable[[], list[tuple[str, float]]]) -> None:
        """A family of labelled series (one per serial port, say); ``fn`` gives (labels, value) pairs."""
        self.families[name] = (kind, help_text, fn)

    def render(self) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("gateway_readings_received_total", "counter", "Messages received from devices.")
        out.append(f"gateway_readings_received_total {self.received}")
        family("gateway_readings_accepted_total", "counter", "Readings and taps accepted, by kind.")
        for kind, n in sorted(self.accepted.items()):
            out.append(f'gateway_readings_accepted_total{{kind="{kind}"}} {n}')
        family("gateway_readings_rejected_total", "counter", "Messages dead-lettered, by reason.")
        for reason, n in sorted(self.rejected.items()):
            out.append(f'gateway_readings_rejected_total{{reason="{reason}"}} {n}')
        family("gateway_readings_duplicate_total", "counter", "Repeats of a message already stored.")
        out.append(f"gateway_readings_duplicate_total {self.duplicates}")
        family("gateway_readings_flagged_total", "counter", "Readings stored with a flag.")
        for flag, n in sorted(self.flagged.items()):
            out.append(f'gateway_readings_flagged_total{{flag="{flag}"}} {n}')
        family("gateway_influx_points_written_total", "counter", "Points InfluxDB accepted.")
        out.append(f"gateway_influx_points_written_total {self.written}")
        family("gateway_influx_errors_total", "counter", "Failed InfluxDB writes, by cause.")
        for cause, n in sorted(self.influx_errors.items()):
            out.append(f'gateway_influx_errors_total{{cause="{cause}"}} {n}')
        family("gateway_influx_write_seconds", "histogram", "Time of one InfluxDB batch write.")
        for bound, n in zip(LATENCY_BUCKETS, self.write_buckets, strict=True):
            out.append(f'gateway_influx_write_seconds_bucket{{le="{bound}"}} {n}')
        out.append(f'gateway_influx_write_seconds_bucket{{le="+Inf"}} {self.write_count}')
        out.append(f"gateway_influx_write_seconds_sum {self.write_sum:.6f}")
        out.append(f"gateway_influx_write_seconds_count {self.write_count}")
        for name, (help_text, fn) in sorted(self.gauges.items()):
            family(name, "gauge", help_text)
            value = fn()
            out.append(f"{name} {int(value) if float(value).is_integer() else value}")
        for name, (kind, help_text, fn) in sorted(self.families.items()):
            family(name, kind, help_text)
            for labels, value in fn():
                out.append(f"{name}{labels} {int(value) if float(value).is_integer() else value}")
        return "\n".join(out) + "\n"
