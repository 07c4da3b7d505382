"""Optimal policies of the diagnostic tasks, and the returns they and the uniformly
random policy get, in closed form wherever one exists.

Tabular tasks are solved by finite-horizon value iteration on their exact model;
every other task has a hand-written optimal controller (see each module's
`expert_action`). A policy is `policy(key, obs) -> action` for one observation.
"""

import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from envs.diagnostics import largest_sum, noisy_obs, parabola, proc_goal, sort
from envs.tabular import TabularEnv, TabularParams

Policy = Callable[[jax.Array, jax.Array], jax.Array]


def optimal_q_values(params: TabularParams) -> jax.Array:
    """[H, S, A] optimal action values with H steps to go at t = 0: leaving s pays
    R[s], and entering a terminal state ends the episode (nothing more is paid)."""
    alive = 1.0 - params.terminal.astype(jnp.float32)

    def backup(next_values, _):
        q = params.reward[:, None] + params.transition @ (alive * next_values)
        return q.max(-1), q

    n_states = params.reward.shape[0]
    _, q = jax.lax.scan(
        backup, jnp.zeros(n_states), None, length=params.max_steps_in_episode
    )
    return q[::-1]


def optimal_return(params: TabularParams) -> jax.Array:
    """The expected return of an optimal (time-dependent) policy."""
    return params.initial_state_dist @ optimal_q_values(params)[0].max(-1)


def tabular_expert_actions(params: TabularParams) -> jax.Array:
    """[S] greedy actions for the whole horizon ahead. A stationary policy (our
    policies do not see the time), optimal on every seals task: tests check that
    its exact return equals `optimal_return`."""
    return jnp.argmax(optimal_q_values(params)[0], axis=-1).astype(jnp.int32)


def expert_policy(env, params) -> Policy:
    """An optimal policy of the diagnostic task `env` (with its `params`)."""
    if isinstance(env, TabularEnv):
        actions = tabular_expert_actions(params)
        if env.observe_state_index:
            return lambda key, obs: actions[obs]
        # Observations are rows of the observation matrix (one-hot or features such as
        # CliffWorld's XY): the state is the nearest row.
        rows = params.observation_matrix
        return lambda key, obs: actions[jnp.argmin(jnp.sum((rows - obs) ** 2, axis=-1))]
    experts = {
        largest_sum.ENV_ID: lambda key, obs: largest_sum.expert_action(obs),
        noisy_obs.ENV_ID: lambda key, obs: noisy_obs.expert_action(obs, params),
        parabola.ENV_ID: lambda key, obs: parabola.expert_action(obs, params),
        proc_goal.ENV_ID: lambda key, obs: proc_goal.expert_action(obs),
        sort.ENV_ID: lambda key, obs: sort.expert_action(obs),
    }
    try:
        return experts[env.name]
    except KeyError:
        raise ValueError(
            f"no expert policy for {env.name!r}; known: tabular tasks and "
            f"{', '.join(experts)}"
        ) from None


def sort_expert_return(length: int = 4, time_limit: int = 6) -> float:
    """Exact expected return of `sort.expert_action` on Sort from U[0, 1]^length.

    The list's order is a uniform permutation. The shaping terms telescope to
    length - (initially correct); the expert sorts in length - cycles swaps k, after
    which every step pays the sorted bonus: time_limit - max(k, 1) + 1 of them.
    """
    total = 0.0
    permutations = list(itertools.permutations(range(length)))
    for permutation in permutations:
        fixed = sum(i == p for i, p in enumerate(permutation))
        swaps = length - _n_cycles(permutation)
        sorted_bonus = max(time_limit - max(swaps, 1) + 1, 0)
        total += length - fixed + sorted_bonus
    return total / len(permutations)


def _n_cycles(permutation: tuple[int, ...]) -> int:
    seen = np.zeros(len(permutation), bool)
    cycles = 0
    for start in range(len(permutation)):
        if not seen[start]:
            cycles += 1
            i = start
            while not seen[i]:
                seen[i] = True
                i = permutation[i]
    return cycles


# Returns in closed form, for the registered (default) parameters.
CLOSED_FORM_RETURNS: dict[str, dict[str, float]] = {
    # Every corner is 4 moves from the centre; each of the other 11 steps leaves the
    # centre and pays 1.
    noisy_obs.ENV_ID: {"expert": 11.0},
    # The expert is always right, a coin half the time.
    largest_sum.ENV_ID: {"expert": 1.0, "random": 0.5},
    # y starts on the parabola and stays on it: every squared distance is 0.
    parabola.ENV_ID: {"expert": 0.0},
    # The distance paid falls 10, 9, ..., 1 and then stays 0.
    proc_goal.ENV_ID: {"expert": -55.0},
    sort.ENV_ID: {"expert": sort_expert_return()},
}
