"""BC learns to imitate, seeds are independent and reproducible, and its loss is imitation's."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl_align.algorithm import train
from jaxrl_align.algorithms import bc
from jaxrl_align.runtime import runner
from jaxrl_align.types import flatten_trajectories

SEEDS = 4  # seeds 0, 1, 2, 3


@pytest.fixture(scope="module")
def bc_run(cartpole, cartpole_demos):
    env, params = cartpole
    algo = bc.make(bc.BCConfig(), env, params)
    settings = runner.RunSettings(seeds=SEEDS, num_updates=30, num_chunks=3, eval_episodes=5,
                                  final_eval_episodes=20, progress=False)
    demos = flatten_trajectories(cartpole_demos)
    return algo, demos, runner.run(algo, env, params, settings, demos,
                                   reference_returns=envs.reference_returns("seals/CartPole-v0"))


def test_bc_reaches_expert_return_on_every_seed(bc_run):
    _, _, result = bc_run
    # The expert scores 500; a random policy about 33 and an untrained network far below 495.
    assert np.all(np.asarray(result.summary["return_mean"]) >= 495), result.summary


def test_bc_loss_falls(bc_run):
    _, _, result = bc_run
    loss = result.chunk_metrics["loss"]
    assert np.all(loss[:, -1] < 0.5 * loss[:, 0])
    assert np.all(result.chunk_metrics["prob_true_act"][:, -1] > 0.9)


def test_vmapped_seed_equals_single_run(bc_run):
    algo, demos, result = bc_run
    single = jax.jit(lambda key: train(algo, key, demos, 30)[0])(jax.random.PRNGKey(2))
    batched = jax.tree.map(lambda x: x[2], result.state)
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(batched.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_same_key_twice_is_bit_identical(bc_run):
    algo, demos, _ = bc_run
    run = jax.jit(lambda key: train(algo, key, demos, 3)[0])
    first, second = run(jax.random.PRNGKey(7)), run(jax.random.PRNGKey(7))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
        np.testing.assert_array_equal(a, b)


def test_loss_is_imitations_objective(cartpole, cartpole_demos):
    """neglogp − ent_weight·entropy + l2_weight·Σ‖θ‖²/2, checked against a direct computation."""
    env, params = cartpole
    config = bc.BCConfig(ent_weight=0.1, l2_weight=0.01, batch_size=5000)
    algo = bc.make(config, env, params)
    demos = flatten_trajectories(cartpole_demos)
    state = algo.init(jax.random.PRNGKey(0), demos)
    _, metrics = algo.update(state, demos)
    from jaxrl_align.nn.policies import Policy

    dist = Policy(2, True, config.hidden).apply(state.params, demos.obs)
    log_prob = dist.log_prob(demos.acts)
    l2 = sum(float(jnp.sum(w**2)) for w in jax.tree.leaves(state.params))
    expected = -float(jnp.mean(log_prob)) - 0.1 * float(jnp.mean(dist.entropy())) + 0.01 * l2 / 2
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-5)


def test_too_few_demonstrations_is_a_clear_error(cartpole, cartpole_demos):
    env, params = cartpole
    algo = bc.make(bc.BCConfig(batch_size=10_000), env, params)
    with pytest.raises(ValueError, match="fewer than batch_size=10000"):
        algo.init(jax.random.PRNGKey(0), flatten_trajectories(cartpole_demos))


def test_running_observation_normalisation_counts_every_training_batch(cartpole, cartpole_demos):
    """imitation's NormalizeFeaturesExtractor: each batch is counted before it is normalised, so
    after an epoch the statistics are those of the transitions that epoch used (the remainder
    dropped), and the policy sees standardised observations."""
    env, params = cartpole
    demos = flatten_trajectories(cartpole_demos)
    algo = bc.make(bc.BCConfig(obs_normalization="running"), env, params)
    state = algo.init(jax.random.PRNGKey(0), demos)
    state, _ = jax.jit(algo.update)(state, demos)
    used = (len(demos) // 32) * 32
    stats = state.obs_stats["norm_stats"]
    assert float(stats["count"]) == used
    obs = np.asarray(demos.obs)
    assert np.allclose(stats["mean"], obs.mean(0), atol=0.02)  # all but the dropped remainder
    assert np.allclose(stats["var"], obs.var(0), rtol=0.05, atol=1e-4)
    raw = bc.make(bc.BCConfig(), env, params)
    assert float(raw.init(jax.random.PRNGKey(0), demos).obs_stats["norm_stats"]["count"]) == 0
    with pytest.raises(ValueError, match="obs_normalization"):
        bc.BCConfig(obs_normalization="box")
