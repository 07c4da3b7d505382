"""`MultiDiscrete`, the one space seals' diagnostics use that gymnax lacks, and an
adapter that turns it into a `Discrete` one for algorithms with categorical policies."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces


class MultiDiscrete(spaces.Space):
    """A vector of independent categories; component i takes values in [0, nvec[i]).

    The interface of gymnasium's `MultiDiscrete` (`nvec`, `shape`, `dtype`), jittable
    like gymnax's own spaces.
    """

    def __init__(self, nvec: tuple[int, ...]):
        self.nvec = tuple(int(n) for n in nvec)
        if not self.nvec or min(self.nvec) <= 0:
            raise ValueError(f"nvec must be non-empty and positive, got {nvec}")
        self.shape = (len(self.nvec),)
        self.dtype = jnp.int32

    def __repr__(self) -> str:
        return f"MultiDiscrete({list(self.nvec)})"

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, self.shape, 0, jnp.asarray(self.nvec), self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.all((x >= 0) & (x < jnp.asarray(self.nvec)))


class FlatActions(environment.Environment):
    """`env` with its `MultiDiscrete` action space seen as `Discrete(prod(nvec))`.

    Action k stands for the vector whose mixed-radix digits (row-major, as
    `np.unravel_index`) are k, so every vector is reachable and nothing else changes:
    observations, rewards, termination and `params` are those of `env`. Categorical
    policies (the library's PPO and BC) act on it unchanged; a joint categorical over
    the 16 swaps of seals/Sort-v0 can express anything a factorised one can.
    """

    def __init__(self, env: environment.Environment):
        super().__init__()
        nvec = env.action_space(env.default_params).nvec
        self.env = env
        self.nvec = nvec
        self.n_actions = int(np.prod(nvec))

    def to_vector(self, action: jax.Array) -> jax.Array:
        """The `env` action that flat action `action` stands for."""
        return jnp.stack(jnp.unravel_index(action, self.nvec)).astype(jnp.int32)

    def to_flat(self, action: jax.Array) -> jax.Array:
        """The flat action that stands for the `env` action `action`."""
        # "clip", since a jitted function cannot raise on an out-of-range action.
        return jnp.ravel_multi_index(tuple(action), self.nvec, mode="clip").astype(
            jnp.int32
        )

    @property
    def default_params(self) -> Any:
        return self.env.default_params

    def step_env(self, key, state, action, params):
        return self.env.step_env(key, state, self.to_vector(action), params)

    def reset_env(self, key, params):
        return self.env.reset_env(key, params)

    def is_truncated(self, state, params) -> jax.Array:
        return self.env.is_truncated(state, params)

    def get_obs(self, state, params=None, key=None):
        return self.env.get_obs(state, params, key)

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def num_actions(self) -> int:
        return self.n_actions

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.n_actions)

    def observation_space(self, params=None):
        return self.env.observation_space(params)

    def state_space(self, params=None):
        return self.env.state_space(params)
