"""Private Mosquitto and InfluxDB 1.x on free loopback ports, each in its own folder.

Used by the test suite, the benchmarks and ``make demo``: real servers from Debian's
``mosquitto`` and ``influxdb`` packages, started here and stopped by their PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_tcp(port: int, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _find(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)),
                                      None)
    if not path:
        package = "influxdb" if name == "influxd" else name
        raise FileNotFoundError(f"{name} not found: install the Debian package {package}")
    return path


class _Server:
    proc: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it lingers."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class Mosquitto(_Server):
    def __init__(self, folder: Path, port: int | None = None, extra: list[str] | None = None,
                 persistence: bool = True) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.extra = extra or []
        self.persistence = persistence
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        conf = self.folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1", "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}", f"persistence_location {self.folder}/",
            "max_queued_messages 0", "sys_interval 1",
            # Started by root, mosquitto would become user 'mosquitto', who cannot read a private temp folder.
            *(["user root"] if os.geteuid() == 0 else []),
            f"log_dest file {self.folder / 'mosquitto.log'}", "log_type error", "log_type warning",
            *self.extra,
        ]
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([_find("mosquitto"), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / "mosquitto.err", "ab"),  # noqa: SIM115
                                     start_new_session=True)  # Ctrl-C of a demo must not kill it first
        if not wait_tcp(self.port):
            self.stop()
            raise RuntimeError(f"mosquitto did not start on port {self.port}; see {self.folder}")
        return self


class Influxd(_Server):
    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.rpc_port = free_port()
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Influxd:
        d = self.folder
        conf = d / "influxdb.conf"
        conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
""")
        self.proc = subprocess.Popen([_find("influxd"), "-config", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(d / "influxd.log", "ab"),  # noqa: SIM115
                                     start_new_session=True)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.proc.returncode}; see {d / 'influxd.log'}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                if r.status == 204:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"influxd did not answer on port {self.port}; see {d / 'influxd.log'}")

    def query(self, q: str, db: str = "facility") -> list[dict[str, object]]:
        """InfluxQL; the series of the first statement, each as {name, tags, columns, values}."""
        url = f"{self.url}/query?" + urllib.parse.urlencode({"db": db, "q": q, "epoch": "u"})
        with urllib.request.urlopen(url, timeout=30) as r:
            body = json.load(r)
        result = body["results"][0]
        if "error" in result:
            if result["error"].startswith("database not found"):
                return []
            raise RuntimeError(result["error"])
        return result.get("series", [])

    def count(self, measurement: str, field: str, db: str = "facility", where: str = "") -> int:
        series = self.query(f'SELECT count("{field}") FROM "{measurement}" {where}', db)
        return int(series[0]["values"][0][1]) if series else 0
