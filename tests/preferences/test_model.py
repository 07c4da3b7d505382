"""The preference model (`jaxrl_align.preferences.model`): the reward ensemble, its comparison
buffer (a FIFO ring of `Comparisons` with per-member bootstrap weights) and its trainer."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_align.hparams import as_arrays
from jaxrl_align.preferences.model import (PreferenceModel, PreferenceModelConfig, add_pairs,
                                           empty_buffer)
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Transitions


def test_ensemble_members_differ_and_bootstrap_differs(cartpole):
    env, params = cartpole
    config = PreferenceModelConfig(ensemble_size=3, lr=1e-3, weight_decay=0.01)
    model = PreferenceModel(config, space_spec(env, params))
    pairs = Transitions(obs=jax.random.normal(jax.random.PRNGKey(0), (40, 2, 5, 4)),
                        acts=jnp.zeros((40, 2, 5), jnp.int32), next_obs=jnp.zeros((40, 2, 5, 4)),
                        terminated=jnp.zeros((40, 2, 5), bool))
    hparams = as_arrays(config)
    variables, opt_state = model.init(jax.random.PRNGKey(0), pairs, hparams)
    rews = np.asarray(model.rewards(variables, *pairs.reward_inputs))
    assert not np.allclose(rews[0], rews[1]) and not np.allclose(rews[1], rews[2])
    buffer = add_pairs(empty_buffer(pairs, 40, 3), jax.random.PRNGKey(1), pairs,
                       jnp.ones(40), 40, bootstrap=True)
    weights = np.asarray(buffer.items.weights).T  # [C, K] -> [K, C]
    assert weights.shape == (3, 40) and not np.array_equal(weights[0], weights[1])
    np.testing.assert_allclose(weights.mean(), 1.0, atol=0.35)  # Poisson(1) counts
    trained, _, metrics = model.train(variables, opt_state, buffer, jax.random.PRNGKey(2), 20,
                                      hparams)
    assert np.isfinite(metrics["reward_loss"])
    after = np.asarray(model.rewards(trained, *pairs.reward_inputs))
    assert not np.allclose(after, rews)


def test_comparison_buffer_fills_then_drops_the_oldest():
    pairs = lambda start, n: Transitions(
        obs=jnp.arange(start, start + n, dtype=jnp.float32).reshape(n, 1, 1, 1) * jnp.ones((n, 2, 1, 1)),
        acts=jnp.zeros((n, 2, 1), jnp.int32), next_obs=jnp.zeros((n, 2, 1, 1)),
        terminated=jnp.zeros((n, 2, 1), bool))
    buffer = empty_buffer(pairs(0, 1), 5, 1)
    buffer = add_pairs(buffer, None, pairs(0, 4), jnp.zeros(4), 3, bootstrap=False)  # 3 of 4
    assert int(buffer.size) == 3 and int(buffer.next) == 3
    np.testing.assert_array_equal(np.asarray(buffer.items.frags.obs)[:, 0, 0, 0], [0, 1, 2, 0, 0])
    buffer = add_pairs(buffer, None, pairs(10, 4), jnp.ones(4), jnp.int32(4), bootstrap=False)
    assert int(buffer.size) == 5 and int(buffer.next) == 2
    np.testing.assert_array_equal(np.asarray(buffer.items.frags.obs)[:, 0, 0, 0],
                                  [12, 13, 2, 10, 11])
    np.testing.assert_array_equal(buffer.items.prefs, [1, 1, 0, 1, 1])
