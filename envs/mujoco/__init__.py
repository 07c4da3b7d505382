"""seals' MuJoCo tasks (`seals/{Ant,HalfCheetah,Hopper,Humanoid,Swimmer,Walker2d}-v1`) as gymnax
environments, on two physics backends behind one environment class:

- `"mujoco"`: MuJoCo's C engine, called from inside the compiled program (`host_physics`); the
  default on CPUs, where it is many times faster than MJX and matches gymnasium to float tolerance;
- `"mjx"`: MuJoCo XLA (`mjx_physics`), pure JAX, the default on GPUs and TPUs.

`make(env_id, backend=None)` picks the backend from JAX's default platform unless told. Task
semantics (observation, reward, reset noise) are written once in `tasks` for both.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from envs.mujoco import tasks as task_lib
from envs.mujoco.tasks import HORIZON, TASKS, MujocoTask

BACKENDS = ("mujoco", "mjx")


@struct.dataclass
class MujocoState(environment.EnvState):
    physics: Any  # the backend's physics state (a pytree of arrays)
    time: jax.Array


@struct.dataclass
class MujocoParams(environment.EnvParams):
    max_steps_in_episode: int = struct.field(pytree_node=False, default=HORIZON)


class SealsMujoco(environment.Environment[MujocoState, MujocoParams]):
    """A seals MuJoCo task on one physics backend. Never terminates; truncated at the horizon.

    `step` draws the reset noise and, on the step that truncates, starts the next episode inside
    the same physics call (gymnax's default step would also run a reset every step)."""

    def __init__(self, task: MujocoTask, physics):
        self.task = task
        self.physics = physics

    @property
    def default_params(self) -> MujocoParams:
        return MujocoParams()

    @property
    def name(self) -> str:
        return self.task.env_id

    @property
    def backend(self) -> str:
        return self.physics.backend

    def _noise(self, key):
        key_qpos, key_qvel = jax.random.split(key)
        return task_lib.reset_noise(
            lambda n, low, high: jax.random.uniform(key_qpos, (n,), jnp.float32, low, high),
            lambda n: jax.random.normal(key_qvel, (n,), jnp.float32),
            self.task, self.physics.nq, self.physics.nv)

    def reset_env(self, key: jax.Array, params: MujocoParams):
        del params
        physics, obs = self.physics.reset(*self._noise(key))
        return obs, MujocoState(physics=physics, time=jnp.int32(0))

    def _advance(self, key, state, action, reset):
        physics, final_obs, reward, healthy, obs = self.physics.step(
            state.physics, action, *self._noise(key), reset)
        time = jnp.where(reset, 0, state.time + 1).astype(jnp.int32)
        return final_obs, obs, MujocoState(physics=physics, time=time), reward, healthy

    def step_env(self, key, state, action, params):
        del params
        final_obs, _, new_state, reward, healthy = self._advance(
            key, state, action, jnp.array(False))
        return final_obs, new_state, reward, jnp.array(False), {"healthy": healthy}

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        truncated = state.time + 1 >= params.max_steps_in_episode
        final_obs, obs, new_state, reward, healthy = self._advance(key, state, action, truncated)
        terminated = jnp.array(False)
        info = {"terminated": terminated, "truncated": truncated,
                "final_observation": final_obs, "healthy": healthy}
        return obs, new_state, reward, terminated, truncated, info

    def get_obs(self, state, params=None, key=None):
        raise NotImplementedError("observations come from the physics call; use reset/step")

    def action_space(self, params=None) -> spaces.Box:
        # numpy bounds: static facts, readable on the host even while a caller is tracing.
        low, high = self.physics.action_low, self.physics.action_high
        return spaces.Box(low, high, low.shape, jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-np.inf, np.inf, (self.physics.obs_size,), jnp.float32)

    @property
    def num_actions(self) -> int:
        return int(self.physics.nu)


def default_backend() -> str:
    """MuJoCo's C engine on CPUs, MJX on accelerators."""
    return "mujoco" if jax.default_backend() == "cpu" else "mjx"


_PHYSICS_CACHE: dict[tuple[str, str], Any] = {}


def make_mujoco(env_id: str, backend: str | None = None) -> tuple[SealsMujoco, MujocoParams]:
    """`(env, params)` of a seals MuJoCo task. `backend`: "mujoco", "mjx" or None (the
    platform's default). One physics object per (task, backend) and process, so two `make`
    calls give equal environments and compiled programs are reused."""
    if env_id not in TASKS:
        raise ValueError(f"unknown MuJoCo task {env_id!r}; known: {', '.join(TASKS)}")
    backend = default_backend() if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    key = (env_id, backend)
    if key not in _PHYSICS_CACHE:
        task = TASKS[env_id]
        if backend == "mujoco":
            from envs.mujoco.host_physics import MujocoPhysics
            _PHYSICS_CACHE[key] = SealsMujoco(task, MujocoPhysics(task))
        else:
            from envs.mujoco.mjx_physics import MjxPhysics
            _PHYSICS_CACHE[key] = SealsMujoco(task, MjxPhysics(task))
    return _PHYSICS_CACHE[key], MujocoParams()


__all__ = ["BACKENDS", "HORIZON", "TASKS", "MujocoParams", "MujocoState", "MujocoTask",
           "SealsMujoco", "default_backend", "make_mujoco"]
