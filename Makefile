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

# rejax (JAX PPO, DQN, SAC) in an environment of its own, for the peer benchmark only.
REJAX_VENV := .venv-rejax
REJAX_STAMP := $(REJAX_VENV)/.installed
REJAX_PACKAGES := "rejax==0.1.3" "jax==0.10.2" "jaxlib==0.10.2" "flax==0.12.8" "optax==0.2.8" "gymnax==1.0.1" "six"

.PHONY: setup imitation-env rejax-env peer-envs quickstart test test-all bench bench-peers clean

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

$(REJAX_STAMP):
	$(PYTHON) -m venv $(REJAX_VENV)
	$(REJAX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(REJAX_VENV)/bin/python -m pip install --quiet $(REJAX_PACKAGES)
	touch $(REJAX_STAMP)

rejax-env: $(REJAX_STAMP)

peer-envs: $(IMITATION_STAMP) $(REJAX_STAMP)

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

# The peer table (imitation, rejax) side by side with this package, in one sitting.
bench-peers: $(STAMP) $(IMITATION_STAMP) $(REJAX_STAMP)
	$(PY) -m experiments.bench.peers

clean:
	rm -rf $(VENV) $(IMITATION_VENV) $(REJAX_VENV) runs .pytest_cache
