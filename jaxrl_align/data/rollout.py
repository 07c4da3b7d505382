"""The one environment-step scan (`unroll`) that every rollout uses, and whole episodes of any
policy (`rollout_episodes`, `collect_episodes`).

    (obs, env_state, key), records = unroll(env, env_params, act, obs, env_state, key, T)

steps E environments side by side T times: each step splits the carried key into the next key,
an action key (for `act`) and an environment key (split once per environment), and records a
time-major `Transitions` [T, E] with the executed actions, the rewards, the true next
observation (`info["final_observation"]`, never the auto-reset one) and `terminated` and
`truncated` apart. PPO's rollout, the ε-greedy query rollouts of preference comparisons, the
evaluation episodes and the throughput benchmark are all this scan.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_align.types import Trajectories, Transitions

# policy(key, obs) -> action, for a single observation.
Policy = Callable[[jax.Array, jax.Array], jax.Array]
# act(key, obs [E, ...]) -> (actions the environments execute [E, ...], extras: any pytree)
BatchAct = Callable[[jax.Array, jax.Array], tuple[jax.Array, Any]]


@struct.dataclass
class EpisodeReturnState:
    env_state: Any
    episode_return: jax.Array  # undiscounted return of the episode in progress


class EpisodeReturn:
    """`env` with the return of the episode in progress kept in its state (PureJaxRL's
    `LogWrapper`), so a rollout's carry stays `(obs, env_state, key)`. On every step
    `info["episode_return"]` is the return so far, the step's reward included: on the step an
    episode ends (terminated or truncated), that episode's whole return."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self, key: jax.Array, params=None):
        obs, env_state = self.env.reset(key, params)
        return obs, EpisodeReturnState(env_state, jnp.zeros(()))

    def step(self, key: jax.Array, state: EpisodeReturnState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params)
        episode_return = state.episode_return + reward
        info = {**info, "episode_return": episode_return}
        ongoing = jnp.where(terminated | truncated, 0.0, episode_return)
        return obs, EpisodeReturnState(env_state, ongoing), reward, terminated, truncated, info


def max_episode_steps(env_params) -> int:
    """The episode length bound, as a Python int (it fixes array shapes, so it must be static)."""
    return int(env_params.max_steps_in_episode)


def reset(env, env_params, key: jax.Array, num_envs: int):
    """(obs [E, ...], env_state) of `num_envs` fresh episodes."""
    return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), env_params)


def default_record(step: Transitions, extras, info):
    del info
    return step, extras


def unroll(env, env_params, act: BatchAct, obs, env_state, key: jax.Array, num_steps: int,
           record: Callable = default_record):
    """`num_steps` steps of the batch of environments in `env_state` (auto-reset included).

    `record(step, extras, info)` chooses what each step keeps (default `(step, extras)`;
    returning less keeps the scan's outputs small). Returns `((obs, env_state, key), records)`
    with the records stacked time-major."""
    num_envs = jax.tree.leaves(obs)[0].shape[0]

    def step(carry, _):
        obs, env_state, key = carry
        key, act_key, env_key = jax.random.split(key, 3)
        acts, extras = act(act_key, obs)
        next_obs, env_state, rews, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None))(jax.random.split(env_key, num_envs), env_state,
                                               acts, env_params)
        transition = Transitions(obs, acts, info["final_observation"], terminated, rews, truncated)
        return (next_obs, env_state, key), record(transition, extras, info)

    return jax.lax.scan(step, (obs, env_state, key), None, length=num_steps)


def rollout_episodes(env, env_params, policy: Policy, key: jax.Array, num_episodes: int,
                     max_steps: int) -> Trajectories:
    """Run `num_episodes` environments side by side for `max_steps` steps and keep each one's
    first episode; steps after it ends are padding (see `Trajectories.mask`).

    Traceable: call it inside a jitted function when `policy` closes over traced parameters.
    """
    reset_key, run_key = jax.random.split(key)
    obs, env_state = reset(env, env_params, reset_key, num_episodes)

    def act(key, obs):
        return jax.vmap(policy)(jax.random.split(key, num_episodes), obs), ()

    _, (steps, _) = unroll(env, env_params, act, obs, env_state, run_key, max_steps)
    # Time-major [T, N] -> episode-major [N, T].
    steps = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), steps)
    done = (steps.terminated | steps.truncated).astype(jnp.int32)
    alive = (jnp.cumsum(done, axis=1) - done) == 0  # no episode end before this step
    pad = lambda mask, x: jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 2)), x,
                                    jnp.zeros_like(x))
    all_obs = jnp.concatenate([obs[:, None], steps.next_obs], axis=1)
    obs_alive = jnp.concatenate([jnp.ones_like(alive[:, :1]), alive], axis=1)
    return Trajectories(
        obs=pad(obs_alive, all_obs),
        acts=pad(alive, steps.acts),
        rews=pad(alive, steps.rews),
        terminated=steps.terminated & alive,
        truncated=steps.truncated & alive,
        lengths=jnp.sum(alive, axis=1).astype(jnp.int32),
    )


# The standalone entry point. `policy` is static, so it must be hashable: a module-level
# function or a `functools.partial` of one.
collect_episodes = jax.jit(rollout_episodes,
                           static_argnames=("env", "policy", "num_episodes", "max_steps"))
