"""The reward-confusion gridworlds: valid models, a nuisance the true reward never reads."""
import numpy as np
import pytest

from envs import confusing_grid


@pytest.mark.parametrize("name", list(confusing_grid.TASKS))
def test_task_model(name):
    arrays = confusing_grid.task_arrays(confusing_grid.TASKS[name])
    np.testing.assert_allclose(arrays["transition"].sum(-1), 1.0)
    assert arrays["initial"].sum() == 1.0
    # The true reward depends on the cell only: states that differ in the nuisance alone
    # (same cell and key, another counter) have the same reward.
    cells = confusing_grid.ROWS * confusing_grid.COLS
    reward = arrays["reward"].reshape(-1, 2, cells)  # [counter, key, cell]
    assert (reward == reward[:1, :1]).all()
    nuisance = arrays["observation"][:, confusing_grid.NUISANCE]
    assert nuisance.min() == 0.0 and nuisance.max() == 1.0
    assert (arrays["reward"] > 0).any()
    reachable = arrays["reachable"]
    assert reachable[arrays["initial"] > 0].all() and reachable[arrays["at_goal"]].any()
    assert not reachable[arrays["at_goal"]].all()  # some goal states (key, counter) are not


def test_reachable_states_of_key_door():
    """Past the door only with the key; never inside a wall."""
    task = confusing_grid.TASKS["key_door"]
    reachable = confusing_grid.task_arrays(task)["reachable"]
    row, col, key, _ = confusing_grid._decode(np.arange(confusing_grid.NUM_STATES))
    cells = np.array([list(r) for r in task.layout])[row, col]
    assert not reachable[cells == "#"].any()
    assert not reachable[(col > 3) & (key == 0)].any()
    assert reachable[(col > 3) & (key == 1)].any()


def test_bad_task_is_refused():
    with pytest.raises(ValueError, match="task: expected one of"):
        confusing_grid.make_confusing_grid("nope")
