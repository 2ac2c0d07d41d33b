"""``gateway`` command line: ``run`` the gateway, ``check`` a configuration, ``replay`` a recorded stream,
``token`` to revoke or renew the installer's bootstrap token.

A bad setting exits with status 2 and one line per problem, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from gateway import backup, schema
from gateway.config import ConfigError, Settings, load_settings
from gateway.site import Site, load_site

_LOGGER = logging.getLogger("gateway")
EXIT_CONFIG = 2


def _load(config: Path | None) -> tuple[Settings, Site]:
    settings = load_settings(config)
    site = load_site(settings.site_file)
    return settings, site


def _setup_logging(level: str, log_format: str = "text") -> None:
    """Text lines on stderr, or structured records to journald (``log_format``; gateway/journal.py)."""
    import os

    from gateway.journal import handler_for

    handler, note = handler_for(log_format, os.environ)
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    if note:
        _LOGGER.warning("%s", note)


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.api import serve
    from gateway.service import Gateway, build

    settings, site = _load(args.config)
    _setup_logging(settings.log_level, settings.log_format)
    gateway = Gateway(build(settings, site), serve_api=serve)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        _LOGGER.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, lambda *_: gateway.reload_site(settings.site_file))
    gateway.start()
    _LOGGER.info("gateway %s for site %s running", settings.gateway_id, settings.site)
    while not stop.wait(0.5):
        if gateway.sv.failed.is_set():
            gateway.stop(drain_s=2.0)
            return 1
    gateway.stop()
    _LOGGER.info("stopped cleanly")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    settings, site = _load(args.config)
    from gateway.sensors import serial_modbus

    if problems := serial_modbus.bus_problems(settings.serial, site.modbus, str(settings.site_file)):
        raise ConfigError(problems)
    sys.stdout.write(
        f"configuration OK: site {settings.site}, {len(site.assets)} assets, "
        f"{len(site.checkpoints)} checkpoints, InfluxDB {settings.influx.api} at {settings.influx.url}\n"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The monthly commitment report from the gateway's data folder (frozen once the month is over)."""
    import json
    import time

    from gateway.commitments import notice
    from gateway.commitments.monthly import Commitments

    settings, site = _load(args.config)
    db = settings.data_dir / "gateway.db"
    if not db.is_file():
        raise ConfigError([f"data_dir: no gateway database at {db} (run the gateway first, or set GATEWAY_DATA_DIR)"])
    schema.migrate_file(db, schema.GATEWAY)  # an older database is brought up first; a newer one refused
    commitments = Commitments(db, site)
    try:
        report = commitments.month(args.month, time.time())
    except ValueError as exc:
        raise ConfigError([f"--month: {exc}"]) from None
    finally:
        commitments.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    elif args.format == "csv":
        sys.stdout.write(notice.to_csv(report, args.lang))
    else:
        sys.stdout.write(notice.to_html(report, site.info.name, site.tz, args.lang))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Revoke the installer's bootstrap token (``<data_dir>/api-token``), or replace it with a new one.
    Takes effect at once, in a running gateway too; the secret is written to the file, never printed."""
    from gateway.auth import INSTALLER_FILE, AuthStore, new_installer_token

    settings = load_settings(args.config)
    db = settings.data_dir / "gateway.db"
    if not db.is_file():
        raise ConfigError([f"data_dir: no gateway database at {db} (run the gateway first, or set GATEWAY_DATA_DIR)"])
    if settings.api.token:
        raise ConfigError(["api.token: the installer's token is set in the configuration: remove or change it there"])
    schema.migrate_file(db, schema.GATEWAY)  # an older database is brought up first; a newer one refused
    store = AuthStore(db)
    try:
        revoked = store.revoke_installer("gateway token")
        path = settings.data_dir / INSTALLER_FILE
        path.unlink(missing_ok=True)
        if args.new:
            new_installer_token(settings.data_dir, store)
            sys.stdout.write(f"installer token renewed ({revoked} revoked): the new one is in {path}\n")
        else:
            sys.stdout.write(f"installer token revoked ({revoked}) and {path} deleted; users log in with "
                             f"their passwords (`gateway token --new` makes a new one)\n")
    finally:
        store.close()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """One line per check (OK, WARN or FAIL, and what to do); exit 1 when any failed."""
    import time

    from gateway import doctor

    settings = load_settings(args.config)
    checks = doctor.run(settings, time.time())
    sys.stdout.write("".join(c.line() + "\n" for c in checks))
    return doctor.exit_code(checks)


def cmd_replay(args: argparse.Namespace) -> int:
    """Feed a recorded stream through the gateway's rules, ledger and tickets on a simulated clock."""
    from gateway.replay import InfluxStalled, ReplayError, replay

    settings, site = _load(args.config)
    _setup_logging(args.log_level)
    try:
        summary = replay(settings, site, args.file, args.data_dir, influx=args.influx, tick_s=args.tick_s,
                         batch=args.batch)
    except ReplayError as exc:
        for line in exc.problems:
            sys.stderr.write(f"replay error: {line}\n")
        return EXIT_CONFIG
    except InfluxStalled as exc:
        sys.stderr.write(f"replay stopped: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("replay interrupted: its data folder holds only part of the stream\n")
        return 130
    sys.stdout.write(summary.text(site.tz))
    return 1 if summary.left_in_outbox else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_text in (
        ("run", cmd_run, "run the gateway until SIGTERM/SIGINT"),
        ("check", cmd_check, "validate the configuration and the site file"),
        ("report", cmd_report, "the monthly commitment report (物业服务承诺公示) as HTML, CSV or JSON"),
        ("token", cmd_token, "revoke (--revoke) or renew (--new) the installer's bootstrap API token"),
        ("doctor", cmd_doctor, "check broker, InfluxDB, serial ports, clock, disk, outbox and data folder"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", type=Path, help="TOML settings file (GATEWAY_* variables override it)")
        p.set_defaults(fn=fn)
        if name == "report":
            p.add_argument("--month", required=True, help="e.g. 2026-11 (site local time)")
            p.add_argument("--format", choices=("html", "csv", "json"), default="html")
            p.add_argument("--lang", choices=("zh", "en"), default="zh")
        if name == "token":
            what = p.add_mutually_exclusive_group(required=True)
            what.add_argument("--revoke", action="store_true", help="revoke it and delete <data_dir>/api-token")
            what.add_argument("--new", action="store_true", help="revoke it and write a new one to the file")
    p = sub.add_parser("replay", help="replay a recorded stream (JSON lines) into a data folder of its own")
    p.add_argument("file", type=Path, help='JSON lines: {"topic", "payload", "received_at"}')
    p.add_argument("--config", type=Path, help="TOML settings file (GATEWAY_* variables override it)")
    p.add_argument("--data-dir", type=Path, help="a new or empty folder (default: FILE's name + .replay)")
    p.add_argument("--influx", action="store_true", help="write readings to the configured InfluxDB")
    p.add_argument("--tick-s", type=float, default=300.0, help="simulated seconds between sweeps (default 300)")
    p.add_argument("--batch", type=int, default=2000, help="messages per batch (default 2000)")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="WARNING")
    p.set_defaults(fn=cmd_replay)
    backup.add_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as exc:
        for line in exc.problems:
            sys.stderr.write(f"config error: {line}\n")
        return EXIT_CONFIG
    except schema.SchemaError as exc:  # a database newer than this gateway, or a migration that failed
        for line in exc.problems:
            sys.stderr.write(f"database error: {line}\n")
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
