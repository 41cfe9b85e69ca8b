# The two commands of the README: `make demo` and `make test`. Everything else is a step they use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev system-packages lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

system-packages:
	bash scripts/install-system-packages.sh

## Start the demo on the embedded default (SQLite file in this folder, worker in-process).
demo: install
	$(BIN)/perezvon demo

## Run the whole test suite: lint, the import rules of docs/architecture.md, Python (domain, API on SQLite and
## PostgreSQL, engine, SIP, browser), JS SDK.
test: system-packages install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/pytest
	node --test tests/sdk/

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
