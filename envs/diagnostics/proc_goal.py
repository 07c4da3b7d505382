"""seals/ProcGoal-v0: reach a goal near a random start on an unbounded grid.

The agent starts uniformly in [-bounds, bounds)^2 (integers) and the goal lies at L1
distance `distance` from it, in a random quadrant. Every step pays minus the L1
distance between agent and goal for the state being left. Observations are
(agent x, y, goal x, y) in float32; since most starts are never seen in training,
the task tests generalisation. It never terminates; the time limit truncates it.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from envs.diagnostics.grid import N_GRID_ACTIONS, grid_action_towards, grid_move

ENV_ID = "seals/ProcGoal-v0"


@struct.dataclass
class ProcGoalState(environment.EnvState):
    position: jax.Array  # [2] int32
    goal: jax.Array  # [2] int32
    time: jax.Array


@struct.dataclass
class ProcGoalParams(environment.EnvParams):
    bounds: int = 100
    distance: int = 10
    max_steps_in_episode: int = struct.field(pytree_node=False, default=20)


def l1_distance(state: ProcGoalState) -> jax.Array:
    return jnp.sum(jnp.abs(state.goal - state.position))


class ProcGoal(environment.Environment[ProcGoalState, ProcGoalParams]):
    """seals' `ProcGoalEnv`: observation = state, grid actions `Discrete(5)`."""

    @property
    def default_params(self) -> ProcGoalParams:
        return ProcGoalParams()

    def step_env(
        self,
        key: jax.Array,
        state: ProcGoalState,
        action: int | jax.Array,
        params: ProcGoalParams,
    ) -> tuple[jax.Array, ProcGoalState, jax.Array, jax.Array, dict[str, Any]]:
        del key
        next_state = ProcGoalState(
            position=grid_move(state.position, action),
            goal=state.goal,
            time=state.time + 1,
        )
        reward = -l1_distance(state).astype(jnp.float32)
        return self.get_obs(next_state), next_state, reward, jnp.array(False), {}

    def reset_env(
        self, key: jax.Array, params: ProcGoalParams
    ) -> tuple[jax.Array, ProcGoalState]:
        key_position, key_split, key_signs = jax.random.split(key, 3)
        position = jax.random.randint(
            key_position, (2,), -params.bounds, params.bounds, jnp.int32
        )
        x_distance = jax.random.randint(key_split, (), 0, params.distance, jnp.int32)
        offset = jnp.stack([x_distance, params.distance - x_distance])
        signs = 2 * jax.random.randint(key_signs, (2,), 0, 2, jnp.int32) - 1
        state = ProcGoalState(
            position=position, goal=position + signs * offset, time=jnp.int32(0)
        )
        return self.get_obs(state), state

    def get_obs(self, state: ProcGoalState, params=None, key=None) -> jax.Array:
        del params, key
        return jnp.concatenate([state.position, state.goal]).astype(jnp.float32)

    @property
    def name(self) -> str:
        return ENV_ID

    @property
    def num_actions(self) -> int:
        return N_GRID_ACTIONS

    def action_space(self, params: ProcGoalParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(N_GRID_ACTIONS)

    def observation_space(self, params: ProcGoalParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (4,), jnp.float32)

    def state_space(self, params: ProcGoalParams | None = None) -> spaces.Box:
        return self.observation_space(params)


def expert_action(obs: jax.Array) -> jax.Array:
    """Walk to the goal and stay: each step shortens the distance paid next by 1."""
    cells = obs.astype(jnp.int32)
    return grid_action_towards(cells[:2], cells[2:])


def make_proc_goal(**kwargs) -> tuple[ProcGoal, ProcGoalParams]:
    """Keyword arguments override `ProcGoalParams` (`bounds`, `distance`, ...)."""
    return ProcGoal(), ProcGoalParams(**kwargs)
