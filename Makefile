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

# Two workers, a test file each at a time (module fixtures train once): compilation is mostly
# single-threaded, so the suite's wall time on 2 cores is close to halved.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m ''

bench: $(STAMP)
	$(PY) -m experiments.bench.throughput

clean:
	rm -rf $(VENV) runs .pytest_cache
