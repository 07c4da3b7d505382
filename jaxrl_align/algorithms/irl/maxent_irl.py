"""Maximum entropy IRL (Ziebart et al., 2008), the non-causal contrast to MCE IRL.

The demonstrator is modelled as choosing whole trajectories from each start state, with
probability proportional to their exponentiated reward (a trajectory-level partition function):

    P(τ | s_0) ∝ Π_{t<H} T(s_{t+1} | s_t, a_t) · exp(Σ_{t<H} r(s_t)).

Under deterministic dynamics this is the MCE distribution. Under stochastic dynamics it is not:
a trajectory's weight counts its lucky outcomes as if the demonstrator had chosen them, so a
gamble looks as good as its best outcomes (RiskyPath's risky action, for instance). MCE IRL
conditions each action on the past only (causal entropy) and does not make that mistake.

Backward pass, log partition functions with V[H] = 0:
    Q[t](s, a) = r(s) + log Σ_{s'} T(s' | s, a) exp V[t+1](s'),    V[t](s) = logsumexp_a Q[t](s, a)
so π[t](a | s) = exp(Q[t] − V[t]) is the probability of a_t = a given s_t = s under P(τ).

Forward pass, the exact marginals of P(τ): under it the next state is tilted towards high V,
P(a, s' | s, t) = T(s' | s, a) exp(r(s) + V[t+1](s') − V[t](s)), whose action part cancels:
    D[t+1](s') = exp V[t+1](s') · Σ_s D[t](s) exp(r(s) − V[t](s)) Σ_a T(s' | s, a).
(Ziebart 2008's Algorithm 1 instead pushes π through the untilted dynamics, which is not a
marginal of P(τ) when the dynamics are stochastic.) With these marginals, occupancy matching
over the decision steps is the exact gradient of the demonstrations' log-likelihood under P(τ).

Everything else (reward nets, Adam, stopping rules under `vmap`, data, `act` with the policy's
time marginal π) is occupancy matching's (`jaxrl_align.algorithms.irl.occupancy_matching`). The
model is undiscounted, as in the paper.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_align import tabular
from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms.irl import occupancy_matching


@struct.dataclass
class MaxEntIRLConfig(occupancy_matching.OccupancyMatchingConfig):
    """Occupancy matching's settings; the model is undiscounted."""


def trajectory_log_partition(model, reward: jax.Array) -> tabular.SoftValues:
    """The backward pass: V[t, s] = log Σ over trajectories from s at step t of their weight,
    Q[t, s, a] the same with a_t = a, and π[t, s, a] = P(a_t = a | s_t = s)."""
    dtype = tabular.float_dtype()
    transition = model.transition.astype(dtype)
    reward = jnp.asarray(reward, dtype)[:, None]

    def backup(next_value, _):
        q_value = reward + jax.nn.logsumexp(next_value, axis=-1, b=transition)
        value, policy = tabular.soft_max_over_actions(q_value)
        return value, (value, q_value, policy)

    _, (value, q_value, policy) = jax.lax.scan(backup, jnp.zeros(transition.shape[0], dtype),
                                               None, length=model.max_steps_in_episode,
                                               reverse=True)
    return tabular.SoftValues(value, q_value, policy)


def trajectory_occupancy(model, reward: jax.Array) -> tuple[jax.Array, tabular.Occupancy]:
    """(π [H, S, A], per-step and total state marginals of P(τ)); the total sums to H + 1."""
    dtype = tabular.float_dtype()
    soft = trajectory_log_partition(model, reward)
    successors = jnp.sum(model.transition.astype(dtype), axis=1)  # [S, S'] Σ_a T(s' | s, a)
    reward = jnp.asarray(reward, dtype)
    next_values = jnp.concatenate([soft.value[1:], jnp.zeros_like(soft.value[:1])])
    # In log space: exp V[t+1] and exp(−V[t]) each overflow for long horizons or large rewards.
    log_initial = jnp.log(model.initial_state_dist.astype(dtype))

    def forward(log_dist, values):
        value, next_value = values
        log_weight = log_dist + reward - value
        log_next = next_value + jax.nn.logsumexp(log_weight[:, None], axis=0, b=successors)
        return log_next, log_next

    _, log_later = jax.lax.scan(forward, log_initial, (soft.value, next_values))
    per_step = jnp.exp(jnp.concatenate([log_initial[None], log_later]))
    return soft.policy, tabular.Occupancy(per_step, jnp.sum(per_step, axis=0))


def noncausal_policy_and_occupancy(model, reward, hparams):
    del hparams  # undiscounted
    policy, occupancy = trajectory_occupancy(model, reward)
    return policy, occupancy.per_step, tabular.visits_from_occupancy(occupancy)


def make(config: MaxEntIRLConfig, env, env_params) -> Algorithm:
    return occupancy_matching.make("maxent_irl", config, noncausal_policy_and_occupancy,
                                   env_params)
