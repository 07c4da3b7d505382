"""Gridworlds for reward confusion: a true reward over causal features and a nuisance feature
that the true reward never reads (our own tasks in the spirit of the "Confusing Minigrid" of Chen,
Toyer & Shkurti 2024, whose definitions were not available; docs/reward-confusion.md).

Every task is a 6×7 grid (rows × columns, row 0 at the top) with the same shapes, so a batch of
tasks is a batched `TabularParams` and vmaps like a batch of seeds. Cells:

    .  floor        #  wall          S  start          G  goal (+1 for each step spent on it)
    L  lava (−1 for each step on it) K  key (picked up by stepping on it)
    D  door (passable only with the key)
    N  nuisance object: stepping on it sets the nuisance (a flag that stays set), or, for a counter,
       adds one per step spent on it, up to 3
    P  nuisance floor: stepping on it sets the flag (a trace that stays, like mud on the boots)

Five actions: up, down, left, right, stay; moves into walls, off the grid or into a locked door
leave the agent in place. The state is (cell, has key, counter 0..3); its reward is paid on
leaving it, and the episode lasts `HORIZON` steps (seals' tabular semantics, `envs.tabular`).

Observation of a state (float32, `OBS_FEATURES`): the column and row scaled to [0, 1], has key, and
the nuisance: the flag (or trace), or the counter / 3. The goal and the lava are fixed cells, so
the causal features are the position (and the key); the nuisance is one clean number, which is
what makes it tempting.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.tabular import TabularEnv, TabularParams, tabular_params

ROWS, COLS = 6, 7
HORIZON = 20
MAX_COUNT = 3
ACTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1), (0, 0))  # up, down, left, right, stay
OBS_FEATURES = ("column", "row", "has_key", "nuisance")
NUISANCE = OBS_FEATURES.index("nuisance")
NUM_STATES = ROWS * COLS * 2 * (MAX_COUNT + 1)


@dataclass(frozen=True)
class GridTask:
    name: str
    layout: tuple[str, ...]
    nuisance: str  # "flag" (set by N), "trace" (set by the nuisance region) or "counter"
    description: str
    nuisance_region: str = "P"  # cells that set a "trace" (P; "right": the right half)

    def __post_init__(self):
        if len(self.layout) != ROWS or any(len(row) != COLS for row in self.layout):
            raise ValueError(f"layout of {self.name!r}: expected {ROWS} rows of {COLS} cells")
        if self.nuisance not in ("flag", "trace", "counter"):
            raise ValueError(f"nuisance of {self.name!r}: expected flag, trace or counter, "
                             f"got {self.nuisance!r}")
        if sum(row.count("S") for row in self.layout) != 1:
            raise ValueError(f"layout of {self.name!r}: expected exactly one start cell S")


TASKS = {task.name: task for task in (
    GridTask("lava", (
        "PPPPPPP",
        ".LLLLL.",
        "SLLLLLG",
        ".LLLLL.",
        ".......",
        "#######"), "trace",
        "reach the goal across a lava field; the upper safe path has a patterned floor that "
        "marks the agent's boots"),
    GridTask("decoy", (
        ".......",
        ".#####.",
        "S.....G",
        ".#####.",
        "......N",
        "#######"), "flag",
        "reach the goal; a decoy object by the goal is picked up on the way"),
    GridTask("key_door", (
        ".K.#...",
        "...#...",
        "S..D..G",
        "...#...",
        "N..#...",
        "#######"), "flag",
        "pick up the key, open the door, reach the goal; a switch near the start paints the "
        "room red"),
    GridTask("counter", (
        ".......",
        ".......",
        "S.....G",
        ".......",
        ".N.....",
        "#######"), "counter",
        "reach the goal; a button near the start counts the steps spent on it (up to 3)"),
    GridTask("side", (
        "...G...",
        "...#...",
        "...#...",
        "...#...",
        "...S...",
        "#######"), "trace",
        "reach the goal at the top around a wall; entering the right half of the grid lights a "
        "lamp",
        nuisance_region="right"),
    GridTask("goal_ring", (
        "......G",
        ".....PP",
        ".......",
        ".......",
        "S......",
        "#######"), "trace",
        "reach the goal in the corner; two cells in front of it have grass that stains"),
)}


def _decode(state):
    cell, rest = state % (ROWS * COLS), state // (ROWS * COLS)
    return cell // COLS, cell % COLS, rest % 2, rest // 2  # row, col, has key, counter


def _encode(row, col, key, count):
    return (row * COLS + col) + ROWS * COLS * (key + 2 * count)


def _sets_trace(task: GridTask, row: int, col: int) -> bool:
    if task.nuisance_region == "right":
        return col > COLS // 2
    return task.layout[row][col] == task.nuisance_region


def task_arrays(task: GridTask) -> dict[str, np.ndarray]:
    """The model of a task as numpy arrays: transition [S, A, S], reward [S], initial [S],
    observation [S, F], and per state `at_goal`, `nuisance` (its observed value) and
    `reachable` (from the start within the horizon).
    The nuisance changes on entering a cell, so a trace or flag is set on the step that reaches
    it."""
    cells = np.array([list(row) for row in task.layout])
    transition = np.zeros((NUM_STATES, len(ACTIONS), NUM_STATES), np.float32)
    reward = np.zeros(NUM_STATES, np.float32)
    obs = np.zeros((NUM_STATES, len(OBS_FEATURES)), np.float32)
    initial = np.zeros(NUM_STATES, np.float32)
    for state in range(NUM_STATES):
        row, col, key, count = _decode(state)
        cell = cells[row, col]
        reward[state] = {"G": 1.0, "L": -1.0}.get(cell, 0.0)
        nuisance = count / MAX_COUNT if task.nuisance == "counter" else float(count > 0)
        obs[state] = (col / (COLS - 1), row / (ROWS - 1), key, nuisance)
        for action, (drow, dcol) in enumerate(ACTIONS):
            new_row, new_col = row + drow, col + dcol
            blocked = (not (0 <= new_row < ROWS and 0 <= new_col < COLS)
                       or cells[new_row, new_col] == "#"
                       or (cells[new_row, new_col] == "D" and not key))
            if blocked:
                new_row, new_col = row, col
            new_cell = cells[new_row, new_col]
            new_key = int(key or new_cell == "K")
            new_count = count
            if task.nuisance == "counter" and new_cell == "N":
                new_count = min(count + 1, MAX_COUNT)
            elif ((task.nuisance == "flag" and new_cell == "N")
                  or (task.nuisance == "trace" and _sets_trace(task, new_row, new_col))):
                new_count = 1
            transition[state, action, _encode(new_row, new_col, new_key, new_count)] = 1.0
    start_row, start_col = np.argwhere(cells == "S")[0]
    initial[_encode(start_row, start_col, 0, 0)] = 1.0
    reachable = initial > 0
    for _ in range(HORIZON):
        reachable |= (reachable.astype(np.float32) @ transition.max(axis=1)) > 0
    return dict(transition=transition, reward=reward, initial=initial, observation=obs,
                at_goal=reward > 0, nuisance=obs[:, NUISANCE], reachable=reachable)


def task_params(task: GridTask) -> TabularParams:
    arrays = task_arrays(task)
    return tabular_params(transition=arrays["transition"], reward=arrays["reward"],
                          initial_state_dist=arrays["initial"],
                          observation_matrix=arrays["observation"], horizon=HORIZON)


def make_confusing_grid(task: str) -> tuple[TabularEnv, TabularParams]:
    """(env, params) of one task by name (`TASKS`)."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
    params = task_params(TASKS[task])
    return TabularEnv(params, name=f"ConfusingGrid-{task}"), params
