"""A fast random permutation for the epoch shuffles of BC and PPO.

`jax.random.permutation` sorts (key, index) pairs; XLA's CPU sort of two operands costs as much
as a whole BC epoch of small gradient steps. Packing random high bits and the index into one
uint32 and sorting that single operand is about twice as fast. Ties between equal random parts
fall back to index order, a bias of order n / 2^(32 − bits) that is negligible for shuffling.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

_MAX_PACKED_BITS = 20  # leaves at least 12 random bits per element


def permutation(key: jax.Array, n: int) -> jax.Array:
    index_bits = max(1, (n - 1).bit_length())
    if index_bits > _MAX_PACKED_BITS:
        return jax.random.permutation(key, n)
    random_high = jax.random.bits(key, (n,), jnp.uint32) >> index_bits << index_bits
    packed = random_high | jnp.arange(n, dtype=jnp.uint32)
    return (jnp.sort(packed) & ((1 << index_bits) - 1)).astype(jnp.int32)
