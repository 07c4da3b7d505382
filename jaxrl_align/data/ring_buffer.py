"""One FIFO ring buffer for every replay: a preallocated pytree of items, pure `init`, `add` and
`sample` (flashbax's shape, without its dependency).

    buffer = ring_buffer.init(example, capacity)     # example: one batch of items [N, ...]
    buffer = ring_buffer.add(buffer, items, count)  # the first `count` (traced) of items [N, ...]
    batch = ring_buffer.sample(buffer, key, 256)    # uniform with replacement over the filled part

Once full, each new item overwrites the oldest. Shapes never change, so all of it runs inside
`jit` and `vmap`. Used by the adversarial generator replay, the preference comparison buffer and
its held-out pairs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RingBuffer:
    items: object  # pytree, each leaf [capacity, ...]
    size: jax.Array  # int32: items filled (at most capacity)
    next: jax.Array  # int32: position of the next write

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.items)[0].shape[0]


def init(example, capacity: int) -> RingBuffer:
    """An empty buffer for `capacity` items shaped like one item of `example` (leading axis N)."""
    if capacity < 1:
        raise ValueError(f"ring buffer capacity: expected at least 1, got {capacity}")
    items = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape[1:], x.dtype), example)
    return RingBuffer(items, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buffer: RingBuffer, items, count=None) -> RingBuffer:
    """Write the first `count` (traced, at most N; default all) of `items` [N, ...], oldest
    entries overwritten once full. Items past `count` are dropped; of more than `capacity`
    items written at once, the last `capacity` are kept."""
    num = jax.tree.leaves(items)[0].shape[0]
    capacity = buffer.capacity
    count = num if count is None else count
    i = jnp.arange(num)
    # Every kept item gets its own position (capacity: dropped), so no write is ambiguous.
    keep = (i < count) & (i >= count - capacity)
    position = jnp.where(keep, (buffer.next + i) % capacity, capacity)
    stored = jax.tree.map(lambda old, new: old.at[position].set(new.astype(old.dtype), mode="drop"),
                          buffer.items, items)
    count = jnp.minimum(count, num).astype(jnp.int32)
    return buffer.replace(items=stored, size=jnp.minimum(buffer.size + count, capacity),
                          next=(buffer.next + count) % capacity)


def sample_indices(buffer: RingBuffer, key, batch_size: int) -> jax.Array:
    """[batch_size] positions drawn uniformly with replacement from the filled part (position 0
    when the buffer is empty, so the program never fails at run time)."""
    return jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))


def sample(buffer: RingBuffer, key, batch_size: int):
    """[batch_size] items drawn uniformly with replacement from the filled part."""
    index = sample_indices(buffer, key, batch_size)
    return jax.tree.map(lambda x: x[index], buffer.items)
