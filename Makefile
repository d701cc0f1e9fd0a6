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

# The LiteLLM guardrail's tests run a real LiteLLM proxy from its own venv: litellm[proxy]
# wants rich<14 where distillwatch pins rich==15.0.0, so LiteLLM is installed first,
# distillwatch with --no-deps, then only what the adapter imports (pins read from
# pyproject.toml, held to LiteLLM's versions). Pinned exactly: 1.107.0 was reported compromised.
LITELLM         ?= litellm[proxy]==1.102.4
LITELLM_VENV    ?= .venv-litellm
LITELLM_DW_DEPS  = prometheus-client typer pyarrow rensa zstandard stix2
LBIN             = $(LITELLM_VENV)/bin
PIP_Q            = --quiet --disable-pip-version-check

$(LBIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LBIN)/python -m pip install $(PIP_Q) '$(LITELLM)'
	$(LBIN)/python -m pip install $(PIP_Q) --no-deps -e .
	$(LBIN)/python -m pip freeze --exclude-editable > $(LITELLM_VENV)/constraints.txt
	$(LBIN)/python -m pip install $(PIP_Q) -c $(LITELLM_VENV)/constraints.txt $$($(LBIN)/python \
	  -c 'import sys, tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print(" ".join(d for d in deps if d.split("=")[0].strip() in sys.argv[1:]))' \
	  $(LITELLM_DW_DEPS))
	touch $@

.PHONY: install demo test lint simulate-ci litellm-venv
install: $(BIN)/.installed
litellm-venv: $(LBIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/distillwatch demo --out demo-out

# Two test processes (pytest-xdist): many tests wait on real servers, Spark or Redis.
test: $(BIN)/.installed $(LBIN)/.installed
	$(BIN)/python -m pytest -q -n 2

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks

simulate-ci: $(BIN)/.installed
	$(BIN)/distillwatch simulate --preset ci --seed 1 --out worlds/ci-1
