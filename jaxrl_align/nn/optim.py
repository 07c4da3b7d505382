"""The optimisers, all optax, with traced hyperparameters.

A run's learning rate (and weight decay) are leaves of its hyperparameter pytree
(`state.hparams`, see `jaxrl_align.hparams`). The optax transformation is built from those
values wherever it is used, at `init` and at every `update`, so a sweep over learning rates is
one more `vmap` axis and never recompiles; annealing is an optax schedule (a static multiplier
of the traced rate, its step count in the optimiser state), never a hand-applied step.

    opt_state = optim.adam(state.hparams.lr).init(params)
    updates, opt_state = optim.adam(state.hparams.lr).update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)

Deviation from the letter of the design (deliberate, measured): `optax.inject_hyperparams`,
which would keep a second copy of the rate in the optimiser state, costs every gradient step a
step counter and copies of the hyperparameters in the scan's carry: BC with 16 seeds ran
~25% slower with it (docs/performance.md). The transformation here is the same function of the
same numbers, bit for bit.
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import optax


def adam(learning_rate, *, eps: float = 1e-8, max_grad_norm: float | None = None,
         schedule: Callable | None = None, weight_decay=None) -> optax.GradientTransformation:
    """Adam with a (traced) `learning_rate`; optionally the global gradient norm clipped to
    `max_grad_norm` first, decoupled `weight_decay` (AdamW), and the learning rate multiplied by
    `schedule(step)`."""
    parts = [] if max_grad_norm is None else [optax.clip_by_global_norm(max_grad_norm)]
    parts.append(optax.scale_by_adam(eps=eps))
    if weight_decay is not None:
        parts.append(optax.add_decayed_weights(weight_decay))
    step = learning_rate if schedule is None else (lambda count: learning_rate * schedule(count))
    parts.append(optax.scale_by_learning_rate(step))
    return optax.chain(*parts)


def adamw(learning_rate, weight_decay, *, eps: float = 1e-8) -> optax.GradientTransformation:
    """AdamW (decoupled weight decay, as torch's AdamW) with a traced learning rate and decay."""
    return adam(learning_rate, eps=eps, weight_decay=weight_decay)


def linear_decay_per_update(steps_per_update: int, num_updates: int) -> Callable:
    """The multiplier 1 − u / num_updates during update u (PureJaxRL's PPO annealing: constant
    within an update's `steps_per_update` gradient steps), and 0 from update `num_updates` on:
    a run longer than the schedule stops learning rather than ascending."""
    def schedule(count):
        fraction = (count // steps_per_update).astype(jnp.float32) / num_updates
        return jnp.maximum(1.0 - fraction, 0.0)
    return schedule
