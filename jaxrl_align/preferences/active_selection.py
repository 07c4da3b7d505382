"""Which candidate pairs to query: imitation's `ActiveSelectionFragmenter`. From
`oversampling × P` candidate pairs keep the `P` on which the reward ensemble disagrees most."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl_align.preferences import bradley_terry

UNCERTAINTY = ("logit", "probability", "label")


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
    probs = bradley_terry.probability(return_diff, noise_prob, threshold)
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
