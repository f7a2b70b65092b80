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

# ruff first (a second), then mypy beside the tests: the suite runs on $(TEST_WORKERS) pytest-xdist
# workers, each with its own Temporal dev server and emulator (tests/conftest.py), and mypy's report is
# printed after the tests' own. Both must pass.
TEST_WORKERS ?= 4

test: lint
	@report=$$(mktemp); \
	$(BIN)/mypy >"$$report" 2>&1 & mypy=$$!; \
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal; tests=$$?; \
	wait $$mypy; typed=$$?; \
	echo "mypy:"; cat "$$report"; rm -f "$$report"; \
	test $$tests -eq 0 && test $$typed -eq 0

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

chaos: $(STAMP)
	$(BIN)/pytest -q -m chaos

# Every contender side by side in one run: one table, bench/results/latest.json and latest.png
# (docs/performance.md). About 65 minutes; QUICK=1 runs a reduced workload in under three minutes.
# Not part of `make test`. The capacity section alone: $(BIN)/python -m bench capacity --mode poll --jobs 10000
BENCH_STAMP := $(VENV)/.lanes-bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,dev-stack,otlp,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) .lanes .mypy_cache .ruff_cache .pytest_cache
