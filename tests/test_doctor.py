"""``gateway doctor``: pure checks over what probes found, and the command against real servers it
finds running, then stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import doctor
from gateway.clock import ClockStatus
from gateway.config import InfluxSettings
from gateway.devservers import Influxd, Mosquitto
from gateway.outbox import Outbox
from tests.conftest import ROOT

GB = 1 << 30


def run_doctor(tmp_path: Path, config: Path | None = None, **env: str) -> tuple[int, dict[str, str]]:
    """The command in a process of its own; its lines by check name (``"FAIL mqtt: ..."`` under ``mqtt``)."""
    clock = tmp_path / "clock"
    if not clock.exists():
        clock.write_text("synced\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    base.update(GATEWAY_DATA_DIR=str(tmp_path / "data"), GATEWAY_CLOCK_SYNC_PROBE=f"file:{clock}", **env)
    args = [sys.executable, "-m", "gateway", "doctor", *(["--config", str(config)] if config else [])]
    p = subprocess.run(args, env=base, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.stderr == "", p.stderr
    lines = {line.split(":")[0].split(None, 1)[1]: line for line in p.stdout.splitlines()}
    return p.returncode, lines


# -- the command, against real servers ------------------------------------------------------------


def test_running_servers_are_ok_and_stopped_ones_fail(tmp_path: Path, own_mosquitto: Mosquitto,
                                                      own_influxd: Influxd) -> None:
    env = {"GATEWAY_MQTT_URL": own_mosquitto.url, "GATEWAY_INFLUX_URL": own_influxd.url}
    code, lines = run_doctor(tmp_path, **env)
    assert lines["mqtt"].startswith("OK   mqtt: broker") and "accepted" in lines["mqtt"], lines
    assert lines["influxdb"].startswith("WARN influxdb:") and "no database facility" in lines["influxdb"]
    assert lines["clock"].startswith("OK   clock")
    assert lines["data_dir"].startswith("OK   data_dir")
    assert code == 0, lines
    own_influxd.query('CREATE DATABASE "facility"')
    code, lines = run_doctor(tmp_path, **env)
    assert lines["influxdb"].startswith("OK   influxdb:") and "default retention autogen" in lines["influxdb"]
    assert code == 0

    own_mosquitto.stop()
    own_influxd.stop()
    code, lines = run_doctor(tmp_path, **env)
    assert code == 1
    assert lines["mqtt"].startswith(f"FAIL mqtt: broker {own_mosquitto.url} not reachable"), lines
    assert "start the broker" in lines["mqtt"]
    assert lines["influxdb"].startswith(f"FAIL influxdb: {own_influxd.url} not reachable"), lines


def test_a_refused_login_says_so_without_the_password(tmp_path: Path, secure_mosquitto: Mosquitto,
                                                      site_tls: dict[str, Path], own_influxd: Influxd) -> None:
    url = f"mqtts://gw:not-the-password@localhost:{secure_mosquitto.port}"
    code, lines = run_doctor(tmp_path, GATEWAY_MQTT_URL=url, GATEWAY_MQTT_CA_FILE=str(site_tls["ca"]),
                             GATEWAY_INFLUX_URL=own_influxd.url)
    assert code == 1
    assert lines["mqtt"].startswith("FAIL mqtt: broker mqtts://gw:***@localhost:"), lines
    assert "refused the login: not authorized" in lines["mqtt"] or "bad user name or password" in lines["mqtt"]
    assert "not-the-password" not in "".join(lines.values())
    code, lines = run_doctor(tmp_path, GATEWAY_MQTT_URL=url.replace("not-the-password", "gw-secret"),
                             GATEWAY_MQTT_CA_FILE=str(site_tls["ca"]), GATEWAY_INFLUX_URL=own_influxd.url)
    assert lines["mqtt"].startswith("OK   mqtt"), lines
    (tmp_path / "mqtt-password").write_text("gw-secret\n")  # as installed: the password in a file of its own
    code, lines = run_doctor(tmp_path, GATEWAY_MQTT_URL=url.replace(":not-the-password", ""),
                             GATEWAY_MQTT_PASSWORD_FILE=str(tmp_path / "mqtt-password"),
                             GATEWAY_MQTT_CA_FILE=str(site_tls["ca"]), GATEWAY_INFLUX_URL=own_influxd.url)
    assert lines["mqtt"].startswith("OK   mqtt"), lines


def test_an_unsynced_clock_and_a_missing_serial_port(tmp_path: Path, own_mosquitto: Mosquitto,
                                                     own_influxd: Influxd) -> None:
    (tmp_path / "clock").write_text("unsynced\n")
    pty, tty = os.openpty()
    try:
        config = tmp_path / "gateway.toml"
        config.write_text(f'[[serial]]\nport = "/dev/serial/by-id/usb-no-such-adapter"\nmode = "json-lines"\n\n'
                          f'[[serial]]\nport = "{os.ttyname(tty)}"\nmode = "json-lines"\n')
        env = {"GATEWAY_MQTT_URL": own_mosquitto.url, "GATEWAY_INFLUX_URL": own_influxd.url}
        code, lines = run_doctor(tmp_path, config, **env)
        assert code == 1
        missing = lines["serial /dev/serial/by-id/usb-no-such-adapter"]
        assert missing.startswith("FAIL") and "no such device" in missing and "/dev/serial/by-id" in missing
        assert lines[f"serial {os.ttyname(tty)}"].startswith("OK"), lines
        assert lines["clock"].startswith("WARN clock:") and "says unsynced" in lines["clock"]
        code, lines = run_doctor(tmp_path, config, GATEWAY_CLOCK_REQUIRE_SYNC="true", **env)
        assert lines["clock"].startswith("FAIL clock:") and "holds SLA escalations" in lines["clock"]
    finally:
        os.close(pty)
        os.close(tty)


def test_the_outbox_is_read_without_being_touched(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path, 10_000_000)
    box.commit([(1000.0, "m f=1 1"), (2000.0, "m f=2 2")], [], [])
    box.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    a = doctor.probe_outbox(path)
    assert (a.exists, a.depth, a.oldest, a.error) == (True, 2, 1000.0, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert doctor.probe_outbox(tmp_path / "none.db") == doctor.OutboxAnswer(False)
    box = Outbox(path, 10_000_000)  # a running gateway: its WAL holds what is not in the main file yet
    try:
        box.commit([(500.0, "m f=0 0")], [], [])
        a = doctor.probe_outbox(path)
        assert (a.depth, a.oldest, a.error) == (3, 500.0, None)
    finally:
        box.close()


# -- the checks, pure ------------------------------------------------------------------------------


def test_exit_code() -> None:
    ok, warn, fail = (doctor.Check("x", s, "d") for s in (doctor.OK, doctor.WARN, doctor.FAIL))
    assert doctor.exit_code([ok, warn]) == 0 and doctor.exit_code([ok, fail, warn]) == 1
    assert fail.line() == "FAIL x: d" and doctor.Check("x", "OK", "d", "do this").line() == "OK   x: d -> do this"


@pytest.mark.parametrize(("free", "total", "status"), [
    (100 * GB, 200 * GB, "OK"), (5 * GB, 100 * GB, "WARN"), (int(0.5 * GB), 4 * GB, "WARN"),
    (int(0.5 * GB), 200 * GB, "FAIL"), (50 << 20, 2 * GB, "FAIL"),
])
def test_disk(free: int, total: int, status: str) -> None:
    assert doctor.check_disk(Path("/data"), doctor.DiskAnswer(free, total)).status == status


def test_outbox_age_and_bound() -> None:
    p, now = Path("outbox.db"), 10_000.0
    assert doctor.check_outbox(p, doctor.OutboxAnswer(True, 0, 0, None), now, 1e6).status == "OK"
    fresh = doctor.check_outbox(p, doctor.OutboxAnswer(True, 5, 100, now - 2), now, 1e6)
    assert fresh.status == "OK" and "5 readings waiting" in fresh.detail and "2 s ago" in fresh.detail
    stale = doctor.check_outbox(p, doctor.OutboxAnswer(True, 5, 100, now - 3600), now, 1e6)
    assert stale.status == "WARN" and "60 min" in stale.detail and "InfluxDB is not taking" in stale.fix
    full = doctor.check_outbox(p, doctor.OutboxAnswer(True, 5, 900_000, now - 1), now, 1e6)
    assert full.status == "WARN" and "near its bound" in full.detail


def test_port_permissions_name_the_group() -> None:
    c = doctor.check_port("/dev/ttyUSB0", doctor.PortAnswer(True, False, "dialout"), "fm")
    assert c.status == "FAIL" and "sudo usermod -aG dialout fm" in c.fix
    assert doctor.check_port("rfc2217://h:1", None, "fm").status == "OK"


def test_clock_and_broker_words() -> None:
    unsynced = ClockStatus(False, "adjtimex", "the kernel says the clock is not NTP-synchronised")
    assert doctor.check_clock(unsynced, require_sync=True).status == "FAIL"
    assert doctor.check_clock(unsynced, require_sync=False).status == "WARN"
    refused = doctor.check_broker("mqtt://u:pw@h:1883", doctor.BrokerAnswer(refused="bad user name or password"))
    assert refused.status == "FAIL" and "pw" not in refused.detail.replace("password", "")
    assert "check the user and password" in refused.fix


def test_influx_retention_words() -> None:
    s = InfluxSettings()
    a = doctor.InfluxAnswer(databases=("facility",), retention=(("autogen", "0s", True),))
    assert "keeps everything (infinite)" in doctor.check_influx(s, a).detail
    a = doctor.InfluxAnswer(databases=("facility",), retention=(("autogen", "0s", False), ("year", "8760h0m0s", True)))
    assert "default retention year keeps 8760h0m0s" in doctor.check_influx(s, a).detail
    assert doctor.check_influx(s, doctor.InfluxAnswer(auth_error="HTTP 401: x")).status == "FAIL"


def test_data_dir(tmp_path: Path) -> None:
    assert doctor.probe_dir(tmp_path) == doctor.DirAnswer(True, True)
    assert doctor.probe_dir(tmp_path / "new") == doctor.DirAnswer(False, True)
    assert list(tmp_path.iterdir()) == []  # the probe's file is gone, the folder not made
    c = doctor.check_dir(tmp_path, doctor.DirAnswer(True, False, "Read-only file system"), "fm")
    assert c.status == "FAIL" and "chown fm" in c.fix
