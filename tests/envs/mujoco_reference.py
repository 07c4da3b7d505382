"""gymnasium's own v4 task, configured as seals/X-v1, for the conformance tests of both backends."""
import jax
import jax.numpy as jnp
import numpy as np

import envs
from envs.mujoco import MujocoState
from envs.mujoco.host_physics import quiet_mujoco_log


def gymnasium_env(task):
    """gymnasium's X-v4 with seals' settings (positions observed, no early termination)."""
    import gymnasium as gym

    kwargs = {"exclude_current_positions_from_observation": False}
    if task.gymnasium_id.split("-")[0] in ("Ant", "Hopper", "Humanoid", "Walker2d"):
        kwargs["terminate_when_unhealthy"] = False
    with quiet_mujoco_log():
        return gym.make(task.gymnasium_id, **kwargs).unwrapped


def gymnasium_episode(task, num_steps: int, seed: int = 0):
    """(start qpos, start qvel, actions [T, nu], observations [T, obs], rewards [T]) of one run
    of uniformly random actions in gymnasium, from its own reset."""
    env = gymnasium_env(task)
    env.reset(seed=seed)
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    actions = rng.uniform(low, high, (num_steps, low.shape[0])).astype(np.float32)
    observations, rewards = [], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        assert not terminated and not truncated
        observations.append(obs)
        rewards.append(reward)
    return qpos, qvel, actions, np.array(observations), np.array(rewards)


def replay(env, params, physics, actions):
    """(observations, rewards) of `env` stepping `actions` from the physics state `physics`."""

    @jax.jit
    def run(physics, actions):
        def step(state, action):
            _, state, reward, _, _, info = env.step(jax.random.PRNGKey(0), state, action, params)
            return state, (info["final_observation"], reward)

        state = MujocoState(physics=physics, time=jnp.int32(0))
        return jax.lax.scan(step, state, actions)[1]

    observations, rewards = run(physics, jnp.asarray(actions))
    return np.asarray(observations), np.asarray(rewards)


def make(env_id, backend):
    return envs.make(env_id, backend=backend)
