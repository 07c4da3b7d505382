"""seals' CliffWorld: a windy grid with a goal at the end of a cliff edge.

Row 0 is the top row: the start is its left corner, the goal its right corner and
every cell between them is cliff. The four actions are *diagonal* moves
(row +-1, col +-1; moves off the grid are clamped), and with probability `fail_p`
the wind pushes the agent one extra row up. Rewards are state rewards: +10 for
leaving the goal, -10 for leaving a cliff cell, -1 elsewhere. There is no absorbing
state: the episode simply ends at the horizon.
"""

import numpy as np

from envs.tabular import TabularEnv, TabularParams, tabular_params

# (width, height, horizon) of the variants seals registers, each with one-hot and
# with (x, y) observations.
SEALS_SIZES = ((7, 4, 9), (15, 6, 18), (100, 20, 110))


def cliff_world_id(width: int, height: int, use_xy_obs: bool) -> str:
    return f"seals/CliffWorld{width}x{height}{'XY' if use_xy_obs else ''}-v0"


def cliff_world_params(
    *,
    width: int,
    height: int,
    horizon: int,
    use_xy_obs: bool,
    rew_default: float = -1,
    rew_goal: float = 10,
    rew_cliff: float = -10,
    fail_p: float = 0.3,
) -> TabularParams:
    """The model of seals' `CliffWorldEnv`, built to give the same float64 sums."""
    if width < 3 or height < 2:
        raise ValueError(
            f"degenerate CliffWorld {width}x{height}: needs width >= 3, height >= 2"
        )
    n_states = width * height
    rows, cols = np.divmod(np.arange(n_states), width)

    reward = np.full(n_states, float(rew_default))
    reward[(rows == 0) & (cols > 0) & (cols < width - 1)] = rew_cliff
    reward[(rows == 0) & (cols == width - 1)] = rew_goal

    if use_xy_obs:
        observation_matrix = np.stack(
            [cols / (width - 1), rows / (height - 1)], axis=1
        ).astype(np.float32)
    else:
        observation_matrix = None  # one-hot

    def clamped_id(row, col):
        return np.clip(row, 0, height - 1) * width + np.clip(col, 0, width - 1)

    transition = np.zeros((n_states, 4, n_states))
    for drow in (-1, 1):
        for dcol in (-1, 1):
            action = (drow + 1) + (dcol + 1) // 2
            target = clamped_id(rows + drow, cols + dcol)
            blown_up = clamped_id(rows + drow - 1, cols + dcol)
            # seals adds the wind's share first, then the intended move's; where both
            # land on the same cell (top row) this order fixes the float64 sum.
            np.add.at(transition, (np.arange(n_states), action, blown_up), fail_p)
            np.add.at(transition, (np.arange(n_states), action, target), 1 - fail_p)

    return tabular_params(
        transition=transition,
        reward=reward,
        initial_state_dist=np.eye(n_states)[0],
        observation_matrix=observation_matrix,
        horizon=horizon,
    )


def make_cliff_world(
    *, width: int, height: int, horizon: int, use_xy_obs: bool, **reward_and_wind
) -> tuple[TabularEnv, TabularParams]:
    """A CliffWorld env; `reward_and_wind` are `rew_default`, `rew_goal`, `rew_cliff`,
    `fail_p`, as in seals."""
    params = cliff_world_params(
        width=width,
        height=height,
        horizon=horizon,
        use_xy_obs=use_xy_obs,
        **reward_and_wind,
    )
    return TabularEnv(params, name=cliff_world_id(width, height, use_xy_obs)), params
