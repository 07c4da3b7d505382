"""Fixed-length trajectory fragments cut from a time-major rollout, and which pairs to query.

A rollout is `[T, E, ...]` (time-major, as `ppo.RolloutBatch`). A fragment is `L` consecutive
steps of one environment that stay inside one episode: an episode may end on the fragment's last
step (its `terminated` flag is then set there, as imitation's `terminal` flag), never before.

- `random_pairs`: imitation's `RandomFragmenter`. Fragments are drawn with replacement,
  uniformly over every valid (environment, start) position, which is imitation's "trajectory
  with probability proportional to its length, then a uniform start" on a rollout whose
  segments are all the same length.
- `active_selection`: imitation's `ActiveSelectionFragmenter`. From `oversampling × P` candidate
  pairs keep the `P` on which the reward ensemble disagrees most (`uncertainty`).

Everything is gathers and `top_k` on fixed shapes: no Python loop over pairs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

UNCERTAINTY = ("logit", "probability", "label")


@struct.dataclass
class Fragments:
    """Reward-model inputs of fragments, with any leading shape before the `L` steps:
    obs [..., L, *obs], acts [..., L, *act], next_obs [..., L, *obs], terminated [..., L]."""

    obs: jax.Array
    acts: jax.Array
    next_obs: jax.Array
    terminated: jax.Array

    @property
    def inputs(self):
        """The reward function's arguments `(obs, acts, next_obs, terminated)`."""
        return self.obs, self.acts, self.next_obs, self.terminated

    @property
    def length(self) -> int:
        return self.terminated.shape[-1]


def valid_starts(done: jax.Array, length: int) -> jax.Array:
    """[T − L + 1, E] bool: a fragment of `length` steps may start at (t, e) when no episode of
    environment e ends on steps t .. t+L−2 (ending on step t+L−1 is allowed)."""
    num_steps = done.shape[0]
    if length > num_steps:
        raise ValueError(f"fragment_length: {length} is longer than the rollout ({num_steps} steps)")
    ends = jnp.concatenate([jnp.zeros_like(done[:1], jnp.int32),
                            jnp.cumsum(done.astype(jnp.int32), axis=0)])
    # Episode ends on steps t .. t+L-2 = ends[t+L-1] - ends[t].
    return (ends[length - 1:num_steps] - ends[:num_steps - length + 1]) == 0


def sample_fragments(key, obs, acts, next_obs, terminated, truncated, rews, num: int,
                     length: int, discount: float = 1.0) -> tuple[Fragments, jax.Array]:
    """`num` fragments of `length` steps from a time-major rollout (arrays `[T, E, ...]`), drawn
    with replacement uniformly over valid positions. Returns the fragments `[num, L, ...]` and
    their discounted true returns `[num]` (`Σ_t discount^t r_t`, from `rews`).

    If no position is valid (every environment's episodes are shorter than `length`), positions
    are drawn over all starts instead, so the program never fails at run time."""
    valid = valid_starts(terminated | truncated, length)
    logits = jnp.where(valid, 0.0, -jnp.inf).reshape(-1)
    logits = jnp.where(jnp.any(valid), logits, jnp.zeros_like(logits))
    flat = jax.random.categorical(key, logits, shape=(num,))
    num_envs = terminated.shape[1]
    start, env = flat // num_envs, flat % num_envs
    t = start[:, None] + jnp.arange(length)[None, :]  # [num, L]
    e = env[:, None]
    take = lambda x: x[t, e]
    frags = Fragments(take(obs), take(acts), take(next_obs), take(terminated))
    returns = discounted_sum(take(rews), discount)
    return frags, returns


def discounted_sum(values: jax.Array, discount: float) -> jax.Array:
    """Σ_t discount^t values[..., t] over the last axis."""
    weights = discount ** jnp.arange(values.shape[-1], dtype=jnp.float32)
    return jnp.sum(values * weights, axis=-1)


def as_pairs(tree, num_pairs: int):
    """[2P, ...] -> [P, 2, ...]: consecutive fragments form a pair."""
    return jax.tree.map(lambda x: x.reshape((num_pairs, 2) + x.shape[1:]), tree)


def random_pairs(key, batch, num_pairs: int, length: int, discount: float = 1.0):
    """imitation's `RandomFragmenter` on a rollout batch (fields obs, acts, next_obs, terminated,
    truncated, rews, time-major). Returns (pairs `[P, 2, L, ...]`, true returns `[P, 2]`)."""
    frags, returns = sample_fragments(key, batch.obs, batch.acts, batch.next_obs,
                                      batch.terminated, batch.truncated, batch.rews,
                                      2 * num_pairs, length, discount)
    return as_pairs(frags, num_pairs), returns.reshape(num_pairs, 2)


def uncertainty(return_diff: jax.Array, kind: str, noise_prob: float = 0.0,
                threshold: float = 50.0) -> jax.Array:
    """Disagreement of an ensemble about each pair, from `return_diff` [K, P] = each member's
    R(fragment 1) − R(fragment 2) under its reward (imitation's `uncertainty_on`):

    - "logit": variance over members of the return difference;
    - "probability": variance over members of p(1 ≻ 2) (with the model's noise and clip);
    - "label": p̄(1 − p̄), p̄ the members' share of votes for fragment 1 (p > 0.5).
    """
    if kind == "logit":
        return jnp.var(return_diff, axis=0)
    probs = noise_prob * 0.5 + (1 - noise_prob) * jax.nn.sigmoid(
        jnp.clip(return_diff, -threshold, threshold))
    if kind == "probability":
        return jnp.var(probs, axis=0)
    if kind == "label":
        votes = jnp.mean((probs > 0.5).astype(jnp.float32), axis=0)
        return votes * (1 - votes)
    raise ValueError(f"uncertainty_on: expected one of {UNCERTAINTY}, got {kind!r}")


def select_most_uncertain(return_diff: jax.Array, num_pairs: int, kind: str,
                          noise_prob: float = 0.0, threshold: float = 50.0) -> jax.Array:
    """Indices [num_pairs] of the candidate pairs with the highest `uncertainty`, most uncertain
    first (so the first n of them are the n most uncertain, for any n ≤ num_pairs)."""
    scores = uncertainty(return_diff, kind, noise_prob, threshold)
    return jax.lax.top_k(scores, num_pairs)[1]


def take_pairs(tree, idx: jax.Array):
    return jax.tree.map(lambda x: x[idx], tree)
