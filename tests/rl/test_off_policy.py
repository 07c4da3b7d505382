"""The shared off-policy loop (`rl/off_policy.py`) with a recording learner: random steps in
`init`, train_freq × num_envs steps then gradient_steps gradient steps per update, the buffer's
contents (true next observations, terminated and truncated apart), the step counts, the
helpers (Polyak, clock, linear schedule) and the config checks."""
from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxrl_align.algorithm import train
from jaxrl_align.hparams import static
from jaxrl_align.rl import off_policy
from tests.rl import probe_envs


@struct.dataclass
class LoopConfig:
    buffer_size: int = static(1000)
    learning_starts: int = static(10)
    batch_size: int = static(8)
    train_freq: int = static(3)
    gradient_steps: int = static(2)
    num_envs: int = static(4)
    total_timesteps: int = static(100)
    gamma: float = 0.9
    tau: float = 1.0

    def __post_init__(self):
        off_policy.check_config(self)


def recording_learner(action: int = 0) -> off_policy.Learner:
    """Explores with a constant action; each gradient step counts itself and keeps its batch's
    rewards, actions and env_steps; after_collect records its clock."""

    def init(key, hp):
        return dict(steps=jnp.zeros((), jnp.int32), collects=jnp.zeros((2,), jnp.int32))

    def explore(ls, hp, key, obs, env_steps):
        return jnp.full((obs.shape[0],), action, jnp.int32)

    def train_step(ls, hp, key, batch, env_steps):
        ls = {**ls, "steps": ls["steps"] + 1}
        return ls, dict(batch_rews=jnp.mean(batch.rews), batch_size=jnp.float32(len(batch)),
                        env_steps=env_steps.astype(jnp.float32))

    def act(ls, hp, key, obs, deterministic, env_steps):
        return jnp.int32(action)

    def after_collect(ls, hp, before, after):
        return {**ls, "collects": jnp.stack([before, after])}

    return off_policy.Learner(init, explore, train_step, act, after_collect)


@pytest.fixture(scope="module")
def cartpole_loop(cartpole):
    env, params = cartpole
    config = LoopConfig()
    algo = off_policy.make("loop", recording_learner(), config, env, params)
    init = jax.jit(lambda key: algo.init(key, None))
    state0 = init(jax.random.PRNGKey(0))
    state1, metrics = jax.jit(algo.update)(state0, None)
    return config, algo, state0, state1, metrics


def test_init_takes_learning_starts_random_steps(cartpole_loop):
    config, _, state0, _, _ = cartpole_loop
    # ceil(10 / 4) = 3 vectorised steps of 4 environments.
    assert off_policy.random_steps(config) == 3
    assert int(state0.env_steps) == 12
    assert int(state0.buffer.size) == 12
    acts = np.asarray(state0.buffer.items.acts[:12])
    # Uniform over both actions (the learner would always take 0).
    assert 0 < acts.sum() < 12
    assert int(state0.learner["steps"]) == 0


def test_update_steps_then_learns(cartpole_loop):
    config, _, _, state1, metrics = cartpole_loop
    per_update = config.train_freq * config.num_envs
    assert int(state1.env_steps) == 12 + per_update
    assert int(state1.buffer.size) == 12 + per_update
    np.testing.assert_array_equal(state1.buffer.items.acts[12:12 + per_update], 0)
    assert int(state1.learner["steps"]) == config.gradient_steps
    np.testing.assert_array_equal(state1.learner["collects"], [12, 12 + per_update])
    assert float(metrics["batch_size"]) == config.batch_size
    # Gradient steps see the count after the update's environment steps.
    assert float(metrics["env_steps"]) == 12 + per_update
    # CartPole pays 1 while the pole is up; the replay batch carries the env's rewards.
    assert 0.5 < float(metrics["batch_rews"]) <= 1.0


def test_run_length_and_buffer_capacity():
    config = LoopConfig()
    # (100 - 12) / 12 rounded up.
    assert off_policy.num_updates(config) == 8
    assert off_policy.buffer_capacity(config) == 12 + 8 * 12
    assert off_policy.buffer_capacity(dataclasses.replace(config, buffer_size=50)) == 50
    no_random = dataclasses.replace(config, learning_starts=0)
    assert off_policy.random_steps(no_random) == 0 and off_policy.num_updates(no_random) == 9


def test_no_random_steps_when_learning_starts_is_zero(cartpole):
    env, params = cartpole
    algo = off_policy.make("loop", recording_learner(1), LoopConfig(learning_starts=0), env,
                           params)
    state, _ = jax.jit(lambda key: train(algo, key, None, 2))(jax.random.PRNGKey(0))
    assert int(state.env_steps) == 24
    np.testing.assert_array_equal(state.buffer.items.acts[:24], 1)


def test_buffer_keeps_true_next_obs_and_flags_apart():
    """On the swap probe, every stored step's next_obs is the other state (never the reset
    observation), and the end of an episode is stored as a time limit or as a termination, as
    the env reported it."""
    for time_limit_is_termination in (False, True):
        env, params = probe_envs.swap(time_limit_is_termination)
        algo = off_policy.make("loop", recording_learner(), LoopConfig(), env, params)
        state, _ = jax.jit(lambda key: train(algo, key, None, 3))(jax.random.PRNGKey(1))
        size = int(state.buffer.size)
        items = jax.tree.map(lambda x: np.asarray(x[:size]), state.buffer.items)
        np.testing.assert_array_equal(items.next_obs, 1 - items.obs)
        assert np.all(items.terminated == time_limit_is_termination)
        assert np.all(items.truncated == (not time_limit_is_termination))


def test_training_return_is_the_episode_return(cartpole):
    env, params = cartpole
    # Always pushing left: every episode lasts seals' 500 steps; the pole falls early.
    config = LoopConfig(learning_starts=0, train_freq=500, num_envs=2, total_timesteps=1000)
    algo = off_policy.make("loop", recording_learner(0), config, env, params)
    _, metrics = jax.jit(lambda key: train(algo, key, None, 1))(jax.random.PRNGKey(0))
    assert 0 < float(metrics["return"][0]) < 100


def test_polyak():
    target, online = {"w": jnp.zeros(3)}, {"w": jnp.ones(3) * 2}
    np.testing.assert_allclose(off_policy.polyak(target, online, 1.0)["w"], 2.0)
    np.testing.assert_allclose(off_policy.polyak(target, online, 0.25)["w"], 0.5)


def test_clock_counts_multiples():
    crossed = lambda b, a, p: int(off_policy.updates_crossed(jnp.int32(b), jnp.int32(a), p))
    assert crossed(0, 9, 10) == 0
    assert crossed(9, 10, 10) == 1
    assert crossed(10, 19, 10) == 0
    assert crossed(5, 36, 10) == 3


def test_linear_schedule_is_sb3s():
    """SB3's get_linear_fn(start, end, end_fraction) at progress p = 1 − progress_remaining:
    start + p·(end − start)/end_fraction until end_fraction, then end."""
    for p in (0.0, 0.05, 0.1, 0.5, 1.0):
        expected = 1.0 + p * (0.05 - 1.0) / 0.1 if p <= 0.1 else 0.05
        np.testing.assert_allclose(off_policy.linear_schedule(1.0, 0.05, 0.1, p), expected,
                                   rtol=1e-6)
    # A fraction of 0: the final value as soon as the run has started.
    np.testing.assert_allclose(off_policy.linear_schedule(1.0, 0.05, 0.0, 0.001), 0.05,
                               rtol=1e-6)


@pytest.mark.parametrize("field,value,message", [
    ("buffer_size", 0, "buffer_size: expected a positive integer, got 0"),
    ("learning_starts", -1, "learning_starts: expected an integer >= 0, got -1"),
    ("gradient_steps", 0, "gradient_steps: expected a positive integer, got 0"),
    ("gamma", 1.5, "gamma: expected a discount in [0, 1], got 1.5"),
    ("tau", 0.0, "tau: expected a target update coefficient in (0, 1], got 0.0"),
])
def test_bad_config_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        LoopConfig(**{field: value})
