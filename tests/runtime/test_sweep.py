"""Sweep specifications (`jaxrl_align.runtime.sweep`): grids, random searches and their runs
axis (configuration-major)."""
import numpy as np
import pytest

from jaxrl_align.runtime.sweep import Sweep


def test_sweep_specs():
    grid = Sweep.grid({"lr": [1, 2], "ent_weight": [0, 3, 4]})
    assert len(grid) == 6 and grid.config_dicts()[1] == {"lr": 1.0, "ent_weight": 3.0}
    seeds, config, hp = grid.runs([7, 8])
    assert seeds.tolist() == [7, 8] * 6 and config.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert hp["ent_weight"].tolist() == [0, 0, 3, 3, 4, 4] * 2 and hp["lr"].dtype == np.float32
    rand = Sweep.random({"lr": (1e-5, 1e-1, True), "gamma": (0.9, 0.99, False)}, 50, seed=1)
    lr = np.array([c["lr"] for c in rand.config_dicts()])
    assert len(rand) == 50 and lr.min() >= 1e-5 and lr.max() <= 1e-1 and lr.min() < 1e-4
    assert rand == Sweep.random({"lr": (1e-5, 1e-1, True), "gamma": (0.9, 0.99, False)}, 50, seed=1)
    with pytest.raises(ValueError, match="no values"):
        Sweep.grid({"lr": []})
