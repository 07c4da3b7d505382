"""Running normalisation of inputs and rewards, as imitation's `RunningNorm`.

Running mean and variance (Chan et al.'s parallel update, population variance) and
`(x − mean) / sqrt(var + eps)`. The statistics are a flax variable collection (`"norm_stats"`)
that lives in the algorithm state and is updated only when the caller makes that collection
mutable. The same module normalises a learned reward before the RL engine sees it (imitation's
`NormalizedRewardNet`): `init_reward_norm`, `normalize_rewards`.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

NORM_STATS = "norm_stats"


class RunningNorm(nn.Module):
    eps: float = 1e-5

    @nn.compact
    def __call__(self, x):
        features = x.shape[-1]
        mean = self.variable(NORM_STATS, "mean", jnp.zeros, (features,))
        var = self.variable(NORM_STATS, "var", jnp.ones, (features,))
        count = self.variable(NORM_STATS, "count", jnp.zeros, ())
        if self.is_mutable_collection(NORM_STATS) and not self.is_initializing():
            batch = x.reshape(-1, features)
            n = batch.shape[0]
            batch_mean, batch_var = batch.mean(axis=0), batch.var(axis=0)
            total = count.value + n
            delta = batch_mean - mean.value
            new_mean = mean.value + delta * n / total
            m2 = var.value * count.value + batch_var * n + delta**2 * count.value * n / total
            mean.value, var.value, count.value = new_mean, m2 / total, total
        return (x - mean.value) / jnp.sqrt(var.value + self.eps)


def init_running_stats(features: int) -> dict:
    """Statistics of a running normaliser of `features`-wide inputs (nothing counted yet)."""
    return RunningNorm().init(jax.random.PRNGKey(0), jnp.zeros((1, features)))


def update_running_stats(stats: dict, x: jax.Array) -> dict:
    """`stats` with the inputs `x` [..., features] counted in."""
    _, updated = RunningNorm().apply(stats, x.reshape(-1, x.shape[-1]), mutable=[NORM_STATS])
    return updated


def standardize(stats: dict, x: jax.Array) -> jax.Array:
    """`x` standardised by `stats`, which get no gradient (they are counted, not learned)."""
    return RunningNorm().apply(jax.lax.stop_gradient(stats), x)


def init_reward_norm() -> dict:
    """Statistics of a running reward normaliser, kept in the algorithm state."""
    return RunningNorm().init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))


def normalize_rewards(norm_vars: dict, rewards: jax.Array) -> tuple[jax.Array, dict]:
    """Standardise `rewards` (any shape) by the running mean and variance of every reward seen so
    far, this batch included; returns the normalised rewards and the updated statistics."""
    normalised, updated = RunningNorm().apply(norm_vars, rewards.reshape(-1, 1),
                                              mutable=[NORM_STATS])
    return normalised.reshape(rewards.shape), updated
