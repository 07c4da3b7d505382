"""Static facts about an environment's spaces that networks and checks need.

Computed once in `make` on the host; never traced.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import jaxrl_align.platform  # noqa: F401  (gymnax without its plotting imports)
from gymnax.environments import spaces


@dataclass(frozen=True)
class SpaceSpec:
    obs_shape: tuple[int, ...]
    obs_dtype: np.dtype
    # Discrete observations (a state index) are one-hot encoded before any network sees them.
    obs_categories: int | None
    act_shape: tuple[int, ...]
    act_dtype: np.dtype
    # Discrete actions: number of actions; continuous: None.
    num_actions: int | None
    act_low: tuple[float, ...] | None
    act_high: tuple[float, ...] | None

    @property
    def discrete_actions(self) -> bool:
        return self.num_actions is not None

    @property
    def act_dim(self) -> int:
        """Width of the policy head: logits for discrete, mean for continuous."""
        return self.num_actions if self.discrete_actions else int(np.prod(self.act_shape, dtype=int))

    def encode_obs(self, obs: jax.Array) -> jax.Array:
        """Observation as a flat float vector (batched over leading axes)."""
        if self.obs_categories is not None:
            return jax.nn.one_hot(obs, self.obs_categories)
        batch_shape = obs.shape[: obs.ndim - len(self.obs_shape)]
        return obs.reshape(*batch_shape, -1).astype(jnp.float32)

    def encode_act(self, act: jax.Array) -> jax.Array:
        """Action as a flat float vector, for reward networks and discriminators."""
        if self.discrete_actions:
            return jax.nn.one_hot(act, self.num_actions)
        batch_shape = act.shape[: act.ndim - len(self.act_shape)]
        return act.reshape(*batch_shape, -1).astype(jnp.float32)

    def clip_action(self, act: jax.Array) -> jax.Array:
        """A policy's sample (flat: [..., act_dim]) as the env's action ([..., *act_shape]),
        clipped to the box. Continuous actions are sampled unbounded and clipped when stepping;
        a scalar action space (shape ()) loses the sample's axis of 1."""
        if self.discrete_actions:
            return act
        low = jnp.asarray(self.act_low).reshape(self.act_shape)
        high = jnp.asarray(self.act_high).reshape(self.act_shape)
        return jnp.clip(act.reshape(act.shape[:-1] + self.act_shape), low, high)


def _box_bounds(space: spaces.Box) -> tuple[tuple[float, ...], tuple[float, ...]]:
    low = np.broadcast_to(np.asarray(space.low, dtype=np.float64), space.shape).ravel()
    high = np.broadcast_to(np.asarray(space.high, dtype=np.float64), space.shape).ravel()
    return tuple(low.tolist()), tuple(high.tolist())


MAX_SCALED_BOUND = 1e6  # wider "bounds" (gymnax often writes float32's largest) mean unbounded


def box_scaling(space) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """(center, half-width) per feature of a Box observation, to rescale it to [-1, 1]; features
    with infinite, empty or wider than ±1e6 bounds get (0, 1) and pass through. (None, None) for
    a non-Box space."""
    if not isinstance(space, spaces.Box):
        return None, None
    low, high = map(np.asarray, _box_bounds(space))
    finite = (np.isfinite(low) & np.isfinite(high) & (high > low)
              & (high - low < 2 * MAX_SCALED_BOUND))
    center = np.where(finite, (low + high) / 2, 0.0).astype(np.float32)
    halfwidth = np.where(finite, (high - low) / 2, 1.0).astype(np.float32)
    return center, halfwidth


def space_spec(env, env_params) -> SpaceSpec:
    obs_space = env.observation_space(env_params)
    act_space = env.action_space(env_params)
    if isinstance(obs_space, spaces.Discrete):
        obs_shape, obs_categories = (), int(obs_space.n)
    elif isinstance(obs_space, spaces.Box):
        obs_shape, obs_categories = tuple(obs_space.shape), None
    else:
        raise TypeError(f"observation space: expected Discrete or Box, got {type(obs_space).__name__}")
    if isinstance(act_space, spaces.Discrete):
        return SpaceSpec(obs_shape, np.dtype(obs_space.dtype), obs_categories, (), np.dtype(np.int32),
                         int(act_space.n), None, None)
    if isinstance(act_space, spaces.Box):
        low, high = _box_bounds(act_space)
        return SpaceSpec(obs_shape, np.dtype(obs_space.dtype), obs_categories, tuple(act_space.shape),
                         np.dtype(np.float32), None, low, high)
    raise TypeError(f"action space: expected Discrete or Box, got {type(act_space).__name__}")
