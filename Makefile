# cc-core: every target works on a fresh Debian 12 machine as root (and as a user with sudo
# rights for the apt step). The first run creates .venv and installs what is missing.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DURATION ?= 60
RATE     ?= 20
WORKERS  ?= 2

.PHONY: help deps venv test demo bench lint clean acceptance

help:
	@echo "make demo   - private Redis + simulator + $(WORKERS) workers + traffic (DURATION=$(DURATION) RATE=$(RATE))"
	@echo "make test   - install what is missing, then run the whole test suite"
	@echo "make bench  - parser/simulator throughput, call-flow latency and CPU, metrics overhead, side by side"
	@echo "make lint   - ruff and mypy"
	@echo "make acceptance - SIPp callers and agents on a real switch (CC_FREESWITCH=HOST:ESL:SIP)"

# System packages (tools/install-deps.sh): redis-server, redis-tools, sip-tester,
# postgresql, prometheus (+ promtool) and chromium; their services are never started (the
# project runs private instances on loopback).
deps:
	@bash tools/install-deps.sh

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { bash tools/install-deps.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)

venv: $(STAMP)

test: deps venv
	$(VENV)/bin/pytest -q

demo: deps venv
	$(VENV)/bin/cc-core demo --duration $(DURATION) --rate $(RATE) --workers $(WORKERS)

bench: deps venv
	$(PY) -m bench

# On a real FreeSWITCH started with the config rendered from examples/acceptance (README):
# CC_FREESWITCH=HOST:ESLPORT:SIPPORT make acceptance. Without it: says so, exits 0.
acceptance: deps venv
	$(PY) -m loadtest.acceptance

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy cc_core esl_handlers metrics fssim loadtest freeswitch_conf acd provider records recordings billing notify

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
