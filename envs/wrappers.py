"""Environment wrappers that keep the gymnax API (`reset`, `step`, spaces, `default_params`)."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class EpisodeReturnState:
    env_state: Any
    episode_return: jax.Array  # undiscounted return of the episode in progress


class EpisodeReturn:
    """`env` with the return of the episode in progress kept in its state (PureJaxRL's
    `LogWrapper`), so a rollout's carry stays `(obs, env_state, key)`. On every step
    `info["episode_return"]` is the return so far, the step's reward included: on the step an
    episode ends (terminated or truncated), that episode's whole return."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self, key: jax.Array, params=None):
        obs, env_state = self.env.reset(key, params)
        return obs, EpisodeReturnState(env_state, jnp.zeros(()))

    def step(self, key: jax.Array, state: EpisodeReturnState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params)
        episode_return = state.episode_return + reward
        info = {**info, "episode_return": episode_return}
        ongoing = jnp.where(terminated | truncated, 0.0, episode_return)
        return obs, EpisodeReturnState(env_state, ongoing), reward, terminated, truncated, info
