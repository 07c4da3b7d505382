"""The shape every algorithm takes, like optax's GradientTransformation.

    algo = bc.make(config, env, env_params)         # static structure: shapes, sizes, networks
    state = algo.init(key, data, hparams=None)      # arrays enter here
    state, metrics = algo.update(state, data)       # one iteration: pure, jittable, vmappable
    action = algo.act(state, key, obs)              # the policy the run is evaluated with

`config` is a pytree (see `jaxrl_align.hparams`): its static fields fix the program, its leaves
are the numeric hyperparameters. `hparams` is a config-shaped pytree of (possibly traced) arrays;
`None` takes the config's own values. The state keeps it as `state.hparams`.

`data` carries large shared arrays (demonstrations, a tabular model, ...) as an argument rather
than a closed-over constant, so a new dataset never recompiles and seeds share one copy under
`vmap` (`in_axes=(0, None)`). Algorithms that need no data take `None`.

Every state has `env_steps` (a field or a property): the environment steps the algorithm has
taken so far, `init`'s included (0 for algorithms that never act, such as BC).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

State = Any
Data = Any
Metrics = dict[str, jax.Array]


class Algorithm(NamedTuple):
    name: str
    # The config `make` was called with: static structure plus default hyperparameters.
    config: Any
    init: Callable[..., State]  # init(key, data, hparams=None) -> state
    update: Callable[[State, Data], tuple[State, Metrics]]
    # act(state, key, obs, deterministic=True) -> action for ONE observation.
    act: Callable[..., jax.Array]


def train(algo: Algorithm, key: jax.Array, data: Data, num_updates: int, hparams=None):
    """`init` then `lax.scan` of `update`: a whole run as one pure function."""
    state = algo.init(key, data, hparams)

    def step(state, _):
        return algo.update(state, data)

    return jax.lax.scan(step, state, None, length=num_updates)
