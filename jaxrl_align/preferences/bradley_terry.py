"""The Bradley–Terry preference probability, once for every use: the synthetic gatherer's labels,
the preference model's likelihood and loss, and active selection's disagreement.

    p(1 ≻ 2) = noise_prob · 0.5 + (1 − noise_prob) · σ(clip(R(1) − R(2), ±threshold))

with R the (discounted) return of each fragment: true returns divided by a temperature for the
gatherer (imitation's `SyntheticGatherer`), a learned reward's returns for the model
(imitation's `PreferenceModel`, whose `noise_prob` is the probability that a label is a coin
flip). The loss is computed in log space, so that it stays finite for large return differences.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def log_probabilities(return_diff, noise_prob: float = 0.0, threshold: float = 50.0):
    """(log p(1 ≻ 2), log p(2 ≻ 1)) for return differences R(1) − R(2)."""
    x = jnp.clip(return_diff, -threshold, threshold)
    log_p1, log_p2 = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    if noise_prob:
        half_noise, keep = jnp.log(noise_prob * 0.5), jnp.log1p(-noise_prob)
        log_p1 = jnp.logaddexp(half_noise, keep + log_p1)
        log_p2 = jnp.logaddexp(half_noise, keep + log_p2)
    return log_p1, log_p2


def probability(return_diff, noise_prob: float = 0.0, threshold: float = 50.0):
    """p(1 ≻ 2) for return differences R(1) − R(2)."""
    p = jax.nn.sigmoid(jnp.clip(return_diff, -threshold, threshold))
    return p if not noise_prob else noise_prob * 0.5 + (1 - noise_prob) * p


def cross_entropy(return_diff, prefs, noise_prob: float = 0.0, threshold: float = 50.0):
    """Elementwise binary cross-entropy of p(1 ≻ 2) against labels `prefs` (imitation's
    `CrossEntropyRewardLoss`)."""
    log_p1, log_p2 = log_probabilities(return_diff, noise_prob, threshold)
    return -(prefs * log_p1 + (1 - prefs) * log_p2)


def accuracy(return_diff, prefs, noise_prob: float = 0.0, threshold: float = 50.0):
    """Elementwise (p > 0.5) == (label > 0.5), as float32 (imitation's `accuracy`)."""
    p = probability(return_diff, noise_prob, threshold)
    return ((p > 0.5) == (prefs > 0.5)).astype(jnp.float32)
