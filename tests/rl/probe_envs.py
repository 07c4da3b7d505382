"""Probe environments: tiny gymnax environments whose values and best policies are known in closed
form, to check an RL algorithm piece by piece (Andy Jones, "Debugging RL, Without the Agonizing
Pain"; rejax's tests/environments.py). Each isolates one thing a CartPole run can hide: the value
loss, the critic's input, discounting and bootstrapping, the policy gradient, continuous actions.

All but `swap` terminate (never truncate): their time limit is the step on which they terminate
and is reported as termination only, as `envs.tabular.TabularEnv(horizon_is_terminal=True)` does.
The observation that ends an episode (`info["final_observation"]`) repeats the last one, so an
algorithm that bootstrapped through a termination would read a value it is learning and be off by
a factor of about 1 / (1 - γ).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

import envs.tabular


@struct.dataclass
class ProbeState(environment.EnvState):
    obs: jax.Array  # [1] the observation of the step to come


class TerminatingProbe(environment.Environment):
    """Shared plumbing: an episode of `default_params.max_steps_in_episode` steps that ends in a
    termination. Subclasses give the observations, rewards and action space."""

    horizon = 1

    @property
    def default_params(self) -> environment.EnvParams:
        return environment.EnvParams(max_steps_in_episode=self.horizon)

    def draw_obs(self, key, time):
        """The observation at step `time` (a fresh episode is at 0)."""
        return jnp.zeros((1,), jnp.float32)

    def reward(self, obs, action, time):
        raise NotImplementedError

    def reset_env(self, key, params):
        obs = self.draw_obs(key, jnp.int32(0))
        return obs, ProbeState(time=jnp.int32(0), obs=obs)

    def step_env(self, key, state, action, params):
        reward = jnp.asarray(self.reward(state.obs, action, state.time), jnp.float32)
        time = state.time + 1
        terminated = time >= params.max_steps_in_episode
        # After the last step the observation stays the last one (the final observation).
        obs = jnp.where(terminated, state.obs, self.draw_obs(key, time))
        return obs, ProbeState(time=time, obs=obs), reward, terminated, {}

    def is_truncated(self, state, params):
        return jnp.array(False)

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(2)


class ConstantReward(TerminatingProbe):
    """One step, observation always 0, reward 1 whatever the action: V = 1 (the critic's bias
    alone must learn it)."""

    def reward(self, obs, action, time):
        return 1.0


class ObservedReward(TerminatingProbe):
    """One step, observation x ~ U[-1, 1], reward x whatever the action: V(x) = x."""

    def draw_obs(self, key, time):
        return jax.random.uniform(key, (1,), jnp.float32, -1.0, 1.0)

    def reward(self, obs, action, time):
        return obs[0]


class TwoSteps(TerminatingProbe):
    """Two steps whatever the actions: observation -1 then +1, rewards REWARDS[0] then
    REWARDS[1], then termination: V(+1) = REWARDS[1] and V(-1) = REWARDS[0] + γ·V(+1)."""

    horizon = 2
    REWARDS = (0.25, 1.0)

    def draw_obs(self, key, time):
        return jnp.where(time == 0, -1.0, 1.0) * jnp.ones((1,), jnp.float32)

    def reward(self, obs, action, time):
        return jnp.asarray(self.REWARDS)[time]


class ActionReward(TerminatingProbe):
    """One step, observation always 0, reward REWARDS[action]: the best action is 1 (neither the
    first nor the last, nor the second best), and V -> 1 as the policy converges."""

    REWARDS = (0.0, 1.0, 0.5)

    def reward(self, obs, action, time):
        return jnp.asarray(self.REWARDS)[action]

    def action_space(self, params=None):
        return spaces.Discrete(len(self.REWARDS))


class TargetAction(TerminatingProbe):
    """One step, observation always 0, a 2-d action a in [-3, 3]², reward -|a - TARGET|²: the mean
    action goes to TARGET (each coordinate its own target, well inside the bounds so that
    clipping the Gaussian's samples does not shift the best mean), and
    V = -|mean - TARGET|² - (σ_1² + σ_2²)."""

    TARGET = (1.0, -0.5)

    def reward(self, obs, action, time):
        return -jnp.sum(jnp.square(action - jnp.asarray(self.TARGET)))

    def action_space(self, params=None):
        return spaces.Box(-3.0, 3.0, (len(self.TARGET),), jnp.float32)


class MatchSign(TerminatingProbe):
    """One step, observation ±1 (equally likely), reward 1 for the action matching it (action 1
    for +1, action 0 for -1), else 0: the policy must read the observation; V -> 1."""

    def draw_obs(self, key, time):
        return jnp.where(jax.random.bernoulli(key), 1.0, -1.0) * jnp.ones((1,), jnp.float32)

    def reward(self, obs, action, time):
        return jnp.where((action == 1) == (obs[0] > 0), 1.0, 0.0)


class MatchObservation(TerminatingProbe):
    """One step, observation x ~ U[-1, 1], a continuous action a in [-3, 3], reward -(a - x)²:
    the mean action is x and V(x) = -(mean(x) - x)² - σ²."""

    def draw_obs(self, key, time):
        return jax.random.uniform(key, (1,), jnp.float32, -1.0, 1.0)

    def reward(self, obs, action, time):
        return -jnp.sum(jnp.square(action - obs))

    def action_space(self, params=None):
        return spaces.Box(-3.0, 3.0, (1,), jnp.float32)


def swap(time_limit_is_termination: bool):
    """Two states, each step moving to the other one whatever the action, leaving state 0 paying 0
    and leaving state 1 paying 1; one-hot observations; an episode starts in either state (equally
    likely) and ends after one step, where the true next observation is the other state and the
    reset observation is a fresh draw. Episodes of one step keep GAE's lambda out of it.

    `time_limit_is_termination=False` reports the end as a time limit (`truncated`): the step
    bootstraps and the values are the endless chain's, V(0) = γ V(1), V(1) = 1 + γ V(0).
    True reports it as a termination: V(0) = 0, V(1) = 1 (`swap_values`)."""
    transition = np.zeros((2, 2, 2), np.float32)
    transition[0, :, 1] = transition[1, :, 0] = 1.0
    params = envs.tabular.tabular_params(
        transition=transition, reward=np.array([0.0, 1.0]), initial_state_dist=np.array([0.5, 0.5]),
        observation_matrix=None, horizon=1)
    env = envs.tabular.TabularEnv(params, horizon_is_terminal=time_limit_is_termination,
                                  name="Swap")
    return env, params


def swap_values(gamma: float, time_limit_is_termination: bool) -> tuple[float, float]:
    """(V(0), V(1)) of `swap(time_limit_is_termination)`.

    (Bootstrapping from the reset observation instead of the true next one would give
    V(s) = r(s) + γ (V(0) + V(1)) / 2, that is (0.5, 1.5) at γ = 0.5 instead of (2/3, 4/3).)"""
    if time_limit_is_termination:
        return 0.0, 1.0
    v1 = 1.0 / (1.0 - gamma**2)
    return gamma * v1, v1
