# The README's two commands: `make study` and `make test`. Each first sets up what is missing:
# .venv (Python 3.11) with exactly envs/host.lock.txt (every package hash-checked, no resolution)
# and this project, editable. Rerun the set-up after a lock change: it follows the lock's mtime.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
READY := $(VENV)/.reproscope-ready
# Everything a recipe runs (pytest's subprocesses included) finds the venv's tools first, not
# whatever else is on the caller's PATH.
export PATH := $(abspath $(BIN)):$(PATH)
# One environment mechanism per run: Snakemake's conda when conda/mamba exists, else venvs.
SDM := $(if $(shell command -v mamba || command -v conda),--sdm conda,)

.PHONY: setup study test lock browser

setup: $(READY)

$(READY): envs/host.lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --no-input --require-hashes --no-deps -r envs/host.lock.txt
	$(BIN)/python -m pip install --no-input --no-deps --no-build-isolation -e .
	$(BIN)/python -m reproscope.acquire.lockfile verify envs/host.lock.txt
	touch $@

study: setup
	$(BIN)/snakemake --cores all $(SDM)

test: setup browser
	$(BIN)/python -m pytest

# The report's browser test (tests/test_report_browser.py) drives Debian's chromium through
# Playwright; installed with apt (as root) where it is missing.
browser:
	command -v chromium >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Rewrite every envs/*.lock.txt (and the conda pin files where conda exists).
lock: setup
	$(BIN)/python -m reproscope.acquire.lock
