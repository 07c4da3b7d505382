"""Helpers shared by the conformance tests that hold our JAX envs against seals."""

import warnings

import gymnasium as gym
import jax
import numpy as np
import seals  # noqa: F401  (registers the seals/* ids with gymnasium)


def make_seals(env_id: str) -> gym.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's passive env checker
        env = gym.make(env_id)
    env.reset(seed=0)
    return env


def assert_same_space(ours, theirs: gym.Space):
    if isinstance(theirs, gym.spaces.Discrete):
        assert ours.n == theirs.n
        return
    if isinstance(theirs, gym.spaces.MultiDiscrete):
        np.testing.assert_array_equal(ours.nvec, theirs.nvec)
        return
    assert tuple(ours.shape) == theirs.shape
    assert np.dtype(ours.dtype) == theirs.dtype
    np.testing.assert_array_equal(
        np.broadcast_to(np.asarray(ours.low, theirs.dtype), theirs.shape), theirs.low
    )
    np.testing.assert_array_equal(
        np.broadcast_to(np.asarray(ours.high, theirs.dtype), theirs.shape), theirs.high
    )


def batched_step(env, params, keys, states, actions):
    return jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))(
        keys, states, actions, params
    )


def run_episodes(env, params, key, n_episodes, policy):
    """Resets and steps `n_episodes` episodes of `params.max_steps_in_episode` steps
    in one compiled call. Returns, with a leading episode axis, the first observation
    and per step: the state before the step, the action and what `env.step` returned."""

    def episode(key):
        key_reset, key_steps = jax.random.split(key)
        first_obs, first_state = env.reset(key_reset, params)

        def step(state, key):
            key_policy, key_step = jax.random.split(key)
            action = policy(key_policy, env.get_obs(state, params))
            obs, next_state, reward, terminated, truncated, info = env.step(
                key_step, state, action, params
            )
            record = (
                state,
                action,
                obs,
                info["final_observation"],
                reward,
                terminated,
                truncated,
            )
            return next_state, record

        keys = jax.random.split(key_steps, params.max_steps_in_episode)
        _, record = jax.lax.scan(step, first_state, keys)
        return first_obs, record

    episodes = jax.jit(jax.vmap(episode))(jax.random.split(key, n_episodes))
    return jax.tree.map(np.asarray, episodes)


def uniform_policy(n_actions):
    return lambda key, obs: jax.random.randint(key, (), 0, n_actions)
