"""seals/RiskyPath-v0: a safe path and a risky shortcut to the goal.

From s0 the safe action goes to s1 and then to the goal s2; the risky action reaches s2
or the pit s3 with probability 1/2 each. s2 and s3 are absorbing; state rewards are
[0, 0, 1, -100]. The safe path has the higher expected return, the risky one the higher
best case, which misleads non-causal MaxEnt IRL (it assumes the demonstrator controls
the trajectory).
"""

import numpy as np

from envs.diagnostics.tabular_mdp import tabular_mdp

ENV_ID = "seals/RiskyPath-v0"
TIME_LIMIT = 5


def risky_path_model() -> tuple[np.ndarray, np.ndarray]:
    """(transition [4, 2, 4], state reward [4]) exactly as seals builds them."""
    transition = np.zeros((4, 2, 4))
    transition[0, 0, 1] = 1.0
    transition[0, 1, [2, 3]] = 0.5
    transition[1, 0, 2] = 1.0
    transition[1, 1, 1] = 1.0
    transition[[2, 3], :, [2, 3]] = 1.0
    return transition, np.array([0.0, 0.0, 1.0, -100.0])


def make_risky_path():
    transition, state_reward = risky_path_model()
    return tabular_mdp(
        ENV_ID, transition=transition, state_reward=state_reward, time_limit=TIME_LIMIT
    )
