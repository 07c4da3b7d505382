"""Synthetic preferences from true fragment returns: imitation's `SyntheticGatherer`.

    p(fragment 1 ≻ fragment 2) = 1 / (1 + exp(clip((R2 − R1) / temperature, ±threshold)))

with `R` the discounted true return of each fragment (`fragments.discounted_sum`). With
`temperature = 0` the preference is `(sign(R1 − R2) + 1) / 2` (ties give 0.5). With
`sample = True` the label is a Bernoulli draw of that probability (float32 0 or 1); otherwise the
probability itself is the (soft) label.

Noise on the *model's* side (`noise_prob`) belongs to the preference model
(`preference_model.preference_logprob`), as in imitation.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class GathererConfig:
    temperature: float = 1.0
    """Bradley-Terry temperature on the return difference; 0 gives the noiseless sign"""
    discount: float = 1.0
    """discount of the true fragment returns"""
    sample: bool = True
    """Bernoulli labels (True) or the probability itself as a soft label (False)"""
    threshold: float = 50.0
    """clip of the scaled return difference before the sigmoid"""


def preference_probability(returns: jax.Array, temperature: float, threshold: float = 50.0):
    """p(1 ≻ 2) for true returns `[..., 2]`."""
    r1, r2 = returns[..., 0], returns[..., 1]
    if temperature == 0:
        return (jnp.sign(r1 - r2) + 1) / 2
    return 1 / (1 + jnp.exp(jnp.clip((r2 - r1) / temperature, -threshold, threshold)))


def gather(key, returns: jax.Array, config: GathererConfig) -> jax.Array:
    """Labels `[...]` (float32, the target p(1 ≻ 2)) for pairs with true returns `[..., 2]`."""
    probs = preference_probability(returns, config.temperature, config.threshold)
    if config.sample:
        return jax.random.bernoulli(key, probs).astype(jnp.float32)
    return probs.astype(jnp.float32)


def label_entropy(probs: jax.Array) -> jax.Array:
    """Mean binary entropy of the gatherer's probabilities (imitation logs it)."""
    p = jnp.clip(probs, 1e-12, 1 - 1e-12)
    return jnp.mean(-(p * jnp.log(p) + (1 - p) * jnp.log(1 - p)))
