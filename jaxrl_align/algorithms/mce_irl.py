"""Maximum causal entropy IRL (Ziebart 2010, thesis ch. 9–10), as imitation's `MCEIRL`.

A reward net r_θ reads the model's observation (feature) matrix and gives a reward per state.
Each `update`:
  1. soft value iteration gives the MCE policy π_θ[t, s, a] of r_θ;
  2. the forward pass gives its discounted state occupancy D_θ = Σ_t γ^t D_θ[t];
  3. one Adam step along E_{D_θ}[∇r_θ] − E_{D_demo}[∇r_θ], the gradient of
     (D_θ − D_demo) · r_θ with the occupancies held fixed.

The final state: imitation's occupancies count s_H (they sum to H + 1), but its soft value
iteration never plans for r(s_H) (Q[H−1] = r). The step-3 direction with s_H counted is then not
the gradient of any objective, and Adam drifts along it: on the 5-state test MDP the occupancy
L∞ error of a linear reward stalls near 5e-3 and a [32, 32] reward diverges. Here the
occupancies in step 3 are over the decision steps t < H, which makes it the exact gradient of
the demonstrations' causal log-likelihood (concave in a linear reward's weights); the planner
and the occupancy that the stopping rule and `state.occupancy` report are imitation's, final
state included. That is why demonstrations come as `tabular.StateVisits`, which keep the final
state apart.

Stopping rules are imitation's: a run stops once ‖D_demo − D_θ‖∞ ≤ linf_eps, or the gradient's
L2 norm ≤ grad_l2_eps, or after max_iter steps. Under `vmap` a run cannot leave the loop on its
own, so every run keeps being updated, but from the update at which it met a rule on, its
parameters are frozen (masked), and so are the policy and occupancy they give. `converged` (a
tolerance was met) and `iterations` (gradient steps taken) are in the state and the metrics.

Discount: imitation's `_train_step` calls `mce_occupancy_measures(..., discount=γ)` without a
policy, which plans with discount 1, so it fits the γ-discounted occupancy of an *undiscounted*
policy, and then returns the γ-discounted policy. Here γ is used consistently: the training
occupancy and the final policy both come from the γ-discounted soft value iteration. With γ = 1
(the default) the two agree exactly.

Data are `TabularIRLData(model, demo)`: the model is an argument, not a constant, so one
compiled program serves every MDP of the same shapes and a batch of MDPs is a `vmap` over the
data. `demo` is a `tabular.StateVisits`: exact (`visits_from_occupancy` of an expert's
occupancy measures) or estimated (`visits_from_trajectories`, `visits_from_transitions`).

`act` sees one observation and no clock, so it acts with the time marginal of the current
time-indexed policy (`tabular.time_marginal_policy`). The exact MCE policy is `state.policy`
[H, S, A]; `evaluation.exact_expected_return(model, state.policy)` is its exact return.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_align import tabular
from jaxrl_align.algorithm import Algorithm
from jaxrl_align.hparams import hparams_from_config
from jaxrl_align.networks import MLP


@dataclass(frozen=True)
class MCEIRLConfig:
    hidden: tuple[int, ...] = ()
    """hidden layer widths of the reward net; () is a linear reward (imitation's default)"""
    activation: str = "relu"
    """relu (imitation's BasicRewardNet) or tanh"""
    lr: float = 1e-2
    """Adam learning rate"""
    discount: float = 1.0
    """γ of the soft value iteration and of the occupancies"""
    linf_eps: float = 1e-3
    """stop once the occupancy L∞ error is at most this"""
    grad_l2_eps: float = 1e-4
    """stop once the gradient's L2 norm is at most this"""
    max_iter: int = 1000
    """stop after this many gradient steps"""


SWEEPABLE = ("lr", "discount", "linf_eps", "grad_l2_eps", "max_iter")


@struct.dataclass
class TabularIRLData:
    model: object  # envs.TabularParams
    demo: tabular.StateVisits  # discounted as the algorithm discounts


@struct.dataclass
class OccupancyMatchingState:
    params: dict
    opt_state: optax.OptState
    hparams: dict
    converged: jax.Array  # bool: a tolerance was met; parameters are frozen
    iterations: jax.Array  # int32: gradient steps taken
    # The policy and occupancy of the reward at the start of the last update (at init, of the
    # initial reward); once a run has stopped, of its final reward.
    policy: jax.Array  # [H, S, A]
    occupancy: jax.Array  # [S] Σ_{t=0}^{H} γ^t D[t], imitation's (final state included)
    state_dist: jax.Array  # [H+1, S] D[t, s] of `policy`, for `act`'s time marginal
    observation_codes: jax.Array  # [S, K] what `act` matches an observation against


# (model, reward [S], hparams) -> (policy [H, S, A], per-step occupancy [H+1, S], visits)
PolicyAndOccupancy = Callable[[object, jax.Array, dict],
                              tuple[jax.Array, jax.Array, tabular.StateVisits]]

# `act` finds the state of an observation by its nearest row. Storing the whole observation
# matrix per run would cost S·D (16 MB for one-hot CliffWorld 100x20); a fixed random projection
# to a few dimensions keeps distinct rows distinct at S·K.
CODE_DIM = 8


def reward_network(config, one_hot_observations: bool) -> MLP:
    return MLP(config.hidden, 1, config.activation, xnnpack_weight_grads=True,
               identity_input=one_hot_observations)


def learned_reward(config, params, model) -> jax.Array:
    """[S] the reward the net with `params` gives each state of `model` (envs.TabularParams)."""
    obs = jnp.asarray(model.observation_matrix, tabular.float_dtype())
    return reward_network(config, model.one_hot_observations).apply(params, obs)[:, 0]


def has_fixed_horizon(model) -> bool:
    """Whether occupancy matching applies to `model`: it has no terminal states (imitation's
    MCE IRL, too, covers fixed horizons only)."""
    return not np.any(np.asarray(model.terminal))


def causal_policy_and_occupancy(model, reward, hparams):
    policy = tabular.soft_value_iteration(model, reward, hparams["discount"]).policy
    occupancy = tabular.occupancy_measures(model, policy, hparams["discount"])
    return policy, occupancy.per_step, tabular.visits_from_occupancy(occupancy, hparams["discount"])


def make(config: MCEIRLConfig, env, env_params) -> Algorithm:
    return make_occupancy_matching("mce_irl", config, SWEEPABLE, causal_policy_and_occupancy,
                                   env_params)


def make_occupancy_matching(name: str, config, sweepable: tuple[str, ...],
                            policy_and_occupancy: PolicyAndOccupancy, env_params) -> Algorithm:
    """The loop MCE IRL and non-causal MaxEnt IRL share: they differ only in how a reward
    becomes a policy and an occupancy. `env_params` fixes the shapes; its arrays are not kept."""
    if not has_fixed_horizon(env_params):
        raise ValueError(f"{name}: the model has terminal states; occupancy matching here "
                         "supports fixed-horizon models only (as imitation does)")
    n_states, n_actions, _ = env_params.transition.shape
    obs_dim = env_params.observation_matrix.shape[1]
    horizon = env_params.max_steps_in_episode
    code_projection = (None if obs_dim <= CODE_DIM else
                       np.random.default_rng(0).normal(size=(obs_dim, CODE_DIM)))
    optimizer = optax.scale_by_adam()

    def observation_codes(observations):
        if code_projection is None:
            return observations
        return observations @ jnp.asarray(code_projection, observations.dtype)

    def check_data(data: TabularIRLData):
        model = data.model
        expected = {"transition": (n_states, n_actions, n_states),
                    "observation_matrix": (n_states, obs_dim)}
        for field, shape in expected.items():
            if getattr(model, field).shape != shape:
                raise ValueError(f"{name}: model.{field} has shape "
                                 f"{getattr(model, field).shape}, expected {shape}")
        if model.max_steps_in_episode != horizon:
            raise ValueError(f"{name}: model horizon {model.max_steps_in_episode}, "
                             f"expected {horizon}")
        for field, visits in data.demo._asdict().items():
            if visits.shape != (n_states,):
                raise ValueError(f"{name}: demo.{field} has shape {visits.shape}, "
                                 f"expected ({n_states},)")

    def evaluate(params, model, hparams):
        """Reward, its policy and occupancy, and the pullback of an occupancy gap to ∇θ."""
        reward, pullback = jax.vjp(
            lambda p: learned_reward(config, p, model), params)
        return (reward, pullback) + policy_and_occupancy(model, reward, hparams)

    def init(key: jax.Array, data: TabularIRLData, hparams: dict | None = None):
        check_data(data)
        model = data.model
        dtype = tabular.float_dtype()
        obs = model.observation_matrix.astype(dtype)
        # Under x64 the whole fit runs in float64, parameters included.
        params = jax.tree.map(lambda p: p.astype(dtype), reward_network(
            config, model.one_hot_observations).init(key, obs))
        hp = jax.tree.map(lambda v: v.astype(dtype),
                          hparams_from_config(config, sweepable, hparams))
        _, _, policy, per_step, visits = evaluate(params, model, hp)
        return OccupancyMatchingState(
            params=params, opt_state=optimizer.init(params), hparams=hp,
            converged=jnp.array(False), iterations=jnp.int32(0), policy=policy,
            occupancy=visits.total, state_dist=per_step,
            observation_codes=observation_codes(obs))

    def update(state: OccupancyMatchingState, data: TabularIRLData):
        hp = state.hparams
        reward, pullback, policy, per_step, visits = evaluate(state.params, data.model, hp)
        demo = jax.tree.map(lambda v: v.astype(reward.dtype), data.demo)
        gap = visits.decision_steps - demo.decision_steps
        (grads,) = pullback(gap)
        linf_delta = jnp.max(jnp.abs(visits.total - demo.total))
        grad_norm = optax.tree.norm(grads)
        converged = (state.converged | (linf_delta <= hp["linf_eps"])
                     | (grad_norm <= hp["grad_l2_eps"]))
        stopped = converged | (state.iterations >= hp["max_iter"])

        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, jax.tree.map(lambda u: -hp["lr"] * u, updates))
        # Stopping is sticky, so freezing the parameters freezes the result; the optimiser's
        # moments may drift on, unread. (Masking them as well cost ~35 µs a step on CPU: XLA
        # then ran the scans on a second thread.)
        new_state = state.replace(
            params=jax.tree.map(lambda old, new: jnp.where(stopped, old, new), state.params,
                                params),
            opt_state=opt_state,
            converged=converged, iterations=state.iterations + (~stopped).astype(jnp.int32),
            policy=policy, occupancy=visits.total, state_dist=per_step)
        metrics = dict(
            linf_delta=linf_delta, grad_norm=grad_norm, loss=jnp.dot(gap, reward),
            weight_norm=optax.tree.norm(state.params),
            converged=converged.astype(jnp.float32),
            iterations=new_state.iterations.astype(jnp.float32))
        return new_state, metrics

    def act(state: OccupancyMatchingState, key: jax.Array, obs: jax.Array,
            deterministic: bool = True):
        if not jnp.issubdtype(obs.dtype, jnp.integer):
            obs = observation_codes(obs.astype(state.observation_codes.dtype))
        s = tabular.state_indices(obs, state.observation_codes)
        # The time marginal of one state only: O(H·A) per call, nothing extra in `update`.
        probs = tabular.time_marginal_policy(state.policy[:, s, None],
                                             state.state_dist[:, s, None])[0]
        if deterministic:
            return jnp.argmax(probs)
        return jax.random.categorical(key, jnp.log(probs))

    return Algorithm(name=name, init=init, update=update, act=act, env_steps_per_update=0,
                     config=config)
