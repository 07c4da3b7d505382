"""Exact computations on tabular models: soft value iteration, occupancy measures, and the
state occupancy of demonstrations.

Definitions are imitation's (`mce_partition_fh`, `mce_occupancy_measures`, `MCEIRL`'s demo
handling), on the arrays of `envs.TabularParams` (`transition` [S, A, S], `initial_state_dist`
[S], static horizon H = `max_steps_in_episode`):

- Decisions are made at t = 0 … H−1 and states are observed at t = 0 … H (H + 1 of them).
- Soft value iteration plans for the state reward r[s] of the states decided in:
  Q[H−1] = r, Q[t] = r + γ·T V[t+1], V[t] = logsumexp_a Q[t], π[t] = exp(Q[t] − V[t]).
- Occupancy: D[0] = initial distribution, D[t+1] = Σ_{s,a} D[t, s] π[t, s, a] T[s, a, :], and the
  discounted total Σ_{t=0}^{H} γ^t D[t] counts the final state too, so it sums to H + 1
  (undiscounted) or (1 − γ^{H+1}) / (1 − γ).

Demonstrations become `StateVisits`, the same discounted counts split into the decision steps
and the final state (see `StateVisits` for why), from an occupancy measure, from trajectories or
from transitions.

Everything runs in float64 when `jax_enable_x64` is on and in float32 otherwise: inputs (float32
in `TabularParams`) are cast to the default float type. Terminal states are not modelled (as in
imitation, which supports fixed horizons only).

All functions are pure and traceable; they vmap over batches of models (a batched
`TabularParams`), rewards and policies.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_align.types import Trajectories, Transitions


def float_dtype():
    """float64 when `jax_enable_x64` is on, float32 otherwise."""
    return jnp.result_type(float)


class SoftValues(NamedTuple):
    value: jax.Array  # [H, S] V[t, s]
    q_value: jax.Array  # [H, S, A] Q[t, s, a]
    policy: jax.Array  # [H, S, A] π[t, s, a] = exp(Q − V), the maximum causal entropy policy


class Occupancy(NamedTuple):
    per_step: jax.Array  # [H+1, S] D[t, s]: probability of being in s at step t
    total: jax.Array  # [S] Σ_t γ^t D[t, s]: expected discounted number of visits


def soft_value_iteration(model, reward: jax.Array, discount=1.0) -> SoftValues:
    """The finite-horizon soft Bellman backup (Ziebart 2010, eqs. 9.1–9.3), imitation's
    `mce_partition_fh`. `reward` is a state reward [S]; `discount` may be traced."""
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

    XLA:CPU reduces a short minor axis one element at a time: for 256 MDPs of 28 states x 4
    actions the sum took ~150 µs of each backup step, a third of a batched soft value
    iteration. With few actions the reductions run over the action columns instead, as
    elementwise maxima and sums across states, in the same fused loop as the exponentials.
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


def occupancy_measures(model, policy: jax.Array, discount=1.0) -> Occupancy:
    """State occupancy of a tabular policy, imitation's `mce_occupancy_measures`.

    `policy` is time-indexed [H, S, A] or stationary [S, A]; `discount` weighs step t by γ^t
    in the total (the per-step distributions are undiscounted probabilities).
    """
    dtype = float_dtype()
    n_states, n_actions, _ = model.transition.shape
    horizon = model.max_steps_in_episode
    transition = model.transition.astype(dtype).reshape(n_states * n_actions, n_states)
    policy = jnp.broadcast_to(jnp.asarray(policy, dtype), (horizon, n_states, n_actions))
    initial = model.initial_state_dist.astype(dtype)

    def forward(state_dist, policy_t):
        next_dist = (state_dist[:, None] * policy_t).reshape(-1) @ transition
        return next_dist, next_dist

    _, later = jax.lax.scan(forward, initial, policy)
    per_step = jnp.concatenate([initial[None], later])
    weights = jnp.asarray(discount, dtype) ** jnp.arange(horizon + 1, dtype=dtype)
    return Occupancy(per_step, weights @ per_step)


def time_marginal_policy(policy: jax.Array, per_step_occupancy: jax.Array) -> jax.Array:
    """[S, A] the stationary policy Σ_t D[t, s] π[t, s, a] / Σ_t D[t, s]: what a time-indexed
    policy does in s on average over the steps it is there. States it never visits get the
    plain average over steps."""
    weights = per_step_occupancy[: policy.shape[0]]
    visits = jnp.sum(weights, axis=0)
    weighted = jnp.einsum("ts,tsa->sa", weights, policy) / jnp.where(visits > 0, visits, 1)[:, None]
    return jnp.where((visits > 0)[:, None], weighted, jnp.mean(policy, axis=0))


# -- demonstrations ------------------------------------------------------------------------------

def state_indices(observations: jax.Array, observation_matrix: jax.Array | None) -> jax.Array:
    """The state index of each observation. Integer observations (`Discrete` state spaces) are
    indices already; vector observations are matched to the nearest row of
    `observation_matrix` [S, D], whose rows must be distinct."""
    if jnp.issubdtype(observations.dtype, jnp.integer):
        return observations.astype(jnp.int32)
    if observation_matrix is None:
        raise ValueError("vector observations need the observation_matrix to map them to states")
    # ‖x − m‖² up to the ‖x‖² that every row shares: never materialises [..., S, D].
    rows = jnp.asarray(observation_matrix, observations.dtype)
    distance = jnp.sum(rows**2, axis=-1) - 2 * observations @ rows.T
    return jnp.argmin(distance, axis=-1).astype(jnp.int32)


class StateVisits(NamedTuple):
    """A demonstrator's discounted state visits, split where the MCE IRL gradient needs it.

    `total` is imitation's demonstration occupancy. The final state s_H is counted there but
    its reward is never planned for (Q[H−1] = r), so the gradient of the demonstrations'
    log-likelihood only involves the decision steps; keeping the two parts apart lets the
    algorithms use the exact gradient and still report imitation's L∞ error.
    """

    decision_steps: jax.Array  # [S] Σ_{t<H} γ^t 1[s_t = s]: states the demonstrator acted in
    final_state: jax.Array  # [S] γ^H 1[s_H = s]: the state each episode ended in

    @property
    def total(self) -> jax.Array:
        return self.decision_steps + self.final_state


def visits_from_occupancy(occupancy: Occupancy, discount=1.0) -> StateVisits:
    """The exact visits of a policy from its `occupancy_measures`."""
    horizon = occupancy.per_step.shape[0] - 1
    final_state = jnp.asarray(discount, occupancy.total.dtype) ** horizon * occupancy.per_step[-1]
    return StateVisits(occupancy.total - final_state, final_state)


def visits_from_trajectories(trajs: Trajectories, n_states: int, discount=1.0,
                             observation_matrix: jax.Array | None = None) -> StateVisits:
    """Discounted state counts per episode, final state included: imitation's
    `_set_demo_from_trajectories`, Σ_episodes Σ_{t=0}^{length} γ^t 1[s_t = s] / N.
    Padding after an episode's end is ignored."""
    dtype = float_dtype()
    states = state_indices(trajs.obs, observation_matrix)  # [N, T+1]
    steps = jnp.arange(states.shape[1])
    weights = jnp.asarray(discount, dtype) ** steps.astype(dtype) / states.shape[0]
    count = lambda mask: jnp.zeros(n_states, dtype).at[states].add(jnp.where(mask, weights, 0))
    lengths = trajs.lengths[:, None]
    return StateVisits(count(steps[None, :] < lengths), count(steps[None, :] == lengths))


def visits_from_transitions(transitions: Transitions, n_states: int, horizon: int,
                            episode_end: jax.Array | None = None,
                            observation_matrix: jax.Array | None = None) -> StateVisits:
    """Undiscounted state counts of flat transitions, imitation's `_set_demo_from_obs`: every
    `obs`, plus the `next_obs` of each episode's last transition (it appears nowhere else),
    scaled so that the total sums to H + 1.

    `episode_end` marks those last transitions; it defaults to `transitions.terminated`, right
    for seals' tabular envs, whose horizon is a termination. For an env whose horizon is a
    `TimeLimit` truncation, pass `terminated | truncated` from the trajectories. Transitions carry
    no time step, so they cannot be discounted (imitation refuses that too).
    """
    dtype = float_dtype()
    ends = transitions.terminated if episode_end is None else episode_end
    states = state_indices(transitions.obs, observation_matrix)
    final_states = state_indices(transitions.next_obs, observation_matrix)
    decision_steps = jnp.zeros(n_states, dtype).at[states].add(1)
    final_state = jnp.zeros(n_states, dtype).at[final_states].add(jnp.asarray(ends, dtype))
    scale = (horizon + 1) / (jnp.sum(decision_steps) + jnp.sum(final_state))
    return StateVisits(decision_steps * scale, final_state * scale)


def sample_trajectories(key: jax.Array, model, policy: jax.Array,
                        num_episodes: int) -> Trajectories:
    """`num_episodes` episodes of a time-indexed [H, S, A] (or stationary [S, A]) policy, drawn
    from the model itself. Observations are state indices; rewards are the state rewards paid on
    leaving each state, and the horizon is reported as termination, as seals' tabular envs do.
    Gives expert demonstrations of an MCE policy, which `rollout` cannot (its policies see no
    time step)."""
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
