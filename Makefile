# StudyText. `make run` and `make test` do all set-up on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
ADDR ?= 127.0.0.1:8000
# `make run` serves the demo at ADDR, so its links (the REDCap sandbox the demo project syncs from,
# e-mails) must name ADDR too, whatever SITE_URL .env holds. An exported SITE_URL still wins.
SITE_URL ?= http://$(ADDR)

# The suite runs in two passes: most tests in WORKERS pytest-xdist processes, then the `serial`
# tests (timing-sensitive ones and those that start real processes; tests/conftest.py lists them)
# alone in one process so that nothing competes with them for the CPU. PYTEST_ARGS is added to
# both passes (.ci/run's second leg gives its --ignore list there).
# --maxschedchunk=2: xdist hands out tests two at a time, in the suite's order. By default it hands
# out up to a quarter of the suite at once, so one worker could be left with every browser journey
# at the end while the other sat idle (about two minutes lost). Small chunks keep both busy and
# keep each worker's tests in the suite's order (ordinary database tests before transactional
# ones, tests/test_suite_order.py).
WORKERS ?= 2
XDIST = -n $(WORKERS) --maxschedchunk=2
PYTEST_ARGS ?=

.PHONY: run test test-fast suite install browser lint format migrate clean benchmarks

run: install .env
	$(PY) manage.py migrate --noinput
	SITE_URL=$(SITE_URL) $(PY) manage.py seed_demo
	@echo "StudyText: open http://$(ADDR)/ (Ctrl-C stops the web server and the task cluster)"
	SITE_URL=$(SITE_URL) $(PY) manage.py devserver $(ADDR)

test: install browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run --settings=portal.settings_test
	$(MAKE) --no-print-directory suite

# The whole suite (browser journeys and slow tests too) in its two passes, without lint.
suite: install
	$(VENV)/bin/pytest $(XDIST) -m "not serial" $(PYTEST_ARGS)
	$(VENV)/bin/pytest -m serial $(PYTEST_ARGS)

# The inner loop: the suite without the browser journeys (tests/e2e) and the slow tests that
# start real processes; no lint. `make test` (and CI) still runs everything.
test-fast: install
	$(VENV)/bin/pytest -q $(XDIST) -m "not slow and not serial" --ignore=tests/e2e
	$(VENV)/bin/pytest -q -m "serial and not slow" --ignore=tests/e2e

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null || \
		{ echo "StudyText needs Python 3.11 (Debian 12's python3). Found: $$($(PYTHON) --version)"; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
		{ echo "Installing python3-venv with apt-get..."; $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q '.[test]'
	@touch $@

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests..."; \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium || \
		echo "WARNING: could not install chromium; browser tests will be skipped (they fail in CI)."; }

.env:
	$(PY) -m portal.envfile .env

migrate: install .env
	$(PY) manage.py migrate --noinput

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

benchmarks: install
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build staticfiles .test-db* .pytest_cache
