# Two commands do everything on a fresh clone (Python 3.11 + package registries):
#   make quickstart   set up .venv and run the quickstart (PPO expert -> demos -> BC x 8 seeds)
#   make test         set up .venv (and .venv-imitation, for the interop tests) and run the tests
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# imitation 1.0.1 (with SB3, seals, gymnasium 0.29 and CPU torch) and rliable in an environment of
# their own, never dependencies of the package: the interop and benchmark-statistics tests run them.
IMITATION_VENV := .venv-imitation
IMITATION_STAMP := $(IMITATION_VENV)/.installed
# rliable checks the benchmark's statistics; it needs pandas < 3 (arch 7.2 breaks on newer).
IMITATION_PACKAGES := "imitation==1.0.1" "rliable==1.2.0" "arch==7.2.0" "pandas==2.3.3"

.PHONY: setup imitation-env quickstart test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

$(IMITATION_STAMP):
	$(PYTHON) -m venv $(IMITATION_VENV)
	$(IMITATION_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(IMITATION_VENV)/bin/python -m pip install --quiet "torch==2.13.0+cpu" $(IMITATION_PACKAGES) \
	  || $(IMITATION_VENV)/bin/python -m pip install --quiet torch $(IMITATION_PACKAGES)
	touch $(IMITATION_STAMP)

imitation-env: $(IMITATION_STAMP)

quickstart: $(STAMP)
	$(PY) -m experiments.quickstart

# Two workers, a test file each at a time (module fixtures train once): compilation is mostly
# single-threaded, so the suite's wall time on 2 cores is close to halved.
test: $(STAMP) $(IMITATION_STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

test-all: $(STAMP) $(IMITATION_STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m ''

bench: $(STAMP)
	$(PY) -m experiments.bench.throughput

clean:
	rm -rf $(VENV) $(IMITATION_VENV) runs .pytest_cache
