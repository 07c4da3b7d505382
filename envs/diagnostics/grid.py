"""seals' deterministic grid moves (`seals.util.grid_transition_fn`)."""

import jax
import jax.numpy as jnp
import numpy as np

# Action -> (dx, dy): right, down, left, up, stay; (0, 0) is the top-left corner.
GRID_MOVES = np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [0, 0]], np.int32)
N_GRID_ACTIONS = 5


def grid_move(position: jax.Array, action: jax.Array) -> jax.Array:
    """`position` [2] int32 moved by `action`, unbounded (bound it with `jnp.clip`)."""
    return position + jnp.asarray(GRID_MOVES)[action]


def grid_action_towards(position: jax.Array, target: jax.Array) -> jax.Array:
    """A move that shortens the L1 distance to `target` (x first), or stay there."""
    dx, dy = target[0] - position[0], target[1] - position[1]
    return jnp.select(
        [dx > 0, dx < 0, dy > 0, dy < 0], [0, 2, 1, 3], default=4
    ).astype(jnp.int32)
