"""seals/Parabola-v0: follow a random parabola with continuous actions.

Each episode draws p(x) = a x^2 + b x + c with a, b, c ~ U[-1, 1] and starts at
(x, y) = (0, c). Every step moves x on by `x_step` and y by the action (both clipped
to [-bounds, bounds]) and pays -(y - p(x))^2 for the state being left. The state
(x, y, a, b, c) is observed whole. It never terminates; the time limit truncates it.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

ENV_ID = "seals/Parabola-v0"


@struct.dataclass
class ParabolaState(environment.EnvState):
    point: jax.Array  # [5] float32: x, y, a, b, c (seals' state vector)
    time: jax.Array


@struct.dataclass
class ParabolaParams(environment.EnvParams):
    x_step: float = 0.05
    bounds: float = 5.0
    max_steps_in_episode: int = struct.field(pytree_node=False, default=20)


def parabola_height(point: jax.Array, x: jax.Array) -> jax.Array:
    """p(x) for the parabola in `point`, in seals' float32 order of operations."""
    _, _, a, b, c = point
    return a * x**2 + b * x + c


class Parabola(environment.Environment[ParabolaState, ParabolaParams]):
    """seals' `ParabolaEnv`: observation = state, action `Box((), -2 bounds, 2 bounds)`."""

    @property
    def default_params(self) -> ParabolaParams:
        return ParabolaParams()

    def step_env(
        self,
        key: jax.Array,
        state: ParabolaState,
        action: float | jax.Array,
        params: ParabolaParams,
    ) -> tuple[jax.Array, ParabolaState, jax.Array, jax.Array, dict[str, Any]]:
        del key
        x, y = state.point[0], state.point[1]
        bounds = jnp.float32(params.bounds)
        next_x = jnp.clip(x + jnp.float32(params.x_step), -bounds, bounds)
        next_y = jnp.clip(y + jnp.reshape(action, ()).astype(jnp.float32), -bounds, bounds)
        next_point = state.point.at[:2].set(jnp.stack([next_x, next_y]))
        reward = -((y - parabola_height(state.point, x)) ** 2)
        next_state = ParabolaState(point=next_point, time=state.time + 1)
        return next_point, next_state, reward, jnp.array(False), {}

    def reset_env(
        self, key: jax.Array, params: ParabolaParams
    ) -> tuple[jax.Array, ParabolaState]:
        a, b, c = jax.random.uniform(key, (3,), jnp.float32, -1.0, 1.0)
        point = jnp.stack([jnp.float32(0.0), c, a, b, c])
        return point, ParabolaState(point=point, time=jnp.int32(0))

    def get_obs(self, state: ParabolaState, params=None, key=None) -> jax.Array:
        del params, key
        return state.point

    @property
    def name(self) -> str:
        return ENV_ID

    def action_space(self, params: ParabolaParams | None = None) -> spaces.Box:
        params = params or self.default_params
        return spaces.Box(-2 * params.bounds, 2 * params.bounds, (), jnp.float32)

    def observation_space(self, params: ParabolaParams | None = None) -> spaces.Box:
        params = params or self.default_params
        high = jnp.array([params.bounds, params.bounds, 1.0, 1.0, 1.0], jnp.float32)
        return spaces.Box(-high, high, (5,), jnp.float32)

    def state_space(self, params: ParabolaParams | None = None) -> spaces.Box:
        return self.observation_space(params)


def expert_action(obs: jax.Array, params: ParabolaParams) -> jax.Array:
    """Jump onto the parabola at the next x: every reward after the first (which is 0
    anyway, since y starts at c = p(0)) is then 0, the maximum."""
    x, y = obs[0], obs[1]
    next_x = jnp.clip(x + params.x_step, -params.bounds, params.bounds)
    return parabola_height(obs, next_x) - y


def make_parabola(**kwargs) -> tuple[Parabola, ParabolaParams]:
    """Keyword arguments override `ParabolaParams` (`x_step`, `bounds`, ...)."""
    return Parabola(), ParabolaParams(**kwargs)
