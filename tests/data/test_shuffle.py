import jax
import numpy as np
import pytest

from jaxrl_align.data.shuffle import permutation


@pytest.mark.parametrize("n", [1, 2, 512, 5000, 3_000_000])
def test_is_a_permutation_and_varies_with_the_key(n):
    first = np.asarray(permutation(jax.random.PRNGKey(0), n))
    assert np.array_equal(np.sort(first), np.arange(n))
    if n > 2:
        assert not np.array_equal(first, np.asarray(permutation(jax.random.PRNGKey(1), n)))


def test_positions_are_roughly_uniform():
    perms = jax.vmap(lambda k: permutation(k, 8))(jax.random.split(jax.random.PRNGKey(0), 4000))
    counts = np.stack([(np.asarray(perms) == i).sum(axis=0) for i in range(8)])
    assert np.all(np.abs(counts - 500) < 100)
