"""Fixed-length trajectory fragments cut from a time-major rollout: imitation's
`RandomFragmenter`.

A rollout is `Transitions` [T, E, ...] (time-major, with `truncated` and `rews`). A fragment is
`L` consecutive steps of one environment that stay inside one episode: an episode may end on the
fragment's last step (its `terminated` flag is then set there, as imitation's `terminal` flag),
never before. Fragments are drawn with replacement, uniformly over every valid (environment,
start) position, which is imitation's "trajectory with probability proportional to its length,
then a uniform start" on a rollout whose segments are all the same length. Fragments are
`Transitions` too, with leading shape [P, 2, L] for pairs. Everything is gathers on fixed
shapes: no Python loop over pairs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl_align.types import Transitions


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


def sample_fragments(key, steps: Transitions, num: int, length: int,
                     discount: float = 1.0) -> tuple[Transitions, jax.Array]:
    """`num` fragments of `length` steps from a time-major rollout `steps` [T, E, ...], drawn
    with replacement uniformly over valid positions. Returns the fragments [num, L, ...] (the
    reward model's inputs: obs, acts, next_obs, terminated) and their discounted true returns
    [num] (`Σ_t discount^t r_t`).

    If no position is valid (every environment's episodes are shorter than `length`), positions
    are drawn over all starts instead, so the program never fails at run time."""
    valid = valid_starts(steps.terminated | steps.truncated, length)
    logits = jnp.where(valid, 0.0, -jnp.inf).reshape(-1)
    logits = jnp.where(jnp.any(valid), logits, jnp.zeros_like(logits))
    flat = jax.random.categorical(key, logits, shape=(num,))
    num_envs = steps.terminated.shape[1]
    start, env = flat // num_envs, flat % num_envs
    t = start[:, None] + jnp.arange(length)[None, :]  # [num, L]
    e = env[:, None]
    take = lambda x: x[t, e]
    frags = Transitions(take(steps.obs), take(steps.acts), take(steps.next_obs),
                        take(steps.terminated))
    return frags, discounted_sum(take(steps.rews), discount)


def discounted_sum(values: jax.Array, discount: float) -> jax.Array:
    """Σ_t discount^t values[..., t] over the last axis."""
    weights = discount ** jnp.arange(values.shape[-1], dtype=jnp.float32)
    return jnp.sum(values * weights, axis=-1)


def as_pairs(tree, num_pairs: int):
    """[2P, ...] -> [P, 2, ...]: consecutive fragments form a pair."""
    return jax.tree.map(lambda x: x.reshape((num_pairs, 2) + x.shape[1:]), tree)


def random_pairs(key, steps: Transitions, num_pairs: int, length: int, discount: float = 1.0):
    """imitation's `RandomFragmenter` on a time-major rollout. Returns (pairs [P, 2, L, ...],
    true returns [P, 2])."""
    frags, returns = sample_fragments(key, steps, 2 * num_pairs, length, discount)
    return as_pairs(frags, num_pairs), returns.reshape(num_pairs, 2)


def take_pairs(tree, idx: jax.Array):
    return jax.tree.map(lambda x: x[idx], tree)
