# The two commands a new user needs: `make run` (demo) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install run test lint typecheck unit clean chaos chaos-quick bench bench-quick

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dialer demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q --durations=15

chaos: $(STAMP)
	$(BIN)/python bench/chaos.py $(if $(SEED),--seed $(SEED))

chaos-quick: $(STAMP)
	$(BIN)/python bench/chaos.py --quick $(if $(SEED),--seed $(SEED))

# performance figures against same-run baselines (docs/benchmarks.md); ONLY=dispatch,fanout runs a subset
bench: $(STAMP)
	$(BIN)/python bench/run.py $(if $(ONLY),--only $(ONLY))

bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
