# One task runner: `make run`, `make test`, `make lint`, `make bench`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

## Install and start the service on its embedded defaults (SQLite in ./.textbridge, simulator).
run: $(VENV)/.installed
	$(BIN)/textbridge serve

## Install the test tools, run the linters, then the whole suite on SQLite and PostgreSQL,
## on two workers (each with its own databases).
test: $(VENV)/.installed-test
	scripts/ensure-postgres
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -n 2

## The edit loop: SQLite only, no real server processes.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 -q -m "not slow" -k "not postgresql" --ignore=tests/e2e

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

## Throughput and latency figures on SQLite and PostgreSQL (see docs/benchmarks.md).
bench: $(VENV)/.installed-test
	scripts/ensure-postgres
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m textbridge.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
