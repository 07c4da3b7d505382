"""Shared fixtures. Compilation dominates small tests on a 2-core CPU, so the persistent
compilation cache is on and expensive training runs are module-scoped fixtures."""
import jax
import pytest

from envs.controllers import cartpole_controller
from jaxrl_align.platform import compilation_cache

compilation_cache.enable()


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
