"""Evaluation: aggregates by hand, rollout returns, exact tabular returns vs Monte Carlo."""
from __future__ import annotations

import json
from functools import partial

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxrl_align.evaluation import (bootstrap_ci, evaluate_policy, exact_expected_return, iqm,
                                    normalized_score, summarize)
from jaxrl_align.rollout import collect_episodes


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


# ---------------------------------------------------------------- exact tabular evaluation

@struct.dataclass
class TabularParams:
    transition: jax.Array
    reward: jax.Array
    initial_state_dist: jax.Array
    terminal: jax.Array
    max_steps_in_episode: int = struct.field(pytree_node=False, default=3)


def three_state_mdp(initial=(1.0, 0.0, 0.0), terminal=(False, False, True)) -> TabularParams:
    """State 0: action 0 -> state 1, action 1 -> state 2 (terminal, reward 10).
    State 1: either action -> 0 or 1 with probability 1/2. State 2 is absorbing."""
    transition = np.zeros((3, 2, 3), np.float32)
    transition[0, 0, 1] = transition[0, 1, 2] = 1.0
    transition[1, :, 0] = transition[1, :, 1] = 0.5
    transition[2, :, 2] = 1.0
    return TabularParams(transition=jnp.asarray(transition),
                         reward=jnp.array([1.0, 2.0, 10.0]),
                         initial_state_dist=jnp.asarray(initial, jnp.float32),
                         terminal=jnp.asarray(terminal))


UNIFORM_AT_0 = jnp.array([[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])


def monte_carlo_return(params: TabularParams, policy_probs, num_episodes=200_000, seed=0):
    """Simulate seals semantics: pay R[s] on leaving s; an episode stops on entering a terminal
    state or after H steps. Returns (mean, standard error)."""
    rng = np.random.default_rng(seed)
    transition, reward = np.asarray(params.transition), np.asarray(params.reward)
    terminal, pi = np.asarray(params.terminal), np.asarray(policy_probs)
    num_states = reward.shape[0]
    state = rng.choice(num_states, size=num_episodes, p=np.asarray(params.initial_state_dist))
    alive = np.ones(num_episodes, bool)
    total = np.zeros(num_episodes)
    for t in range(params.max_steps_in_episode):
        pi_t = pi[t] if pi.ndim == 3 else pi
        total += np.where(alive, reward[state], 0.0)
        action = (rng.random(num_episodes)[:, None] > np.cumsum(pi_t[state], axis=1)).sum(axis=1)
        next_dist = transition[state, action]
        state = (rng.random(num_episodes)[:, None] > np.cumsum(next_dist, axis=1)).sum(axis=1)
        alive &= ~terminal[state]
    return total.mean(), total.std() / np.sqrt(num_episodes)


def test_exact_return_by_hand():
    params = three_state_mdp()
    # t=0: in state 0, pay 1. t=1: half went to terminal state 2 (ended, unpaid), half in
    # state 1, pay 0.5*2. t=2: that half split between 0 and 1, pay 0.25*1 + 0.25*2.
    assert exact_expected_return(params, UNIFORM_AT_0) == pytest.approx(1 + 1 + 0.75)
    assert exact_expected_return(params, UNIFORM_AT_0, discount=0.9) == pytest.approx(
        1 + 0.9 * 1 + 0.81 * 0.75)
    # Without terminal states the mass in state 2 keeps paying 10 per step.
    absorbing = three_state_mdp(terminal=(False, False, False))
    assert exact_expected_return(absorbing, UNIFORM_AT_0) == pytest.approx(1 + 6 + 5.75)


def test_exact_return_matches_monte_carlo():
    params = three_state_mdp(initial=(0.6, 0.3, 0.1)).replace(max_steps_in_episode=6)
    time_varying = jnp.stack([UNIFORM_AT_0, jnp.array([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]])] * 3)
    for policy in (UNIFORM_AT_0, time_varying):
        mean, stderr = monte_carlo_return(params, policy)
        assert float(exact_expected_return(params, policy)) == pytest.approx(mean, abs=4 * stderr)


def test_exact_return_jits_and_vmaps_over_mdps():
    params = three_state_mdp()
    other = three_state_mdp(initial=(0.0, 1.0, 0.0))
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, other)
    batched = jax.jit(jax.vmap(exact_expected_return, in_axes=(0, None)))(batch, UNIFORM_AT_0)
    np.testing.assert_allclose(batched, [exact_expected_return(params, UNIFORM_AT_0),
                                         exact_expected_return(other, UNIFORM_AT_0)], rtol=1e-6)
    # A time-indexed policy that repeats the stationary one gives the same value.
    repeated = jnp.broadcast_to(UNIFORM_AT_0, (3, 3, 2))
    assert jax.jit(exact_expected_return)(params, repeated) == pytest.approx(2.75)


def test_exact_return_of_a_float64_policy_on_a_float32_model():
    """Under x64, MCE IRL's policies are float64 while env models stay float32: the return is
    computed in the wider dtype."""
    params = three_state_mdp()
    with jax.enable_x64(True):
        policy = jnp.asarray(UNIFORM_AT_0, jnp.float64)
        value = jax.jit(exact_expected_return)(params, policy)
        assert value.dtype == jnp.float64 and float(value) == pytest.approx(2.75, rel=1e-12)


def test_exact_return_with_a_traced_horizon():
    """Envs may keep the horizon as an array leaf of params; a batch of them is then traced."""
    @struct.dataclass
    class ArrayHorizonParams:
        transition: jax.Array
        reward: jax.Array
        initial_state_dist: jax.Array
        terminal: jax.Array
        max_steps_in_episode: jax.Array

    base = three_state_mdp()
    stacked = {name: jnp.stack([getattr(base, name)] * 2)
               for name in ("transition", "reward", "initial_state_dist", "terminal")}
    batch = ArrayHorizonParams(**stacked, max_steps_in_episode=jnp.array([1, 3]))
    returns = jax.jit(jax.vmap(exact_expected_return, in_axes=(0, None)))(batch, UNIFORM_AT_0)
    np.testing.assert_allclose(returns, [1.0, 2.75], rtol=1e-6)


def random_action(num_actions, key, obs):
    return jax.random.randint(key, (), 0, num_actions)


def test_exact_return_matches_rollouts_on_cliffworld():
    """Cross-check against the real tabular env once `envs` provides it."""
    try:
        from envs import make
        env, params = make("seals/CliffWorld7x4-v0")
    except (ImportError, AttributeError, KeyError, ValueError) as err:
        pytest.skip(f"envs.make('seals/CliffWorld7x4-v0') unavailable: {err}")
    num_actions = params.transition.shape[1]
    uniform = jnp.full(params.transition.shape[:2], 1.0 / num_actions)
    returns = np.asarray(evaluate_policy(env, params, partial(random_action, num_actions),
                                         jax.random.key(0), num_episodes=20_000))
    stderr = returns.std() / np.sqrt(returns.size)
    assert float(exact_expected_return(params, uniform)) == pytest.approx(
        returns.mean(), abs=4 * stderr + 1e-4)
