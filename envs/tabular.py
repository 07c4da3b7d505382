"""Tabular environments whose exact model lives in `params`.

Semantics are seals' `BaseTabularModelPOMDP`: the reward is the state reward of the
state being *left*, and reaching the horizon is reported as termination (seals puts
the horizon inside the environment, not in a `TimeLimit`). Because the whole model is
a pytree of arrays in `TabularParams`, a batch of MDPs is a batched `params`, and exact
algorithms (MCE IRL, exact policy evaluation) read the same arrays the sampler uses.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass(kw_only=True)
class TabularParams(environment.EnvParams):
    transition: jax.Array  # [S, A, S] float32, P(s' | s, a)
    reward: jax.Array  # [S] float32, paid for leaving s
    initial_state_dist: jax.Array  # [S] float32
    terminal: jax.Array  # [S] bool, entering one of these states ends the episode
    # Static: exact evaluation scans over exactly this many steps, so it must be a
    # Python int even inside jit (and it is shared by every MDP of a batch).
    max_steps_in_episode: int = struct.field(pytree_node=False)
    # [S, D] float32 observation of each state, or None for one-hot observations (the
    # identity matrix). One-hot stays implicit: a batch of MDPs then stores no S×S matrices,
    # and a reward net reading it knows, at trace time, that its first product is its kernel
    # (MCE IRL's MLP-256 on CliffWorld 100x20 skips a 2000x2000x256 product per iteration).
    observation_features: jax.Array | None = None

    @property
    def one_hot_observations(self) -> bool:
        return self.observation_features is None

    @property
    def observation_matrix(self) -> jax.Array:
        """[..., S, D] the observation of each state (batch axes of a batch of MDPs first)."""
        if self.observation_features is not None:
            return self.observation_features
        n_states = self.transition.shape[-1]
        return jnp.broadcast_to(jnp.eye(n_states, dtype=jnp.float32),
                                self.transition.shape[:-3] + (n_states, n_states))


@struct.dataclass
class TabularState(environment.EnvState):
    s: jax.Array  # int32 state index
    time: jax.Array


def tabular_params(
    *,
    transition: np.ndarray | jax.Array,
    reward: np.ndarray | jax.Array,
    initial_state_dist: np.ndarray | jax.Array,
    observation_matrix: np.ndarray | jax.Array | None,
    horizon: int,
    terminal: np.ndarray | jax.Array | None = None,
) -> TabularParams:
    """Builds `TabularParams` with the library's dtypes; `terminal=None` means none;
    `observation_matrix=None` means one-hot observations (kept implicit, see TabularParams)."""
    n_states = transition.shape[0]
    if terminal is None:
        terminal = jnp.zeros((n_states,), bool)
    return TabularParams(
        transition=jnp.asarray(transition, jnp.float32),
        reward=jnp.asarray(reward, jnp.float32),
        initial_state_dist=jnp.asarray(initial_state_dist, jnp.float32),
        terminal=jnp.asarray(terminal, bool),
        max_steps_in_episode=int(horizon),
        observation_features=(None if observation_matrix is None
                              else jnp.asarray(observation_matrix, jnp.float32)),
    )


def horizon(params: environment.EnvParams) -> int:
    """The episode length as a Python int (for scan lengths in exact evaluation)."""
    return int(params.max_steps_in_episode)


class TabularEnv(environment.Environment[TabularState, TabularParams]):
    """A finite MDP or POMDP given by the arrays of its `TabularParams`.

    Args:
        default_params: the model used when `params` is not passed; its shapes fix
            the number of states, actions and the observation size.
        observe_state_index: observe the state index (int32 scalar, `Discrete(S)`),
            as seals' `TabularModelMDP` does; otherwise observe
            `observation_matrix[s]` (float32 vector), as `TabularModelPOMDP` does.
        horizon_is_terminal: report the horizon as `terminated` (seals' in-env
            `horizon`). With False it is reported as `truncated`, which is what a
            seals env with `horizon=None` behind a gymnasium `TimeLimit` does.
        name: the id reported by `env.name`.
    """

    def __init__(
        self,
        default_params: TabularParams,
        *,
        observe_state_index: bool = False,
        horizon_is_terminal: bool = True,
        name: str = "Tabular",
    ):
        super().__init__()
        self._default_params = default_params
        self.n_states, self.n_actions, _ = default_params.transition.shape
        self.obs_dim = default_params.observation_matrix.shape[1]
        self.observe_state_index = observe_state_index
        self.horizon_is_terminal = horizon_is_terminal
        self._name = name

    @property
    def default_params(self) -> TabularParams:
        return self._default_params

    def step_env(
        self,
        key: jax.Array,
        state: TabularState,
        action: int | jax.Array,
        params: TabularParams,
    ) -> tuple[jax.Array, TabularState, jax.Array, jax.Array, dict[str, Any]]:
        next_s = jax.random.categorical(
            key, jnp.log(params.transition[state.s, action])
        )
        next_state = TabularState(s=next_s.astype(jnp.int32), time=state.time + 1)
        reward = params.reward[state.s]
        terminated = params.terminal[next_s]
        if self.horizon_is_terminal:
            terminated = jnp.logical_or(
                terminated, next_state.time >= params.max_steps_in_episode
            )
        return self.get_obs(next_state, params), next_state, reward, terminated, {}

    def is_truncated(self, state: TabularState, params: TabularParams) -> jax.Array:
        if self.horizon_is_terminal:
            return jnp.array(False)
        return super().is_truncated(state, params)

    def reset_env(
        self, key: jax.Array, params: TabularParams
    ) -> tuple[jax.Array, TabularState]:
        s = jax.random.categorical(key, jnp.log(params.initial_state_dist))
        state = TabularState(s=s.astype(jnp.int32), time=jnp.int32(0))
        return self.get_obs(state, params), state

    def get_obs(
        self, state: TabularState, params: TabularParams, key=None
    ) -> jax.Array:
        del key
        if self.observe_state_index:
            return state.s
        if params.one_hot_observations:
            return jax.nn.one_hot(state.s, self.n_states, dtype=jnp.float32)
        return params.observation_features[state.s]

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self.n_actions

    def action_space(self, params: TabularParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.n_actions)

    def observation_space(
        self, params: TabularParams | None = None
    ) -> spaces.Discrete | spaces.Box:
        if self.observe_state_index:
            return spaces.Discrete(self.n_states)
        return spaces.Box(-jnp.inf, jnp.inf, (self.obs_dim,), jnp.float32)

    def state_space(self, params: TabularParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.n_states)
