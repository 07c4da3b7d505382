"""Episodes drawn from a tabular model (`jaxrl_align.tabular.sample_trajectories`): samples of
the soft-optimal expert estimate its exact visits and exact return."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxrl_align import tabular
from tests.tabular.test_occupancy import expected_return, expert_visits, reasonable_pomdp


def test_expert_samples_estimate_the_exact_visits():
    model = reasonable_pomdp()
    policy, exact = expert_visits(model)
    trajs = jax.jit(tabular.sample_trajectories, static_argnums=3)(
        jax.random.PRNGKey(0), model, policy, 4000)
    sampled = tabular.visits_from_trajectories(trajs, 5)
    # Counts of 20 steps per episode: standard errors are below 0.07 with 4000 episodes.
    np.testing.assert_allclose(sampled.total, exact.total, atol=0.2)
    np.testing.assert_allclose(sampled.final_state, exact.final_state, atol=0.03)
    assert float(trajs.returns.mean()) == pytest.approx(float(expected_return(model, policy)),
                                                        abs=0.5)
