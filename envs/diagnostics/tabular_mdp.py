"""The shape every tabular seals diagnostic shares.

seals builds them as `TabularModelMDP`s without an in-env horizon (the state index is
the observation, the feature matrix is the identity) and registers them with
`max_episode_steps`, so gymnasium's `TimeLimit` *truncates* them; only a terminal
state (EarlyTerm's) terminates an episode.
"""

import numpy as np

from envs.tabular import TabularEnv, TabularParams, tabular_params


def tabular_mdp(
    env_id: str,
    *,
    transition: np.ndarray,
    state_reward: np.ndarray,
    time_limit: int,
    initial_state: int = 0,
    terminal: np.ndarray | None = None,
) -> tuple[TabularEnv, TabularParams]:
    """`(env, params)` of a seals `TabularModelMDP` behind a `TimeLimit(time_limit)`."""
    n_states = transition.shape[0]
    params = tabular_params(
        transition=transition,
        reward=state_reward,
        initial_state_dist=np.eye(n_states)[initial_state],
        observation_matrix=None,  # one-hot
        horizon=time_limit,
        terminal=terminal,
    )
    env = TabularEnv(
        params, observe_state_index=True, horizon_is_terminal=False, name=env_id
    )
    return env, params
