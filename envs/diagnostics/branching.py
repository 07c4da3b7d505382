"""seals/Branching-v0: hard exploration along one path of `length` steps.

States 0, B, 2B, ... (multiples of the branch factor B) lie on the path; from one of
them action a moves a + 1 states on, so only the last action stays on the path and
every other one leads into a dead end that loops forever. The last state pays 1 (a
state reward, paid on leaving it). A uniformly random policy finds it with
probability B^-length.
"""

import numpy as np

from envs.diagnostics.tabular_mdp import tabular_mdp

ENV_ID = "seals/Branching-v0"
TIME_LIMIT = 11


def branching_model(
    branch_factor: int = 2, length: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """(transition [S, B, S], state reward [S]) with S = 1 + B * length, as seals."""
    n_states = 1 + branch_factor * length
    states, actions = np.divmod(np.arange(n_states * branch_factor), branch_factor)
    can_move = (states % branch_factor == 0) & (states != n_states - 1)
    next_states = states + (actions + 1) * can_move
    transition = np.zeros((n_states, branch_factor, n_states))
    transition[states, actions, next_states] = 1.0
    state_reward = np.zeros(n_states)
    state_reward[-1] = 1.0
    return transition, state_reward


def make_branching(branch_factor: int = 2, length: int = 10):
    transition, state_reward = branching_model(branch_factor, length)
    return tabular_mdp(
        ENV_ID, transition=transition, state_reward=state_reward, time_limit=TIME_LIMIT
    )
