"""Collect whole episodes of any policy in one jitted call."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxrl_align.types import Trajectories

# policy(key, obs) -> action, for a single observation.
Policy = Callable[[jax.Array, jax.Array], jax.Array]


def max_episode_steps(env_params) -> int:
    """The episode length bound, as a Python int (it fixes array shapes, so it must be static)."""
    return int(env_params.max_steps_in_episode)


def rollout_episodes(env, env_params, policy: Policy, key: jax.Array, num_episodes: int,
                     max_steps: int) -> Trajectories:
    """Run `num_episodes` environments side by side for `max_steps` steps and keep each one's
    first episode; steps after it ends are padding (see `Trajectories.mask`).

    Traceable: call it inside a jitted function when `policy` closes over traced parameters.
    """
    reset_key, run_key = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(reset_key, num_episodes), env_params)

    def step(carry, key):
        obs, env_state, alive = carry
        act_key, env_key = jax.random.split(key)
        acts = jax.vmap(policy)(jax.random.split(act_key, num_episodes), obs)
        next_obs, env_state, rews, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None))(jax.random.split(env_key, num_episodes), env_state,
                                               acts, env_params)
        done = jnp.logical_or(terminated, truncated)
        record = dict(next_obs=info["final_observation"], acts=acts, rews=rews,
                      terminated=terminated & alive, truncated=truncated & alive, alive=alive)
        return (next_obs, env_state, alive & ~done), record

    _, rec = jax.lax.scan(step, (obs, env_state, jnp.ones(num_episodes, bool)),
                          jax.random.split(run_key, max_steps))
    # Time-major [T, N] -> episode-major [N, T].
    rec = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), rec)
    alive = rec["alive"]
    all_obs = jnp.concatenate([obs[:, None], rec["next_obs"]], axis=1)
    pad = lambda x: jnp.where(alive.reshape(alive.shape + (1,) * (x.ndim - 2)), x, jnp.zeros_like(x))
    obs_alive = jnp.concatenate([jnp.ones_like(alive[:, :1]), alive], axis=1)
    return Trajectories(
        obs=jnp.where(obs_alive.reshape(obs_alive.shape + (1,) * (all_obs.ndim - 2)), all_obs,
                      jnp.zeros_like(all_obs)),
        acts=pad(rec["acts"]),
        rews=pad(rec["rews"]),
        terminated=rec["terminated"],
        truncated=rec["truncated"],
        lengths=jnp.sum(alive, axis=1).astype(jnp.int32),
    )


# The standalone entry point. `policy` is static, so it must be hashable: a module-level
# function or a `functools.partial` of one.
collect_episodes = jax.jit(rollout_episodes,
                           static_argnames=("env", "policy", "num_episodes", "max_steps"))
