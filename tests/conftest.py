"""Shared fixtures. Compilation dominates small tests on a 2-core CPU, so the persistent
compilation cache is on and expensive training runs are module-scoped fixtures."""
import os
import tempfile

import jax
import pytest

from envs.controllers import cartpole_controller
from jaxrl_align.platform import compilation_cache

compilation_cache.enable()
# Experts made on demand (experiments.experts) go to a folder of this session, never ~/.cache.
os.environ.setdefault("JAXRL_ALIGN_EXPERTS", tempfile.mkdtemp(prefix="jaxrl_align_experts_"))


@pytest.fixture(scope="session")
def cartpole():
    import envs

    return envs.make("seals/CartPole-v0")


@pytest.fixture(scope="session")
def cartpole_demos(cartpole):
    """10 expert episodes of the controller (5,000 transitions)."""
    from jaxrl_align.data import rollout

    env, params = cartpole
    return rollout.collect_episodes(env, params, cartpole_controller, jax.random.PRNGKey(0), 10, 500)


@pytest.fixture(scope="session")
def demo_file(tmp_path_factory, cartpole_demos):
    """The controller episodes as a demonstrations file (what --demos reads)."""
    from jaxrl_align.data import demonstrations

    path = tmp_path_factory.mktemp("demos") / "cartpole.npz"
    return demonstrations.save_demos(path, cartpole_demos, env_id="seals/CartPole-v0",
                                     source="controller")


def run_results(out) -> dict:
    """results.json of a run without the fields that differ between identical runs (timings,
    where it resumed from)."""
    import json
    from pathlib import Path

    record = json.loads((Path(out) / "results.json").read_text())
    return {k: v for k, v in record.items() if k not in ("compile_s", "run_s", "resumed_from")}


@pytest.fixture(scope="session")
def imitation_python() -> str:
    """The interpreter of imitation's own environment (`make imitation-env`: imitation 1.0.1,
    SB3, rliable), for tests that check files and numbers against the reference libraries.
    Missing, the test fails under CI and is skipped elsewhere."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    python = os.environ.get("JAXRL_IMITATION_PYTHON", str(repo / ".venv-imitation/bin/python"))
    if not Path(python).exists():
        message = (f"no imitation interpreter at {python} (set JAXRL_IMITATION_PYTHON): "
                   "run `make imitation-env`")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python
