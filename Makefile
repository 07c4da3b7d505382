# Two commands do everything on a fresh clone (Python 3.11 + package registries):
#   make quickstart   set up .venv and run the quickstart (PPO expert -> demos -> BC x 8 seeds)
#   make test         set up .venv and run the tests
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

quickstart: $(STAMP)
	$(PY) -m experiments.quickstart

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

bench: $(STAMP)
	$(PY) -m experiments.bench.throughput

clean:
	rm -rf $(VENV) runs .pytest_cache
