# Two entry points that work on a fresh machine with only Python 3.11+:
#   make demo   - build the small benchmark world, scan it, print the report and its evaluation
#   make test   - run the whole test suite
# Each creates .venv and installs the pinned dependencies on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

.PHONY: install demo test lint simulate-ci
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/distillwatch demo --out demo-out

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks

simulate-ci: $(BIN)/.installed
	$(BIN)/distillwatch simulate --preset ci --seed 1 --out worlds/ci-1
