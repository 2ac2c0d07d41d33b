"""The deployment scripts: shellcheck, and site-ca.sh's certificates checked by openssl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SCRIPTS = sorted(DEPLOY.rglob("*.sh"))
SITE_CA = DEPLOY / "raspberry-pi" / "site-ca.sh"


def test_there_are_scripts() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"install.sh", "site-ca.sh", "influx-setup.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_shellcheck_clean(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: apt-get install shellcheck (make deps installs it)"
    result = subprocess.run([shellcheck, "--external-sources", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert script.stat().st_mode & 0o111, f"{script} is not executable"


def test_install_help_and_bad_option() -> None:
    install = DEPLOY / "raspberry-pi" / "install.sh"
    ok = subprocess.run([str(install), "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "--uninstall" in ok.stdout and "--root DIR" in ok.stdout
    bad = subprocess.run([str(install), "--no-such-option"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown option --no-such-option" in bad.stderr


def _openssl(*args: str) -> str:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_site_ca_makes_a_ca_server_and_device_certificates(tmp_path: Path) -> None:
    d = tmp_path / "tls"

    def site_ca(*args: str) -> str:
        result = subprocess.run([str(SITE_CA), "--dir", str(d), *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout

    site_ca("ca", "test site CA")
    site_ca("server", "gw-pi", "gw-pi.local", "192.168.1.10")
    site_ca("device", "lamp-0001")
    for key in ("ca.key", "server.key", "devices/lamp-0001.key"):
        assert (d / key).stat().st_mode & 0o777 == 0o600, key
    assert (d / "ca.crt").stat().st_mode & 0o777 == 0o644

    ca = str(d / "ca.crt")
    assert ": OK" in _openssl("verify", "-CAfile", ca, "-purpose", "sslserver", str(d / "server.crt"))
    assert ": OK" in _openssl("verify", "-CAfile", ca, "-purpose", "sslclient", str(d / "devices/lamp-0001.crt"))
    server = _openssl("x509", "-in", str(d / "server.crt"), "-noout", "-text")
    assert "DNS:gw-pi.local" in server and "IP Address:192.168.1.10" in server
    # A server certificate is no client's, and the other way round.
    wrong = subprocess.run(["openssl", "verify", "-CAfile", ca, "-purpose", "sslclient", str(d / "server.crt")],
                           capture_output=True, text=True)
    assert wrong.returncode != 0

    # Running again keeps every file as it is.
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    assert "kept" in site_ca("ca")
    assert "kept" in site_ca("server", "gw-pi", "other-name")
    assert "kept" in site_ca("device", "lamp-0001")
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


def test_site_ca_refuses_bad_names_and_a_missing_ca(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    no_ca = subprocess.run([str(SITE_CA), "--dir", str(d), "device", "lamp-1"], capture_output=True, text=True)
    assert no_ca.returncode != 0 and "no site CA" in no_ca.stderr
    bad = subprocess.run([str(SITE_CA), "--dir", str(d), "device", "../x"], capture_output=True, text=True)
    assert bad.returncode != 0 and "bad name" in bad.stderr
