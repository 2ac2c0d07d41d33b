"""Settings: a TOML file plus GATEWAY_* overrides; every problem reported at once (CONTRACT.md "Running")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, MqttEndpoint, Settings, load_settings, parse_mqtt_url


def write(tmp_path: Path, text: str, name: str = "gateway.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path | None, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ)
    assert info.value.problems, "a ConfigError must list its problems"
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def test_defaults_without_file_or_environment() -> None:
    s = load_settings(None, {})
    assert s == Settings()
    assert s.site == "site"
    assert s.mqtt.url == "mqtt://127.0.0.1:1883"
    assert s.mqtt.topic_prefix == "fm"
    assert (s.influx.url, s.influx.api, s.influx.db) == ("http://127.0.0.1:8086", "v1", "facility")
    assert s.api.bind == "127.0.0.1:8080"
    assert s.data_dir == Path("data")
    assert s.site_file is None
    assert s.ingest.max_skew_s == 300.0
    assert s.ingest.max_age_s == 7 * 86400.0
    assert s.ingest.dedupe_window_s == 3600.0
    assert s.mqtt.max_payload_bytes == 64 * 1024


def test_unrelated_environment_is_ignored() -> None:
    s = load_settings(None, {"PATH": "/usr/bin", "HOME": "/root", "GATEWAYX": "1", "MY_GATEWAY_SITE": "x"})
    assert s == Settings()


def test_values_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
site = "park1"
gateway_id = "gw-east"
[mqtt]
url = "mqtts://gw:pw@broker.example:8883"
[influx]
url = "http://influx.example:8086/"
db = "fm_park1"
batch_size = 100
[ingest]
max_skew_s = 60
[api]
bind = "0.0.0.0:9000"
[kinds.streetlight]
heartbeat_s = 120
""")
    s = load_settings(path, {})
    assert (s.site, s.gateway_id) == ("park1", "gw-east")
    assert s.mqtt.url == "mqtts://gw:pw@broker.example:8883"
    assert s.influx.url == "http://influx.example:8086"
    assert (s.influx.db, s.influx.batch_size) == ("fm_park1", 100)
    assert s.ingest.max_skew_s == 60.0
    assert s.api.bind == "0.0.0.0:9000"
    assert s.kinds["streetlight"].heartbeat_s == 120.0
    assert s.client_id == "fm-gateway-park1-gw-east"


ENV_OVERRIDES = [
    pytest.param({"GATEWAY_MQTT_URL": "mqtts://u:p@broker:8884"}, lambda s: s.mqtt.url, "mqtts://u:p@broker:8884",
                 id="GATEWAY_MQTT_URL"),
    pytest.param({"GATEWAY_INFLUX_URL": "https://influx.example"}, lambda s: s.influx.url, "https://influx.example",
                 id="GATEWAY_INFLUX_URL"),
    pytest.param({"GATEWAY_INFLUX_API": "v2", "GATEWAY_INFLUX_ORG": "acme", "GATEWAY_INFLUX_TOKEN": "t0k"},
                 lambda s: (s.influx.api, s.influx.org, s.influx.token), ("v2", "acme", "t0k"),
                 id="GATEWAY_INFLUX_API-ORG-TOKEN"),
    pytest.param({"GATEWAY_INFLUX_DB": "fm_b"}, lambda s: s.influx.db, "fm_b", id="GATEWAY_INFLUX_DB"),
    pytest.param({"GATEWAY_SITE": "park2"}, lambda s: s.site, "park2", id="GATEWAY_SITE"),
    pytest.param({"GATEWAY_DATA_DIR": "/var/lib/fm"}, lambda s: s.data_dir, Path("/var/lib/fm"),
                 id="GATEWAY_DATA_DIR"),
    pytest.param({"GATEWAY_API_BIND": "[::1]:0"}, lambda s: s.api.bind, "[::1]:0", id="GATEWAY_API_BIND"),
    pytest.param({"GATEWAY_GATEWAY_ID": "gw9"}, lambda s: s.gateway_id, "gw9", id="GATEWAY_GATEWAY_ID"),
    pytest.param({"GATEWAY_INGEST_MAX_SKEW_S": "12.5"}, lambda s: s.ingest.max_skew_s, 12.5,
                 id="GATEWAY_INGEST_MAX_SKEW_S"),
    pytest.param({"GATEWAY_INFLUX_VERIFY_TLS": "false"}, lambda s: s.influx.verify_tls, False,
                 id="GATEWAY_INFLUX_VERIFY_TLS"),
]


@pytest.mark.parametrize(("environ", "get", "expected"), ENV_OVERRIDES)
def test_environment_overrides_the_file(tmp_path: Path, environ: dict[str, str], get, expected) -> None:
    path = write(tmp_path, """
site = "park1"
gateway_id = "gw1"
data_dir = "/srv/fm"
[mqtt]
url = "mqtt://file-broker:1883"
[influx]
url = "http://file-influx:8086"
db = "from_file"
[ingest]
max_skew_s = 300
[api]
bind = "127.0.0.1:8080"
""")
    assert get(load_settings(path, environ)) == expected


def test_site_file_from_the_environment(tmp_path: Path) -> None:
    site = write(tmp_path, "[site]\nname = 'Park'\n", "site.toml")
    assert load_settings(None, {"GATEWAY_SITE_FILE": str(site)}).site_file == site


def test_site_file_that_does_not_exist(tmp_path: Path) -> None:
    [line] = problems_of(None, {"GATEWAY_SITE_FILE": str(tmp_path / "nope.toml")})
    assert line.startswith("GATEWAY_SITE_FILE: site_file: ")
    assert "no such file" in line


SINGLE_PROBLEMS = [
    pytest.param("", {"GATEWAY_NOPE": "1"}, "GATEWAY_NOPE: ", "unknown setting", id="unknown-env-var"),
    pytest.param("", {"GATEWAY_MQTT_NOPE": "1"}, "GATEWAY_MQTT_NOPE: ", "unknown", id="unknown-env-key"),
    pytest.param("[mqtt]\nbogus = 1\n", {}, "{file}: mqtt.bogus: ", "unknown key", id="unknown-file-key"),
    pytest.param("bogus = 1\n", {}, "{file}: bogus: ", "unknown key", id="unknown-top-level-key"),
    pytest.param("[nosuch]\nx = 1\n", {}, "{file}: nosuch: ", "unknown key", id="unknown-section"),
    pytest.param("", {"GATEWAY_MQTT_URL": "http://broker:1883"}, "GATEWAY_MQTT_URL: mqtt.url: ", "mqtt://",
                 id="bad-mqtt-url-env"),
    pytest.param('[influx]\nurl = "influx:8086"\n', {}, "{file}: influx.url: ", "http", id="bad-influx-url-file"),
    pytest.param("", {"GATEWAY_INFLUX_URL": "http://h:99999"}, "GATEWAY_INFLUX_URL: influx.url: ", "port",
                 id="bad-influx-port-env"),
    pytest.param('[ingest]\nmax_skew_s = "soon"\n', {}, "{file}: ingest.max_skew_s: ", "number",
                 id="threshold-not-a-number-file"),
    pytest.param("", {"GATEWAY_INGEST_DEDUPE_WINDOW_S": "1h"},
                 "GATEWAY_INGEST_DEDUPE_WINDOW_S: ingest.dedupe_window_s: ", "number",
                 id="threshold-not-a-number-env"),
    pytest.param("[kinds.streetlight]\nheartbeat_s = -5\n", {}, "{file}: kinds.streetlight.heartbeat_s: ", "0",
                 id="negative-heartbeat"),
    pytest.param("", {"GATEWAY_API_BIND": "8080"}, "GATEWAY_API_BIND: api.bind: ", "host:port", id="bind-no-host"),
    pytest.param("", {"GATEWAY_API_BIND": "localhost:http"}, "GATEWAY_API_BIND: api.bind: ", "host:port",
                 id="bind-port-not-a-number"),
    pytest.param('[api]\nbind = "0.0.0.0:70000"\n', {}, "{file}: api.bind: ", "host:port", id="bind-port-too-big"),
    pytest.param("", {"GATEWAY_INFLUX_API": "v3"}, "GATEWAY_INFLUX_API: influx.api: ", "v1", id="unknown-api"),
    pytest.param("", {"GATEWAY_SITE": "my park"}, "GATEWAY_SITE: site: ", "A-Z", id="site-not-a-segment"),
    pytest.param("", {"GATEWAY_SITE": "park\n"}, "GATEWAY_SITE: site: ", "A-Z", id="site-trailing-newline"),
    pytest.param("", {"GATEWAY_INFLUX_API": "v2", "GATEWAY_INFLUX_ORG": "acme"}, "influx.org / influx.token",
                 "required", id="v2-without-token"),
    pytest.param("[kinds.lamp]\nheartbeat_s = 5\n", {}, "kinds.lamp: ", "unknown sensor kind", id="unknown-kind"),
    pytest.param("", {"GATEWAY_MQTT_RECEIVE_MAXIMUM": "60000", "GATEWAY_INGEST_DEDUPE_MAX_KEYS": "100000"},
                 "ingest.dedupe_max_keys: ", "stored twice", id="dedupe-smaller-than-the-receive-window"),
    pytest.param("site = [\n", {}, "{file}: ", "not valid TOML", id="bad-toml"),
]


@pytest.mark.parametrize(("text", "environ", "prefix", "words"), SINGLE_PROBLEMS)
def test_one_problem_one_line_naming_the_setting(tmp_path: Path, text: str, environ: dict[str, str], prefix: str,
                                                 words: str) -> None:
    path = write(tmp_path, text)
    [line] = problems_of(path, environ)
    assert line.startswith(prefix.format(file=path)), line
    assert words in line
    assert "\n" not in line


def test_missing_config_file(tmp_path: Path) -> None:
    [line] = problems_of(tmp_path / "nope.toml", {})
    assert line == f"{tmp_path / 'nope.toml'}: no such configuration file"


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """
[mqtt]
bogus = 1
[influx]
api = "v2"
url = "ftp://influx"
[ingest]
max_skew_s = "soon"
""")
    problems = problems_of(path, {"GATEWAY_NOPE": "1", "GATEWAY_API_BIND": "nonsense", "PATH": "/bin"})
    expected_starts = [
        "GATEWAY_NOPE: ",
        f"{path}: mqtt.bogus: unknown key",
        f"{path}: influx.url: ",
        f"{path}: ingest.max_skew_s: ",
        "GATEWAY_API_BIND: api.bind: ",
        "influx.org / influx.token: ",
    ]
    for start in expected_starts:
        assert [p for p in problems if p.startswith(start)], f"no problem line starting {start!r} in {problems}"
    assert len(problems) == len(expected_starts), problems


def test_problem_lines_do_not_show_secrets() -> None:
    """A bad broker URL is reported without the password it carries (stderr goes to the journal)."""
    problems = problems_of(None, {"GATEWAY_MQTT_URL": "mqtt://gw:s3cr3t-pw@broker:99999"})
    assert problems[0].startswith("GATEWAY_MQTT_URL: mqtt.url: ")
    assert not [p for p in problems if "s3cr3t-pw" in p], problems


def test_secrets_from_files_of_their_own(tmp_path: Path) -> None:
    """The installer keeps the broker password and the InfluxDB token out of the settings file: the
    settings name files (root:fm-gateway 0640) whose first line is the secret, read when connecting."""
    (tmp_path / "pw").write_text("s3cr3t-pw\n")
    (tmp_path / "token").write_text("tok-123\r\nnotes after the first line\n")
    s = load_settings(None, {"GATEWAY_MQTT_URL": "mqtts://gw@broker",
                             "GATEWAY_MQTT_PASSWORD_FILE": str(tmp_path / "pw"), "GATEWAY_INFLUX_API": "v2",
                             "GATEWAY_INFLUX_ORG": "acme",
                             "GATEWAY_INFLUX_TOKEN_FILE": str(tmp_path / "token")})
    assert s.mqtt.endpoint() == MqttEndpoint("broker", 8883, True, "gw", "s3cr3t-pw")
    assert s.influx.api_token() == "tok-123"
    assert "s3cr3t-pw" not in repr(s) and "tok-123" not in repr(s)
    (tmp_path / "pw").write_text("rotated\n")  # a changed password is used at the next connection
    assert s.mqtt.endpoint().password == "rotated"
    assert load_settings(None, {"GATEWAY_INFLUX_TOKEN": "inline"}).influx.api_token() == "inline"


@pytest.mark.parametrize(("environ", "secret", "prefix", "words"), [
    pytest.param({"GATEWAY_MQTT_URL": "mqtt://gw@broker", "GATEWAY_MQTT_PASSWORD_FILE": "{missing}"}, None,
                 "GATEWAY_MQTT_PASSWORD_FILE: mqtt.password_file: ", "cannot read", id="no-such-file"),
    pytest.param({"GATEWAY_MQTT_URL": "mqtt://gw@broker", "GATEWAY_MQTT_PASSWORD_FILE": "{file}"}, "\n",
                 "GATEWAY_MQTT_PASSWORD_FILE: mqtt.password_file: ", "is empty", id="empty-file"),
    pytest.param({"GATEWAY_INFLUX_TOKEN_FILE": "{file}"}, b"\xff\xfe",
                 "GATEWAY_INFLUX_TOKEN_FILE: influx.token_file: ", "not UTF-8", id="not-text"),
    pytest.param({"GATEWAY_MQTT_URL": "mqtt://gw:s3cr3t-pw@broker", "GATEWAY_MQTT_PASSWORD_FILE": "{file}"},
                 "s3cr3t-pw", "mqtt.url / mqtt.password_file: ", "not in the URL too", id="password-in-both"),
    pytest.param({"GATEWAY_MQTT_URL": "mqtt://broker", "GATEWAY_MQTT_PASSWORD_FILE": "{file}"},
                 "s3cr3t-pw", "mqtt.url / mqtt.password_file: ", "give the user in the URL",
                 id="password-without-user"),
    pytest.param({"GATEWAY_INFLUX_TOKEN": "s3cr3t-pw", "GATEWAY_INFLUX_TOKEN_FILE": "{file}"},
                 "s3cr3t-pw", "influx.token / influx.token_file: ", "give one of them", id="token-in-both"),
])
def test_secret_file_problems(tmp_path: Path, environ: dict[str, str], secret: str | bytes | None, prefix: str,
                              words: str) -> None:
    file = tmp_path / "secret"
    if isinstance(secret, str):
        file.write_text(secret)
    elif secret is not None:
        file.write_bytes(secret)
    env = {k: v.format(file=file, missing=tmp_path / "missing") for k, v in environ.items()}
    [line] = problems_of(None, env)
    assert line.startswith(prefix) and words in line, line
    assert "s3cr3t-pw" not in line


# -- parse_mqtt_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        pytest.param("mqtt://broker", MqttEndpoint("broker", 1883, False, None, None), id="plain-default-port"),
        pytest.param("mqtts://broker", MqttEndpoint("broker", 8883, True, None, None), id="tls-default-port"),
        pytest.param("mqtt://10.0.0.5:1884", MqttEndpoint("10.0.0.5", 1884, False, None, None), id="port"),
        pytest.param("mqtts://gw:pw@broker.example:8884", MqttEndpoint("broker.example", 8884, True, "gw", "pw"),
                     id="tls-user-pass-port"),
        pytest.param("mqtt://gw@broker", MqttEndpoint("broker", 1883, False, "gw", None), id="user-only"),
        pytest.param("mqtt://g%40w:p%3Aw%2F@broker", MqttEndpoint("broker", 1883, False, "g@w", "p:w/"),
                     id="percent-encoded"),
        pytest.param("mqtt://[::1]:1883", MqttEndpoint("::1", 1883, False, None, None), id="ipv6"),
    ],
)
def test_parse_mqtt_url(url: str, endpoint: MqttEndpoint) -> None:
    assert parse_mqtt_url(url) == endpoint


@pytest.mark.parametrize(
    ("url", "words"),
    [
        pytest.param("http://broker:1883", "scheme", id="http-scheme"),
        pytest.param("tcp://broker:1883", "scheme", id="tcp-scheme"),
        pytest.param("broker:1883", "scheme", id="no-scheme"),
        pytest.param("", "scheme", id="empty"),
        pytest.param("mqtt://", "host", id="no-host"),
        pytest.param("mqtt://:1883", "host", id="port-only"),
        pytest.param("mqtt://broker:99999", "port", id="port-out-of-range"),
        pytest.param("mqtt://broker:abc", "port", id="port-not-a-number"),
    ],
)
def test_parse_mqtt_url_refuses(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_mqtt_url(url)


# -- the command line -----------------------------------------------------------------------------


def test_check_command_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    path = write(tmp_path, """
[mqtt]
bogus = 1
url = "http://broker"
[ingest]
max_skew_s = "soon"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    expected = problems_of(path, env)
    assert len(expected) == 3
    proc = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(path)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"config error: {p}" for p in expected]


def test_check_command_accepts_a_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'site = "park1"\n[influx]\nurl = "http://influx.example:8086"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    proc = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(path)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "configuration OK: site park1" in proc.stdout
