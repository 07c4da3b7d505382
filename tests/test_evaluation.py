"""Evaluation: aggregates by hand and rollout returns (exact tabular returns are
`jaxrl_align.tabular`'s: tests/tabular/test_occupancy.py)."""
from __future__ import annotations

import json

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.data.rollout import collect_episodes
from jaxrl_align.evaluation import bootstrap_ci, evaluate_policy, iqm, normalized_score, summarize


# ---------------------------------------------------------------- aggregates

@pytest.mark.parametrize("values, expected", [
    (np.arange(1, 9), np.mean([3, 4, 5, 6])),                       # n=8: cut 2 each side
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], np.mean([3, 4, 5, 6, 7, 8])),  # n=10: int(2.5)=2 cut
    ([100, 1, 4, 2, 3], np.mean([2, 3, 4])),                          # n=5: 1 cut, unsorted
    ([7, -1, 3], 3.0),                                                # n=3: nothing cut
    ([5.0], 5.0),
])
def test_iqm_by_hand(values, expected):
    assert iqm(values) == pytest.approx(expected)


def test_iqm_matches_scipy_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in range(1, 23):
        x = rng.standard_cauchy(n)
        assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25))


def test_iqm_along_an_axis():
    x = np.array([np.arange(1, 9), np.arange(1, 9)[::-1] * 2])
    np.testing.assert_allclose(iqm(x, axis=-1), [4.5, 9.0])


def test_bootstrap_ci_contains_iqm_and_narrows_with_more_seeds():
    rng = np.random.default_rng(1)
    few, many = rng.normal(1.0, 1.0, 8), rng.normal(1.0, 1.0, 256)
    lo_few, hi_few = bootstrap_ci(few)
    lo_many, hi_many = bootstrap_ci(many)
    assert lo_few <= iqm(few) <= hi_few
    assert lo_many <= iqm(many) <= hi_many
    assert hi_many - lo_many < 0.5 * (hi_few - lo_few)
    assert bootstrap_ci(few) == (lo_few, hi_few)  # seeded: reproducible
    lo_mean, hi_mean = bootstrap_ci(few, statistic=np.mean)
    assert lo_mean <= few.mean() <= hi_mean


def test_normalized_score():
    assert normalized_score(20.0, 20.0, 500.0) == 0.0
    assert normalized_score(500.0, 20.0, 500.0) == 1.0
    np.testing.assert_allclose(normalized_score(jnp.array([260.0, -220.0]), 20.0, 500.0),
                               [0.5, -0.5])


def test_summarize():
    returns = np.array([[10.0, 30.0], [50.0, 50.0], [90.0, 110.0], [0.0, 0.0]])  # 4 seeds x 2
    summary = summarize(returns, random_return=0.0, expert_return=100.0)
    assert summary["return_mean"] == [20.0, 50.0, 100.0, 0.0]
    assert summary["normalized_score"] == pytest.approx([0.2, 0.5, 1.0, 0.0])
    assert summary["iqm"] == pytest.approx(0.35)  # middle two of [0, .2, .5, 1]
    assert summary["mean"] == pytest.approx(0.425)
    lo, hi = summary["iqm_ci95"]
    assert 0.0 <= lo <= summary["iqm"] <= hi <= 1.0
    json.dumps(summary)  # lands in results.json as is
    with pytest.raises(ValueError, match="undefined"):
        summarize(returns, random_return=5.0, expert_return=5.0)


# ---------------------------------------------------------------- rollouts

def push_left(key, obs):
    return jnp.int32(0)


def test_evaluate_policy_cartpole_returns_are_episode_lengths():
    env, params = gymnax.make("CartPole-v1")
    key = jax.random.key(3)
    returns = evaluate_policy(env, params, push_left, key, num_episodes=8)
    lengths = collect_episodes(env, params, push_left, key, 8, params.max_steps_in_episode).lengths
    assert returns.shape == (8,)
    np.testing.assert_array_equal(returns, lengths.astype(returns.dtype))
    # Pushing one way topples the pole within a few dozen steps, far from the 500-step limit.
    assert np.all((returns >= 5) & (returns < 100))
