"""Query strategies (`jaxrl_align.preferences.query_strategies`): random, variance and BALD pair
selection from a pool, and the preference chain (binary insertion whose comparisons are the
queries)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.preferences import query_strategies as qs


def numpy_bald(diff, noise_prob=0.0):
    p = 1 / (1 + np.exp(-np.clip(diff, -50, 50)))
    p = noise_prob * 0.5 + (1 - noise_prob) * p

    def entropy(q):
        q = np.clip(q, 1e-6, 1 - 1e-6)
        return -(q * np.log(q) + (1 - q) * np.log(1 - q))

    return entropy(p.mean(0)) - entropy(p).mean(0)


def test_bald_matches_numpy_and_ranks_disagreement_first():
    diff = np.array([[-3.0, 5.0, 0.0, 1.0, 100.0, 2.0],
                     [3.0, 5.0, 0.0, -1.0, -100.0, 2.5],
                     [-3.0, 5.0, 0.0, 0.5, 100.0, 1.5],
                     [3.0, 5.0, 0.0, -0.5, -100.0, 2.0]], np.float32)  # K=4, P=6
    for noise_prob in (0.0, 0.1):
        gain = np.asarray(qs.bald(jnp.asarray(diff), noise_prob))
        assert gain.shape == (6,) and np.all(np.isfinite(gain)) and np.all(gain >= 0)
        np.testing.assert_allclose(gain, np.maximum(numpy_bald(diff, noise_prob), 0), atol=1e-5)
    gain = np.asarray(qs.bald(jnp.asarray(diff)))
    assert gain[1] < 1e-6 and gain[2] < 1e-6  # every member agrees
    assert gain[0] > 0.5 and gain[0] > 20 * gain[5]  # split members vs confident agreement
    assert gain[0] > gain[3] > gain[5]  # a firm split, a mild one, agreement
    assert abs(gain[4] - math.log(2)) < 1e-3  # saturated p = 0 and 1, still finite


def test_candidate_pairs_are_distinct_and_uniform():
    pairs = np.asarray(qs.candidate_pairs(jax.random.PRNGKey(0), 5, 4000))
    assert pairs.shape == (4000, 2) and pairs.dtype == np.int32
    assert np.all(pairs[:, 0] != pairs[:, 1]) and pairs.min() >= 0 and pairs.max() < 5
    counts = np.bincount(pairs[:, 0] * 5 + pairs[:, 1], minlength=25).reshape(5, 5)
    off_diagonal = counts[~np.eye(5, dtype=bool)]
    assert np.all(np.diag(counts) == 0) and off_diagonal.min() > 120 and off_diagonal.max() < 280
    two = np.asarray(qs.candidate_pairs(jax.random.PRNGKey(1), 2, 100))
    assert np.all(two[:, 0] + two[:, 1] == 1)


def disputed_pool(num_pool=8, disputed=3):
    """Members agree on every return but that of `disputed`, which they split on (±10)."""
    base = np.linspace(-4.0, 4.0, num_pool, dtype=np.float32)
    member_returns = np.tile(base, (4, 1))
    member_returns[:, disputed] += np.array([-10.0, 10.0, -10.0, 10.0], np.float32)
    return jnp.asarray(member_returns)


@pytest.mark.parametrize("strategy", ["random", "variance", "bald"])
def test_select_pairs(strategy):
    member_returns, key = disputed_pool(), jax.random.PRNGKey(2)
    pairs = np.asarray(qs.select_pairs(key, strategy, member_returns, 3, 40))
    assert pairs.shape == (3, 2) and pairs.dtype == np.int32
    assert np.all(pairs[:, 0] != pairs[:, 1]) and pairs.min() >= 0 and pairs.max() < 8
    candidates = np.asarray(qs.candidate_pairs(key, 8, 40))
    with_disputed = np.any(candidates == 3, axis=1)
    assert with_disputed.sum() >= 3 and (~with_disputed).sum() >= 3  # the key gives both kinds
    if strategy == "random":
        np.testing.assert_array_equal(pairs, candidates[:3])
    else:
        assert np.all(np.any(pairs == 3, axis=1)), pairs
    jitted = jax.jit(qs.select_pairs, static_argnums=(1, 3, 4))
    np.testing.assert_array_equal(jitted(key, strategy, member_returns, 3, 40), pairs)


@pytest.mark.parametrize("strategy", ["chain", "entropy"])
def test_select_pairs_rejects_other_strategies(strategy):
    with pytest.raises(ValueError, match=strategy):
        qs.select_pairs(jax.random.PRNGKey(0), strategy, disputed_pool(), 3, 40)


def test_oracle_labels_noiseless_and_tied():
    true_returns = jnp.array([0.0, 1.0, 1.0])
    pairs = jnp.array([[1, 0], [0, 1]] * 50 + [[1, 2]] * 400)
    labels = np.asarray(qs.oracle_labels(jax.random.PRNGKey(0), true_returns, pairs, 0.0))
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels[:100], np.tile([1.0, 0.0], 50))
    assert 0.4 < labels[100:].mean() < 0.6 and set(np.unique(labels[100:])) == {0.0, 1.0}


def insertion_bound(num_pool):
    """Binary insertion into an order of size s takes at most ceil(log2(s + 1)) comparisons."""
    return sum(math.ceil(math.log2(s + 1)) for s in range(1, num_pool))


def pool(key, num_pool=12, num_members=5):
    key_true, key_noise = jax.random.split(key)
    true_returns = jax.random.permutation(key_true, num_pool).astype(jnp.float32)  # distinct
    member_returns = true_returns + 3 * jax.random.normal(key_noise, (num_members, num_pool))
    return member_returns, true_returns


def positions_of(order):
    pos = np.full(order.shape[0], -1)
    pos[order[order >= 0]] = np.arange((order >= 0).sum())
    return pos


def test_chain_with_a_noiseless_oracle_sorts_the_pool():
    member_returns, true_returns = pool(jax.random.PRNGKey(4))
    budget = insertion_bound(12)
    run = jax.jit(qs.chain_run, static_argnums=(4, 5))
    state = run(qs.chain_init(12, budget + 5), jax.random.PRNGKey(5), member_returns,
                true_returns, budget + 5, 0.0)
    assert int(state.size) == 12 and bool(state.inserted.all()) and int(state.candidate) == -1
    np.testing.assert_array_equal(state.order, np.argsort(np.asarray(true_returns)))
    assert int(state.num_queries) <= budget
    assert np.all(np.asarray(state.queried)[int(state.num_queries):] == -1)
    # Noiseless answers are the true comparisons.
    q = np.asarray(state.queried)[:int(state.num_queries)]
    truth = np.asarray(true_returns)
    np.testing.assert_array_equal(state.answers[:len(q)], truth[q[:, 0]] > truth[q[:, 1]])


@pytest.mark.parametrize("budget", [13, 60])  # mid-insertion, and every trajectory inserted
def test_chain_with_a_noisy_oracle_is_the_closure_of_its_answers(budget):
    member_returns, true_returns = pool(jax.random.PRNGKey(6))
    state = qs.chain_run(qs.chain_init(12, budget), jax.random.PRNGKey(7), member_returns,
                         true_returns, budget, 50.0)  # temperature 50 >> return range: coin flips
    n_q, order = int(state.num_queries), np.asarray(state.order)
    assert n_q == budget if budget < insertion_bound(12) else n_q <= insertion_bound(12)
    queried, answers = np.asarray(state.queried)[:n_q], np.asarray(state.answers)[:n_q]
    truth = np.asarray(true_returns)
    wrong = (answers > 0.5) != (truth[queried[:, 0]] > truth[queried[:, 1]])
    assert wrong.mean() > 0.2  # the oracle really is noisy
    pos, inserted = positions_of(order), np.asarray(state.inserted)
    assert np.array_equal(pos >= 0, inserted) and np.all(order[int(state.size):] == -1)
    for (c, p), a in zip(queried, answers):  # every answer holds in the order
        if inserted[c]:
            assert (pos[c] > pos[p]) == (a > 0.5)
    pairs, labels, mask = (np.asarray(x) for x in qs.chain_pairs(state))
    assert pairs.shape == (66, 2) and labels.shape == (66,) and np.all(labels == 1.0)
    assert pairs.min() >= 0 and pairs.max() < 12
    size = int(state.size)
    assert mask.sum() == size * (size - 1) // 2
    implied = np.zeros((12, 12), bool)
    implied[pairs[mask, 0], pairs[mask, 1]] = True
    closure = np.asarray(qs.transitive_closure(state.queried, state.answers, n_q, 12))
    # The candidate mid-insertion has relations in the closure but is not in the order yet.
    np.testing.assert_array_equal(implied, closure & np.outer(inserted, inserted))
    if budget == 60:
        assert inserted.all() and int(state.candidate) == -1
        np.testing.assert_array_equal(implied, closure)
    else:
        assert int(state.candidate) >= 0 and not inserted[int(state.candidate)]


def test_chain_run_vmaps_over_seeds_and_spends_the_budget():
    member_returns, true_returns = pool(jax.random.PRNGKey(8), num_pool=10)
    run = jax.jit(jax.vmap(lambda k: qs.chain_run(qs.chain_init(10, 8), k, member_returns,
                                                  true_returns, 8, 1.0)))
    states = run(jax.random.split(jax.random.PRNGKey(9), 3))
    np.testing.assert_array_equal(states.num_queries, [8, 8, 8])
    queried = np.asarray(states.queried)
    assert queried.shape == (3, 8, 2) and np.all(queried >= 0)
    assert np.all(queried[..., 0] != queried[..., 1])
    # Seeded with the same (highest-variance) trajectory, the same first query for every seed.
    first = int(np.argmax(np.var(np.asarray(member_returns), axis=0)))
    assert np.all(queried[:, 0, 1] == first)
    # Eight queries insert at least four trajectories (sizes 1, 2, 3 need 1 + 2 + 2).
    assert np.all(np.asarray(states.size) >= 4)
    for s in range(3):  # the same as running one seed alone
        single = qs.chain_run(qs.chain_init(10, 8), jax.random.split(jax.random.PRNGKey(9), 3)[s],
                              member_returns, true_returns, 8, 1.0)
        np.testing.assert_array_equal(single.order, states.order[s])
