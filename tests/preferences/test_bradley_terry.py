"""The Bradley–Terry preference probability and loss (`jaxrl_align.preferences.bradley_terry`)
match imitation's `PreferenceModel` and `CrossEntropyRewardLoss`."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.preferences.bradley_terry import cross_entropy


@pytest.mark.parametrize("noise_prob", [0.0, 0.2])
def test_preference_model_loss_matches_imitation(noise_prob):
    rng = np.random.default_rng(1)
    diff = rng.normal(scale=5, size=100).astype(np.float32)
    diff[0] = 80.0  # beyond the clip
    prefs = rng.uniform(size=100).astype(np.float32)
    x = np.clip(diff.astype(np.float64), -20, 20)
    p = noise_prob * 0.5 + (1 - noise_prob) / (1 + np.exp(-x))
    reference = -(prefs * np.log(p) + (1 - prefs) * np.log1p(-p))
    np.testing.assert_allclose(cross_entropy(jnp.asarray(diff), jnp.asarray(prefs), noise_prob,
                                             20.0), reference, rtol=1e-4, atol=1e-5)
