# Two entry points (see README): `make demo` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Serving needs only the package; the tests add the dev extra (linters, browser driver).
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest services browser bench clean

$(RUNTIME_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

$(STAMP): $(RUNTIME_STAMP)
	$(PIP) -e '.[dev]'
	touch $@

demo: $(RUNTIME_STAMP)
	$(BIN)/python -m agentflow_cli.demo

services:
	bash .ci/services

# Headless Chromium for the browser tests: Debian's package, never a browser download.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) services browser
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP) services
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v hyperfine >/dev/null || (apt-get update -qq && apt-get install -y -qq hyperfine)
	$(BIN)/python bench/graph_overhead.py
	$(BIN)/python bench/http_bench.py
	$(BIN)/python bench/pg_storage.py
	$(BIN)/python bench/cli_help.py
	$(BIN)/python bench/ratelimit_bench.py
	$(BIN)/python bench/tracing_bench.py
	$(BIN)/python bench/capacity.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
