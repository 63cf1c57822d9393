# tre: two commands for a newcomer (`make demo`, `make test`) plus the developer's checks.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# The PostgreSQL server the governance tests run against (CI sets TRE_REQUIRE_POSTGRES=1).
export TRE_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: help install demo test check lint typecheck contracts bench clean

help:
	@echo "make demo   - bring tre up on its embedded defaults with demo data"
	@echo "make test   - run the whole test suite"
	@echo "make check  - ruff, mypy on tre/, import-layer contracts"
	@echo "make bench  - run the benchmarks in bench/"

install: $(STAMP)

# A virtual environment with pinned dependencies (constraints.txt is the lock).
$(STAMP): pyproject.toml constraints.txt deploy/hub/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	cd deploy/hub && npm ci --no-audit --no-fund --loglevel=error  # configurable-http-proxy for the hub
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tre demo

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check tre tests bench
	$(BIN)/ruff format --check tre tests bench
	$(BIN)/mypy tre
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .tre .mypy_cache .ruff_cache .pytest_cache
