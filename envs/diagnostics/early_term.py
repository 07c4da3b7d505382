"""seals/EarlyTermPos-v0 and seals/EarlyTermNeg-v0: termination bias (Kostrikov et al.).

s0 always moves to s1; from s1 action 0 returns to s0 and action 1 enters s2, which
terminates the episode. Every step pays +1 (Pos) or -1 (Neg). An algorithm that
treats terminal states as zero-valued is biased towards terminating (a negative
learned reward) or towards surviving (a positive one), so it passes one task for the
wrong reason and fails the other.
"""

import numpy as np

from envs.diagnostics.tabular_mdp import tabular_mdp

POS_ID = "seals/EarlyTermPos-v0"
NEG_ID = "seals/EarlyTermNeg-v0"
TIME_LIMIT = 10
TERMINAL = np.array([False, False, True])


def early_term_model(is_reward_positive: bool) -> tuple[np.ndarray, np.ndarray]:
    """(transition [3, 2, 3], state reward [3]) exactly as seals builds them."""
    transition = np.zeros((3, 2, 3))
    transition[0, :, 1] = 1.0
    transition[1, 0, 0] = 1.0
    transition[1, 1, 2] = 1.0
    transition[2, :, 2] = 1.0
    reward_sign = 1.0 if is_reward_positive else -1.0
    return transition, np.full(3, reward_sign)


def make_early_term(is_reward_positive: bool):
    transition, state_reward = early_term_model(is_reward_positive)
    return tabular_mdp(
        POS_ID if is_reward_positive else NEG_ID,
        transition=transition,
        state_reward=state_reward,
        time_limit=TIME_LIMIT,
        terminal=TERMINAL,
    )
