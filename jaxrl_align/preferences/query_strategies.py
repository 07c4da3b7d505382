"""Query strategies for a fixed budget of preference queries over an unlabelled pool of N
trajectories, judged by a reward ensemble of K members (`member_returns` [K, N]: each member's
predicted return of each trajectory) and answered by a synthetic Bradley–Terry oracle on the
true returns [N]:

- "random": uniformly random pairs of distinct trajectories;
- "variance": of C random candidate pairs, those with the largest variance over members of
  R(a) − R(b) (`active_selection`'s "logit" uncertainty);
- "bald": of C random candidates, those with the largest mutual information between the label
  and the ensemble member, H(E_k p_k) − E_k H(p_k), p_k = p(a ≻ b) under member k
  (`bradley_terry.probability`), in nats;
- "chain": a preference chain. Trajectories are inserted one at a time into a total order
  (ascending: order[0] is the least preferred) by binary search, each comparison one query. The
  next trajectory to insert is the one with the highest BALD against the first pivot it would
  meet; the first one placed, without a query, has the largest ensemble variance of its return.
  Every pair the order implies is a label (`chain_pairs`); those are exactly the transitive
  closure of the answered queries, since each inserted trajectory was compared with both of its
  neighbours.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_align.preferences import active_selection, bradley_terry, gatherer

STRATEGIES = ("random", "variance", "bald", "chain")
_EPS = 1e-6  # p is clipped to [eps, 1 - eps] so that log stays finite; 1 - 1e-6 is exact in float32


def _binary_entropy(p):
    p = jnp.clip(p, _EPS, 1 - _EPS)
    return -(p * jnp.log(p) + (1 - p) * jnp.log1p(-p))


def bald(return_diff, noise_prob: float = 0.0, threshold: float = 50.0) -> jax.Array:
    """Mutual information [P] (nats, ≥ 0) between the label of each pair and the ensemble member,
    H(mean_k p_k) − mean_k H(p_k), from `return_diff` [K, P] = member k's R(a) − R(b)."""
    p = bradley_terry.probability(return_diff, noise_prob, threshold)
    gain = _binary_entropy(jnp.mean(p, axis=0)) - jnp.mean(_binary_entropy(p), axis=0)
    return jnp.maximum(gain, 0.0)  # concavity makes it ≥ 0; the max removes rounding below 0


def candidate_pairs(key, num_pool: int, num_candidates: int) -> jax.Array:
    """[C, 2] int32 pool indices, uniform over the ordered pairs (i, j) with i ≠ j."""
    key_i, key_j = jax.random.split(key)
    i = jax.random.randint(key_i, (num_candidates,), 0, num_pool)
    j = (i + jax.random.randint(key_j, (num_candidates,), 1, num_pool)) % num_pool
    return jnp.stack([i, j], axis=1).astype(jnp.int32)


def pair_return_diff(member_returns, pairs) -> jax.Array:
    """[K, P] = member_returns[:, pairs[:, 0]] − member_returns[:, pairs[:, 1]]."""
    return member_returns[:, pairs[:, 0]] - member_returns[:, pairs[:, 1]]


def select_pairs(key, strategy: str, member_returns, num_select: int, num_candidates: int,
                 noise_prob: float = 0.0, threshold: float = 50.0) -> jax.Array:
    """[num_select, 2] int32 pairs of pool indices from `num_candidates` random candidates: the
    first num_select ("random"), or the num_select with the highest logit variance ("variance")
    or BALD ("bald"), highest first. "chain" is sequential: use `chain_run`."""
    if strategy not in ("random", "variance", "bald"):
        raise ValueError(f"select_pairs: strategy {strategy!r} is not one of random, variance, "
                         f"bald (for 'chain' use chain_run)")
    if num_select > num_candidates:
        raise ValueError(f"select_pairs: num_select {num_select} > num_candidates {num_candidates}")
    candidates = candidate_pairs(key, member_returns.shape[1], num_candidates)
    if strategy == "random":
        return candidates[:num_select]
    diff = pair_return_diff(member_returns, candidates)
    if strategy == "variance":
        idx = active_selection.select_most_uncertain(diff, num_select, "logit")
    else:
        idx = jax.lax.top_k(bald(diff, noise_prob, threshold), num_select)[1]
    return candidates[idx]


def oracle_labels(key, true_returns, pairs, temperature: float) -> jax.Array:
    """[P] float32 0/1 draws of Bernoulli(p(a ≻ b)), p = `gatherer.preference_probability` of the
    true returns of `pairs` [P, 2] (temperature 0: the sign, a tie a fair coin)."""
    probs = gatherer.preference_probability(true_returns[pairs], temperature)
    return jax.random.bernoulli(key, probs).astype(jnp.float32)


@struct.dataclass
class ChainState:
    order: jax.Array  # [N] int32 pool indices, ascending preference; positions >= size hold -1
    size: jax.Array  # int32 number of trajectories in the order
    inserted: jax.Array  # [N] bool
    candidate: jax.Array  # int32 pool index being inserted, -1 when none
    lo: jax.Array  # int32: pivots left in positions [lo, hi); the insertion position is in [lo, hi]
    hi: jax.Array
    queried: jax.Array  # [max_queries, 2] int32 (candidate, pivot) of each answer, -1 unused
    answers: jax.Array  # [max_queries] float32: 1 if candidate ≻ pivot, else 0
    num_queries: jax.Array  # int32


def chain_init(num_pool: int, max_queries: int) -> ChainState:
    """An empty order over a pool of `num_pool` and room for `max_queries` queries."""
    zero = jnp.zeros((), jnp.int32)
    return ChainState(order=jnp.full((num_pool,), -1, jnp.int32), size=zero,
                      inserted=jnp.zeros((num_pool,), bool), candidate=zero - 1, lo=zero, hi=zero,
                      queried=jnp.full((max_queries, 2), -1, jnp.int32),
                      answers=jnp.zeros((max_queries,), jnp.float32), num_queries=zero)


def chain_step(state: ChainState, key, member_returns, true_returns, temperature: float,
               noise_prob: float = 0.0, threshold: float = 50.0) -> ChainState:
    """Spend exactly one query of the chain, or return `state` unchanged when the budget
    (`max_queries`) is spent or every trajectory is in the order."""
    n, max_queries = state.order.shape[0], state.answers.shape[0]
    active = (state.num_queries < max_queries) & ((state.candidate >= 0) | ~jnp.all(state.inserted))

    # An empty order: place the trajectory the ensemble is least sure of, without a query.
    seed = active & (state.size == 0)
    first = jnp.argmax(jnp.var(member_returns, axis=0)).astype(jnp.int32)
    order = jnp.where(seed, state.order.at[0].set(first), state.order)
    inserted = state.inserted | (seed & (jnp.arange(n) == first))
    size = state.size + seed.astype(jnp.int32)

    # No insertion in progress: the most informative trajectory against the first pivot it meets.
    choose = active & (state.candidate < 0) & ~jnp.all(inserted)
    first_pivot = order[size // 2]
    gain = bald(member_returns - member_returns[:, first_pivot, None], noise_prob, threshold)
    best = jnp.argmax(jnp.where(inserted, -jnp.inf, gain)).astype(jnp.int32)
    candidate = jnp.where(choose, best, state.candidate)
    lo = jnp.where(choose, 0, state.lo)
    hi = jnp.where(choose, size, state.hi)

    # One comparison of the binary search.
    ask = active & (candidate >= 0)
    mid = (lo + hi) // 2
    pivot = order[mid]
    pair = jnp.stack([jnp.maximum(candidate, 0), pivot])
    answer = oracle_labels(key, true_returns, pair[None], temperature)[0]
    lo = jnp.where(ask & (answer > 0.5), mid + 1, lo)
    hi = jnp.where(ask & (answer <= 0.5), mid, hi)
    slot = jnp.where(ask, state.num_queries, max_queries)  # out of range: the write is dropped
    queried = state.queried.at[slot].set(pair, mode="drop")
    answers = state.answers.at[slot].set(answer, mode="drop")

    # The interval is one position: insert there, shifting the tail up by one.
    place = ask & (lo == hi)
    positions = jnp.arange(n)
    shifted = jnp.where(positions > lo, order[positions - 1], order)
    order = jnp.where(place, jnp.where(positions == lo, candidate, shifted), order)
    inserted = inserted | (place & (positions == candidate))
    return ChainState(order=order, size=size + place.astype(jnp.int32), inserted=inserted,
                      candidate=jnp.where(place, -1, candidate), lo=lo, hi=hi, queried=queried,
                      answers=answers, num_queries=state.num_queries + ask.astype(jnp.int32))


def chain_run(state: ChainState, key, member_returns, true_returns, num_queries: int,
              temperature: float, noise_prob: float = 0.0, threshold: float = 50.0) -> ChainState:
    """`num_queries` (static) chain steps, each with its own key, in one `lax.scan`."""
    def step(state, step_key):
        return chain_step(state, step_key, member_returns, true_returns, temperature, noise_prob,
                          threshold), None
    return jax.lax.scan(step, state, jax.random.split(key, num_queries))[0]


def chain_pairs(state: ChainState) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Every pair the order implies, at the static shape M = N(N − 1)/2: pairs [M, 2] int32
    (preferred, other), labels [M] float32 (all 1), mask [M] bool (both in the order). Masked-out
    rows hold index 0, so that gathers stay in bounds."""
    low, high = np.triu_indices(state.order.shape[0], 1)  # positions low < high
    mask = jnp.asarray(high) < state.size
    pairs = jnp.stack([state.order[high], state.order[low]], axis=1)
    pairs = jnp.where(mask[:, None], pairs, 0)
    return pairs, jnp.ones(low.shape, jnp.float32), mask


def transitive_closure(queried, answers, num_queries, num_pool: int) -> jax.Array:
    """[N, N] bool: R[a, b] when a ≻ b follows from the first `num_queries` answered queries by
    transitivity (boolean Floyd–Warshall)."""
    valid = jnp.arange(queried.shape[0]) < num_queries
    wins = answers > 0.5
    winner = jnp.where(valid, jnp.where(wins, queried[:, 0], queried[:, 1]), num_pool)
    loser = jnp.where(wins, queried[:, 1], queried[:, 0])
    direct = jnp.zeros((num_pool, num_pool), bool).at[winner, loser].set(True, mode="drop")
    return jax.lax.fori_loop(0, num_pool, lambda k, r: r | (r[:, k, None] & r[None, k, :]), direct)
