"""The MJX backend against gymnasium's own v4 tasks (MuJoCo's C engine, float64).

MJX computes in float32 and differs from the C engine in solver details, so nothing here is
compared bit for bit. Trajectories of random actions are chaotic once feet hit the ground (the C
engine against itself, started 1e-7 apart, drifts by O(1) within 50 HalfCheetah steps), so the
whole-trajectory check runs only as long as the two engines stay close; the one-step check starts
MJX from each of gymnasium's states along an episode, where errors cannot compound.

Every check of a task goes through one compiled program, a step of 4 environments under `vmap`
(compiling MJX on a CPU takes tens of seconds a task).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.mujoco import HORIZON, MujocoState
from tests.envs import mujoco_reference as reference

BATCH = 4


@functools.cache
def batched_step(env_id):
    env, params = reference.make(env_id, "mjx")
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    return env, params, step


def gymnasium_transitions(task, num_steps, seed=0):
    """gymnasium's (qpos, qvel) before each of `num_steps` random actions, the actions, and the
    observation and reward after each."""
    gym_env = reference.gymnasium_env(task)
    gym_env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    low, high = gym_env.action_space.low, gym_env.action_space.high
    qpos, qvel, actions, observations, rewards = [], [], [], [], []
    for _ in range(num_steps):
        action = rng.uniform(low, high).astype(np.float32)
        qpos.append(gym_env.data.qpos.copy())
        qvel.append(gym_env.data.qvel.copy())
        obs, reward, _, _, _ = gym_env.step(action)
        actions.append(action)
        observations.append(obs)
        rewards.append(reward)
    return tuple(map(np.array, (qpos, qvel, actions, observations, rewards)))


def step_from(env_id, qpos, qvel, actions, times=None):
    """One batched env step from the states (qpos, qvel) [BATCH, ...], as `physics_from` sets
    them: (observation, final observation, reward, new state, truncated)."""
    env, params, step = batched_step(env_id)
    physics = jnp.stack([jnp.asarray(env.physics.physics_from(p, v)) for p, v in zip(qpos, qvel)])
    times = jnp.zeros(BATCH, jnp.int32) if times is None else jnp.asarray(times, jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(0), BATCH)
    obs, state, reward, _, truncated, info = step(
        keys, MujocoState(physics=physics, time=times), jnp.asarray(actions), params)
    return (np.asarray(obs), np.asarray(info["final_observation"]), np.asarray(reward), state,
            np.asarray(truncated))


def replay_batch(env_id, episodes):
    """(observations, rewards) [T, BATCH, ...] of MJX replaying gymnasium's episodes together."""
    env, params, step = batched_step(env_id)
    physics = jnp.stack([jnp.asarray(env.physics.physics_from(qpos, qvel))
                         for qpos, qvel, *_ in episodes])
    state = MujocoState(physics=physics, time=jnp.zeros(BATCH, jnp.int32))
    keys = jax.random.split(jax.random.PRNGKey(0), BATCH)
    actions = np.stack([episode[2] for episode in episodes], axis=1)
    observations, rewards = [], []
    for action in actions:  # a Python loop over the one compiled batched step
        _, state, reward, _, _, info = step(keys, state, jnp.asarray(action), params)
        observations.append(np.asarray(info["final_observation"]))
        rewards.append(np.asarray(reward))
    return np.array(observations), np.array(rewards)


# (task, steps compared, atol of observations, atol of rewards); observations also rtol 1e-4.
# Tolerances are 3-6 times the largest error measured over seeds 0-3; each horizon stops before
# the first seed's trajectories part (HalfCheetah's by 0.06 at step 10, its feet in contact).
TRAJECTORY_CASES = [
    ("seals/HalfCheetah-v1", 5, 1e-4, 5e-5),
    ("seals/Hopper-v1", 50, 3e-5, 1e-5),
    pytest.param("seals/Swimmer-v1", 100, 1e-4, 5e-5, marks=pytest.mark.slow),
    pytest.param("seals/Walker2d-v1", 50, 5e-4, 2e-4, marks=pytest.mark.slow),
    pytest.param("seals/Humanoid-v1", 25, 5e-2, 1e-3, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("env_id, num_steps, obs_atol, reward_atol", TRAJECTORY_CASES)
def test_trajectories_track_gymnasium(env_id, num_steps, obs_atol, reward_atol):
    """Same start states, same random actions, four episodes at once under `vmap`: observations
    and rewards stay within float32 and solver tolerance of gymnasium's over a short horizon."""
    env, _, _ = batched_step(env_id)
    episodes = [reference.gymnasium_episode(env.task, num_steps, seed) for seed in range(BATCH)]
    observations, rewards = replay_batch(env_id, episodes)
    gym_obs = np.stack([episode[3] for episode in episodes], axis=1)
    gym_rewards = np.stack([episode[4] for episode in episodes], axis=1)
    assert observations.shape == gym_obs.shape == (num_steps, BATCH, env.physics.obs_size)
    np.testing.assert_allclose(observations, gym_obs, rtol=1e-4, atol=obs_atol)
    np.testing.assert_allclose(rewards, gym_rewards, atol=reward_atol)


# (task, atol of observations, atol of rewards) for one step from each of 100 gymnasium states;
# 3-5 times the largest error measured, except where MJX is a different simulation:
ONE_STEP_CASES = [
    ("seals/HalfCheetah-v1", 3e-4, 1e-5),
    ("seals/Hopper-v1", 1e-5, 5e-6),
    pytest.param("seals/Swimmer-v1", 2e-6, 5e-6, marks=pytest.mark.slow),
    pytest.param("seals/Walker2d-v1", 1e-6, 1e-5, marks=pytest.mark.slow),
    # MJX aligns a capsule-floor contact's tangent frame with the capsule only when the capsule
    # lies within 60 degrees of the floor (MuJoCo always does), and gymnasium's pyramidal friction
    # cones turn with the frame: Ant's steep shins get other friction forces (measured: 0.85 in
    # observations, 0.13 in rewards; with elliptic cones both engines agree to 6e-7).
    pytest.param("seals/Ant-v1", 3.0, 0.5, marks=pytest.mark.slow),
    # Humanoid's hard floor contacts are ill-conditioned in float32: contact forces (cfrc_ext,
    # observed) off by up to 330 of 380 and qvel by 0.27 (MJX in float64: 0.13 and 5e-4).
    pytest.param("seals/Humanoid-v1", 1e3, 1e-2, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("env_id, obs_atol, reward_atol", ONE_STEP_CASES)
def test_one_step_from_gymnasium_states(env_id, obs_atol, reward_atol):
    """From each state of a 100-step gymnasium episode (contacts made and broken), one MJX step
    gives gymnasium's next observation and reward."""
    env, _, _ = batched_step(env_id)
    qpos, qvel, actions, gym_obs, gym_rewards = gymnasium_transitions(env.task, 100)
    for start in range(0, 100, BATCH):
        batch = slice(start, start + BATCH)
        _, final_obs, reward, _, _ = step_from(env_id, qpos[batch], qvel[batch], actions[batch])
        np.testing.assert_allclose(final_obs, gym_obs[batch], rtol=1e-4, atol=obs_atol)
        np.testing.assert_allclose(reward, gym_rewards[batch], atol=reward_atol)


def test_truncation_starts_the_episode_reset_would():
    """Under `vmap`, the environments at the horizon truncate and start the episode that `reset`
    draws from the same key; the others carry on; final observations are of the step taken."""
    env_id = "seals/HalfCheetah-v1"
    env, params, _ = batched_step(env_id)
    qpos, qvel, actions, gym_obs, _ = gymnasium_transitions(env.task, BATCH)
    at_horizon = np.array([False, True, False, True])
    obs, final_obs, _, state, truncated = step_from(
        env_id, qpos, qvel, actions, times=np.where(at_horizon, HORIZON - 1, 0))
    np.testing.assert_array_equal(truncated, at_horizon)
    np.testing.assert_array_equal(np.asarray(state.time), np.where(at_horizon, 0, 1))
    np.testing.assert_allclose(final_obs, gym_obs, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(obs[~at_horizon], final_obs[~at_horizon])
    keys = jax.random.split(jax.random.PRNGKey(0), BATCH)
    reset_obs, reset_state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    np.testing.assert_allclose(obs[at_horizon], np.asarray(reset_obs)[at_horizon], atol=1e-6)
    np.testing.assert_allclose(np.asarray(state.physics)[at_horizon],
                               np.asarray(reset_state.physics)[at_horizon], atol=1e-6)
    reset_qpos, _ = env.physics.qpos_qvel(np.asarray(reset_state.physics)[0])
    init_qpos = reference.gymnasium_env(env.task).init_qpos
    assert 0 < np.abs(reset_qpos - init_qpos).max() <= env.task.reset_noise_scale


def test_interface_mirrors_the_c_backend():
    env, _ = reference.make("seals/Hopper-v1", "mjx")
    c_env, _ = reference.make("seals/Hopper-v1", "mujoco")
    assert env.backend == "mjx"
    for name in ("nq", "nv", "nu", "obs_size", "dt"):
        assert getattr(env.physics, name) == getattr(c_env.physics, name), name
    np.testing.assert_array_equal(env.physics.action_low, c_env.physics.action_low)
    np.testing.assert_array_equal(env.physics.action_high, c_env.physics.action_high)
    qpos = np.linspace(0.0, 0.5, env.physics.nq)
    qvel = np.linspace(-1.0, 1.0, env.physics.nv)
    got_qpos, got_qvel = env.physics.qpos_qvel(env.physics.physics_from(qpos, qvel))
    np.testing.assert_allclose(got_qpos, qpos, rtol=1e-7)
    np.testing.assert_allclose(got_qvel, qvel, rtol=1e-7)
