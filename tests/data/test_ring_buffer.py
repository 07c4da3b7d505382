"""The FIFO ring buffer (`jaxrl_align.data.ring_buffer`): order and overwrite of the oldest, a
traced `count`, size/next bookkeeping, sampling from the filled part only, `jit` and `vmap`."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.data import ring_buffer


def items(start, n):
    """n items numbered start, start+1, ...: a pytree of a scalar and a vector leaf."""
    ids = start + jnp.arange(n, dtype=jnp.int32)
    return {"id": ids, "vec": ids[:, None].astype(jnp.float32) * jnp.ones((n, 3))}


def ids(buffer):
    return np.asarray(buffer.items["id"]).tolist()


def test_init_is_empty_and_shaped_like_one_item():
    buffer = ring_buffer.init(items(0, 2), 4)
    assert buffer.capacity == 4
    assert buffer.items["id"].shape == (4,) and buffer.items["id"].dtype == jnp.int32
    assert buffer.items["vec"].shape == (4, 3) and buffer.items["vec"].dtype == jnp.float32
    assert int(buffer.size) == 0 and int(buffer.next) == 0
    assert buffer.size.dtype == jnp.int32 and buffer.next.dtype == jnp.int32
    with pytest.raises(ValueError, match="capacity"):
        ring_buffer.init(items(0, 2), 0)


def test_fifo_order_then_the_oldest_is_overwritten():
    buffer = ring_buffer.init(items(0, 1), 5)
    buffer = ring_buffer.add(buffer, items(1, 3))  # count defaults to all
    assert ids(buffer) == [1, 2, 3, 0, 0]
    assert int(buffer.size) == 3 and int(buffer.next) == 3
    buffer = ring_buffer.add(buffer, items(4, 2))  # exactly full
    assert ids(buffer) == [1, 2, 3, 4, 5]
    assert int(buffer.size) == 5 and int(buffer.next) == 0
    buffer = ring_buffer.add(buffer, items(6, 3))  # 1, 2, 3 (the oldest) go
    assert ids(buffer) == [6, 7, 8, 4, 5]
    assert int(buffer.size) == 5 and int(buffer.next) == 3
    np.testing.assert_array_equal(buffer.items["vec"],
                                  np.asarray(ids(buffer))[:, None] * np.ones(3))


def test_traced_count_under_jit_drops_the_rest():
    traces = []

    @jax.jit
    def add(buffer, items, count):
        traces.append(count)
        return ring_buffer.add(buffer, items, count)

    buffer = ring_buffer.init(items(0, 1), 6)
    buffer = add(buffer, items(10, 4), jnp.int32(2))  # 10, 11 kept; 12, 13 dropped
    assert ids(buffer) == [10, 11, 0, 0, 0, 0]
    assert int(buffer.size) == 2 and int(buffer.next) == 2
    buffer = add(buffer, items(20, 4), jnp.int32(0))  # nothing written
    assert ids(buffer) == [10, 11, 0, 0, 0, 0]
    assert int(buffer.size) == 2 and int(buffer.next) == 2
    buffer = add(buffer, items(30, 4), jnp.int32(4))
    assert ids(buffer) == [10, 11, 30, 31, 32, 33]
    assert int(buffer.size) == 6 and int(buffer.next) == 0
    buffer = add(buffer, items(40, 4), jnp.int32(3))  # full: 40, 41, 42 over the oldest 10, 11, 30
    assert ids(buffer) == [40, 41, 42, 31, 32, 33]
    assert int(buffer.size) == 6 and int(buffer.next) == 3
    assert len(traces) == 1  # one program for every count


def test_sample_draws_only_filled_positions():
    buffer = ring_buffer.init(items(0, 1), 100)
    buffer = ring_buffer.add(buffer, items(1, 7))
    batch = jax.jit(ring_buffer.sample, static_argnums=2)(buffer, jax.random.PRNGKey(0), 2000)
    drawn = np.asarray(batch["id"])
    assert batch["vec"].shape == (2000, 3)
    np.testing.assert_array_equal(np.asarray(batch["vec"]), drawn[:, None] * np.ones(3))
    assert set(drawn.tolist()) == set(range(1, 8))  # every filled item, nothing else
    counts = np.bincount(drawn, minlength=8)[1:]
    assert counts.min() > 2000 / 7 * 0.7  # uniform, with replacement
    index = np.asarray(ring_buffer.sample_indices(buffer, jax.random.PRNGKey(1), 500))
    assert index.min() >= 0 and index.max() < 7
    # An empty buffer still samples (position 0), so a compiled program never fails.
    empty = ring_buffer.init(items(0, 1), 4)
    index = ring_buffer.sample_indices(empty, jax.random.PRNGKey(2), 10)
    np.testing.assert_array_equal(index, np.zeros(10, np.int32))


def test_works_under_vmap():
    """A batch of buffers (one per run) with a different count each."""
    runs = 3
    buffers = jax.vmap(lambda _: ring_buffer.init(items(0, 1), 4))(jnp.arange(runs))
    assert buffers.items["id"].shape == (runs, 4) and buffers.size.shape == (runs,)
    new = jax.vmap(lambda start: items(start, 3))(jnp.array([10, 20, 30]))
    counts = jnp.array([0, 2, 3], jnp.int32)
    add = jax.jit(jax.vmap(ring_buffer.add))
    buffers = add(buffers, new, counts)
    np.testing.assert_array_equal(buffers.items["id"], [[0, 0, 0, 0], [20, 21, 0, 0],
                                                        [30, 31, 32, 0]])
    np.testing.assert_array_equal(buffers.size, [0, 2, 3])
    np.testing.assert_array_equal(buffers.next, [0, 2, 3])
    buffers = add(buffers, jax.tree.map(lambda x: x + 100, new), counts)
    # run 2 wraps: 130 at position 3, then 131 and 132 over the oldest (30, 31).
    np.testing.assert_array_equal(buffers.items["id"], [[0, 0, 0, 0], [20, 21, 120, 121],
                                                        [131, 132, 32, 130]])
    np.testing.assert_array_equal(buffers.size, [0, 4, 4])
    np.testing.assert_array_equal(buffers.next, [0, 0, 2])
    # Each run samples from its own filled part.
    keys = jax.random.split(jax.random.PRNGKey(0), runs)
    batch = jax.vmap(ring_buffer.sample, in_axes=(0, 0, None))(buffers, keys, 200)
    drawn = np.asarray(batch["id"])
    assert drawn.shape == (runs, 200)
    assert set(drawn[1].tolist()) == {20, 21, 120, 121}
    assert set(drawn[2].tolist()) == {131, 132, 32, 130}


def test_more_items_than_capacity_at_once_keep_the_last_ones():
    """Writing more than `capacity` items in one call keeps exactly the last `capacity` of the
    first `count`, each position written once (no ambiguous scatter), under a traced count."""
    buffer = ring_buffer.add(ring_buffer.init(jnp.zeros((1,)), 3), jnp.array([10.0]))
    add = jax.jit(lambda b, count: ring_buffer.add(b, jnp.arange(7.0), count))
    full = add(buffer, 7)
    assert sorted(np.asarray(full.items).tolist()) == [4.0, 5.0, 6.0]
    assert int(full.size) == 3 and int(full.next) == (1 + 7) % 3
    partial = add(buffer, 5)  # items 0..4 written, the last three kept
    assert sorted(np.asarray(partial.items).tolist()) == [2.0, 3.0, 4.0]
    assert int(partial.next) == (1 + 5) % 3
