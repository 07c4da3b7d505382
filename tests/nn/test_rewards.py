"""Reward networks: the shaping identity, the running normaliser against numpy, ensembles, and a
discriminator whose loss falls on separable data."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import envs
from jaxrl_align.nn.normalization import NORM_STATS, RunningNorm
from jaxrl_align.nn.rewards import BasicRewardNet, RewardEnsemble, ShapedRewardNet, ensemble_moments
from jaxrl_align.spaces import space_spec


@pytest.fixture(scope="module")
def spec():
    return space_spec(*envs.make("seals/CartPole-v0"))


def batch(key, n=64):
    k1, k2, k3 = jax.random.split(key, 3)
    obs = jax.random.normal(k1, (n, 4))
    return obs, jax.random.randint(k2, (n,), 0, 2), jax.random.normal(k3, (n, 4)), jnp.zeros(n, bool)


def test_constant_potential_changes_only_the_terminal_step(spec):
    """With Φ ≡ c: f = g + γc − c on ordinary steps and f = g − c on terminal ones (imitation's
    unit test: c = 10, γ = 0.9 gives g − 1 and g − 10)."""
    net = ShapedRewardNet(spec, discount=0.9)
    obs, act, next_obs, _ = batch(jax.random.PRNGKey(0))
    terminated = jnp.arange(64) % 2 == 0
    variables = net.init(jax.random.PRNGKey(1), obs, act, next_obs, terminated)
    head = variables["params"]["potential_head"]
    last = sorted(head)[-1]
    head[last] = {"kernel": jnp.zeros_like(head[last]["kernel"]),
                  "bias": jnp.full_like(head[last]["bias"], 10.0)}
    f = net.apply(variables, obs, act, next_obs, terminated)
    g = net.apply(variables, obs, act, next_obs, terminated, method=net.base_reward)
    expected = np.where(np.asarray(terminated), g - 10.0, g + 0.9 * 10.0 - 10.0)
    np.testing.assert_allclose(f, expected, rtol=1e-5, atol=1e-5)


def test_running_norm_matches_numpy():
    norm = RunningNorm()
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(5, 200, 3)).astype(np.float32)
    variables = norm.init(jax.random.PRNGKey(0), data[0])
    for chunk in data:
        out, variables = norm.apply(variables, chunk, mutable=[NORM_STATS])
    stats = variables[NORM_STATS]
    flat = data.reshape(-1, 3)
    np.testing.assert_allclose(stats["mean"], flat.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["var"], flat.var(axis=0), rtol=1e-4)
    assert float(stats["count"]) == 1000
    np.testing.assert_allclose(out, (data[-1] - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5),
                               rtol=1e-4, atol=1e-5)
    # Without the collection mutable the statistics are read, never changed.
    frozen = norm.apply(variables, data[0] * 100)
    assert frozen.shape == data[0].shape


def test_ensemble_members_differ_and_moments(spec):
    ensemble = RewardEnsemble(BasicRewardNet(spec), num_members=4)
    inputs = batch(jax.random.PRNGKey(2))
    variables = ensemble.init(jax.random.PRNGKey(3), *inputs)
    rewards = ensemble.apply(variables, *inputs)
    assert rewards.shape == (4, 64)
    assert float(jnp.min(jnp.std(rewards, axis=0))) > 0
    mean, var = ensemble_moments(rewards)
    np.testing.assert_allclose(mean, rewards.mean(0), rtol=1e-6)
    np.testing.assert_allclose(var, rewards.var(0), rtol=1e-5)


def test_discriminator_loss_falls_on_separable_data(spec):
    net = BasicRewardNet(spec)
    expert = batch(jax.random.PRNGKey(4))
    expert = (expert[0] + 2.0,) + expert[1:]
    generator = batch(jax.random.PRNGKey(5))
    inputs = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), expert, generator)
    labels = jnp.concatenate([jnp.ones(64), jnp.zeros(64)])
    variables = net.init(jax.random.PRNGKey(6), *inputs)
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(variables["params"])

    def loss_fn(params, stats):
        logits, _ = net.apply({"params": params, **stats}, *inputs, mutable=[NORM_STATS])
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))

    stats = {NORM_STATS: variables[NORM_STATS]}
    params = variables["params"]
    loss_and_grad = jax.jit(jax.value_and_grad(loss_fn))
    losses = []
    for _ in range(30):
        loss, grads = loss_and_grad(params, stats)
        updates, opt_state = optimizer.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
        losses.append(float(loss))
    assert losses[3] < losses[0] and losses[-1] < 0.2 * losses[0]
