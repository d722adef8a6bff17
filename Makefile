# One-command set-up: `make demo` runs the main job, `make test` runs every check
# (lint: ruff and the import contracts of pyproject's [tool.importlinter]); `make check` is the
# quick loop (lint, types, the tests not marked slow).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-long check lint typecheck pytest pytest-fast bench docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/nextmove demo

test: lint typecheck pytest

check: lint typecheck pytest-fast

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/pytest

# The long runs (e.g. the demo's three 60-day arms, ~15 min): not in CI, run before a release.
test-long: $(BIN)/.installed
	$(BIN)/pytest --long -m long

pytest-fast: $(BIN)/.installed
	$(BIN)/pytest -m "not slow"

bench: $(BIN)/.installed
	$(BIN)/python -m bench.steps

docs: $(BIN)/.installed
	$(BIN)/typer cli.py utils docs --name nextmove --output docs/cli.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
