"""seals/LargestSum-v0: one-step linear classification in 50 dimensions.

The state is x ~ U[0, 1]^L; action 1 pays 1 when sum(x[:L//2]) > sum(x[L//2:]) and
action 0 pays 1 otherwise. The only step both terminates (seals' `terminal` is always
true) and reaches the time limit of 1, so it is terminated *and* truncated, as in
seals behind gymnasium's `TimeLimit`.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

ENV_ID = "seals/LargestSum-v0"


@struct.dataclass
class LargestSumState(environment.EnvState):
    x: jax.Array  # [length] float32
    time: jax.Array


@struct.dataclass
class LargestSumParams(environment.EnvParams):
    length: int = struct.field(pytree_node=False, default=50)
    max_steps_in_episode: int = struct.field(pytree_node=False, default=1)


def first_half_is_larger(x: jax.Array) -> jax.Array:
    half = x.shape[-1] // 2
    return jnp.sum(x[..., :half], -1) > jnp.sum(x[..., half:], -1)


class LargestSum(environment.Environment[LargestSumState, LargestSumParams]):
    """seals' `LargestSumEnv`: observation = state, `Discrete(2)` actions."""

    @property
    def default_params(self) -> LargestSumParams:
        return LargestSumParams()

    def step_env(
        self,
        key: jax.Array,
        state: LargestSumState,
        action: int | jax.Array,
        params: LargestSumParams,
    ) -> tuple[jax.Array, LargestSumState, jax.Array, jax.Array, dict[str, Any]]:
        del key
        reward = (action == first_half_is_larger(state.x)).astype(jnp.float32)
        next_state = state.replace(time=state.time + 1)
        return state.x, next_state, reward, jnp.array(True), {}

    def reset_env(
        self, key: jax.Array, params: LargestSumParams
    ) -> tuple[jax.Array, LargestSumState]:
        x = jax.random.uniform(key, (params.length,), jnp.float32)
        return x, LargestSumState(x=x, time=jnp.int32(0))

    def get_obs(self, state: LargestSumState, params=None, key=None) -> jax.Array:
        del params, key
        return state.x

    @property
    def name(self) -> str:
        return ENV_ID

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: LargestSumParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: LargestSumParams | None = None) -> spaces.Box:
        params = params or self.default_params
        return spaces.Box(0.0, 1.0, (params.length,), jnp.float32)

    def state_space(self, params: LargestSumParams | None = None) -> spaces.Box:
        return self.observation_space(params)


def expert_action(obs: jax.Array) -> jax.Array:
    """The label itself."""
    return first_half_is_larger(obs).astype(jnp.int32)


def make_largest_sum(**kwargs) -> tuple[LargestSum, LargestSumParams]:
    """Keyword arguments override `LargestSumParams` (`length`, ...)."""
    return LargestSum(), LargestSumParams(**kwargs)
