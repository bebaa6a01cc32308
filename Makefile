# Kalypso — every target installs what it needs first and is safe to run again.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.kalypso-installed
NPM_STAMP := node_modules/.kalypso-installed
CONTRACTS_STAMP := src/kalypso/contracts/build/sources.sha256

.PHONY: setup test test-all lint demo bench rehearsal contracts circuits clean

setup: $(PY_STAMP) $(NPM_STAMP) $(CONTRACTS_STAMP)

$(PY_STAMP): pyproject.toml constraints.txt
	@scripts/system-deps.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	@scripts/system-deps.sh
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CONTRACTS_STAMP): $(PY_STAMP) $(shell find contracts -name '*.vy' -o -name '*.vyi')
	$(PY) -m kalypso.contracts

contracts: $(PY_STAMP)
	$(PY) -m kalypso.contracts --force

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no test: that fails the target like any failure.
test: setup lint
	@scripts/system-deps.sh --browser
	$(VENV)/bin/pytest

test-all: setup lint
	@scripts/system-deps.sh --browser
	$(VENV)/bin/pytest -m ''

# A testnet deployment rehearsed end to end behind a hosted-provider simulator (a few
# minutes; docs/real-chains.md#the-rehearsal). KEEP=DIR keeps its keys, configs and logs.
rehearsal: setup
	$(PY) -m kalypso.testing.rehearsal $(if $(KEEP),--keep $(KEEP))

# KEEP=1 leaves the chain and the dashboard running after the tour, until Ctrl-C.
demo: setup
	$(VENV)/bin/kalypso demo $(if $(KEEP),--keep)

bench: setup
	$(PY) bench/gas.py
	$(PY) bench/verify.py
	$(PY) bench/provers.py
	$(PY) bench/matching.py
	$(PY) bench/crypto.py
	$(PY) bench/enclave.py
	$(PY) bench/e2e.py
	$(PY) bench/dashboard.py

clean:
	rm -rf $(VENV) node_modules src/kalypso/contracts/build .pytest_cache .mypy_cache .ruff_cache

# Rebuild the sample circuits and their trusted setup (about 3 minutes); the outputs are
# committed and tests never rebuild them.
circuits: setup
	bash circuits/build.sh
