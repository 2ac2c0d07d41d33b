# Two commands for a newcomer on a fresh Debian / Raspberry Pi OS machine:
#   make demo   a live site: local Mosquitto + InfluxDB, the gateway, simulated devices
#   make test   the whole suite against real servers
# Both install what they need: Debian packages when run as root (else they say what to
# install), and a virtualenv in .venv. The tests also drive Debian's Chromium (with a Chinese
# font for readable screenshots); the demo does not need it.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
DEBS    = mosquitto influxdb python3-venv chromium fonts-wqy-microhei shellcheck systemd curl openssl  # all but the first three: tests only

.PHONY: demo test lint bench deps venv clean

deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || missing="$$missing influxdb"; \
	$(PYTHON) -c "import venv, ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	[ -n "$(NO_BROWSER)" ] || [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -n "$(NO_BROWSER)" ] || [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	[ -n "$(NO_BROWSER)" ] || command -v shellcheck >/dev/null 2>&1 || missing="$$missing shellcheck"; \
	[ -n "$(NO_BROWSER)" ] || command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	[ -n "$(NO_BROWSER)" ] || command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	[ -n "$(NO_BROWSER)" ] || command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "run: sudo apt-get install -y$$missing   (then run make again)"; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: deps $(VENV)/.installed

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .

demo: NO_BROWSER = 1  # the browser is only for the page tests
demo: venv
	$(PY) -m gateway.demo

bench: venv
	$(PY) bench/ingest.py --n 100000 --runs 2

clean:
	rm -rf $(VENV) demo-data .pytest_cache
