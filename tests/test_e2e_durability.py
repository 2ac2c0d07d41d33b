"""Nothing lost, nothing doubled: InfluxDB outages, a killed gateway, a restarted broker."""

from __future__ import annotations

import time

from tests.conftest import Publisher, wait_for


def lamp(i: int, t0: float) -> dict:
    return {"ts": t0 + i * 0.001, "seq": i, "on": True, "voltage_v": 220.0, "current_a": 0.4}


def stored(influxd, g) -> int:
    return influxd.count("streetlight", "current_a", g.env["GATEWAY_INFLUX_DB"])


def test_influxdb_outage_under_a_steady_stream(gateway_factory, own_influxd, publisher: Publisher):
    g = gateway_factory(GATEWAY_INFLUX_URL=own_influxd.url).start()
    t0 = time.time() - 100
    for i in range(300):
        publisher.send("fm/t/streetlight/lamp-1/reading", lamp(i, t0), wait=False)
    publisher.flush()
    wait_for(lambda: stored(own_influxd, g) == 300, what="the first 300 readings")
    own_influxd.stop()
    for i in range(300, 900):
        publisher.send("fm/t/streetlight/lamp-1/reading", lamp(i, t0), wait=False)
    publisher.flush()
    wait_for(lambda: g.health()["outbox"]["depth"] == 600, what="600 readings held in the outbox")
    wait_for(lambda: g.health()["influx"]["reachable"] is False, what="health to show InfluxDB unreachable")
    own_influxd.start()
    wait_for(lambda: g.health()["outbox"]["depth"] == 0, 60, what="the outbox to drain")
    assert stored(own_influxd, g) == 900
    assert 'gateway_influx_errors_total{cause="connection"}' in g.get("/metrics")


def test_gateway_killed_mid_stream_loses_and_doubles_nothing(gateway_factory, influxd, publisher: Publisher):
    """SIGKILL while readings stream in: the broker keeps the persistent session's messages,
    the outbox keeps what was taken, and redelivered messages are recognized."""
    g = gateway_factory().start()
    t0 = time.time() - 100
    n = 3000
    for i in range(n):
        publisher.send(f"fm/t/streetlight/lamp-{i % 10}/reading", lamp(i, t0), wait=False)
        if i == 1000:
            wait_for(lambda: stored(influxd, g) > 0 or g.health()["outbox"]["depth"] > 0, what="ingest under way")
            g.kill()
    publisher.flush()
    g.start()
    wait_for(lambda: stored(influxd, g) == n, 60, what=f"all {n} readings")
    time.sleep(1.0)  # a doubled point would show up by now: the forwarder flushes every 0.2 s
    assert stored(influxd, g) == n
    series = influxd.query('SELECT count("current_a") FROM streetlight GROUP BY device', g.env["GATEWAY_INFLUX_DB"])
    assert sorted(s["values"][0][1] for s in series) == [n // 10] * 10


def test_broker_restart_mid_stream(gateway_factory, own_mosquitto, influxd):
    g = gateway_factory(GATEWAY_MQTT_URL=own_mosquitto.url).start()
    pub = Publisher(own_mosquitto.port, client_id="lamp-publisher")
    try:
        t0 = time.time() - 100
        for i in range(200):
            pub.send("fm/t/streetlight/lamp-1/reading", lamp(i, t0), wait=False)
        pub.flush()
        wait_for(lambda: stored(influxd, g) == 200, what="readings before the restart")
        own_mosquitto.stop()
        wait_for(lambda: not g.health()["mqtt"]["connected"], what="the gateway to notice")
        own_mosquitto.start()
        wait_for(lambda: g.health()["mqtt"]["connected"], 30, what="the gateway to reconnect")
        for i in range(200, 400):
            pub.send("fm/t/streetlight/lamp-1/reading", lamp(i, t0), wait=False)
        pub.flush()
        wait_for(lambda: stored(influxd, g) == 400, 30, what="readings after the restart")
    finally:
        pub.close()


def test_sigterm_flushes_and_exits_zero(gateway_factory, influxd, publisher: Publisher):
    g = gateway_factory(GATEWAY_INFLUX_BATCH_AGE_S="30").start()
    t0 = time.time() - 100
    for i in range(50):
        publisher.send("fm/t/streetlight/lamp-1/reading", lamp(i, t0), wait=False)
    publisher.flush()
    wait_for(lambda: g.health()["outbox"]["depth"] == 50, what="readings waiting for a 30 s batch")
    assert g.stop() == 0
    assert stored(influxd, g) == 50
    assert "stopped cleanly" in g.log()
