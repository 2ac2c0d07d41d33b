"""``gateway`` command line: ``run`` the gateway, ``check`` a configuration.

A bad setting exits with status 2 and one line per problem, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from gateway.config import ConfigError, Settings, load_settings
from gateway.site import Site, load_site

_LOGGER = logging.getLogger("gateway")
EXIT_CONFIG = 2


def _load(config: Path | None) -> tuple[Settings, Site]:
    settings = load_settings(config)
    site = load_site(settings.site_file)
    return settings, site


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.api import serve
    from gateway.service import Gateway, build

    settings, site = _load(args.config)
    _setup_logging(settings.log_level)
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
    sys.stdout.write(
        f"configuration OK: site {settings.site}, {len(site.assets)} assets, "
        f"{len(site.checkpoints)} checkpoints, InfluxDB {settings.influx.api} at {settings.influx.url}\n"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_text in (
        ("run", cmd_run, "run the gateway until SIGTERM/SIGINT"),
        ("check", cmd_check, "validate the configuration and the site file"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", type=Path, help="TOML settings file (GATEWAY_* variables override it)")
        p.set_defaults(fn=fn)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as exc:
        for line in exc.problems:
            sys.stderr.write(f"config error: {line}\n")
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
