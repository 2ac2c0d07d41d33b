"""Wires the gateway together and supervises it: transports, ingest, forwarder, API.

This is the only place with a broad ``except``: a thread that dies of an unexpected
error is logged with its traceback and stops the gateway with a failure status, so
systemd restarts it on a clean slate instead of it limping on half-dead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from gateway import schema
from gateway.auth import ONE_TIME_FILE, AuthStore, first_admin, installer_token
from gateway.clock import ClockGuard, make_probe
from gateway.commitments.monthly import RUNNING_EVERY_S, Commitments
from gateway.config import ConfigError, Settings
from gateway.devices import DeviceRegistry, Transition
from gateway.history import History
from gateway.influx import Forwarder, make_writer
from gateway.ingest import Ingestor, Message, classify_topic
from gateway.inspections.checkpoints import CheckpointEdits
from gateway.inspections.field import Field
from gateway.inspections.records import Inspections, InspectionStore
from gateway.inspections.taps import TapLog
from gateway.metrics import Metrics
from gateway.monitor import Monitor
from gateway.outbox import Outbox
from gateway.sensors import KINDS, serial_modbus
from gateway.sensors.base import Debounce
from gateway.sensors.mqtt import Inbound, MqttTransport
from gateway.sensors.serial import SerialReader, register_metrics
from gateway.sensors.serial_modbus import BusStatus, ModbusReader, register_modbus_metrics
from gateway.sensors.serial_port import PortOwner
from gateway.site import Site, load_site
from gateway.systemd import Notifier, Watchdog, pipeline_healthy, status_line, watchdog_from_env
from gateway.tickets import TicketStore
from gateway.webhooks import WebhookDispatcher

_LOGGER = logging.getLogger(__name__)
TICK_S = 1.0


@dataclass
class Services:
    """What the API and the supervisor share; built once by :func:`build`."""

    settings: Settings
    site: Site
    outbox: Outbox
    registry: DeviceRegistry
    metrics: Metrics
    ingestor: Ingestor
    transport: MqttTransport
    forwarder: Forwarder
    tickets: TicketStore
    monitor: Monitor
    webhooks: WebhookDispatcher
    commitments: Commitments
    api_token: str  # the installer's bootstrap token ("" once revoked)
    auth: AuthStore | None = None  # users, sessions and tokens (set by build: the API needs it)
    reload_site: Callable[[], list[str]] | None = None  # set by the Gateway: re-read the site file
    serial: list[PortOwner] = field(default_factory=list)  # set by the Gateway: one reader (or bus) per port
    fieldwork: Field | None = None  # patrols and inspections
    inspections: Inspections | None = None
    checkpoints: CheckpointEdits | None = None
    history: History | None = None  # readings for charts, read back from InfluxDB
    ledger_lines: list[tuple[float, str]] = field(default_factory=list)
    #: Set by the Gateway: run a function in the ingest thread (which owns the monitor) and wait for it;
    #: hand it messages (a phone's taps); have it apply a changed site (checkpoints edited).
    call: Callable[[Callable[[], object]], object] | None = None
    ingest_submit: Callable[[list[Message]], None] | None = None
    apply_site: Callable[[Site], None] | None = None
    started_at: float = field(default_factory=time.time)
    failed: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)  # open event streams end on it
    #: Whether the wall clock is known to be right; time-based decisions wait while it holds (set by build).
    clock: ClockGuard | None = None


def open_auth(settings: Settings) -> tuple[AuthStore, str]:
    """Users and tokens; on the first start the admin (configured, or with a one-time password) and the
    installer's bootstrap token (``<data_dir>/api-token``, an admin that is no user)."""
    store = AuthStore(settings.data_dir / "gateway.db", one_time_file=settings.data_dir / ONE_TIME_FILE)
    try:
        first_admin(store, settings.api.admin_user, settings.api.admin_password_file, settings.data_dir)
    except ValueError as exc:
        store.close()
        raise ConfigError([str(exc)]) from None
    return store, installer_token(settings.api.token, settings.data_dir, store)


def heartbeats(settings: Settings) -> dict[str, float]:
    """Each kind's heartbeat, as configured or the kind's own; shared with the replay, so it sweeps alike."""
    return {k: (settings.kinds[k].heartbeat_s if k in settings.kinds and settings.kinds[k].heartbeat_s
                else kind.heartbeat_s) for k, kind in KINDS.items()}


def debounces(settings: Settings) -> dict[str, Debounce]:
    """The debounce of every configured kind; shared with the replay, so it confirms faults alike."""
    return {k: Debounce(ks.debounce_n or KINDS[k].debounce.n,
                        KINDS[k].debounce.seconds if ks.debounce_s is None else ks.debounce_s)
            for k, ks in settings.kinds.items()}


def build(settings: Settings, site: Site) -> Services:
    if problems := serial_modbus.bus_problems(settings.serial, site.modbus, str(settings.site_file)):
        raise ConfigError(problems)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schema.migrate_data_dir(settings.data_dir)  # both databases, before any store opens them
    auth, token = open_auth(settings)
    edits = CheckpointEdits(settings.data_dir / "gateway.db")
    site = edits.apply(site)  # checkpoints edited through the API, over the site file's
    metrics = Metrics()
    outbox = Outbox(settings.data_dir / "outbox.db", int(settings.outbox.max_mb * 1e6), settings.outbox.synchronous,
                    settings.ingest.dead_letter_keep)
    registry = DeviceRegistry(settings.data_dir / "gateway.db", heartbeats(settings), settings.ingest.heartbeat_misses)
    registry.device_heartbeat_s = serial_modbus.heartbeats(site.modbus)
    ingestor = Ingestor(settings, site, outbox, registry, metrics)
    ingestor.load_seen(time.time())
    tickets = TicketStore(settings.data_dir / "gateway.db", site.tz, site.sla, site.callbacks,
                          site.tickets.self_cleared)
    monitor = Monitor(tickets, settings.site, debounces(settings))
    if tickets.event_cursor("mqtt") is None:  # a first start: what the start itself records is published too
        tickets.save_event_cursor("mqtt", tickets.newest_event_id())
    outbox.commit(monitor.set_site(site, registry.online(), time.time()), [], [])
    ingestor.observer = monitor.observe
    webhooks = WebhookDispatcher(settings.webhooks, settings.data_dir / "gateway.db", tickets.events_after,
                                 newest_id=tickets.newest_event_id)
    transport = MqttTransport(settings)
    forwarder = Forwarder(outbox, make_writer(settings.influx), settings.influx, metrics)
    metrics.gauge("gateway_outbox_depth", "Readings waiting for InfluxDB.", lambda: outbox.depth()[0])
    metrics.gauge("gateway_outbox_bytes", "Bytes waiting for InfluxDB.", lambda: outbox.depth()[1])
    metrics.gauge("gateway_outbox_dropped_total", "Readings dropped past the outbox bound.", lambda: outbox.dropped)
    metrics.gauge("gateway_mqtt_connected", "1 while connected to the broker.", lambda: float(transport.connected))
    commitments = Commitments(settings.data_dir / "gateway.db", site)
    db = settings.data_dir / "gateway.db"
    ledger_lines: list[tuple[float, str]] = []  # asset states decided outside a reading batch, for the outbox
    inspections = Inspections(InspectionStore(db, settings.data_dir / "photos"), tickets, site.assets, site.tz,
                              site.plans, lambda *state: ledger_lines.extend(monitor.set_state(*state)))
    inspections.resume()
    field_ = Field(site, tickets, TapLog(db), inspections, time.time())
    ingestor.on_taps = lambda taps: [field_.on_tap(t, source, _api_user(source)) for source, t in taps]
    outbox.commit(ledger_lines, [], [])
    ledger_lines.clear()
    return Services(settings, site, outbox, registry, metrics, ingestor, transport, forwarder, tickets, monitor,
                    webhooks, commitments, token, auth, fieldwork=field_, inspections=inspections,
                    checkpoints=edits, ledger_lines=ledger_lines,
                    history=History(settings.influx), clock=clock_guard(settings))


def clock_guard(settings: Settings) -> ClockGuard:
    """The clock judged once at start, so the health endpoint has an answer before the first tick."""
    guard = ClockGuard(make_probe(settings.clock.sync_probe), settings.clock.require_sync)
    guard.check(time.time())
    return guard


def _api_user(source: str) -> str | None:
    """A tap posted through the API by a logged-in person (source ``api:<user>``) is theirs."""
    return source[4:] if source.startswith("api:") else None


def to_message(m: Inbound, prefix: str, site: str, cache: dict[str, object] | None = None) -> Message | None:
    """The transport's message as the ingestor's; ``cache`` remembers topics already classified."""
    where = cache.get(m.topic) if cache is not None else None
    if where is None:
        where = classify_topic(m.topic, prefix, site)
        if cache is not None and isinstance(where, tuple):
            if len(cache) > 100_000:
                cache.clear()
            cache[m.topic] = where
    if where is None:
        return None
    if isinstance(where, tuple):
        return Message(m.topic, where[0], where[1], where[2], m.payload, m.received_at)
    parts = m.topic.split("/")
    device = parts[3] if len(parts) == 5 and where.reason == "unknown_kind" else ""
    return Message(m.topic, "", device, "", m.payload, m.received_at, problem=where)


class Supervised(threading.Thread):
    """A thread whose unexpected death fails the whole gateway, loudly."""

    def __init__(self, name: str, target: Callable[[], None], failed: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._failed = failed

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException:  # the top supervisor: log everything, then stop the gateway
            _LOGGER.critical("thread %s died; stopping the gateway", self.name, exc_info=True)
            self._failed.set()


class IngestLoop:
    """Polls the transport, puts each batch through the ingestor, acknowledges it once durable.

    Other transports (serial ports) hand their batches to :meth:`submit` from their own threads;
    the loop handles them between polls, like MQTT batches but with nothing to acknowledge.
    """

    def __init__(self, services: Services) -> None:
        self.sv = services
        self.stop_evt = threading.Event()
        s = services.settings
        self.prefix, self.site = s.mqtt.topic_prefix, s.site
        self.topics: dict[str, object] = {}
        self.relay = EventRelay(services.tickets, services.transport, services.webhooks.notify)
        self.new_site: Site | None = None  # a reloaded site file, waiting for the ingest thread
        self.submitted: deque[list[Message]] = deque()
        self.calls: deque[tuple[Callable[[], object], Future[object]]] = deque()
        #: Monotonic time the loop last went round (the systemd watchdog pings only while it is recent);
        #: ``polled`` is set after the first poll, which attempts the broker connection.
        self.heartbeat = time.monotonic()
        self.polled = threading.Event()

    def call(self, fn: Callable[[], object], timeout: float = 10.0) -> object:
        """Any thread: run ``fn`` in the ingest thread, between batches, and return what it returned."""
        future: Future[object] = Future()
        self.calls.append((fn, future))
        self.sv.transport.wake()
        return future.result(timeout)

    def run_calls(self) -> None:
        while self.calls:
            fn, future = self.calls.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except (ValueError, LookupError, OSError) as exc:  # refused requests go back to the caller
                    future.set_exception(exc)
        self.flush_ledger()

    def flush_ledger(self) -> None:
        """Asset states decided outside a reading batch (an inspection), to InfluxDB like the others."""
        if self.sv.ledger_lines:
            lines, self.sv.ledger_lines[:] = list(self.sv.ledger_lines), []
            self.sv.outbox.commit(lines, [], [])
            self.relay.pump()

    def post(self, fn: Callable[[], object]) -> None:
        """Any thread: run ``fn`` in the ingest thread soon, without waiting for it (a bus gone silent)."""
        self.calls.append((fn, Future()))
        self.sv.transport.wake()

    def submit(self, messages: list[Message]) -> None:
        """Any thread: a batch for the ingest thread, which wakes for it."""
        if messages:
            self.submitted.append(messages)
            self.sv.transport.wake()

    def drain(self) -> None:
        """Handle what other threads submitted, in one batch."""
        batch: list[Message] = []
        while self.submitted:  # only this thread takes from the queue
            batch += self.submitted.popleft()
        if batch:
            self.sv.ingestor.handle(batch)
            self.devices(self.sv.ingestor.take_transitions())
            self.relay.pump()

    def run(self) -> None:
        transport, ingestor = self.sv.transport, self.sv.ingestor
        prefix, site, topics = self.prefix, self.site, self.topics
        next_tick = time.monotonic() + TICK_S
        while not self.stop_evt.is_set():
            self.heartbeat = time.monotonic()
            self.drain()
            batch = transport.poll(max(0.0, next_tick - time.monotonic()))
            self.polled.set()
            if batch:
                ingestor.handle([m for m in (to_message(i, prefix, site, topics) for i in batch) if m is not None])
                transport.ack(batch)
                self.devices(ingestor.take_transitions())
                self.relay.pump()
            self.drain()
            self.run_calls()
            if self.new_site is not None:
                self.apply_site()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_S
                self.tick(time.time())
        self.drain()
        self.tick(time.time())
        self.relay.save()

    def apply_site(self) -> None:
        site, self.new_site = self.new_site, None
        if site is None:
            return
        sv = self.sv
        if sv.checkpoints is not None:
            site = sv.checkpoints.apply(site)
        sv.site = site
        sv.commitments.current = site
        if sv.inspections is not None:
            sv.inspections.set_site(site.assets, site.plans)
        if sv.fieldwork is not None:
            sv.fieldwork.set_site(site, time.time())
        sv.ingestor.set_site(site)
        sv.registry.device_heartbeat_s = serial_modbus.heartbeats(site.modbus)
        for reader in sv.serial:
            if isinstance(reader, ModbusReader):
                reader.set_devices(site.buses.get(reader.bus, ()))
        sv.outbox.commit(sv.monitor.set_site(site, sv.registry.online(), time.time()), [], [])

    def tick(self, now: float) -> None:
        """Decisions on time; while the clock is not known to be right (clock.require_sync) they wait, and
        readings are still stored. Silences are measured from the end of a hold, not across it."""
        clock = self.sv.clock.check(now) if self.sv.clock is not None else None
        held = clock is not None and clock.held
        self.devices(self.sv.ingestor.tick(now, sweep=not held, since=clock.resumed_at if clock else 0.0))
        if not held:
            self.sv.tickets.watch(now)
            if self.sv.fieldwork is not None:
                self.sv.fieldwork.tick(now)
        self.flush_ledger()
        self.relay.pump()
        self.relay.save()

    def devices(self, transitions: list[Transition]) -> None:
        if transitions:
            lines = self.sv.monitor.devices(transitions)
            if lines:
                self.sv.outbox.commit(lines, [], [])


class EventRelay:
    """Publishes recorded events on the gateway's events topic, in order, from a saved cursor.

    The cursor is saved once a second: after a crash the last second's events may be
    published again, never skipped.
    """

    def __init__(self, store: TicketStore, transport: MqttTransport, notify: Callable[[], None]) -> None:
        self.store, self.transport, self.notify = store, transport, notify
        saved = store.event_cursor("mqtt")
        self.cursor = saved if saved is not None else store.newest_event_id()
        self._saved = saved

    def pump(self) -> None:
        while batch := self.store.events_after(self.cursor, 500):
            for e in batch:
                self.transport.publish_event(json.dumps(e.as_json(), ensure_ascii=False))
            self.cursor = batch[-1].id
            self.notify()  # the webhooks read the same events, each hook from its own cursor

    def save(self) -> None:
        if self.cursor != self._saved:
            self.store.save_event_cursor("mqtt", self.cursor)
            self._saved = self.cursor


class Gateway:
    """Start, run until told to stop, stop cleanly (flushing what it can)."""

    def __init__(self, services: Services, serve_api: Callable[[Services], Callable[[], None]] | None = None):
        self.sv = services
        self.ingest = IngestLoop(services)
        self._ingest_thread = Supervised("ingest", self.ingest.run, services.failed)
        self._serve_api = serve_api
        self._stopping = threading.Event()
        self._freezer = Supervised("commitments", self._freeze_months, services.failed)
        self.systemd = Notifier.from_env()
        self._watchdog = watchdog_from_env()
        services.reload_site = lambda: self.reload_site(services.settings.site_file)
        services.call = self.ingest.call
        services.ingest_submit = self.ingest.submit
        services.apply_site = self._apply_site
        self._stop_api: Callable[[], None] | None = None
        services.serial = [ModbusReader(p, services.site.buses.get(p.bus or "", ()), self.ingest.submit, self._bus)
                           if p.mode == "modbus-rtu" else SerialReader(p, self.ingest.submit)
                           for p in services.settings.serial]
        register_metrics(services.metrics, services.serial)
        register_modbus_metrics(services.metrics, services.serial)

    def start(self) -> None:
        self.sv.forwarder.start()
        self.sv.webhooks.start()
        self._freezer.start()
        self._ingest_thread.start()  # it connects to the broker
        for reader in self.sv.serial:
            reader.start(lambda name, target: Supervised(name, target, self.sv.failed))
        if self._serve_api:
            self._stop_api = self._serve_api(self.sv)
        if self.systemd.enabled:
            self.ingest.polled.wait(15.0)  # the broker connection attempted (a failure is retried with backoff)
            self.systemd.send("READY=1", f"STATUS={self._status()}")
            if (dog := self._watchdog) is not None:
                Supervised("watchdog", lambda: self._ping_watchdog(dog), self.sv.failed).start()

    def _status(self, stalled_s: float | None = None) -> str:
        clock = self.sv.clock
        return status_line(self.sv.transport.connected, self.sv.outbox.depth()[0],
                           clock is not None and clock.held, stalled_s)

    def _ping_watchdog(self, dog: Watchdog) -> None:
        """WATCHDOG=1 every half period, only while the ingest loop goes round and no thread died: a hung
        pipeline stops the pings and systemd restarts the gateway."""
        was_healthy = True
        while not self._stopping.wait(dog.interval_s):
            now = time.monotonic()
            healthy = pipeline_healthy(now, self.ingest.heartbeat, dog.stale_after_s, self.sv.failed.is_set())
            if healthy:
                self.systemd.send("WATCHDOG=1", f"STATUS={self._status()}")
            else:
                self.systemd.send(f"STATUS={self._status(now - self.ingest.heartbeat)}")
                if was_healthy:
                    _LOGGER.error("the ingest loop has not gone round for %.0f s: watchdog pings stopped, so "
                                  "systemd restarts the gateway", now - self.ingest.heartbeat)
            was_healthy = healthy

    def _bus(self, status: BusStatus) -> None:
        """A bus's thread: the monitor (the ingest thread's) hears that a whole bus went silent or is back."""
        self.ingest.post(lambda: self.sv.monitor.bus(status.bus, status.silent, status.at, status.failing,
                                                     status.port))

    def _apply_site(self, site: Site) -> None:
        self.ingest.new_site = site
        self.sv.transport.wake()

    def _freeze_months(self) -> None:
        """Keep the running month's figures fresh for the dashboard (every 30 s), and freeze last month's
        once it is over (checked every 10 minutes)."""
        frozen_at = float("-inf")
        while True:
            now = time.time()
            if now - frozen_at >= 600 and not (self.sv.clock is not None and self.sv.clock.held):
                self.sv.commitments.freeze_due(now)  # not on a clock not known to be right
                frozen_at = now
            self.sv.commitments.running(now, max_age_s=0.0)
            if self._stopping.wait(RUNNING_EVERY_S):
                return

    def reload_site(self, path: Path | None) -> list[str]:
        """Re-read the site file; on problems keep the current one and return them."""
        from gateway.config import ConfigError

        try:
            site = load_site(path)
            if problems := serial_modbus.bus_problems(self.sv.settings.serial, site.modbus, str(path)):
                raise ConfigError(problems)
        except ConfigError as exc:
            for p in exc.problems:
                _LOGGER.error("site file not reloaded: %s", p)
            return exc.problems
        self.ingest.new_site = site  # applied by the ingest thread, which owns the monitor's state
        self.sv.transport.wake()
        _LOGGER.info("site file %s reloaded: %d assets, %d checkpoints", path, len(site.assets),
                     len(site.checkpoints))
        return []

    def stop(self, drain_s: float = 5.0) -> None:
        """Stop taking messages, make what was taken durable and acknowledged, flush to InfluxDB."""
        _LOGGER.info("stopping: finishing the current batch and flushing the outbox (up to %.0f s)", drain_s)
        self.systemd.send("STOPPING=1", "STATUS=stopping: flushing the outbox")
        for reader in self.sv.serial:
            reader.stop()  # before the ingest loop, which takes what they read last
        self.ingest.stop_evt.set()
        self._stopping.set()
        self.sv.transport.wake()
        self._ingest_thread.join(10)
        self.sv.transport.stop()
        if self._stop_api:
            self._stop_api()
        self.sv.forwarder.stop(drain_s)
        self.sv.webhooks.stop(2.0)
        depth = self.sv.outbox.depth()[0]
        if depth:
            _LOGGER.warning("%d readings left in the outbox; they go to InfluxDB at the next start", depth)
        self.sv.registry.close()
        self._freezer.join(5)
        self.sv.commitments.close()
        self.sv.tickets.close()
        if self.sv.auth is not None:
            self.sv.auth.close()
        self.sv.outbox.close()
