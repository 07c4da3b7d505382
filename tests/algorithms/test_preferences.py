"""Preference comparisons: the agent learns seals/CartPole-v0 from synthetic preferences alone,
and each part (fragments, active selection, gatherer, preference model, buffer, schedules, the
offline dataset file) matches imitation's definitions."""
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl_align import fragments as frag
from jaxrl_align import preference_gatherer as gatherer
from jaxrl_align import rollout, runner
from jaxrl_align.algorithms import ppo
from jaxrl_align.algorithms import preference_comparisons as pc
from jaxrl_align.preference_data import (PreferenceDataError, PreferenceDataset,
                                         load_preferences, save_preferences)
from jaxrl_align.preference_model import (PreferenceModel, PreferenceModelConfig, add_pairs,
                                          cross_entropy, empty_buffer)
from jaxrl_align.query_schedule import oric, query_schedule
from jaxrl_align.spaces import space_spec


ENV_ID = "seals/CartPole-v0"
REFERENCE = envs.reference_returns(ENV_ID)


# -- learning ---------------------------------------------------------------------------------

CARTPOLE_CONFIG = pc.PreferenceComparisonsConfig(ppo=ppo.PPOConfig(total_timesteps=500_000))


@pytest.fixture(scope="module")
def cartpole_run(cartpole):
    env, params = cartpole
    algo = pc.make(CARTPOLE_CONFIG, env, params)
    settings = runner.RunSettings(seeds=(0, 1, 2), num_updates=CARTPOLE_CONFIG.ppo.num_updates,
                                  num_chunks=3, eval_episodes=5, final_eval_episodes=20,
                                  progress=False)
    return runner.run(algo, env, params, settings, None, reference_returns=REFERENCE)


def test_agent_learns_cartpole_from_synthetic_preferences(cartpole_run):
    scores = np.asarray(cartpole_run.summary["normalized_score"])
    returns = np.asarray(cartpole_run.summary["return_mean"])
    # Random play returns 33 (score 0); a reward learned with the wrong sign drops the pole at
    # once (return < 10). About half the seeds solve the task in this budget (see the README).
    assert (scores >= 0.9).sum() >= 1 and returns.mean() > 150, returns
    assert pc.comparisons_queried(CARTPOLE_CONFIG) == 2000


def test_reward_model_predicts_heldout_preferences(cartpole_run):
    acc = cartpole_run.chunk_metrics["heldout_acc"]
    assert np.all(acc[:, -1] > 0.9), acc
    assert np.all(cartpole_run.chunk_metrics["heldout_size"][:, -1] >= 100)
    # The buffer filled as scheduled: every comparison queried is stored.
    assert np.all(np.asarray(cartpole_run.state.buffer.size) == 2000)


# 65 s on the 2-core CPU from an empty compilation cache; the default suite's preference
# learning check is CartPole's (cartpole_run), so this one waits for `make test-all`.
@pytest.mark.slow
def test_agent_learns_pendulum_from_1000_synthetic_preferences():
    """Issue 7's Pendulum goal on 2 seeds: the PENDULUM preset (1,000 comparisons, 97 rounds).
    Measured with 8 seeds in one call: 8 of 8 >= -200 for seeds 0-7, 8-15 and 16-23."""
    env, params = envs.make("Pendulum-v1")
    config = pc.PENDULUM
    algo = pc.make(config, env, params)
    settings = runner.RunSettings(seeds=(0, 1), num_updates=config.ppo.num_updates, num_chunks=1,
                                  eval_episodes=1, final_eval_episodes=20, progress=False)
    result = runner.run(algo, env, params, settings)
    returns = np.asarray(result.summary["return_mean"])
    # Random or constant torque scores about -1200, a policy that swings up but cannot hold the
    # pendulum about -400 to -700; swinging up and holding, about -150.
    assert np.all(returns >= -200), returns
    assert pc.comparisons_queried(config) == 1000


# -- fragments and active selection -----------------------------------------------------------

def test_fragments_stay_inside_one_episode():
    # 2 envs, 10 steps; env 0 ends episodes on steps 3 and 7, env 1 never.
    done = np.zeros((10, 2), bool)
    done[[3, 7], 0] = True
    valid = np.asarray(frag.valid_starts(jnp.asarray(done), 4))
    # env 0: start t is valid iff no episode ends on t..t+2: t = 0 (its end at 3 is the
    # fragment's last step) and t = 4 (ends at 7); t = 5, 6 contain the end at 7 inside.
    np.testing.assert_array_equal(valid[:, 0], [True, False, False, False, True, False, False])
    assert valid[:, 1].all()
    t, e = np.meshgrid(np.arange(10), np.arange(2), indexing="ij")
    steps = pc.Steps(obs=jnp.asarray(t * 10 + e, jnp.float32)[..., None], acts=jnp.asarray(e),
                     next_obs=jnp.asarray(t * 10 + e + 10, jnp.float32)[..., None],
                     terminated=jnp.asarray(done), truncated=jnp.zeros((10, 2), bool),
                     rews=jnp.asarray(t, jnp.float32))
    pairs, returns = frag.random_pairs(jax.random.PRNGKey(0), steps, 200, 4, discount=0.5)
    obs = np.asarray(pairs.obs)[..., 0]  # [200, 2, 4]
    start, env = obs[..., 0] // 10, obs[..., 0] % 10
    np.testing.assert_array_equal(obs, (start[..., None] + np.arange(4)) * 10 + env[..., None])
    assert valid[start.astype(int), env.astype(int)].all()
    # terminal flag only on the last step, and only where the episode really ended there.
    term = np.asarray(pairs.terminated)
    assert not term[..., :-1].any()
    np.testing.assert_array_equal(term[..., -1], done[(start + 3).astype(int), env.astype(int)])
    expected = sum(0.5**k * (start + k) for k in range(4))
    np.testing.assert_allclose(returns, expected, rtol=1e-6)


def ensemble_return_diffs(model, variables, pairs):
    """Reference: each member's fragment returns by looping over members and pairs in NumPy."""
    rews = np.asarray(model.rewards(variables, *pairs.inputs))  # [K, P, 2, L]
    return rews[:, :, 0].sum(-1) - rews[:, :, 1].sum(-1)


@pytest.mark.parametrize("kind", ["logit", "probability", "label"])
def test_active_selection_picks_the_most_disputed_pairs(cartpole, kind):
    env, params = cartpole
    model = PreferenceModel(PreferenceModelConfig(ensemble_size=5), space_spec(env, params))
    key = jax.random.PRNGKey(3)
    pairs = frag.Fragments(obs=jax.random.normal(key, (64, 2, 10, 4)) * 2,
                           acts=jax.random.randint(key, (64, 2, 10), 0, 2),
                           next_obs=jnp.zeros((64, 2, 10, 4)),
                           terminated=jnp.zeros((64, 2, 10), bool))
    variables, _ = model.init(jax.random.PRNGKey(1), pairs)
    diff = ensemble_return_diffs(model, variables, pairs)
    probs = 1 / (1 + np.exp(-diff))
    reference = {"logit": diff.var(0), "probability": probs.var(0),
                 "label": (probs > 0.5).mean(0) * (1 - (probs > 0.5).mean(0))}[kind]
    model_diff, _ = model.return_diff(variables, pairs)
    np.testing.assert_allclose(model_diff, diff, rtol=1e-4, atol=1e-4)
    idx = np.asarray(frag.select_most_uncertain(model_diff, 8, kind))
    if kind == "label":  # votes tie often: the chosen scores must be the 8 highest
        np.testing.assert_allclose(np.sort(reference[idx]), np.sort(reference)[-8:], atol=1e-6)
        assert reference[idx].min() > 0
    else:
        np.testing.assert_array_equal(idx, np.argsort(-reference)[:8])


def test_ensemble_members_differ_and_bootstrap_differs(cartpole):
    env, params = cartpole
    model = PreferenceModel(PreferenceModelConfig(ensemble_size=3), space_spec(env, params))
    pairs = frag.Fragments(obs=jax.random.normal(jax.random.PRNGKey(0), (40, 2, 5, 4)),
                           acts=jnp.zeros((40, 2, 5), jnp.int32), next_obs=jnp.zeros((40, 2, 5, 4)),
                           terminated=jnp.zeros((40, 2, 5), bool))
    variables, opt_state = model.init(jax.random.PRNGKey(0), pairs)
    rews = np.asarray(model.rewards(variables, *pairs.inputs))
    assert not np.allclose(rews[0], rews[1]) and not np.allclose(rews[1], rews[2])
    buffer = add_pairs(empty_buffer(pairs, 40, 3), jax.random.PRNGKey(1), pairs,
                       jnp.ones(40), 40, bootstrap=True)
    weights = np.asarray(buffer.weights)
    assert weights.shape == (3, 40) and not np.array_equal(weights[0], weights[1])
    np.testing.assert_allclose(weights.mean(), 1.0, atol=0.35)  # Poisson(1) counts
    trained, _, metrics = model.train(variables, opt_state, buffer, jax.random.PRNGKey(2), 20,
                                      1e-3, 0.01)
    assert np.isfinite(metrics["reward_loss"])
    after = np.asarray(model.rewards(trained, *pairs.inputs))
    assert not np.allclose(after, rews)


# -- gatherer, preference model, buffer, schedules --------------------------------------------

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


def test_comparison_buffer_fills_then_drops_the_oldest():
    pairs = lambda start, n: frag.Fragments(
        obs=jnp.arange(start, start + n, dtype=jnp.float32).reshape(n, 1, 1, 1) * jnp.ones((n, 2, 1, 1)),
        acts=jnp.zeros((n, 2, 1), jnp.int32), next_obs=jnp.zeros((n, 2, 1, 1)),
        terminated=jnp.zeros((n, 2, 1), bool))
    buffer = empty_buffer(pairs(0, 1), 5, 1)
    buffer = add_pairs(buffer, None, pairs(0, 4), jnp.zeros(4), 3, bootstrap=False)  # 3 of 4
    assert int(buffer.size) == 3 and int(buffer.next) == 3
    np.testing.assert_array_equal(np.asarray(buffer.frags.obs)[:, 0, 0, 0], [0, 1, 2, 0, 0])
    buffer = add_pairs(buffer, None, pairs(10, 4), jnp.ones(4), jnp.int32(4), bootstrap=False)
    assert int(buffer.size) == 5 and int(buffer.next) == 2
    np.testing.assert_array_equal(np.asarray(buffer.frags.obs)[:, 0, 0, 0], [12, 13, 2, 10, 11])
    np.testing.assert_array_equal(buffer.prefs, [1, 1, 0, 1, 1])


def test_query_schedules_match_imitation():
    initial, rounds = query_schedule("constant", 100, 5, 0.1)
    assert initial == 10 and rounds.tolist() == [18] * 5
    # hyperbolic 1/(1+t), t = 0, .25, ..., 1: 90 * shares = 25.44 20.35 16.96 14.54 12.72.
    initial, rounds = query_schedule("hyperbolic", 100, 5, 0.1)
    assert initial == 10 and rounds.tolist() == [25, 20, 17, 15, 13]
    initial, rounds = query_schedule("inverse_quadratic", 1000, 7, 0.25)
    t = np.linspace(0, 1, 7)
    shares = 1 / (1 + t**2)
    expected = 750 * shares / shares.sum()
    assert initial == 250 and rounds.sum() == 750 and np.all(np.abs(rounds - expected) < 1)
    assert oric(np.array([0.5, 0.5, 1.0])).sum() == 2
    with pytest.raises(ValueError, match="query_schedule"):
        query_schedule("linear", 100, 5, 0.1)


def test_bad_configs_are_rejected(cartpole):
    env, params = cartpole
    with pytest.raises(ValueError, match="active_selection"):
        pc.make(pc.PreferenceComparisonsConfig(model=PreferenceModelConfig(ensemble_size=1)),
                env, params)
    with pytest.raises(ValueError, match="fragment_length"):
        pc.make(pc.PreferenceComparisonsConfig(fragment_length=1000), env, params)
    with pytest.raises(ValueError, match="uncertainty_on"):
        pc.make(pc.PreferenceComparisonsConfig(uncertainty_on="entropy"), env, params)
    with pytest.raises(ValueError, match="heldout_frac"):
        pc.make_offline(pc.PreferenceComparisonsConfig(heldout_frac=1.0), env, params)
    with pytest.raises(ValueError, match="heldout_eval_pairs"):
        pc.make(pc.PreferenceComparisonsConfig(heldout_eval_pairs=0), env, params)


@pytest.mark.parametrize("reset", [False, True])
def test_query_environments_run_on_unless_reset(cartpole, reset):
    """By default the ε-greedy query environments carry on through whole episodes from round to
    round (so queries reach late states); with `query_reset` every round starts them afresh."""
    env, params = cartpole
    config = pc.PreferenceComparisonsConfig(query_num_envs=2, query_num_steps=30,
                                            fragment_length=8, query_reset=reset)
    loop = pc._Loop(config, env, params)
    policy_params = loop.engine.init(jax.random.PRNGKey(0)).params
    obs, env_state = loop.init_query_envs(jax.random.PRNGKey(1))
    explore = jax.jit(loop.explore)
    for key in jax.random.split(jax.random.PRNGKey(2), 2):  # two rounds
        steps, obs, env_state = explore(policy_params, obs, env_state, key)
    np.testing.assert_array_equal(env_state.time, 30 if reset else 60)
    assert steps.obs.shape[:2] == (30, 2)


# -- offline: a saved dataset of labelled pairs -----------------------------------------------

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
    one environment per entry of `eps`, as time-major `pc.Steps`."""
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
        return (next_obs, state), pc.Steps(obs, acts, info["final_observation"], term, trunc, rews)

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


@pytest.fixture(scope="module")
def preference_file(cartpole, tmp_path_factory):
    env, params = cartpole
    make = jax.jit(functools.partial(recorded_preferences, env, params))
    pairs, prefs, returns = jax.device_get(make(jax.random.PRNGKey(7)))
    assert 0.2 < np.mean(returns[:, 0] == returns[:, 1]) < 0.7  # ties stay in, labelled 0.5
    path = tmp_path_factory.mktemp("prefs") / "cartpole_prefs.npz"
    save_preferences(path, PreferenceDataset(pairs, prefs), env_id=ENV_ID,
                     source="synthetic: Bradley-Terry probabilities of the true returns",
                     extra_metadata={"epsilons": list(EPSILONS),
                                     "gatherer": vars(OFFLINE_GATHERER)})
    return path


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


# The reward model trains once, in `init`, and stays fixed while the agent learns: the dataset
# never changes, and 16 more steps every round (the online default) gave the same returns here
# in 2.4 times the run time. The agent's learning rate is not annealed: annealed to zero over
# 500k steps it froze 2-3 of 8 seeds below 450 on a reward they solve once it is constant (all
# 8 reach 500; annealed over 1M steps, too). See the README.
OFFLINE_CONFIG = pc.PreferenceComparisonsConfig(
    reward_steps_per_round=0, ppo=ppo.PPOConfig(total_timesteps=500_000, anneal_lr=False))


def test_offline_reward_model_learns_from_the_saved_dataset(preference_file, cartpole):
    env, params = cartpole
    data, _ = load_preferences(preference_file, env=env, env_params=params, env_id=ENV_ID)
    algo = pc.make_offline(OFFLINE_CONFIG, env, params)
    state = jax.jit(algo.init)(jax.random.PRNGKey(0), data)
    assert float(state.heldout_acc) > 0.9
    # ~10% of the pairs held out; ties (label 0.5) are not scored.
    assert int(state.heldout.sum()) > 150
    # What the agent will be trained on ranks the behaviours: the balancing controller's episode
    # above ε = 0.5, above random play (true returns 500, about 100-200 and about 30).
    steps = recorded_episodes(env, params, jax.random.PRNGKey(1), jnp.asarray([0.0, 0.5, 1.0]),
                              rollout.max_episode_steps(params))
    model = PreferenceModel(OFFLINE_CONFIG.model, space_spec(env, params))
    learned = model.agent_reward(state.reward_vars, steps.obs, steps.acts, steps.next_obs,
                                 steps.terminated).sum(0)
    true = np.asarray(steps.rews.sum(0))
    assert true[0] > true[1] > true[2], true
    assert learned[0] > learned[1] > learned[2], (learned, true)


# 2 seeds x 500k agent steps: 48 s with compilation, 18 s from the compilation cache (2 cores)
def test_offline_mode_learns_from_the_saved_dataset_alone(preference_file, cartpole):
    env, params = cartpole
    data, _ = load_preferences(preference_file, env=env, env_params=params, env_id=ENV_ID)
    config = OFFLINE_CONFIG
    algo = pc.make_offline(config, env, params)
    settings = runner.RunSettings(seeds=(0, 1), num_updates=config.ppo.num_updates, num_chunks=2,
                                  eval_episodes=5, final_eval_episodes=20, progress=False)
    result = runner.run(algo, env, params, settings, data, reference_returns=REFERENCE)
    scores = np.asarray(result.summary["normalized_score"])
    assert np.all(scores >= 0.9), result.summary["return_mean"]
    assert np.all(result.chunk_metrics["heldout_acc"][:, -1] > 0.9)
