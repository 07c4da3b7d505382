"""The shape every algorithm takes, like optax's GradientTransformation.

    algo = bc.make(config, env, env_params)     # static structure: shapes, sizes, networks
    state = algo.init(key, data[, hparams])     # arrays enter here (hparams: swept numbers)
    state, metrics = algo.update(state, data)   # one iteration: pure, jittable, vmappable

`data` carries large shared arrays (demonstrations, ...) as an argument rather than a closed-over
constant, so a new dataset never recompiles and seeds can share one copy under `vmap`
(`in_axes=(0, None)`). Algorithms that need no data take `None`.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

State = Any
Data = Any
Metrics = dict[str, jax.Array]


class Algorithm(NamedTuple):
    name: str
    init: Callable[..., State]  # init(key, data, hparams=None)
    update: Callable[[State, Data], tuple[State, Metrics]]
    # act(state, key, obs) -> action for ONE observation: the policy the run is evaluated with.
    act: Callable[[State, jax.Array, jax.Array], jax.Array]
    # Environment steps one `update` consumes (0 for offline algorithms such as BC).
    env_steps_per_update: int
    # The config dataclass `make` was called with; written to config.json by the runner.
    config: Any


def train(algo: Algorithm, key: jax.Array, data: Data, num_updates: int):
    """`init` then `lax.scan` of `update`: a whole run as one pure function.

    On CPU with jax 0.10.2, `jit(vmap(train))` deadlocked inside XLA until the concurrency-
    optimised scheduler was turned off; `import jaxrl_align` does that (see its `__init__`).
    """
    state = algo.init(key, data)

    def step(state, _):
        return algo.update(state, data)

    return jax.lax.scan(step, state, None, length=num_updates)
