"""seals/InitShiftTrain-v0 and seals/InitShiftTest-v0: a shift of the initial state.

A depth-2 full binary tree: from s (0, 1 or 2) action a goes to 2s + 1 + a; the leaves
s3..s6 are absorbing and pay [1, -1, -1, 2]. Train starts at the root, where the
expert heads for s6; Test starts at s1, whose leaves s3 and s4 the expert never
visits, so demonstrations alone cannot say which of them is better.
"""

import numpy as np

from envs.diagnostics.tabular_mdp import tabular_mdp

TRAIN_ID = "seals/InitShiftTrain-v0"
TEST_ID = "seals/InitShiftTest-v0"
TIME_LIMIT = 3
N_STATES = 7


def init_shift_model() -> tuple[np.ndarray, np.ndarray]:
    """(transition [7, 2, 7], state reward [7]) exactly as seals builds them."""
    transition = np.zeros((N_STATES, 2, N_STATES))
    for state in range(3):
        for action in range(2):
            transition[state, action, 2 * state + 1 + action] = 1.0
    leaves = np.arange(3, N_STATES)
    transition[leaves, :, leaves] = 1.0
    state_reward = np.zeros(N_STATES)
    state_reward[leaves] = [1, -1, -1, 2]
    return transition, state_reward


def make_init_shift(initial_state: int):
    if not 0 <= initial_state < N_STATES:
        raise ValueError(f"initial_state {initial_state} must lie in [0, {N_STATES})")
    transition, state_reward = init_shift_model()
    return tabular_mdp(
        {0: TRAIN_ID, 1: TEST_ID}.get(initial_state, f"InitShift(s{initial_state})"),
        transition=transition,
        state_reward=state_reward,
        time_limit=TIME_LIMIT,
        initial_state=initial_state,
    )
