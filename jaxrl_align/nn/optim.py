"""The optimisers, all optax, with traced hyperparameters.

Each is wrapped in `optax.inject_hyperparams`, so its learning rate (and weight decay) live in
the optimiser state as arrays: a run's value enters at `init` from its hyperparameter pytree,
and a sweep over learning rates is one more `vmap` axis with no recompilation. Annealing is an
optax schedule (a static multiplier of the traced learning rate), never a hand-applied step.

    tx = optim.adam(hparams.lr)                   # at init: the run's (traced) value
    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params)   # reads the value from the state
    params = optax.apply_updates(params, updates)
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import optax


def _adam(learning_rate, weight_decay, eps: float, max_grad_norm: float | None,
          schedule: Callable | None) -> optax.GradientTransformation:
    parts = [] if max_grad_norm is None else [optax.clip_by_global_norm(max_grad_norm)]
    parts.append(optax.scale_by_adam(eps=eps))
    if weight_decay is not None:
        parts.append(optax.add_decayed_weights(weight_decay))
    step = learning_rate if schedule is None else (lambda count: learning_rate * schedule(count))
    parts.append(optax.scale_by_learning_rate(step))
    return optax.chain(*parts)


_injected = optax.inject_hyperparams(_adam, static_args=("eps", "max_grad_norm", "schedule"))


def adam(learning_rate, *, eps: float = 1e-8, max_grad_norm: float | None = None,
         schedule: Callable | None = None) -> optax.GradientTransformation:
    """Adam with a traced `learning_rate`; optionally the global gradient norm clipped to
    `max_grad_norm` first, and the learning rate multiplied by `schedule(step)`."""
    return _injected(learning_rate=learning_rate, weight_decay=None, eps=eps,
                     max_grad_norm=max_grad_norm, schedule=schedule)


def adamw(learning_rate, weight_decay, *, eps: float = 1e-8) -> optax.GradientTransformation:
    """AdamW (decoupled weight decay, as torch's AdamW) with a traced learning rate and decay."""
    return _injected(learning_rate=learning_rate, weight_decay=weight_decay, eps=eps,
                     max_grad_norm=None, schedule=None)


def linear_decay_per_update(steps_per_update: int, num_updates: int) -> Callable:
    """The multiplier 1 − u / num_updates during update u (PureJaxRL's PPO annealing: constant
    within an update's `steps_per_update` gradient steps), and 0 from update `num_updates` on:
    a run longer than the schedule stops learning rather than ascending."""
    def schedule(count):
        fraction = (count // steps_per_update).astype(jnp.float32) / num_updates
        return jnp.maximum(1.0 - fraction, 0.0)
    return schedule
