"""Occupancy measures of tabular policies, exact expected returns, and the state visits of
demonstrations (imitation's `mce_occupancy_measures` and `MCEIRL`'s demo handling).

One forward recursion (`_propagate`) serves them all:
    D[0] = initial distribution,  D[t+1] = Σ_{s,a} D[t, s] π[t, s, a] T[s, a, :],
optionally dropping the mass that enters a terminal state (that episode has ended: its reward
is never paid again). The discounted total Σ_{t=0}^{H} γ^t D[t] counts the final state too, so it
sums to H + 1 (undiscounted) or (1 − γ^{H+1}) / (1 − γ).

Demonstrations become `StateVisits`, the same discounted counts split into the decision steps
and the final state (see `StateVisits` for why), from an occupancy measure, from trajectories or
from transitions. All functions are pure and traceable; they vmap over batches of models.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_align.tabular.planning import float_dtype
from jaxrl_align.types import Trajectories, Transitions


class Occupancy(NamedTuple):
    per_step: jax.Array  # [H+1, S] D[t, s]: probability of being in s at step t
    total: jax.Array  # [S] Σ_t γ^t D[t, s]: expected discounted number of visits


def _propagate(state_dist, policy_t, transition, alive):
    """One step of the forward recursion: D[t+1] from D[t] [S], π[t] [S, A], the transitions
    as [S·A, S] and `alive` [S] (1 − terminal, or 1)."""
    return ((state_dist[:, None] * policy_t).reshape(-1) @ transition) * alive


def _arrays(model, policy, dtype, drop_terminal: bool):
    n_states, n_actions, _ = model.transition.shape
    transition = model.transition.astype(dtype).reshape(n_states * n_actions, n_states)
    terminal = getattr(model, "terminal", None) if drop_terminal else None
    alive = jnp.ones((), dtype) if terminal is None else 1.0 - jnp.asarray(terminal, dtype)
    return transition, jnp.asarray(policy, dtype), alive


def occupancy_measures(model, policy: jax.Array, discount=1.0, *, drop_terminal: bool = False,
                       dtype=None) -> Occupancy:
    """State occupancy of a tabular policy, imitation's `mce_occupancy_measures`.

    `policy` is time-indexed [H, S, A] or stationary [S, A]; `discount` weighs step t by γ^t
    in the total (the per-step distributions are undiscounted probabilities). `drop_terminal`
    removes the mass entering a terminal state (imitation's MCE IRL has none). `dtype` defaults
    to float64 under x64, float32 otherwise.
    """
    dtype = float_dtype() if dtype is None else dtype
    n_states, n_actions, _ = model.transition.shape
    horizon = model.max_steps_in_episode
    transition, policy, alive = _arrays(model, policy, dtype, drop_terminal)
    policy = jnp.broadcast_to(policy, (horizon, n_states, n_actions))
    initial = model.initial_state_dist.astype(dtype)

    def forward(state_dist, policy_t):
        next_dist = _propagate(state_dist, policy_t, transition, alive)
        return next_dist, next_dist

    _, later = jax.lax.scan(forward, initial, policy)
    per_step = jnp.concatenate([initial[None], later])
    weights = jnp.asarray(discount, dtype) ** jnp.arange(horizon + 1, dtype=dtype)
    return Occupancy(per_step, weights @ per_step)


def exact_expected_return(model, policy_probs: jax.Array, discount: float = 1.0) -> jax.Array:
    """Expected return of a tabular policy, computed exactly from the model: Σ_{t<H} γ^t D[t]·R,
    with R[s] the reward of the state being left (seals) and mass entering a terminal state
    dropped.

    `model` holds `transition` [S, A, S], `reward` [S], `initial_state_dist` [S],
    `max_steps_in_episode` (the horizon H) and optionally `terminal` [S] bool. `policy_probs` is
    [S, A] (stationary) or [H, S, A] (time-indexed; its length sets H). Computed in the wider of
    the model's and the policy's dtypes. The horizon may be traced (a batched
    `max_steps_in_episode` leaf); the loop is then a `while_loop`, not reverse-differentiable.
    """
    time_indexed = policy_probs.ndim == 3
    horizon = policy_probs.shape[0] if time_indexed else model.max_steps_in_episode
    dtype = jnp.result_type(model.reward, model.transition, policy_probs)
    transition, policy, alive = _arrays(model, policy_probs, dtype, drop_terminal=True)
    reward = model.reward.astype(dtype)

    def step(t, carry):
        state_dist, total, weight = carry
        total = total + weight * jnp.dot(state_dist, reward)
        state_dist = _propagate(state_dist, policy[t] if time_indexed else policy, transition,
                                alive)
        return state_dist, total, weight * discount

    initial = (model.initial_state_dist.astype(dtype), jnp.zeros((), dtype), jnp.ones((), dtype))
    return jax.lax.fori_loop(0, horizon, step, initial)[1]


def time_marginal_policy(policy: jax.Array, per_step_occupancy: jax.Array) -> jax.Array:
    """[S, A] the stationary policy Σ_t D[t, s] π[t, s, a] / Σ_t D[t, s]: what a time-indexed
    policy does in s on average over the steps it is there. States it never visits get the
    plain average over steps."""
    weights = per_step_occupancy[: policy.shape[0]]
    visits = jnp.sum(weights, axis=0)
    weighted = jnp.einsum("ts,tsa->sa", weights, policy) / jnp.where(visits > 0, visits, 1)[:, None]
    return jnp.where((visits > 0)[:, None], weighted, jnp.mean(policy, axis=0))


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


