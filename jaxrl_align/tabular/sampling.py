"""Episodes drawn from a tabular model itself, for policies that see the time step."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl_align.types import Trajectories


def sample_trajectories(key: jax.Array, model, policy: jax.Array,
                        num_episodes: int) -> Trajectories:
    """`num_episodes` episodes of a time-indexed [H, S, A] (or stationary [S, A]) policy, drawn
    from the model. Observations are state indices; rewards are the state rewards paid on leaving
    each state, and the horizon is reported as termination, as seals' tabular envs do. Gives
    expert demonstrations of an MCE policy, which `rollout` cannot (its policies see no clock)."""
    n_states, n_actions, _ = model.transition.shape
    horizon = model.max_steps_in_episode
    policy = jnp.broadcast_to(policy, (horizon, n_states, n_actions))
    log_transition = jnp.log(model.transition)
    initial_key, steps_key = jax.random.split(key)
    first = jax.random.categorical(initial_key, jnp.log(model.initial_state_dist),
                                   shape=(num_episodes,))

    def step(states, inputs):
        key, policy_t = inputs
        action_key, next_key = jax.random.split(key)
        actions = jax.random.categorical(action_key, jnp.log(policy_t[states]))
        next_states = jax.random.categorical(next_key, log_transition[states, actions])
        return next_states, (actions, next_states, model.reward[states])

    _, (actions, later, rewards) = jax.lax.scan(
        step, first, (jax.random.split(steps_key, horizon), policy))
    end = jnp.arange(horizon) == horizon - 1
    return Trajectories(
        obs=jnp.concatenate([first[:, None], later.T], axis=1).astype(jnp.int32),
        acts=actions.T.astype(jnp.int32),
        rews=rewards.T,
        terminated=jnp.broadcast_to(end, (num_episodes, horizon)),
        truncated=jnp.zeros((num_episodes, horizon), bool),
        lengths=jnp.full(num_episodes, horizon, jnp.int32),
    )
