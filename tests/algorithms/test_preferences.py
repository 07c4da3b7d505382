"""Preference comparisons: the agent learns seals/CartPole-v0 from synthetic preferences alone,
online (queries labelled as it learns) and offline (from a saved dataset of labelled pairs).
The pieces (fragments, active selection, gatherer, preference model, buffer, schedules) are
tested against imitation's definitions in tests/preferences/, the dataset file format in
tests/data/test_preference_dataset.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from experiments.configs import PREFERENCES_PENDULUM
from jaxrl_align.algorithms import preference_comparisons as pc
from jaxrl_align.data import rollout
from jaxrl_align.data.preference_dataset import load_preferences
from jaxrl_align.preferences.model import PreferenceModel, PreferenceModelConfig
from jaxrl_align.rl import ppo
from jaxrl_align.runtime import runner
from jaxrl_align.spaces import space_spec
from tests.data.test_preference_dataset import recorded_episodes, save_recorded_dataset

ENV_ID = "seals/CartPole-v0"
REFERENCE = envs.reference_returns(ENV_ID)


# -- learning ---------------------------------------------------------------------------------

CARTPOLE_CONFIG = pc.PreferenceComparisonsConfig(ppo=ppo.PPOConfig(total_timesteps=500_000))


@pytest.fixture(scope="module")
def cartpole_run(cartpole):
    env, params = cartpole
    algo = pc.make(CARTPOLE_CONFIG, env, params)
    settings = runner.RunSettings(seeds=3, num_updates=CARTPOLE_CONFIG.ppo.num_updates,
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
    config = PREFERENCES_PENDULUM
    algo = pc.make(config, env, params)
    settings = runner.RunSettings(seeds=2, num_updates=config.ppo.num_updates, num_chunks=1,
                                  eval_episodes=1, final_eval_episodes=20, progress=False)
    result = runner.run(algo, env, params, settings)
    returns = np.asarray(result.summary["return_mean"])
    # Random or constant torque scores about -1200, a policy that swings up but cannot hold the
    # pendulum about -400 to -700; swinging up and holding, about -150.
    assert np.all(returns >= -200), returns
    assert pc.comparisons_queried(config) == 1000


# -- configuration and query rollouts ---------------------------------------------------------

def test_bad_configs_are_rejected(cartpole):
    env, params = cartpole
    with pytest.raises(ValueError, match="active_selection"):
        pc.make(pc.PreferenceComparisonsConfig(model=PreferenceModelConfig(ensemble_size=1)),
                env, params)
    # The config's own checks run when it is built (`__post_init__`), before make.
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

@pytest.fixture(scope="module")
def preference_file(tmp_path_factory):
    """The dataset of tests/data/test_preference_dataset.py (recorded once per session), saved."""
    return save_recorded_dataset(tmp_path_factory.mktemp("prefs") / "cartpole_prefs.npz")


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
    settings = runner.RunSettings(seeds=2, num_updates=config.ppo.num_updates, num_chunks=2,
                                  eval_episodes=5, final_eval_episodes=20, progress=False)
    result = runner.run(algo, env, params, settings, data, reference_returns=REFERENCE)
    scores = np.asarray(result.summary["normalized_score"])
    assert np.all(scores >= 0.9), result.summary["return_mean"]
    assert np.all(result.chunk_metrics["heldout_acc"][:, -1] > 0.9)
