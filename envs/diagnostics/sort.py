"""seals/Sort-v0: sort a list with swap actions.

The state is x ~ U[0, 1]^L; action (i, j) swaps x_i and x_j. A step pays 1 if the new
list is sorted, plus the change in the number of elements in their sorted position
(not a potential shaping: nothing is subtracted at the end). The actions are
`MultiDiscrete([L, L])`; `FlatActions(env)` offers them as `Discrete(L * L)`. It
never terminates; the time limit truncates it.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from envs.diagnostics.spaces import MultiDiscrete

ENV_ID = "seals/Sort-v0"


@struct.dataclass
class SortState(environment.EnvState):
    x: jax.Array  # [length] float32
    time: jax.Array


@struct.dataclass
class SortParams(environment.EnvParams):
    length: int = struct.field(pytree_node=False, default=4)
    max_steps_in_episode: int = struct.field(pytree_node=False, default=6)


def n_in_sorted_position(x: jax.Array) -> jax.Array:
    return jnp.sum(x == jnp.sort(x))


def swap(x: jax.Array, action: jax.Array) -> jax.Array:
    i, j = action[0], action[1]
    return x.at[i].set(x[j]).at[j].set(x[i])


class Sort(environment.Environment[SortState, SortParams]):
    """seals' `SortEnv`: observation = state."""

    @property
    def default_params(self) -> SortParams:
        return SortParams()

    def step_env(
        self,
        key: jax.Array,
        state: SortState,
        action: jax.Array,
        params: SortParams,
    ) -> tuple[jax.Array, SortState, jax.Array, jax.Array, dict[str, Any]]:
        del key
        x = swap(state.x, action)
        is_sorted = jnp.all(x == jnp.sort(x))
        reward = is_sorted + n_in_sorted_position(x) - n_in_sorted_position(state.x)
        next_state = SortState(x=x, time=state.time + 1)
        return x, next_state, reward.astype(jnp.float32), jnp.array(False), {}

    def reset_env(
        self, key: jax.Array, params: SortParams
    ) -> tuple[jax.Array, SortState]:
        x = jax.random.uniform(key, (params.length,), jnp.float32)
        return x, SortState(x=x, time=jnp.int32(0))

    def get_obs(self, state: SortState, params=None, key=None) -> jax.Array:
        del params, key
        return state.x

    @property
    def name(self) -> str:
        return ENV_ID

    def action_space(self, params: SortParams | None = None) -> MultiDiscrete:
        params = params or self.default_params
        return MultiDiscrete((params.length, params.length))

    def observation_space(self, params: SortParams | None = None) -> spaces.Box:
        params = params or self.default_params
        return spaces.Box(0.0, 1.0, (params.length,), jnp.float32)

    def state_space(self, params: SortParams | None = None) -> spaces.Box:
        return self.observation_space(params)


def expert_action(obs: jax.Array) -> jax.Array:
    """Swap the first misplaced element with the element that belongs there, or swap
    (0, 0) once sorted. Each swap splits one cycle of the permutation off into a fixed
    point, so the list is sorted in the fewest swaps possible, which is optimal: the
    shaping terms telescope, and every sorted step earns the bonus."""
    target = jnp.sort(obs)
    misplaced = obs != target
    i = jnp.argmax(misplaced)
    j = jnp.argmax(obs == target[i])
    return jnp.where(jnp.any(misplaced), jnp.stack([i, j]), 0).astype(jnp.int32)


def make_sort(**kwargs) -> tuple[Sort, SortParams]:
    """Keyword arguments override `SortParams` (`length`, ...)."""
    return Sort(), SortParams(**kwargs)
