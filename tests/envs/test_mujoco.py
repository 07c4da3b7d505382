"""The MuJoCo backend against gymnasium's own v4 tasks, and the environment contract."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.mujoco import HORIZON, TASKS
from tests.envs import mujoco_reference as reference


ENV_IDS = list(TASKS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_full_episode_matches_gymnasium(env_id):
    """Same start state, same random actions: every observation and reward of a whole episode
    equals gymnasium's (float64 there, float32 here)."""
    env, params = reference.make(env_id, "mujoco")
    qpos, qvel, actions, gym_obs, gym_rewards = reference.gymnasium_episode(env.task, HORIZON)
    observations, rewards = reference.replay(
        env, params, jnp.asarray(env.physics.physics_from(qpos, qvel)), actions)
    assert observations.shape == gym_obs.shape == (HORIZON, env.physics.obs_size)
    np.testing.assert_allclose(observations, gym_obs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rewards, gym_rewards, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rewards.sum(dtype=np.float64), gym_rewards.sum(), rtol=1e-6)


@pytest.mark.parametrize("env_id", ["seals/HalfCheetah-v1", "seals/Hopper-v1"])
def test_reset_noise_is_v4s(env_id):
    """Reset states are the model's initial state plus v4's noise: the same support and spread as
    gymnasium's own resets (different generators, so compared in distribution)."""
    env, params = reference.make(env_id, "mujoco")
    obs, states = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(jax.random.PRNGKey(0), 2000), params)
    qpos = np.stack([env.physics.qpos_qvel(p)[0] for p in np.asarray(states.physics)])
    qvel = np.stack([env.physics.qpos_qvel(p)[1] for p in np.asarray(states.physics)])
    gym_env = reference.gymnasium_env(env.task)
    gym_qpos, gym_qvel = [], []
    for seed in range(2000):
        gym_env.reset(seed=seed)
        gym_qpos.append(gym_env.data.qpos.copy())
        gym_qvel.append(gym_env.data.qvel.copy())
    gym_qpos, gym_qvel = np.array(gym_qpos), np.array(gym_qvel)
    scale = env.task.reset_noise_scale
    np.testing.assert_allclose(qpos.mean(0), gym_qpos.mean(0), atol=0.1 * scale)
    np.testing.assert_allclose(qpos.std(0), gym_qpos.std(0), rtol=0.1)
    np.testing.assert_allclose(qvel.std(0), gym_qvel.std(0), rtol=0.1)
    assert np.abs(qpos - env.physics.host.init_qpos).max() <= scale
    # The observation of a reset state is of that state (positions included, seals' change).
    np.testing.assert_allclose(np.asarray(obs)[:, :env.physics.nq], qpos, rtol=1e-6, atol=1e-7)


def test_vmapped_steps_equal_single_steps_and_truncate_at_the_horizon():
    """A batch in one callback gives each environment's own result (threads or not), and the
    1000th step truncates and starts a fresh episode; nothing ever terminates."""
    env, params = envs.make("seals/Hopper-v1", backend="mujoco")
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = jax.random.uniform(jax.random.PRNGKey(2), (4, 3), minval=-1.0, maxval=1.0)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    batched = step(keys, state, actions, params)
    for i in range(4):
        single = env.step(keys[i], jax.tree.map(lambda x: x[i], state), actions[i], params)
        np.testing.assert_array_equal(np.asarray(single[0]), np.asarray(batched[0][i]))
        np.testing.assert_array_equal(np.asarray(single[1].physics),
                                      np.asarray(batched[1].physics[i]))
    last = state.replace(time=jnp.full((4,), HORIZON - 1, jnp.int32))
    obs, new_state, reward, terminated, truncated, info = step(keys, last, actions, params)
    assert bool(truncated.all()) and not bool(terminated.any())
    assert (np.asarray(new_state.time) == 0).all()
    assert not np.allclose(np.asarray(obs), np.asarray(info["final_observation"]))


def test_spaces_and_errors():
    env, params = envs.make("seals/Ant-v1", backend="mujoco")
    assert env.observation_space(params).shape == (29,)
    assert env.action_space(params).shape == (8,)
    assert params.max_steps_in_episode == HORIZON
    with pytest.raises(ValueError, match="backend must be one of"):
        envs.make("seals/Ant-v1", backend="cuda")
