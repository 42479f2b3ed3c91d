# Tallyboard: the README's commands. `make run` sets up and starts everything; `make test` runs the tests.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PORT    ?= 8501
DEMO_ROWS ?= 100000

.PHONY: run app setup demo check test lint format bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/python manage.py init-db
	$(BIN)/python manage.py demo --business demo --rows $(DEMO_ROWS) --if-empty
	$(BIN)/python manage.py users ensure-demo --business demo --port $(PORT)

# The scheduler daemon and the app together; Ctrl-C (or any exit) stops both.
run: setup
	$(BIN)/python scheduler_daemon.py & DAEMON=$$!; trap "kill $$DAEMON 2>/dev/null" EXIT INT TERM; $(BIN)/streamlit run app.py --server.port $(PORT) --server.headless true

# The habits CI and the pre-commit hook hold every change to: formatted, lint-clean, and typed
# over the whole tree (mypy's files and overrides are in pyproject.toml).
check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# `make check`, then the whole test suite (`make check test` runs the check once).
test: check
	$(BIN)/pytest -n 2 -q

lint: check

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/reports.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
