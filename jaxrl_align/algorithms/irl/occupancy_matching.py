"""Occupancy matching: the loop MCE IRL and non-causal MaxEnt IRL share. They differ only in
how a reward becomes a policy and an occupancy (a `PolicyAndOccupancy` function).

A reward net r_θ reads the model's observation (feature) matrix and gives a reward per state.
Each `update`:
  1. the reward's policy π_θ[t, s, a] and its discounted state occupancy D_θ;
  2. one Adam step along E_{D_θ}[∇r_θ] − E_{D_demo}[∇r_θ], the gradient of
     (D_θ − D_demo) · r_θ with the occupancies held fixed, over the decision steps t < H
     (see `mce_irl` for why the final state is left out).

Stopping rules are imitation's: a run stops once ‖D_demo − D_θ‖∞ ≤ linf_eps, or the gradient's
L2 norm ≤ grad_l2_eps, or after max_iter steps. Under `vmap` a run cannot leave the loop on its
own, so every run keeps being updated, but from the update at which it met a rule on, its
parameters are frozen (masked), and so are the policy and occupancy they give. `converged` (a
tolerance was met) and `iterations` (gradient steps taken) are in the state and the metrics.

Data are `TabularIRLData(model, demo)`: the model is an argument, not a constant, so one
compiled program serves every MDP of the same shapes and a batch of MDPs is a `vmap` over the
data. `demo` is a `tabular.StateVisits`: exact (`visits_from_occupancy` of an expert's
occupancy measures) or estimated (`visits_from_trajectories`, `visits_from_transitions`);
`expert_data` makes either from a model's own soft-optimal expert.

`act` sees one observation and no clock, so it acts with the time marginal of the current
time-indexed policy (`tabular.time_marginal_policy`). The exact policy is `state.policy`
[H, S, A]; `tabular.exact_expected_return(model, state.policy)` is its exact return.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_align import tabular
from jaxrl_align.algorithm import Algorithm
from jaxrl_align.hparams import as_arrays, check_choice, check_widths, static
from jaxrl_align.nn import optim
from jaxrl_align.nn.mlp import ACTIVATIONS, MLP


@struct.dataclass
class OccupancyMatchingConfig:
    """What every occupancy-matching algorithm is configured by (imitation's MCE IRL defaults)."""

    hidden: tuple[int, ...] = static(())
    """hidden layer widths of the reward net; () is a linear reward (imitation's default)"""
    activation: str = static("relu")
    """relu (imitation's BasicRewardNet) or tanh"""
    lr: float = 1e-2
    """Adam learning rate"""
    linf_eps: float = 1e-3
    """stop once the occupancy L∞ error is at most this"""
    grad_l2_eps: float = 1e-4
    """stop once the gradient's L2 norm is at most this"""
    max_iter: int = 1000
    """stop after this many gradient steps"""

    def __post_init__(self):
        check_widths("hidden", self.hidden)
        check_choice("activation", self.activation, ACTIVATIONS)

    @property
    def num_updates(self) -> int:
        return int(self.max_iter)


@struct.dataclass
class TabularIRLData:
    model: object  # envs.TabularParams
    demo: tabular.StateVisits  # discounted as the algorithm discounts


@struct.dataclass
class OccupancyMatchingState:
    params: dict
    opt_state: optax.OptState
    hparams: object  # the algorithm's config, with array leaves
    converged: jax.Array  # bool: a tolerance was met; parameters are frozen
    iterations: jax.Array  # int32: gradient steps taken
    # The policy and occupancy of the reward at the start of the last update (at init, of the
    # initial reward); once a run has stopped, of its final reward.
    policy: jax.Array  # [H, S, A]
    occupancy: jax.Array  # [S] Σ_{t=0}^{H} γ^t D[t], imitation's (final state included)
    state_dist: jax.Array  # [H+1, S] D[t, s] of `policy`, for `act`'s time marginal
    observation_codes: jax.Array  # [S, K] what `act` matches an observation against

    @property
    def env_steps(self) -> jax.Array:
        return jnp.zeros((), jnp.int32)  # planning on the model, never acting


# (model, reward [S], hparams) -> (policy [H, S, A], per-step occupancy [H+1, S], visits)
PolicyAndOccupancy = Callable[[object, jax.Array, object],
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


def expert_data(model, discount=1.0, num_episodes: int = 0, key=None,
                trajectories=None) -> TabularIRLData:
    """Demonstrations for occupancy matching on `model`: the visits of `trajectories` (e.g. a
    demonstrations file), or of the model's own soft-optimal expert, exactly (`num_episodes` 0)
    or from `num_episodes` episodes sampled with `key`."""
    n_states = model.transition.shape[0]
    if trajectories is not None:
        visits = tabular.visits_from_trajectories(trajectories, n_states, discount,
                                                  model.observation_matrix)
        return TabularIRLData(model, visits)
    if num_episodes < 0:
        raise ValueError(f"expert episodes: expected 0 (exact occupancy) or a positive number, "
                         f"got {num_episodes}")
    expert = tabular.soft_value_iteration(model, model.reward, discount).policy
    if num_episodes == 0:
        visits = tabular.visits_from_occupancy(
            tabular.occupancy_measures(model, expert, discount), discount)
    else:
        trajs = tabular.sample_trajectories(key, model, expert, num_episodes)
        visits = tabular.visits_from_trajectories(trajs, n_states, discount)
    return TabularIRLData(model, visits)


def make(name: str, config, policy_and_occupancy: PolicyAndOccupancy, env_params) -> Algorithm:
    """The occupancy-matching algorithm `name` for models shaped like `env_params` (its arrays
    are not kept). `config` has hidden, activation and the leaves lr, linf_eps, grad_l2_eps,
    max_iter (and whatever `policy_and_occupancy` reads, e.g. discount)."""
    if not has_fixed_horizon(env_params):
        raise ValueError(f"{name}: the model has terminal states; occupancy matching here "
                         "supports fixed-horizon models only (as imitation does)")
    n_states, n_actions, _ = env_params.transition.shape
    obs_dim = env_params.observation_matrix.shape[1]
    horizon = env_params.max_steps_in_episode
    code_projection = (None if obs_dim <= CODE_DIM else
                       np.random.default_rng(0).normal(size=(obs_dim, CODE_DIM)))

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
        reward, pullback = jax.vjp(lambda p: learned_reward(config, p, model), params)
        return (reward, pullback) + policy_and_occupancy(model, reward, hparams)

    def init(key: jax.Array, data: TabularIRLData, hparams=None):
        check_data(data)
        model = data.model
        dtype = tabular.float_dtype()
        obs = model.observation_matrix.astype(dtype)
        # Under x64 the whole fit runs in float64, parameters and hyperparameters included.
        params = jax.tree.map(lambda p: p.astype(dtype), reward_network(
            config, model.one_hot_observations).init(key, obs))
        hparams = as_arrays(config) if hparams is None else hparams
        hp = jax.tree.map(lambda v: jnp.asarray(v).astype(dtype), hparams)
        _, _, policy, per_step, visits = evaluate(params, model, hp)
        return OccupancyMatchingState(
            params=params, opt_state=optim.adam(hp.lr).init(params), hparams=hp,
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
        converged = (state.converged | (linf_delta <= hp.linf_eps)
                     | (grad_norm <= hp.grad_l2_eps))
        stopped = converged | (state.iterations >= hp.max_iter)

        updates, opt_state = optim.adam(hp.lr).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # Stopping is sticky, so freezing the parameters freezes the result; the optimiser's
        # moments may drift on, unread (masking them too ran the scans on a second thread).
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

    return Algorithm(name=name, config=config, init=init, update=update, act=act)
