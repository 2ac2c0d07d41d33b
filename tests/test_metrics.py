"""The Prometheus text rendering of the gateway's counters, histogram and gauges."""

from __future__ import annotations

import re

from gateway.metrics import LATENCY_BUCKETS, Metrics

SAMPLE = re.compile(r'^([a-z_]+)(\{[a-z]+="[^"]*"\})? (-?[0-9.e+]+|\+Inf|NaN)$')


def families(text: str) -> dict[str, str]:
    """family name -> its TYPE, checking every HELP has its TYPE right after it."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert lines[i + 1].startswith(f"# TYPE {name} "), lines[i + 1]
            assert name not in out, f"family {name} twice"
            out[name] = lines[i + 1].split()[3]
    return out


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        key = m.group(1) + (m.group(2) or "")
        assert key not in out, f"sample {key} twice"
        out[key] = float(m.group(3))
    return out


def busy() -> Metrics:
    m = Metrics()
    m.received = 10
    m.accepted["streetlight"] += 6
    m.accepted["checkpoint"] += 1
    m.rejected["bad_json"] += 2
    m.rejected["too_old"] += 1
    m.duplicates = 3
    m.flagged["late"] += 4
    m.flagged["clock_skew"] += 1
    m.written = 7
    m.influx_errors["http_5xx"] += 2
    m.observe_write(0.02)
    m.observe_write(3.0)
    m.gauge("gateway_outbox_depth", "Readings waiting for InfluxDB.", lambda: 42)
    return m


def test_families_and_types() -> None:
    text = busy().render()
    assert text.endswith("\n")
    assert families(text) == {
        "gateway_readings_received_total": "counter",
        "gateway_readings_accepted_total": "counter",
        "gateway_readings_rejected_total": "counter",
        "gateway_readings_duplicate_total": "counter",
        "gateway_readings_flagged_total": "counter",
        "gateway_influx_points_written_total": "counter",
        "gateway_influx_errors_total": "counter",
        "gateway_influx_write_seconds": "histogram",
        "gateway_outbox_depth": "gauge",
    }


def test_values_and_labels() -> None:
    s = samples(busy().render())
    assert s["gateway_readings_received_total"] == 10
    assert s['gateway_readings_accepted_total{kind="streetlight"}'] == 6
    assert s['gateway_readings_accepted_total{kind="checkpoint"}'] == 1
    assert s['gateway_readings_rejected_total{reason="bad_json"}'] == 2
    assert s['gateway_readings_rejected_total{reason="too_old"}'] == 1
    assert s["gateway_readings_duplicate_total"] == 3
    assert s['gateway_readings_flagged_total{flag="late"}'] == 4
    assert s['gateway_readings_flagged_total{flag="clock_skew"}'] == 1
    assert s["gateway_influx_points_written_total"] == 7
    assert s['gateway_influx_errors_total{cause="http_5xx"}'] == 2
    assert s["gateway_outbox_depth"] == 42


def test_histogram_is_cumulative() -> None:
    s = samples(busy().render())
    buckets = [s[f'gateway_influx_write_seconds_bucket{{le="{b}"}}'] for b in LATENCY_BUCKETS]
    assert buckets == sorted(buckets)  # cumulative: never decreasing
    assert s['gateway_influx_write_seconds_bucket{le="0.01"}'] == 0
    assert s['gateway_influx_write_seconds_bucket{le="0.025"}'] == 1
    assert s['gateway_influx_write_seconds_bucket{le="2.5"}'] == 1
    assert s['gateway_influx_write_seconds_bucket{le="5.0"}'] == 2
    assert s['gateway_influx_write_seconds_bucket{le="+Inf"}'] == 2
    assert s["gateway_influx_write_seconds_count"] == 2
    assert s["gateway_influx_write_seconds_sum"] == 3.02


def test_fresh_metrics_render_zeroes_and_no_labelled_samples() -> None:
    text = Metrics().render()
    s = samples(text)
    assert s["gateway_readings_received_total"] == 0
    assert s["gateway_influx_write_seconds_count"] == 0
    assert s['gateway_influx_write_seconds_bucket{le="+Inf"}'] == 0
    assert not [k for k in s if "kind=" in k or "reason=" in k or "cause=" in k]
    assert "gateway_outbox_depth" not in families(text)


def test_gauges_are_read_at_render_time() -> None:
    m = Metrics()
    depth = [1]
    m.gauge("gateway_outbox_depth", "Readings waiting for InfluxDB.", lambda: depth[0])
    assert samples(m.render())["gateway_outbox_depth"] == 1
    depth[0] = 1_234_567  # a deep outbox, counted exactly (not rounded to 6 digits)
    assert samples(m.render())["gateway_outbox_depth"] == 1_234_567
