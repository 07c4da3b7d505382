"""PPO on probe environments (`tests/rl/probe_envs.py`, after rejax's tests/test_ppo.py): tiny
environments whose value or best policy is known in closed form, each asserted to a tolerance
that a PPO broken in that one place cannot meet. CartPole can be solved by a PPO with, say, a
termination that bootstraps or a discount that is ignored; these cannot.

Every probe trains PPO with its defaults (annealed Adam at 1e-3, 4 epochs of 4 minibatches, ratio
and value clipping at 0.2, gradient norm clip 0.5, γ 0.99, GAE λ 0.95, no entropy bonus) on
16 environments × 16 steps per update, for a few seeds vmapped in one compiled program, and reads
the result through `PPOEngine.policy` and `Algorithm.act`. Every seed must pass.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.algorithm import Algorithm, train
from jaxrl_align.rl import ppo
from tests.rl import probe_envs

SEEDS = 3
NUM_ENVS, NUM_STEPS = 16, 16


@dataclasses.dataclass(frozen=True)
class Trained:
    algo: Algorithm
    engine: ppo.PPOEngine  # the same networks as the algorithm's own engine
    states: ppo.PPOState  # leaves [SEEDS, ...]
    metrics: dict  # [SEEDS, num_updates]

    def policy(self, obs):
        """(action distribution, value) of a batch of observations [N, ...], for every seed:
        leaves [SEEDS, N, ...]."""
        return jax.vmap(self.engine.policy, in_axes=(0, None))(self.states.params, obs)

    def act(self, obs):
        """The deterministic actions [SEEDS, N, ...] of `algo.act`, one observation at a time."""
        act = jax.vmap(self.algo.act, in_axes=(None, None, 0))  # over observations
        return jax.vmap(act, in_axes=(0, None, None))(self.states, jax.random.PRNGKey(0), obs)


def train_probe(env, env_params=None, num_updates: int = 64, **config) -> Trained:
    """`num_updates` PPO updates on `env` for SEEDS seeds: exactly the annealing schedule's length
    (the learning rate reaches 0 at `config.num_updates`)."""
    env_params = env.default_params if env_params is None else env_params
    config = ppo.PPOConfig(num_envs=NUM_ENVS, num_steps=NUM_STEPS,
                           total_timesteps=NUM_ENVS * NUM_STEPS * num_updates, **config)
    assert config.num_updates == num_updates
    algo = ppo.make(config, env, env_params)
    run = jax.jit(jax.vmap(lambda key: train(algo, key, None, num_updates)))
    states, metrics = run(jax.random.split(jax.random.PRNGKey(0), SEEDS))
    return Trained(algo, ppo.PPOEngine(config, env, env_params), states, metrics)


def probabilities(dist):
    return np.asarray(jax.nn.softmax(dist.logits))


# 1. A constant reward: the value loss and the critic's bias.

# The default suite trains seven probes; three more are `slow` (`make test-all`).
@pytest.fixture(scope="module", params=[1.0, pytest.param(0.25, marks=pytest.mark.slow)],
                ids=lambda scale: f"reward_scale={scale}")
def constant_reward(request):
    return request.param, train_probe(probe_envs.ConstantReward(), reward_scale=request.param)


def test_value_of_a_constant_reward_is_the_scaled_reward(constant_reward):
    """One step paying 1 then a termination: V = 1, times `reward_scale` (the critic learns scaled
    returns). Bootstrapping through the termination would give ~1/(1-γ) = 100; a critic that does
    not learn keeps its initial value; ignoring `reward_scale` gives 1 where 0.25 is due."""
    scale, trained = constant_reward
    _, value = trained.policy(jnp.zeros((1, 1)))
    np.testing.assert_allclose(value[:, 0], scale, atol=0.02)
    # The reported return stays the environment's, whatever the scale.
    np.testing.assert_allclose(trained.metrics["return"][:, -1], 1.0, rtol=1e-6)


# 2. A reward given by the observation: the critic sees its input.

@pytest.fixture(scope="module")
def observed_reward():
    return train_probe(probe_envs.ObservedReward())


@pytest.mark.slow
def test_value_follows_the_observation(observed_reward):
    """Observation x ~ U[-1, 1], reward x, termination: V(x) = x. A critic blind to x fits the mean
    reward, 0 (off by up to 0.9 on these points); bootstrapping the termination gives 100·x."""
    x = jnp.linspace(-0.9, 0.9, 7)[:, None]
    _, value = observed_reward.policy(x)
    np.testing.assert_allclose(value, np.broadcast_to(x[:, 0], value.shape), atol=0.05)


# 3. Discounting and bootstrapping: through a real transition, at a time limit, not at a
#    termination.

@pytest.fixture(scope="module")
def two_steps():
    return train_probe(probe_envs.TwoSteps(), gamma=0.5)


def test_first_of_two_steps_is_worth_its_reward_plus_the_discounted_next_value(two_steps):
    """Observation -1 (reward 0.25), then +1 (reward 1), then a termination, at γ = 0.5:
    V(+1) = 1 and V(-1) = 0.25 + γ·1 = 0.75. No bootstrapping gives V(-1) = 0.25, no discount
    1.25, the default γ instead of the run's 1.24, γ² 0.5; GAE's λ does not enter (the
    observations tell the steps apart, so every λ-return has the same fixed point)."""
    (r0, r1), gamma = probe_envs.TwoSteps.REWARDS, 0.5
    _, value = two_steps.policy(jnp.array([[-1.0], [1.0]]))
    np.testing.assert_allclose(value[:, 1], r1, atol=0.03)
    np.testing.assert_allclose(value[:, 0], r0 + gamma * r1, atol=0.03)


@pytest.fixture(scope="module", params=[False, True], ids=["time_limit", "termination"])
def swap(request):
    time_limit_is_termination = request.param
    env, params = probe_envs.swap(time_limit_is_termination)
    return time_limit_is_termination, env, params, train_probe(env, params, gamma=0.5)


def test_time_limit_bootstraps_and_termination_does_not(swap):
    """Two states that swap on every step (leaving 0 pays 0, leaving 1 pays 1), episodes of one step
    starting in either, at γ = 0.5. Cut by a time limit (`truncated`) the step bootstraps from
    the true next state: V = (2/3, 4/3), the endless chain's. Cut by a termination it does not:
    V = (0, 1). Treating the time limit as a termination (SB3) gives (0, 1) in both cases;
    bootstrapping from the auto-reset observation instead of `info["final_observation"]` gives
    (0.5, 1.5)."""
    time_limit_is_termination, env, params, trained = swap
    # The probe's premise: one step from state s ends the episode with the flag asked for, and
    # its true next observation is the other state.
    obs, state = env.reset(jax.random.PRNGKey(1), params)
    *_, terminated, truncated, info = env.step(jax.random.PRNGKey(2), state, 0, params)
    assert (bool(terminated), bool(truncated)) == (time_limit_is_termination,
                                                   not time_limit_is_termination)
    np.testing.assert_array_equal(info["final_observation"], 1.0 - obs)

    _, value = trained.policy(jnp.eye(2))
    expected = probe_envs.swap_values(0.5, time_limit_is_termination)
    np.testing.assert_allclose(value, np.broadcast_to(expected, value.shape), atol=0.03)


# 4. An action-dependent reward: the policy gradient, discrete and continuous.

@pytest.fixture(scope="module")
def action_reward():
    return train_probe(probe_envs.ActionReward())


def test_policy_learns_the_rewarded_action(action_reward):
    """Rewards (0, 1, 0.5) for actions (0, 1, 2) in one step: the policy puts almost all its mass
    on action 1 and its value is the policy's expected reward, about 1. An untrained policy is
    uniform (1/3); a policy gradient of the wrong sign goes to action 0; an off-by-one in the
    log-probabilities goes to another action."""
    rewards = np.asarray(probe_envs.ActionReward.REWARDS)
    dist, value = action_reward.policy(jnp.zeros((1, 1)))
    p = probabilities(dist)[:, 0]
    assert np.all(p[:, 1] > 0.95), p
    np.testing.assert_array_equal(action_reward.act(jnp.zeros((1, 1))), 1)
    np.testing.assert_allclose(value[:, 0], p @ rewards, atol=0.05)
    np.testing.assert_allclose(value[:, 0], 1.0, atol=0.05)


@pytest.fixture(scope="module")
def target_action():
    return train_probe(probe_envs.TargetAction(), num_updates=256)


@pytest.mark.slow
def test_mean_action_approaches_the_target(target_action):
    """A 2-d action in [-3, 3]² rewarded by -|a - (1, -0.5)|²: the Gaussian's mean goes to the
    target in each coordinate, its standard deviation shrinks from 1 (no entropy bonus), and
    V = -|mean - target|² - Σσ². An untrained or sign-flipped actor stays at 0 or runs away; a
    Gaussian log-probability that forgets to divide by σ leaves σ above 0.5."""
    target = np.asarray(probe_envs.TargetAction.TARGET)
    dist, value = target_action.policy(jnp.zeros((1, 1)))
    mean, std = np.asarray(dist.mean)[:, 0], np.exp(np.asarray(dist.log_std))[:, 0]
    np.testing.assert_allclose(mean, np.broadcast_to(target, mean.shape), atol=0.05)
    assert np.all(std < 0.5), std
    expected_value = -np.sum((mean - target) ** 2 + std**2, axis=-1)
    np.testing.assert_allclose(value[:, 0], expected_value, atol=0.03)
    # The deterministic action is the mean (inside the bounds: unclipped).
    np.testing.assert_allclose(target_action.act(jnp.zeros((1, 1)))[:, 0], mean, rtol=1e-6)


# 5. A reward depending on observation and action: the policy reads the observation.

@pytest.fixture(scope="module")
def match_sign():
    return train_probe(probe_envs.MatchSign())


def test_policy_picks_the_action_matching_the_observation(match_sign):
    """Observation ±1, reward 1 for action 1 on +1 and action 0 on -1: both are learned and both
    observations are worth 1. An actor blind to the observation can do no better than 1/2 on one
    of them."""
    obs = jnp.array([[-1.0], [1.0]])
    dist, value = match_sign.policy(obs)
    p = probabilities(dist)
    assert np.all(p[:, 0, 0] > 0.95) and np.all(p[:, 1, 1] > 0.95), p
    np.testing.assert_array_equal(match_sign.act(obs), np.broadcast_to([0, 1], (SEEDS, 2)))
    np.testing.assert_allclose(value, 1.0, atol=0.05)


@pytest.fixture(scope="module")
def match_observation():
    return train_probe(probe_envs.MatchObservation(), num_updates=256)


def test_mean_action_follows_the_observation(match_observation):
    """Observation x ~ U[-1, 1], an action in [-3, 3] rewarded by -(a - x)²: mean(x) = x and
    V(x) = -(mean(x) - x)² - σ². An actor blind to x stays near 0 (off by up to 0.9 here)."""
    x = jnp.linspace(-0.9, 0.9, 7)[:, None]
    dist, value = match_observation.policy(x)
    mean, std = np.asarray(dist.mean)[..., 0], np.exp(np.asarray(dist.log_std))[..., 0]
    np.testing.assert_allclose(mean, np.broadcast_to(x[:, 0], mean.shape), atol=0.1)
    assert np.all(std < 0.5), std
    np.testing.assert_allclose(value, -((mean - x[:, 0]) ** 2) - std**2, atol=0.03)
