"""Active selection (`jaxrl_align.preferences.active_selection`): imitation's
`ActiveSelectionFragmenter` keeps the pairs on which the reward ensemble disagrees most."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.hparams import as_arrays
from jaxrl_align.preferences.active_selection import select_most_uncertain
from jaxrl_align.preferences.model import PreferenceModel, PreferenceModelConfig
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Transitions


def ensemble_return_diffs(model, variables, pairs):
    """Reference: each member's fragment returns by looping over members and pairs in NumPy."""
    rews = np.asarray(model.rewards(variables, *pairs.reward_inputs))  # [K, P, 2, L]
    return rews[:, :, 0].sum(-1) - rews[:, :, 1].sum(-1)


@pytest.mark.parametrize("kind", ["logit", "probability", "label"])
def test_active_selection_picks_the_most_disputed_pairs(cartpole, kind):
    env, params = cartpole
    config = PreferenceModelConfig(ensemble_size=5)
    model = PreferenceModel(config, space_spec(env, params))
    key = jax.random.PRNGKey(3)
    pairs = Transitions(obs=jax.random.normal(key, (64, 2, 10, 4)) * 2,
                        acts=jax.random.randint(key, (64, 2, 10), 0, 2),
                        next_obs=jnp.zeros((64, 2, 10, 4)),
                        terminated=jnp.zeros((64, 2, 10), bool))
    variables, _ = model.init(jax.random.PRNGKey(1), pairs, as_arrays(config))
    diff = ensemble_return_diffs(model, variables, pairs)
    probs = 1 / (1 + np.exp(-diff))
    reference = {"logit": diff.var(0), "probability": probs.var(0),
                 "label": (probs > 0.5).mean(0) * (1 - (probs > 0.5).mean(0))}[kind]
    model_diff, _ = model.return_diff(variables, pairs)
    np.testing.assert_allclose(model_diff, diff, rtol=1e-4, atol=1e-4)
    idx = np.asarray(select_most_uncertain(model_diff, 8, kind))
    if kind == "label":  # votes tie often: the chosen scores must be the 8 highest
        np.testing.assert_allclose(np.sort(reference[idx]), np.sort(reference)[-8:], atol=1e-6)
        assert reference[idx].min() > 0
    else:
        np.testing.assert_array_equal(idx, np.argsort(-reference)[:8])
