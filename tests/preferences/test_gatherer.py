"""The synthetic gatherer (`jaxrl_align.preferences.gatherer`) matches imitation's
`SyntheticGatherer`."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.preferences import fragments as frag
from jaxrl_align.preferences import gatherer


def numpy_preference(r1, r2, temperature, threshold=50.0):
    if temperature == 0:
        return (np.sign(r1 - r2) + 1) / 2
    return 1 / (1 + np.exp(np.clip((r2 - r1) / temperature, -threshold, threshold)))


def test_synthetic_gatherer_matches_imitation():
    rng = np.random.default_rng(0)
    rews = rng.normal(size=(500, 2, 6)).astype(np.float32)
    rews[:5, 1] = rews[:5, 0]  # ties
    discount = 0.9
    returns_np = (rews * discount ** np.arange(6)).sum(-1)
    returns = frag.discounted_sum(jnp.asarray(rews), discount)
    np.testing.assert_allclose(returns, returns_np, rtol=1e-5, atol=1e-6)
    for temperature in (0.0, 0.5, 2.0):
        p = gatherer.preference_probability(returns, temperature)
        np.testing.assert_allclose(p, numpy_preference(returns_np[:, 0], returns_np[:, 1],
                                                       temperature), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(gatherer.preference_probability(returns, 0.0)[:5], 0.5)
    # The clip: a huge difference at a tiny temperature stays finite.
    far = jnp.asarray([[1e6, 0.0]])
    assert gatherer.preference_probability(far, 1e-3, threshold=5.0)[0] == pytest.approx(
        1 / (1 + np.exp(-5.0)), rel=1e-6)
    soft = gatherer.gather(jax.random.PRNGKey(0), returns,
                           gatherer.GathererConfig(temperature=2.0, sample=False))
    np.testing.assert_allclose(soft, numpy_preference(returns_np[:, 0], returns_np[:, 1], 2.0),
                               rtol=1e-5, atol=1e-6)
    # Sampled labels are 0/1 draws with the model's probability.
    many = jnp.tile(jnp.asarray([[1.0, 0.0]]), (20000, 1))
    labels = np.asarray(gatherer.gather(jax.random.PRNGKey(1), many, gatherer.GathererConfig()))
    assert set(np.unique(labels)) == {0.0, 1.0} and labels.dtype == np.float32
    assert labels.mean() == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.015)
    # temperature 0 is deterministic away from ties.
    det = gatherer.gather(jax.random.PRNGKey(2), returns[5:],
                          gatherer.GathererConfig(temperature=0.0))
    np.testing.assert_array_equal(det, returns_np[5:, 0] > returns_np[5:, 1])
