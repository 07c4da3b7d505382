"""Preference datasets on disk (`jaxrl_align.data.preference_dataset`): a dataset recorded as a
user would record one (whole episodes of a range of behaviours, cut into random pairs of
fragments and labelled by their true returns) survives the round trip, and every kind of bad
file is refused with an error naming the field.

The recorded dataset is also what tests/algorithms/test_preferences.py trains the offline mode
on; `recorded_dataset` is cached so that one test session records it once."""
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl_align.data import rollout
from jaxrl_align.data.preference_dataset import (PreferenceDataError, PreferenceDataset,
                                                 load_preferences, save_preferences)
from jaxrl_align.preferences import fragments as frag
from jaxrl_align.preferences import gatherer
from jaxrl_align.types import Transitions

ENV_ID = "seals/CartPole-v0"
EPSILONS = (0.0, 0.25, 0.5, 1.0)  # ε-greedy noise of the recorded behaviours (1.0: random play)
EPISODES_PER_BEHAVIOUR = 32
OFFLINE_PAIRS = 4000
OFFLINE_FRAGMENT = 10
# Soft Bradley-Terry labels p = σ(R1 − R2) (temperature 1, not sampled): the probability that a
# labeller prefers fragment 1, as from several raters; a tie is exactly 0.5.
OFFLINE_GATHERER = gatherer.GathererConfig(temperature=1.0, sample=False)


def balancing_controller(obs):
    """Keeps the pole up but ignores the cart, so it sometimes drifts off the track."""
    return (obs[..., 2] + 0.5 * obs[..., 3] > 0).astype(jnp.int32)


def recorded_episodes(env, params, key, eps, num_steps):
    """Whole episodes (reset to the time limit) of ε-greedy runs of the balancing controller,
    one environment per entry of `eps`, as time-major `Transitions` [T, E] (with rewards)."""
    num_envs = eps.shape[0]
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs),
                                                        params)

    def step(carry, key):
        obs, state = carry
        coin, rand, env_key = jax.random.split(key, 3)
        acts = jnp.where(jax.random.uniform(coin, (num_envs,)) < eps,
                         jax.random.randint(rand, (num_envs,), 0, 2), balancing_controller(obs))
        next_obs, state, rews, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_envs), state, acts, params)
        return (next_obs, state), Transitions(obs, acts, info["final_observation"], term,
                                              rews=rews, truncated=trunc)

    return jax.lax.scan(step, (obs, state), jax.random.split(run_key, num_steps))[1]


def recorded_preferences(env, params, key, num_pairs=OFFLINE_PAIRS, length=OFFLINE_FRAGMENT,
                         groups=8):
    """A dataset as a user would record one: whole episodes of a range of behaviours, from
    random play to a balancing controller, cut into random pairs of fragments and labelled by
    their true returns. Returns (pairs, labels, true returns [N, 2]).

    The pairs are cut from `groups` groups of episodes, each with every behaviour:
    `fragments.random_pairs` draws each fragment over all positions of its rollout (cost
    fragments × positions), and one draw over all 128 episodes takes ~30 s here."""
    eps = jnp.repeat(jnp.asarray(EPSILONS), EPISODES_PER_BEHAVIOUR)
    episode_key, pair_key, label_key = jax.random.split(key, 3)
    steps = recorded_episodes(env, params, episode_key, eps, rollout.max_episode_steps(params))

    def by_group(x):  # [T, behaviours × groups × k, ...] -> [groups, T, behaviours × k, ...]
        x = x.reshape((x.shape[0], len(EPSILONS), groups, -1) + x.shape[2:])
        x = jnp.moveaxis(x, 2, 0)
        return x.reshape(x.shape[:2] + (-1,) + x.shape[4:])

    pairs, returns = jax.vmap(frag.random_pairs, in_axes=(0, 0, None, None))(
        jax.random.split(pair_key, groups), jax.tree.map(by_group, steps), num_pairs // groups,
        length)
    pairs, returns = jax.tree.map(lambda x: x.reshape((num_pairs,) + x.shape[2:]),
                                  (pairs, returns))
    return pairs, gatherer.gather(label_key, returns, OFFLINE_GATHERER), returns


@functools.cache
def recorded_dataset() -> PreferenceDataset:
    """The recorded dataset (host arrays), computed once per test session: both this module and
    the offline algorithm tests write it to a file of their own."""
    env, params = envs.make(ENV_ID)
    make = jax.jit(functools.partial(recorded_preferences, env, params))
    pairs, prefs, returns = jax.device_get(make(jax.random.PRNGKey(7)))
    assert 0.2 < np.mean(returns[:, 0] == returns[:, 1]) < 0.7  # ties stay in, labelled 0.5
    return PreferenceDataset(pairs, prefs)


def save_recorded_dataset(path):
    return save_preferences(path, recorded_dataset(), env_id=ENV_ID,
                            source="synthetic: Bradley-Terry probabilities of the true returns",
                            extra_metadata={"epsilons": list(EPSILONS),
                                            "gatherer": vars(OFFLINE_GATHERER)})


@pytest.fixture(scope="module")
def preference_file(tmp_path_factory):
    return save_recorded_dataset(tmp_path_factory.mktemp("prefs") / "cartpole_prefs.npz")


def test_preference_file_round_trip(preference_file, cartpole):
    env, params = cartpole
    data, metadata = load_preferences(preference_file, env=env, env_params=params, env_id=ENV_ID)
    assert len(data) == OFFLINE_PAIRS
    assert data.frags.obs.shape == (OFFLINE_PAIRS, 2, OFFLINE_FRAGMENT, 4)
    assert metadata["num_pairs"] == OFFLINE_PAIRS
    assert metadata["fragment_length"] == OFFLINE_FRAGMENT
    assert metadata["env_id"] == ENV_ID and metadata["extra"]["epsilons"] == list(EPSILONS)
    prefs = np.asarray(data.prefs)
    assert prefs.min() >= 0 and prefs.max() <= 1 and np.any(prefs == 0.5)


def rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for name, value in changes.items():
        if value is None:
            arrays.pop(name)
        else:
            arrays[name] = value
    np.savez(dst, **arrays)
    return dst


def test_malformed_preference_files_name_the_field(preference_file, cartpole, tmp_path):
    env, params = cartpole
    with np.load(preference_file) as npz:
        original = {k: npz[k] for k in npz.files}
    metadata = json.loads(str(original["metadata"]))
    cases = {
        "prefs": dict(prefs=None),
        "terminated": dict(terminated=original["terminated"].astype(np.int8)),
        "acts": dict(acts=original["acts"][:, :, :5]),
        "next_obs": dict(next_obs=np.where(np.arange(4) == 2, np.nan, original["next_obs"])),
        "metadata.kind": dict(metadata=np.array(json.dumps({**metadata, "kind": "demos"}))),
        "metadata.num_pairs": dict(metadata=np.array(json.dumps({**metadata, "num_pairs": 3}))),
    }
    bad_prefs = original["prefs"].copy()
    bad_prefs[5] = 1.5
    cases["prefs[5]"] = dict(prefs=bad_prefs)
    for field, change in cases.items():
        path = rewrite(preference_file, tmp_path / f"{field}.npz", **change)
        with pytest.raises(PreferenceDataError, match=rf"field '{field.split('[')[0]}'"):
            load_preferences(path, env=env, env_params=params, env_id=ENV_ID)
    bad_action = original["acts"].copy()
    bad_action[0, 0, 0] = 2
    path = rewrite(preference_file, tmp_path / "action.npz", acts=bad_action)
    with pytest.raises(PreferenceDataError, match="field 'acts' has value 2 outside"):
        load_preferences(path, env=env, env_params=params)
    with pytest.raises(PreferenceDataError, match="metadata.env_id"):
        load_preferences(preference_file, env_id="seals/MountainCar-v0")
    (tmp_path / "truncated.npz").write_bytes(preference_file.read_bytes()[:500])
    with pytest.raises(PreferenceDataError, match="truncated.npz"):
        load_preferences(tmp_path / "truncated.npz")
