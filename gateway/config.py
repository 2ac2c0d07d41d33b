"""Gateway settings: one TOML file plus ``GATEWAY_<SECTION>_<KEY>`` environment overrides.

Everything is validated at start-up and every problem is reported at once, one line
each, naming the setting (and the variable or file it came from), so an operator fixes
a bad configuration in one pass instead of one restart per mistake.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.problems import Problems
from gateway.webhooks import WebhookSettings

SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ENV_PREFIX = "GATEWAY_"
SECRET_KEYS = frozenset(("token", "password", "metrics_token"))
_URL_SECRET = re.compile(r"//([^:/@]*):[^@]*@")


def check_segment(v: str) -> str:
    """A topic segment, or an id that may become one (assets, devices, routes, commitments)."""
    if not SEGMENT.fullmatch(v):
        raise ValueError("must be 1-64 of A-Z a-z 0-9 _ . -")
    return v


Segment = Annotated[str, AfterValidator(check_segment)]


def read_secret(path: Path) -> str:
    """A password or token kept in a file of its own (root:fm-gateway 0640, or a systemd credential), so
    that the settings file can be shown and copied without it. Its first line, without the line break."""
    return path.read_text(encoding="utf-8").partition("\n")[0].rstrip("\r")


def _check_secret_file(v: Path | None) -> Path | None:
    if v is None:
        return v
    try:
        secret = read_secret(v)
    except OSError as exc:
        raise ValueError(f"cannot read {v}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{v} is not UTF-8 text") from None
    if not secret:
        raise ValueError(f"{v} is empty: its first line is the secret")
    return v


SecretFile = Annotated[Path | None, AfterValidator(_check_secret_file)]


class ConfigError(Problems):
    """The configuration is unusable."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    """Broker connection. ``mqtts://`` turns TLS on."""

    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = ""  # default: fm-gateway-{site}-{gateway_id}
    topic_prefix: str = "fm"
    protocol: Literal["5", "3.1.1"] = "5"
    receive_maximum: int = Field(1000, ge=1, le=65535)
    session_expiry_s: int = Field(7 * 86400, ge=0)
    keepalive_s: int = Field(30, ge=5, le=3600)
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)
    max_payload_bytes: int = Field(64 * 1024, ge=64)
    #: The password of the URL's user, read from this file rather than written into the URL.
    password_file: SecretFile = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False

    def endpoint(self) -> MqttEndpoint:
        """Where to connect, and as whom: the URL with ``password_file``'s password."""
        ep = parse_mqtt_url(self.url)
        if self.password_file is None:
            return ep
        return dataclasses.replace(ep, password=read_secret(self.password_file))

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parse_mqtt_url(v)
        return v

    @field_validator("topic_prefix", "client_id")
    @classmethod
    def _check_segment(cls, v: str) -> str:
        if v and not SEGMENT.fullmatch(v):
            raise ValueError("must be 1-64 of A-Z a-z 0-9 _ . -")
        return v

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _check_file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """``mqtt://user:pass@host:port`` or ``mqtts://...``; raises ValueError with a readable reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"scheme must be mqtt:// or mqtts://, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise ValueError("no host in URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class InfluxSettings(_Section):
    """Where readings go. ``v1``: InfluxDB 1.x ``/write``; ``v2``: influxdb-client (org, bucket, token)."""

    url: str = "http://127.0.0.1:8086"
    api: Literal["v1", "v2"] = "v1"
    db: str = "facility"
    org: str = ""
    token: str = ""
    #: The token read from this file instead (the installer's choice: no secret in the settings file).
    token_file: SecretFile = None
    username: str = ""
    password: str = ""
    batch_size: int = Field(5000, ge=1, le=100_000)
    batch_age_s: float = Field(1.0, gt=0, le=3600)
    timeout_s: float = Field(10.0, gt=0)
    retry_min_s: float = Field(0.5, gt=0)
    retry_max_s: float = Field(60.0, gt=0)
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return v.rstrip("/")

    @field_validator("db")
    @classmethod
    def _check_db(cls, v: str) -> str:
        if not v or '"' in v or "\n" in v:
            raise ValueError("must be a non-empty name without quotes")
        return v

    def api_token(self) -> str:
        """The token to send: ``token``, or the first line of ``token_file``."""
        return read_secret(self.token_file) if self.token_file is not None else self.token


class OutboxSettings(_Section):
    """The durable store-and-forward queue between MQTT and InfluxDB."""

    max_mb: float = Field(256.0, gt=0)
    # FULL fsyncs every commit (survives power loss); NORMAL survives a process crash only.
    synchronous: Literal["full", "normal"] = "full"


class IngestSettings(_Section):
    """Timestamp and dedupe policy of CONTRACT.md."""

    max_skew_s: float = Field(300.0, ge=0)
    max_age_s: float = Field(7 * 86400.0, gt=0)
    dedupe_window_s: float = Field(3600.0, ge=0)
    dedupe_max_keys: int = Field(100_000, ge=10_000)  # bounds memory: about 30 MB at 100,000
    heartbeat_misses: int = Field(3, ge=1)
    dead_letter_payload_bytes: int = Field(2048, ge=16)
    dead_letter_keep: int = Field(100_000, ge=100)


class ApiSettings(_Section):
    bind: str = "127.0.0.1:8080"
    # The installer's bootstrap token (an admin that is no user); empty: generated into the data folder
    # (<data_dir>/api-token) at the first start. `gateway token --revoke` revokes it.
    token: str = ""
    # The first admin, made at the first start (no user yet). Its password comes from a file, never from
    # this configuration; without the file a one-time password is written to <data_dir>/admin-password.
    admin_user: str = "admin"
    admin_password_file: Path | None = None
    # /metrics for scrapers: this token, or loopback clients when empty.
    metrics_token: str = ""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @field_validator("bind")
    @classmethod
    def _check_bind(cls, v: str) -> str:
        parse_bind(v)
        return v

    @field_validator("admin_user")
    @classmethod
    def _check_admin_user(cls, v: str) -> str:
        from gateway.auth import NAME  # local: config is imported by everything

        if not NAME.fullmatch(v.strip()):
            raise ValueError("must be 1-64 characters, no control characters or slashes")
        return v.strip()


def parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8080 (port 0 picks a free one)")
    return host.strip("[]"), int(port)


class ClockSettings(_Section):
    """Whether time-based decisions (SLA escalations, missed rounds, silent devices) wait for a clock that is
    known to be right: a Pi has no real-time clock, and one that boots without network starts at a wrong time."""

    #: Hold those decisions while the clock is not synchronised (readings are still taken and stored). Off by
    #: default, so a test machine or a laptop whose kernel is not NTP-synchronised runs as before; the
    #: Raspberry Pi installer turns it on.
    require_sync: bool = False
    #: How synchronisation is known: ``adjtimex`` (the kernel's NTP status, which chrony and
    #: systemd-timesyncd keep), or ``file:/path`` (a file whose first word is ``synced``; for tests, and for a
    #: site whose own check writes it).
    sync_probe: str = "adjtimex"

    @field_validator("sync_probe")
    @classmethod
    def _check_probe(cls, v: str) -> str:
        if v != "adjtimex" and not (v.startswith("file:") and len(v) > len("file:")):
            raise ValueError("must be adjtimex or file:/path/to/file")
        return v


class KindSettings(_Section):
    """Per sensor kind: how often its devices report (for the silent-device watch), and how long a
    fault must persist before it opens (and be gone before it clears)."""

    heartbeat_s: float | None = Field(None, gt=0)
    debounce_n: int | None = Field(None, ge=1)
    debounce_s: float | None = Field(None, ge=0)


SERIAL_MODES = ("nfc-lines", "json-lines", "modbus-rtu")


class SerialPortSettings(_Section):
    """One serial port (CONTRACT.md "Serial"): a reader printing tag UIDs, a concentrator printing JSON lines,
    or an RS-485 bus of Modbus RTU slaves that the gateway polls (their register maps are in the site file).

    ``port`` is a device path, best a stable name that survives re-plugging
    (``/dev/serial/by-id/usb-...``), or a pyserial URL (``rfc2217://host:port``, ``socket://``).
    It need not exist at start-up: a missing port is opened once it appears.
    """

    port: str
    mode: Literal["nfc-lines", "json-lines", "modbus-rtu"]
    baudrate: int = Field(9600, gt=0, le=4_000_000)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: Literal[1, 1.5, 2] = 1
    #: The reader id of an nfc-lines port: its taps are from this reader (a segment, like in a tap topic).
    reader: str | None = None
    #: A longer line is refused (dead-lettered ``too_large``) and skipped up to its line end.
    max_line: int = Field(4096, ge=16, le=1 << 20)
    #: Seconds without a byte after which a line still missing its end is refused as partial
    #: (a reader cut off mid-line), so that it cannot swallow the next line.
    timeout: float = Field(1.0, gt=0, le=60)
    #: The name of a modbus-rtu bus: the site file's [[modbus]] devices name it, and its fault ticket is
    #: ``bus:<name>``.
    bus: str | None = None
    #: A modbus-rtu device that failed this many polls in a row is silent (probed with backoff); all of a
    #: bus's devices silent is a bus fault.
    silent_after: int = Field(3, ge=1, le=100)
    #: The longest a silent modbus-rtu device waits between probes.
    backoff_max_s: float = Field(60.0, gt=0, le=3600)

    @field_validator("port")
    @classmethod
    def _check_port(cls, v: str) -> str:
        if not v.strip() or "\n" in v or "\x00" in v:
            raise ValueError("must be a device path (e.g. /dev/serial/by-id/usb-...) or a pyserial URL")
        return v

    @field_validator("mode", mode="before")
    @classmethod
    def _check_mode(cls, v: object) -> object:
        if v not in SERIAL_MODES:
            raise ValueError(f"must be one of {', '.join(SERIAL_MODES)}")
        return v

    @field_validator("parity", mode="before")
    @classmethod
    def _check_parity(cls, v: object) -> object:
        return v.upper()[:1] if isinstance(v, str) and v.lower() in ("n", "e", "o", "m", "s", "none", "even",
                                                                      "odd", "mark", "space") else v

    @field_validator("reader")
    @classmethod
    def _check_reader(cls, v: str | None) -> str | None:
        if v is not None and not SEGMENT.fullmatch(v):
            raise ValueError("must be 1-64 of A-Z a-z 0-9 _ . - (it is the reader's id)")
        return v

    @field_validator("bus")
    @classmethod
    def _check_bus(cls, v: str | None) -> str | None:
        if v is not None and not SEGMENT.fullmatch(v):
            raise ValueError("must be 1-64 of A-Z a-z 0-9 _ . - (the site file's devices name it)")
        return v

    @model_validator(mode="after")
    def _check_reader_for_mode(self) -> SerialPortSettings:
        if self.mode == "nfc-lines" and self.reader is None:
            raise ValueError(f"port {self.port}: reader is required for mode nfc-lines (the id its taps are from)")
        if self.mode != "nfc-lines" and self.reader is not None:
            raise ValueError(f"port {self.port}: reader is only for mode nfc-lines ({self.mode} name their device)")
        if self.mode == "modbus-rtu" and self.bus is None:
            raise ValueError(f"port {self.port}: bus is required for mode modbus-rtu (the name the site file's "
                             f"[[modbus]] devices give)")
        if self.mode != "modbus-rtu" and self.bus is not None:
            raise ValueError(f"port {self.port}: bus is only for mode modbus-rtu")
        return self


class Settings(_Section):
    site: str = "site"
    gateway_id: str = "gw1"
    data_dir: Path = Path("data")
    site_file: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``auto``: structured records to journald when stderr is the journal (under systemd), else text lines
    #: on stderr; ``journal`` or ``text`` force one.
    log_format: Literal["auto", "journal", "text"] = "auto"
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    outbox: OutboxSettings = OutboxSettings()
    ingest: IngestSettings = IngestSettings()
    api: ApiSettings = ApiSettings()
    clock: ClockSettings = ClockSettings()
    kinds: dict[str, KindSettings] = {}
    #: Where ticket and asset events are sent: group bots (WeCom, DingTalk, Feishu) or plain JSON.
    webhooks: list[WebhookSettings] = []
    #: Serial ports ([[serial]] tables): NFC readers and concentrators on RS-485, UART or USB.
    serial: list[SerialPortSettings] = []

    @field_validator("webhooks")
    @classmethod
    def _check_hook_names(cls, v: list[WebhookSettings]) -> list[WebhookSettings]:
        names = [h.name for h in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"webhook names must be unique: {', '.join(twice)}")
        return v

    @field_validator("site", "gateway_id")
    @classmethod
    def _check_segment(cls, v: str) -> str:
        if not SEGMENT.fullmatch(v):
            raise ValueError("must be 1-64 of A-Z a-z 0-9 _ . - (it is a topic segment)")
        return v

    @field_validator("site_file")
    @classmethod
    def _check_site_file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"fm-gateway-{self.site}-{self.gateway_id}"


_TOP_LEVEL = {name for name, f in Settings.model_fields.items() if not isinstance(f.default, BaseModel)} - {
    "kinds", "webhooks", "serial"
}
_SECTIONS = {name for name, f in Settings.model_fields.items() if isinstance(f.default, BaseModel)}


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str], list[str]]:
    """Map ``GATEWAY_X_Y`` variables onto settings paths; unknown variables are problems."""
    tree: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    problems: list[str] = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        path: tuple[str, ...] | None = None
        if rest in _TOP_LEVEL:
            path = (rest,)
        else:
            section, _, key = rest.partition("_")
            if section in _SECTIONS and key in type(getattr(Settings(), section)).model_fields:
                path = (section, key)
        if path is None:
            problems.append(f"{var}: unknown setting (no such key in the configuration)")
            continue
        node = tree
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = environ[var]
        origin[path] = var
    return tree, origin, problems


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def format_validation_errors(
    exc: ValidationError, origin: Mapping[tuple[str, ...], str], source: str
) -> list[str]:
    """One line per problem: where it came from, the dotted setting, what is wrong."""
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        where = origin.get(loc, source)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        given = err.get("input")
        shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(given, dict) else f" (got {given!r})"
        if loc and loc[-1] in SECRET_KEYS:
            shown = ""
        elif isinstance(given, str) and "@" in given:
            masked = _URL_SECRET.sub(r"//\1:***@", given)
            shown = f" (got {masked!r})"
        lines.append(f"{where}: {'.'.join(loc) or '(top)'}: {msg}{shown}")
    return lines


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's contents, or ConfigError with the one line a person needs (``what``: "site file")."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such {what}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the file (if any), apply environment overrides, validate; raise ConfigError listing all problems."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    data: dict[str, Any] = {}
    source = str(path) if path else "defaults"
    if path is not None:
        try:
            data = read_toml(path, "configuration file")
        except ConfigError as exc:
            problems += exc.problems
    env_tree, origin, env_problems = _env_overrides(environ)
    problems += env_problems
    merged = _merge(data, env_tree)
    try:
        problems += _cross_checks(Settings.model_validate(merged))
    except ValidationError as exc:
        problems += format_validation_errors(exc, origin, source)
        rest = without_invalid(merged, exc)
        with contextlib.suppress(ValidationError):  # cross-check what is valid: every problem in one pass
            problems += _cross_checks(Settings.model_validate(rest))
    if problems:
        raise ConfigError(problems)
    return Settings.model_validate(merged)


def without_invalid(data: dict[str, Any], exc: ValidationError) -> dict[str, Any]:
    """A copy of ``data`` without the values (or list items) that failed validation."""
    import copy

    out = copy.deepcopy(data)
    for err in exc.errors():
        loc = err["loc"][:-1] if err["type"] == "missing" else err["loc"]  # drop what lacks a required key
        node: Any = out
        for i, part in enumerate(loc):
            last = i == len(loc) - 1 or (isinstance(node, list) and isinstance(part, int))
            if isinstance(node, dict) and part in node and not last:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node[part] = None  # removed below: keeps later indices of this error list valid
                break
            elif isinstance(node, dict) and part in node:
                del node[part]
                break
            else:
                break
    return _drop_none_items(out)


def _drop_none_items(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_none_items(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_drop_none_items(v) for v in node if v is not None]
    return node


def _cross_checks(s: Settings) -> list[str]:
    from gateway.sensors import KINDS  # local: the registry imports nothing of config

    problems = []
    for kind in s.kinds:
        if kind not in KINDS:
            problems.append(f"kinds.{kind}: unknown sensor kind (known: {', '.join(sorted(KINDS))})")
    if s.influx.api == "v2" and not (s.influx.org and (s.influx.token or s.influx.token_file)):
        problems.append("influx.org / influx.token: both are required when influx.api is v2 (or influx.token_file)")
    if s.influx.token and s.influx.token_file is not None:
        problems.append("influx.token / influx.token_file: give one of them")
    if s.mqtt.password_file is not None and ((ep := parse_mqtt_url(s.mqtt.url)).password or not ep.username):
        problems.append("mqtt.url / mqtt.password_file: give the user in the URL (mqtt://user@host) and its "
                        "password in the file, not in the URL too")
    if s.mqtt.reconnect_min_s > s.mqtt.reconnect_max_s:
        problems.append("mqtt.reconnect_min_s: must not exceed mqtt.reconnect_max_s")
    if s.ingest.dedupe_max_keys < 4 * s.mqtt.receive_maximum:
        problems.append(f"ingest.dedupe_max_keys: must be at least 4 x mqtt.receive_maximum "
                        f"({4 * s.mqtt.receive_maximum}), or redelivered messages may be stored twice")
    if (s.mqtt.cert_file is None) != (s.mqtt.key_file is None):
        problems.append("mqtt.cert_file / mqtt.key_file: give both for a client certificate, or neither")
    if (s.api.tls_cert_file is None) != (s.api.tls_key_file is None):
        problems.append("api.tls_cert_file / api.tls_key_file: give both to serve HTTPS, or neither")
    ports = [p.port for p in s.serial]
    for port in sorted({p for p in ports if ports.count(p) > 1}):
        problems.append(f"serial: port {port} is configured {ports.count(port)} times (one [[serial]] per port)")
    for p in s.serial:
        if p.mode == "modbus-rtu" and p.silent_after > s.ingest.heartbeat_misses:
            problems.append(f"serial: port {p.port}: silent_after must not exceed ingest.heartbeat_misses "
                            f"({s.ingest.heartbeat_misses}), or a silent bus's devices open tickets of their own "
                            f"before the bus's one")
    buses = [p.bus for p in s.serial if p.bus]
    for bus in sorted({b for b in buses if buses.count(b) > 1}):
        problems.append(f"serial: bus {bus} is the name of {buses.count(bus)} ports (one name per bus)")
    return problems
