"""Shared fixtures. Compilation dominates small tests on a 2-core CPU, so the persistent
compilation cache is on and expensive training runs are module-scoped fixtures."""
import jax
import jax.numpy as jnp
import pytest

from jaxrl_align import compilation_cache

compilation_cache.enable()


def cartpole_controller(key, obs):
    """A hand-written linear controller that keeps seals/CartPole-v0 upright for all 500 steps:
    a cheap, deterministic expert for imitation tests."""
    del key
    x, x_dot, theta, theta_dot = obs
    return (theta + 0.3 * theta_dot + 0.05 * x + 0.2 * x_dot > 0).astype(jnp.int32)


@pytest.fixture(scope="session")
def cartpole():
    import envs

    return envs.make("seals/CartPole-v0")


@pytest.fixture(scope="session")
def cartpole_demos(cartpole):
    """10 expert episodes of the controller (5,000 transitions)."""
    from jaxrl_align import rollout

    env, params = cartpole
    return rollout.collect_episodes(env, params, cartpole_controller, jax.random.PRNGKey(0), 10, 500)
