"""Soft value iteration (`jaxrl_align.tabular.planning`): imitation's definitions line by line
(with the occupancy measures of its policy), the soft maximum over actions, and imitation's
policy checks on its ReasonablePOMDP.

Tests that compare to 1e-3 or tighter run in float64 inside `jax.enable_x64(True)` (a context
manager, so the rest of the session keeps float32)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

import envs
from jaxrl_align import tabular
from tests.tabular.test_occupancy import reasonable_pomdp


def imitation_partition_and_occupancy(model, discount):
    """imitation's `mce_partition_fh` and `mce_occupancy_measures`, line by line in NumPy."""
    T = np.asarray(model.transition, np.float64)
    R = np.asarray(model.reward, np.float64)
    horizon, (n_states, n_actions, _) = model.max_steps_in_episode, T.shape
    V = np.full((horizon, n_states), -np.inf)
    Q = np.zeros((horizon, n_states, n_actions))
    Q[horizon - 1] = R[:, None]
    V[horizon - 1] = logsumexp(Q[horizon - 1], axis=1)
    for t in reversed(range(horizon - 1)):
        Q[t] = R[:, None] + discount * (T @ V[t + 1])
        V[t] = logsumexp(Q[t], axis=1)
    pi = np.exp(Q - V[:, :, None])
    D = np.zeros((horizon + 1, n_states))
    D[0] = np.asarray(model.initial_state_dist, np.float64)
    for t in range(horizon):
        for a in range(n_actions):
            D[t + 1] += (D[t] * pi[t, :, a]) @ T[:, a, :]
    return V, Q, pi, D, sum(discount**t * D[t] for t in range(horizon + 1))


DISCOUNTS = (0.0, 0.5, 0.9, 0.99, 1.0)


def test_soft_value_iteration_and_occupancy_are_imitations():
    model = envs.make("seals/Random-v0")[1]
    with jax.enable_x64(True):
        @jax.jit
        def ours(discount):
            soft = tabular.soft_value_iteration(model, model.reward, discount)
            return soft, tabular.occupancy_measures(model, soft.policy, discount)

        for discount in DISCOUNTS:
            V, Q, pi, D, total = imitation_partition_and_occupancy(model, discount)
            soft, occupancy = ours(discount)
            assert soft.policy.dtype == jnp.float64
            for mine, theirs in ((soft.value, V), (soft.q_value, Q), (soft.policy, pi),
                                 (occupancy.per_step, D), (occupancy.total, total)):
                np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_soft_max_over_actions_is_logsumexp_and_softmax():
    """Few actions take the column path, many the generic one; both agree with JAX's
    logsumexp and softmax, also where every action of a state is -inf."""
    for n_actions in (1, 4, tabular.MAX_COLUMN_ACTIONS + 1):
        q = jax.random.normal(jax.random.PRNGKey(n_actions), (3, 5, n_actions)) * 30
        q = q.at[1, 2].set(-jnp.inf)
        value, policy = tabular.soft_max_over_actions(q)
        np.testing.assert_allclose(value, jax.nn.logsumexp(q, axis=-1), rtol=1e-6)
        finite = np.isfinite(np.asarray(value))
        assert not finite[1, 2] and finite.sum() == finite.size - 1
        np.testing.assert_allclose(np.asarray(policy)[finite],
                                   np.asarray(jax.nn.softmax(q, axis=-1))[finite],
                                   rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("discount", DISCOUNTS)
def test_policy_on_reasonable_pomdp(discount):
    """imitation's `test_policy_om_reasonable_pomdp`."""
    model = reasonable_pomdp()
    with jax.enable_x64(True):
        soft = tabular.soft_value_iteration(model, model.reward, discount)
        occupancy = tabular.occupancy_measures(model, soft.policy, discount)
    pi = np.asarray(soft.policy)
    assert np.all(np.isfinite(pi)) and np.all(np.isfinite(occupancy.total))
    np.testing.assert_allclose(pi.sum(axis=-1), 1, rtol=1e-12)
    np.testing.assert_allclose(pi[:19, 0, 0], pi[:19, 0, 2])  # both lead to states 1 / 2
    np.testing.assert_allclose(pi[:5, 3:5], 1 / 3)  # every action is the same there
    np.testing.assert_allclose(pi[:19, 1], pi[:19, 2])  # states 1 and 2 are alike
    if discount > 0:
        assert np.all(pi[:19, 0, 0] > 2 * pi[:19, 0, 1])  # action 1 leads to the −20 state
        assert np.all(pi[:19, 1, 2] > pi[:19, 1, 0]) and np.all(pi[:19, 1, 0] > pi[:19, 1, 1])
    np.testing.assert_allclose(occupancy.per_step[0], model.initial_state_dist)
