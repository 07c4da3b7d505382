"""SAC: the squashed Gaussian's log-probability, the temperature's loss, the target critics'
Polyak step, bootstrapping only through non-terminal steps, actions rescaled to the box, a
continuous probe, and learning Pendulum-v1 (8 seeds in one call: slow)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from experiments.configs import SAC_PENDULUM
from jaxrl_align.algorithm import train
from jaxrl_align.hparams import as_arrays
from jaxrl_align.rl import sac
from jaxrl_align.runtime import runner
from jaxrl_align.types import Transitions
from tests.rl import probe_envs

PENDULUM = SAC_PENDULUM


# --- the squashed Gaussian -------------------------------------------------------------------

def test_squashed_gaussian_log_prob_is_the_change_of_variables():
    """log π(tanh u) = log N(u; μ, σ) − log |det ∂tanh(u)/∂u|, the Jacobian taken by autodiff
    and the Gaussian written out here."""
    key = jax.random.PRNGKey(0)
    mean = jax.random.normal(key, (5, 3))
    log_std = jax.random.uniform(jax.random.PRNGKey(1), (5, 3), minval=-1.5, maxval=0.5)
    dist = sac.SquashedGaussian(mean, log_std)
    u = mean + jnp.exp(log_std) * jax.random.normal(jax.random.PRNGKey(2), (5, 3)) * 1.5
    std = np.exp(np.asarray(log_std, np.float64))
    z = (np.asarray(u, np.float64) - np.asarray(mean, np.float64)) / std
    gaussian = np.sum(-0.5 * z**2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=-1)
    log_det = np.array([np.linalg.slogdet(np.asarray(jax.jacfwd(jnp.tanh)(row), np.float64))[1]
                        for row in u])
    np.testing.assert_allclose(dist.log_prob_of_pre_squash(u), gaussian - log_det, rtol=1e-5,
                               atol=1e-4)
    # SB3's log(1 - tanh² + 1e-6) agrees away from saturation.
    sb3 = gaussian - np.sum(np.log(1 - np.tanh(np.asarray(u, np.float64)) ** 2 + 1e-6), axis=-1)
    np.testing.assert_allclose(dist.log_prob_of_pre_squash(u), sb3, atol=1e-3)


def test_sample_is_tanh_of_the_gaussian_sample_and_stays_finite_when_saturated():
    dist = sac.SquashedGaussian(jnp.array([[0.3, 30.0]]), jnp.array([[-0.5, -3.0]]))
    key = jax.random.PRNGKey(3)
    action, log_prob = dist.sample_and_log_prob(key)
    u = dist.gaussian.sample(key)
    np.testing.assert_allclose(action, jnp.tanh(u))
    np.testing.assert_allclose(log_prob, dist.log_prob_of_pre_squash(u), rtol=1e-6)
    # tanh(30) is 1 in float32, where log(1 - tanh²) would be -inf.
    assert np.isfinite(log_prob).all() and float(log_prob[0]) > 30
    np.testing.assert_allclose(dist.mode(), jnp.tanh(dist.mean))


def test_temperature_loss_raises_alpha_below_the_target_entropy():
    grad = jax.grad(sac.temperature_loss)
    # Entropy -mean(log π) = -2 below the target -1: descent raises log α.
    assert float(grad(0.0, jnp.full((8,), 2.0), -1.0)) < 0
    # Entropy 0.5 above the target -1: descent lowers log α.
    assert float(grad(0.0, jnp.full((8,), -0.5), -1.0)) > 0
    # Only log α gets a gradient; log π is held fixed.
    assert float(jax.grad(sac.temperature_loss, argnums=1)(0.3, jnp.ones(4), -1.0).sum()) == 0


# --- one gradient step -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pendulum():
    return envs.make("Pendulum-v1")


@pytest.fixture(scope="module")
def small(pendulum):
    """A SAC learner with 16-16 networks on Pendulum-v1, its hyperparameters as arrays, and its
    gradient step jitted once for the tests below (τ and α are traced: no recompilation)."""
    env, params = pendulum
    config = sac.SACConfig(hidden=(16, 16))
    learner = sac.learner(config, env, params)
    hp = as_arrays(config)
    return learner, hp, learner.init(jax.random.PRNGKey(0), hp), jax.jit(learner.train_step)


def pendulum_batch(key, size=64, terminated=False, truncated=False):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    theta = jax.random.uniform(k1, (size, 2), minval=-np.pi, maxval=np.pi)
    obs = jnp.concatenate([jnp.cos(theta[:, :1]), jnp.sin(theta[:, :1]), theta[:, 1:]], axis=1)
    next_obs = obs + 0.1 * jax.random.normal(k2, obs.shape)
    return Transitions(obs=obs, acts=jax.random.uniform(k3, (size, 1), minval=-2, maxval=2),
                       next_obs=next_obs, terminated=jnp.full((size,), terminated),
                       rews=-jax.random.uniform(k4, (size,), maxval=10.0),
                       truncated=jnp.full((size,), truncated))


def test_target_critics_follow_polyak_with_tau(small):
    _, hp, ls, step = small
    hp = hp.replace(tau=jnp.float32(0.3))
    jax.tree.map(np.testing.assert_array_equal, ls.target_critic, ls.critic)
    targets, critics = [ls.target_critic], [ls.critic]
    for i in range(2):
        ls, _ = step(ls, hp, jax.random.PRNGKey(10 + i), pendulum_batch(jax.random.PRNGKey(i)),
                     jnp.int32(0))
        targets.append(ls.target_critic)
        critics.append(ls.critic)
    for before, online, after in zip(targets[:-1], critics[1:], targets[1:]):
        # The critics moved, and each target moved 30% of the way to the new critics.
        assert not np.allclose(jax.tree.leaves(online)[0], jax.tree.leaves(before)[0])
        jax.tree.map(lambda b, o, a: np.testing.assert_allclose(a, 0.7 * b + 0.3 * o, rtol=1e-5,
                                                                atol=1e-7),
                     before, online, after)


def test_only_termination_stops_the_bootstrap(small):
    """The critics' target y is r exactly when every step terminated, and r + γ(...) at a time
    limit (truncated but not terminated)."""
    _, hp, ls, step = small
    key = jax.random.PRNGKey(5)
    terminal = pendulum_batch(key, terminated=True)
    _, metrics = step(ls, hp, key, terminal, jnp.int32(0))
    np.testing.assert_allclose(metrics["target_q"], jnp.mean(terminal.rews), rtol=1e-6)
    time_limit = pendulum_batch(key, truncated=True)
    _, metrics = step(ls, hp, key, time_limit, jnp.int32(0))
    assert abs(float(metrics["target_q"] - jnp.mean(time_limit.rews))) > 1e-3


def with_log_std(actor, value):
    """The actor with its last layer giving log σ = `value` everywhere (mean unchanged)."""
    def set_head(path, leaf):
        names = [getattr(k, "key", None) for k in path]
        if "Dense_2" not in names:
            return leaf
        if names[-1] == "kernel":
            return leaf.at[:, 1:].set(0.0)
        return leaf.at[1:].set(value)
    return jax.tree_util.tree_map_with_path(set_head, actor)


@pytest.mark.parametrize("log_std, rises", [(-5.0, True), (None, False)])
def test_learned_temperature_moves_towards_the_target_entropy(small, log_std, rises):
    """The target is SB3's −dim(A) = −1. The initial actor's squashed entropy is about 0.5 nats,
    above it: α falls. With σ = e^−5 the entropy is below −4: α rises."""
    _, hp, ls, step = small
    if log_std is not None:
        ls = ls.replace(actor=with_log_std(ls.actor, log_std))
    np.testing.assert_allclose(ls.log_ent_coef, 0.0)  # ent_coef_init 1.0
    after, metrics = step(ls, hp, jax.random.PRNGKey(1), pendulum_batch(jax.random.PRNGKey(2)),
                          jnp.int32(0))
    assert (float(metrics["entropy"]) < -1.0) == rises, float(metrics["entropy"])
    assert (float(after.log_ent_coef) > 0) == rises, float(after.log_ent_coef)
    np.testing.assert_allclose(metrics["ent_coef"], 1.0)  # the losses used α before the step


def test_actions_are_rescaled_to_the_box(small):
    """Samples of tanh(N(μ, σ)) fill [−1, 1]; the environment gets them stretched to [−2, 2]
    (not clipped to it)."""
    learner, hp, ls, _ = small
    obs = pendulum_batch(jax.random.PRNGKey(1), size=512).obs
    acts = jax.jit(learner.explore)(ls, hp, jax.random.PRNGKey(2), obs, jnp.int32(0))
    assert acts.shape == (512, 1)
    assert float(jnp.max(jnp.abs(acts))) <= 2.0 and float(jnp.max(jnp.abs(acts))) > 1.5
    assert float(jnp.mean(jnp.abs(acts) > 1.0)) > 0.2


# --- learning --------------------------------------------------------------------------------

def test_match_observation_probe_with_a_fixed_temperature():
    """One step, x ~ U[-1, 1], action in [-3, 3], reward −(a − x)²: the deterministic action
    (the squashed mean, rescaled) goes to x; an untrained actor gives about 0 everywhere. With
    `learn_ent_coef=False` α stays at `ent_coef_init`."""
    env = probe_envs.MatchObservation()
    params = env.default_params
    config = sac.SACConfig(hidden=(32, 32), lr=1e-3, total_timesteps=3_000, batch_size=64,
                           learn_ent_coef=False, ent_coef_init=0.05)
    algo = sac.make(config, env, params)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    states, _ = jax.jit(jax.vmap(lambda k: train(algo, k, None, config.num_updates)))(keys)
    xs = jnp.linspace(-0.8, 0.8, 5)[:, None]
    acts = jax.vmap(lambda s: jax.vmap(lambda x: algo.act(s, jax.random.PRNGKey(0), x))(xs))(
        states)
    np.testing.assert_allclose(acts, jnp.broadcast_to(xs, acts.shape), atol=0.15)
    np.testing.assert_allclose(jnp.exp(states.learner.log_ent_coef), 0.05, rtol=1e-6)


def pendulum_sac_run(env, params):
    """SAC on Pendulum-v1: 2 seeds of 7,500 steps in one call. Also the expert of
    tests/algorithms/test_sqil_continuous.py (the same programs: the compilation cache serves
    both modules). Returns (algo, result)."""
    algo = sac.make(dataclasses.replace(PENDULUM, total_timesteps=7_500), env, params)
    settings = runner.RunSettings(seeds=2, num_chunks=2, eval_episodes=2,
                                  final_eval_episodes=10, progress=False)
    return algo, runner.run(algo, env, params, settings, None)


@pytest.fixture(scope="module")
def pendulum_run(pendulum):
    return pendulum_sac_run(*pendulum)


def test_sac_learns_pendulum(pendulum_run):
    _, result = pendulum_run
    returns = np.asarray(result.summary["return_mean"])
    # A random or constant policy scores about −1200 and one that never learned to swing up
    # stays under about −700; swinging up and holding scores about −150.
    assert np.all(returns > -300), returns
    assert result.env_steps == 7_500
    assert np.all(result.chunk_metrics["ent_coef"][:, -1] < 0.5)  # the temperature was learned


@pytest.mark.slow
def test_sac_learns_pendulum_eight_seeds(pendulum):
    env, params = pendulum
    algo = sac.make(PENDULUM, env, params)
    settings = runner.RunSettings(seeds=8, num_chunks=4, eval_episodes=5,
                                  final_eval_episodes=20, progress=False)
    returns = np.asarray(runner.run(algo, env, params, settings, None).summary["return_mean"])
    assert (returns >= -200).sum() >= 7, returns


# --- bad input -------------------------------------------------------------------------------

def test_discrete_actions_are_refused(cartpole):
    env, params = cartpole
    with pytest.raises(ValueError, match="action space: SAC needs a continuous"):
        sac.make(sac.SACConfig(), env, params)


@pytest.mark.parametrize("field, value, message", [
    ("ent_coef_init", 0.0, "ent_coef_init: expected a finite temperature > 0, got 0.0"),
    ("target_entropy", float("nan"), "target_entropy: expected a finite number"),
    ("hidden", (64, 0), "hidden: expected positive layer widths"),
    ("activation", "gelu", "activation: expected one of"),
    ("lr", -1.0, "lr: expected a learning rate >= 0"),
    ("tau", 0.0, "tau: expected a target update coefficient in"),
    ("batch_size", 0, "batch_size: expected a positive integer"),
])
def test_bad_config_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sac.SACConfig(**{field: value})
