"""seals/NoisyObs-v0: a small grid whose observations carry Gaussian distractors.

The agent starts in a uniformly chosen corner of a size x size grid and is paid 1 for
every step it leaves the centre. The observation is (x, y) followed by
`noise_length` fresh N(0, 1) draws, so the task tests feature selection. It never
terminates; the time limit truncates it.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from envs.diagnostics.grid import N_GRID_ACTIONS, grid_action_towards, grid_move
from envs.diagnostics.spaces import MultiDiscrete

ENV_ID = "seals/NoisyObs-v0"


@struct.dataclass
class NoisyObsState(environment.EnvState):
    position: jax.Array  # [2] int32 (x, y)
    time: jax.Array


@struct.dataclass
class NoisyObsParams(environment.EnvParams):
    # Sizes fix array shapes, so they are static like the time limit.
    size: int = struct.field(pytree_node=False, default=5)
    noise_length: int = struct.field(pytree_node=False, default=20)
    max_steps_in_episode: int = struct.field(pytree_node=False, default=15)


def centre(params: NoisyObsParams) -> jax.Array:
    return jnp.full(2, params.size // 2, jnp.int32)


class NoisyObs(environment.Environment[NoisyObsState, NoisyObsParams]):
    """seals' `NoisyObsEnv` (state space `MultiDiscrete([size, size])`)."""

    @property
    def default_params(self) -> NoisyObsParams:
        return NoisyObsParams()

    def step_env(
        self,
        key: jax.Array,
        state: NoisyObsState,
        action: int | jax.Array,
        params: NoisyObsParams,
    ) -> tuple[jax.Array, NoisyObsState, jax.Array, jax.Array, dict[str, Any]]:
        position = jnp.clip(grid_move(state.position, action), 0, params.size - 1)
        next_state = NoisyObsState(position=position, time=state.time + 1)
        reward = jnp.all(state.position == centre(params)).astype(jnp.float32)
        obs = self.get_obs(next_state, params, key)
        return obs, next_state, reward, jnp.array(False), {}

    def reset_env(
        self, key: jax.Array, params: NoisyObsParams
    ) -> tuple[jax.Array, NoisyObsState]:
        key_corner, key_noise = jax.random.split(key)
        far = params.size - 1
        # seals' corner order; the index is uniform, so only the set matters.
        corners = jnp.array([[0, 0], [far, 0], [0, far], [far, far]], jnp.int32)
        position = corners[jax.random.randint(key_corner, (), 0, 4)]
        state = NoisyObsState(position=position, time=jnp.int32(0))
        return self.get_obs(state, params, key_noise), state

    def get_obs(
        self, state: NoisyObsState, params: NoisyObsParams, key: jax.Array
    ) -> jax.Array:
        noise = jax.random.normal(key, (params.noise_length,), jnp.float32)
        return jnp.concatenate([state.position.astype(jnp.float32), noise])

    @property
    def name(self) -> str:
        return ENV_ID

    @property
    def num_actions(self) -> int:
        return N_GRID_ACTIONS

    def action_space(self, params: NoisyObsParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(N_GRID_ACTIONS)

    def observation_space(self, params: NoisyObsParams | None = None) -> spaces.Box:
        params = params or self.default_params
        inf = jnp.full(params.noise_length, jnp.inf, jnp.float32)
        far = jnp.full(2, params.size - 1, jnp.float32)
        low = jnp.concatenate([jnp.zeros(2, jnp.float32), -inf])
        high = jnp.concatenate([far, inf])
        return spaces.Box(low, high, (2 + params.noise_length,), jnp.float32)

    def state_space(self, params: NoisyObsParams | None = None) -> MultiDiscrete:
        params = params or self.default_params
        return MultiDiscrete((params.size, params.size))


def expert_action(obs: jax.Array, params: NoisyObsParams) -> jax.Array:
    """Walk to the centre and stay: optimal, since each step there pays 1."""
    return grid_action_towards(obs[:2].astype(jnp.int32), centre(params))


def make_noisy_obs(**kwargs) -> tuple[NoisyObs, NoisyObsParams]:
    """Keyword arguments override `NoisyObsParams` (`size`, `noise_length`, ...)."""
    return NoisyObs(), NoisyObsParams(**kwargs)
