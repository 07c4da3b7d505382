"""SQIL: every batch is half learner transitions at reward 0 (first, rounded down) and half
demonstrations at reward 1 (imitation's split_in_half), the learner is chosen by the action
space, bad demonstrations are refused, and SQIL with DQN imitates the CartPole controller from
10 episodes (a fast check; 8 seeds at normalised >= 0.9 is `slow`)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from experiments.configs import SQIL_CARTPOLE  # the DQN CartPole preset at lr 1e-3
from jaxrl_align.algorithms import sqil
from jaxrl_align.data import ring_buffer
from jaxrl_align.rl import dqn
from jaxrl_align.runtime import runner
from jaxrl_align.types import Transitions, flatten_trajectories


def marked(value: float, n: int, rews: float) -> Transitions:
    """n transitions whose observations are all `value`, with reward `rews`."""
    return Transitions(obs=jnp.full((n, 4), value), acts=jnp.full((n,), int(value > 0), jnp.int32),
                       next_obs=jnp.full((n, 4), value), terminated=jnp.zeros((n,), bool),
                       rews=jnp.full((n,), rews), truncated=jnp.zeros((n,), bool))


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_batches_are_half_learner_at_0_then_half_expert_at_1(batch_size):
    buffer = ring_buffer.add(ring_buffer.init(marked(-1.0, 1, 0.0), 100),
                             marked(-1.0, 30, 5.0))  # the environment paid 5
    # Demonstrations need no rewards (nor truncation flags).
    demos = marked(1.0, 20, 0.0).replace(rews=None, truncated=None)
    batch = jax.jit(sqil.sample_batch, static_argnums=3)(buffer, demos, jax.random.PRNGKey(0),
                                                        batch_size)
    num_learner = batch_size // 2
    assert len(batch) == batch_size
    np.testing.assert_array_equal(batch.obs[:num_learner], -1.0)
    np.testing.assert_array_equal(batch.obs[num_learner:], 1.0)
    np.testing.assert_array_equal(batch.rews[:num_learner], 0.0)
    np.testing.assert_array_equal(batch.rews[num_learner:], 1.0)
    assert batch.acts.dtype == buffer.items.acts.dtype


def test_expert_half_draws_every_demonstration_uniformly():
    buffer = ring_buffer.add(ring_buffer.init(marked(-1.0, 1, 0.0), 10), marked(-1.0, 10, 0.0))
    n = 5
    demos = marked(1.0, n, 0.0).replace(obs=jnp.arange(n, dtype=jnp.float32)[:, None]
                                        * jnp.ones((1, 4)))
    batch = sqil.sample_batch(buffer, demos, jax.random.PRNGKey(0), 20_000)
    counts = np.bincount(np.asarray(batch.obs[10_000:, 0]).astype(int), minlength=n)
    np.testing.assert_allclose(counts / 10_000, 1 / n, atol=0.015)


def test_split_in_half_is_imitations():
    assert [sqil.split_in_half(n) for n in (1, 2, 7, 32)] == [(0, 1), (1, 1), (3, 4), (16, 16)]


def test_learner_follows_the_action_space(cartpole):
    env, params = cartpole
    assert isinstance(sqil.default_config(env, params), dqn.DQNConfig)
    pendulum, pendulum_params = envs.make("Pendulum-v1")
    with pytest.raises(ValueError, match="config: SQIL on a Box action space needs a SACConfig"):
        sqil.make(dqn.DQNConfig(), pendulum, pendulum_params)
    try:
        from jaxrl_align.rl import sac
    except ImportError:
        with pytest.raises(ValueError, match=r"action space: SQIL on a Box action space needs SAC"):
            sqil.make(None, pendulum, pendulum_params)
    else:
        assert isinstance(sqil.default_config(pendulum, pendulum_params), sac.SACConfig)
        with pytest.raises(ValueError, match="needs a DQNConfig, got a SACConfig"):
            sqil.make(sac.SACConfig(), env, params)
    with pytest.raises(ValueError, match="config: expected a DQNConfig or a SACConfig"):
        sqil.make(object(), env, params)


def test_demonstrations_of_another_env_are_refused(cartpole):
    env, params = cartpole
    algo = sqil.make(dqn.DQNConfig(), env, params)
    bad = marked(1.0, 10, 0.0).replace(obs=jnp.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"demonstrations.obs: expected shape \(10, 4\)"):
        algo.init(jax.random.PRNGKey(0), bad)


def sqil_run(cartpole, demos, seeds, **overrides):
    env, params = cartpole
    config = dataclasses.replace(SQIL_CARTPOLE, **overrides)
    algo = sqil.make(config, env, params)
    settings = runner.RunSettings(seeds=seeds, num_chunks=4, eval_episodes=5,
                                  final_eval_episodes=10, progress=False)
    return runner.run(algo, env, params, settings, demos,
                      reference_returns=envs.reference_returns("seals/CartPole-v0"))


def test_sqil_reaches_expert_on_6_of_8_seeds(cartpole, cartpole_demos):
    """8 seeds in one call, 15,000 environment steps, the controller's 10 episodes (conftest):
    at least 6 at a normalised score of 0.9 (measured: 8 of 8 at 500). Random play scores 0;
    DQN on the environment's reward needs about 40,000 steps for 500 with these settings."""
    result = sqil_run(cartpole, flatten_trajectories(cartpole_demos), 8, total_timesteps=15_000)
    scores = np.asarray(result.summary["normalized_score"])
    assert np.sum(scores >= 0.9) >= 6, scores
    assert result.env_steps <= 15_500
