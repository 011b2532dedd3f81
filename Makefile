# The README's two commands, `make run` and `make test`, each install what they need first:
# the Debian packages that are missing, then the pinned Python requirements in .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# notary: notary-server and the notary CLI; python-ldap builds against libldap and libsasl;
# chromium runs the browser tests (Playwright drives it, it never downloads a browser);
# postgresql gives the second test pass its throwaway cluster (tests/postgres.py); slapd is the
# tests' and `PORTAL_DEMO_DIRECTORY=ldap make run`'s directory (stack/slapd.py, never the system's
# instance), ldap-utils its ldapsearch for looking inside.
DEBIAN_PACKAGES := notary redis-server openssl build-essential python3-dev python3-venv \
	libldap2-dev libsasl2-dev chromium postgresql slapd ldap-utils caddy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test deps system-packages lint format clean

run: deps
	$(BIN)/python -m stack

# The whole suite twice: on SQLite (the embedded default), then on PostgreSQL (production's),
# where transactions really overlap and column lengths are enforced. Each pass runs in
# PYTEST_WORKERS processes (pytest-xdist), each with its own services and databases: the tests
# mostly wait on real processes, so more workers than cores still helps.
PYTEST_WORKERS ?= 4
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist worksteal

test: deps lint
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)
	PORTAL_TEST_DATABASE=postgres $(BIN)/python -m pytest $(PYTEST_PARALLEL)

# Style, then the architecture (pyproject.toml's import-linter contracts), then the types.
lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	PORTAL_DEBUG=1 $(BIN)/mypy

format: deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

deps: system-packages $(VENV)/.installed

system-packages:
	@missing=$$(for package in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" || echo $$package; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .hypothesis
