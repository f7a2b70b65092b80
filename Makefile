# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lanes-installed

.PHONY: demo test lint typecheck unit chaos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,dev-stack,otlp,prometheus]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lanes demo

test: lint typecheck
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

chaos: $(STAMP)
	$(BIN)/pytest -q -m chaos

bench: $(STAMP)
	$(BIN)/python bench/policy_decisions.py
	$(BIN)/python bench/emulator_load.py

clean:
	rm -rf $(VENV) .lanes .mypy_cache .ruff_cache .pytest_cache
