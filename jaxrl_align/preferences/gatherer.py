"""Synthetic preferences from true fragment returns: imitation's `SyntheticGatherer`.

    p(fragment 1 ≻ fragment 2) = σ(clip((R1 − R2) / temperature, ±threshold))

(`bradley_terry.probability`) with `R` the discounted true return of each fragment. With
`temperature = 0` the preference is `(sign(R1 − R2) + 1) / 2` (ties give 0.5). With
`sample = True` the label is a Bernoulli draw of that probability (float32 0 or 1); otherwise the
probability itself is the (soft) label. Noise on the *model's* side (`noise_prob`) belongs to the
preference model, as in imitation.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_align.hparams import static
from jaxrl_align.preferences import bradley_terry


@struct.dataclass
class GathererConfig:
    temperature: float = static(1.0)
    """Bradley-Terry temperature on the return difference; 0 gives the noiseless sign"""
    discount: float = static(1.0)
    """discount of the true fragment returns"""
    sample: bool = static(True)
    """Bernoulli labels (True) or the probability itself as a soft label (False)"""
    threshold: float = static(50.0)
    """clip of the scaled return difference before the sigmoid"""


def preference_probability(returns: jax.Array, temperature: float, threshold: float = 50.0):
    """p(1 ≻ 2) for true returns `[..., 2]`."""
    r1, r2 = returns[..., 0], returns[..., 1]
    if temperature == 0:
        return (jnp.sign(r1 - r2) + 1) / 2
    return bradley_terry.probability((r1 - r2) / temperature, threshold=threshold)


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
