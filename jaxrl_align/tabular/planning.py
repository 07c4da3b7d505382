"""Finite-horizon soft value iteration on a tabular model (imitation's `mce_partition_fh`).

Definitions are imitation's, on the arrays of `envs.TabularParams` (`transition` [S, A, S],
static horizon H = `max_steps_in_episode`): decisions are made at t = 0 … H−1, and the backup
plans for the state reward r[s] of the states decided in:
    Q[H−1] = r,  Q[t] = r + γ·T V[t+1],  V[t] = logsumexp_a Q[t],  π[t] = exp(Q[t] − V[t]).

Everything runs in float64 when `jax_enable_x64` is on and in float32 otherwise; it is pure and
vmaps over batches of models, rewards and discounts.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp


def float_dtype():
    """float64 when `jax_enable_x64` is on, float32 otherwise."""
    return jnp.result_type(float)


class SoftValues(NamedTuple):
    value: jax.Array  # [H, S] V[t, s]
    q_value: jax.Array  # [H, S, A] Q[t, s, a]
    policy: jax.Array  # [H, S, A] π[t, s, a] = exp(Q − V), the maximum causal entropy policy


def soft_value_iteration(model, reward: jax.Array, discount=1.0) -> SoftValues:
    """The finite-horizon soft Bellman backup (Ziebart 2010, eqs. 9.1–9.3). `reward` is a state
    reward [S]; `discount` may be traced."""
    dtype = float_dtype()
    n_states, n_actions, _ = model.transition.shape
    # [S·A, S] so that each backup is one matrix-vector product.
    transition = model.transition.astype(dtype).reshape(n_states * n_actions, n_states)
    reward = jnp.asarray(reward, dtype)[:, None]
    discount = jnp.asarray(discount, dtype)

    def backup(next_value, _):
        q_value = reward + discount * (transition @ next_value).reshape(n_states, n_actions)
        value, policy = soft_max_over_actions(q_value)
        return value, (value, q_value, policy)

    # V after the last decision is 0, which makes Q[H−1] = r without a special case.
    _, (value, q_value, policy) = jax.lax.scan(backup, jnp.zeros(n_states, dtype), None,
                                               length=model.max_steps_in_episode, reverse=True)
    return SoftValues(value, q_value, policy)


# Up to this many actions, `soft_max_over_actions` reduces over action columns.
MAX_COLUMN_ACTIONS = 16


def soft_max_over_actions(q_value: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(logsumexp over the last axis, softmax over it) of Q [..., A]: the soft value and the
    MCE policy of each state.

    XLA:CPU reduces a short minor axis one element at a time (a third of a batched soft value
    iteration's time for 4 actions). With few actions the reductions run over the action
    columns instead, as elementwise maxima and sums across states, in the same fused loop as
    the exponentials.
    """
    n_actions = q_value.shape[-1]
    if n_actions > MAX_COLUMN_ACTIONS:
        value = jax.nn.logsumexp(q_value, axis=-1)
        return value, jnp.exp(q_value - value[..., None])
    columns = lambda x: [x[..., a] for a in range(n_actions)]
    peak = functools.reduce(jnp.maximum, columns(q_value))
    # As jax.nn.logsumexp: a state whose actions are all -inf gets value -inf, not NaN.
    peak = jax.lax.stop_gradient(jnp.where(jnp.isfinite(peak), peak, 0))
    weights = jnp.exp(q_value - peak[..., None])
    total = functools.reduce(jnp.add, columns(weights))
    return peak + jnp.log(total), weights / total[..., None]
