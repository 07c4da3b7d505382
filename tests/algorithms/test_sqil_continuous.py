"""SQIL with SAC (Box actions) on Pendulum-v1, from 50 episodes of a SAC expert trained here:
a fast check on 2 seeds, and 8 seeds at -200 or better on at least 6 (slow)."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import envs
from experiments.configs import SQIL_SAC_PENDULUM
from jaxrl_align.algorithms import sqil
from jaxrl_align.data.rollout import max_episode_steps, rollout_episodes
from jaxrl_align.rl import sac
from jaxrl_align.runtime import runner
from jaxrl_align.types import flatten_trajectories
from tests.rl.test_sac import pendulum_sac_run

SQIL_PENDULUM = SQIL_SAC_PENDULUM  # imitation's own SQIL-with-SAC test settings, fixed α
EXPERT_EPISODES = 50


@pytest.fixture(scope="module")
def pendulum():
    return envs.make("Pendulum-v1")


@pytest.fixture(scope="module")
def expert_demos(pendulum):
    """50 deterministic episodes of the better of two SAC runs (tests/rl/test_sac.py)."""
    env, params = pendulum
    algo, result = pendulum_sac_run(env, params)
    expert = result.run_state(result.best_run())
    collect = jax.jit(lambda state, key: rollout_episodes(
        env, params, lambda k, obs: algo.act(state, k, obs), key, EXPERT_EPISODES,
        max_episode_steps(params)))
    trajs = collect(expert, jax.random.PRNGKey(123))
    # Pendulum's returns depend on the start: about -120 from near the top, -240 from the
    # bottom, -350 when two swings are needed; the expert's mean is about -180.
    assert float(np.mean(trajs.returns)) >= -200, np.asarray(trajs.returns)
    return flatten_trajectories(trajs)


def sqil_run(pendulum, demos, seeds: int, total_timesteps: int):
    env, params = pendulum
    config = dataclasses.replace(SQIL_PENDULUM, total_timesteps=total_timesteps)
    algo = sqil.make(config, env, params)
    settings = runner.RunSettings(seeds=seeds, num_chunks=4, eval_episodes=5,
                                  final_eval_episodes=50, progress=False)
    return runner.run(algo, env, params, settings, demos)


def test_sqil_picks_sac_for_box_actions(pendulum):
    assert isinstance(sqil.default_config(*pendulum), sac.SACConfig)


def test_sqil_with_sac_imitates_pendulum_fast(pendulum, expert_demos):
    """2 seeds, 5,000 steps: a policy that never learned to swing up scores about -1200."""
    result = sqil_run(pendulum, expert_demos, 2, 5_000)
    returns = np.asarray(result.summary["return_mean"])
    assert np.all(returns > -300), returns
    # The critics learned SQIL's 0/1 rewards (Q > 0), not Pendulum's (all negative).
    assert np.all(result.chunk_metrics["q"][:, -1] > 0)


@pytest.mark.slow
def test_sqil_with_sac_reaches_minus_200_on_6_of_8_seeds(pendulum, expert_demos):
    result = sqil_run(pendulum, expert_demos, 8, 10_000)
    returns = np.asarray(result.summary["return_mean"])
    assert np.sum(returns >= -200) >= 6, returns
