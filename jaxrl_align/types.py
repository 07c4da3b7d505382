"""Fixed-shape data containers shared by every algorithm.

Everything here is a pytree of arrays so it can cross `jit`/`vmap` boundaries. Terminated and
truncated are kept apart all the way through: a time limit is not a terminal state (imitation
merges the two as SB3's `done`, which biases shaping and discriminators near the horizon).
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class Trajectories:
    """N episodes, padded to T steps.

    obs: [N, T+1, *obs_shape]; obs[:, t+1] is the observation after step t (the true final
        observation at the end of an episode, never the auto-reset one).
    acts: [N, T, *act_shape]; rews: [N, T] (environment reward);
    terminated / truncated: [N, T] bool, set on the last step of an episode only;
    lengths: [N] int, number of real steps; entries at t >= lengths[i] are padding.
    """

    obs: jax.Array
    acts: jax.Array
    rews: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    lengths: jax.Array

    @property
    def num_episodes(self) -> int:
        return self.acts.shape[0]

    @property
    def max_steps(self) -> int:
        return self.acts.shape[1]

    @property
    def mask(self) -> jax.Array:
        """[N, T] bool: True on real steps, False on padding."""
        steps = jnp.arange(self.max_steps)
        return steps[None, :] < self.lengths[:, None]

    @property
    def returns(self) -> jax.Array:
        """[N] undiscounted environment return of each episode."""
        return jnp.sum(jnp.where(self.mask, self.rews, 0.0), axis=1)


@struct.dataclass
class Transitions:
    """A batch of transitions (s, a, s', terminated[, r, truncated]) with any leading shape:
    flat [B] (demonstrations, replay), time-major [T, E] (a rollout) or [P, 2, L] (pairs of
    fragments). `acts` are the actions the environment executed; `next_obs` is the true next
    observation (the final one when an episode ended, never the auto-reset one)."""

    obs: jax.Array
    acts: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    rews: Optional[jax.Array] = None
    truncated: Optional[jax.Array] = None

    def __len__(self) -> int:
        return self.terminated.shape[0]

    @property
    def reward_inputs(self) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """The arguments of a reward function `r(obs, acts, next_obs, terminated)`."""
        return self.obs, self.acts, self.next_obs, self.terminated


def flatten_trajectories(trajs: Trajectories) -> Transitions:
    """Drop the padding and flatten episodes into transitions (host-side: sizes are data dependent)."""
    mask = np.asarray(trajs.mask)
    obs = np.asarray(trajs.obs)
    return Transitions(
        obs=jnp.asarray(obs[:, :-1][mask]),
        acts=jnp.asarray(np.asarray(trajs.acts)[mask]),
        next_obs=jnp.asarray(obs[:, 1:][mask]),
        terminated=jnp.asarray(np.asarray(trajs.terminated)[mask]),
        rews=jnp.asarray(np.asarray(trajs.rews)[mask]),
        truncated=jnp.asarray(np.asarray(trajs.truncated)[mask]),
    )
