"""Random tabular MDPs (seals' `RandomTransitionEnv`, seals/Random-v0).

Each (s, a) leads to a uniformly chosen number in [1, branch_factor] of distinct
successor states with Dirichlet(1, ..., 1) probabilities; the initial distribution
is a Dirichlet over `branch_factor` distinct states; observations are N(0, 2^2)
vectors (or one-hot); the reward is linear in the observation with N(0, 1) weights.

Two generators follow that recipe:
- `seals_random_transition_params` replays seals' NumPy calls in seals' order, so a
  given `generator_seed` gives exactly seals' matrices (the registered seals/Random-v0).
- `random_mdp_params` draws from the same distribution with a JAX key, so a batch of
  fresh MDPs is one `vmap` over keys.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from envs.tabular import TabularEnv, TabularParams, tabular_params

SEALS_RANDOM_KWARGS = dict(
    n_states=16,
    n_actions=3,
    branch_factor=2,
    horizon=20,
    random_obs=True,
    obs_dim=5,
    generator_seed=42,
)


def _check_obs_args(random_obs: bool, obs_dim: int | None, n_states: int) -> int | None:
    if not random_obs and obs_dim is not None:
        raise ValueError("obs_dim must be None if random_obs is False")
    if random_obs and obs_dim is None:
        return n_states  # seals' default
    return obs_dim


def seals_random_transition_params(
    *,
    n_states: int,
    n_actions: int,
    branch_factor: int,
    horizon: int,
    random_obs: bool,
    obs_dim: int | None = None,
    generator_seed: int | None = None,
) -> TabularParams:
    """The model of seals' `RandomTransitionEnv(...)` with the same arguments."""
    obs_dim = _check_obs_args(random_obs, obs_dim, n_states)
    rng = np.random.default_rng(generator_seed)
    # The order of the draws below is seals' order; changing it changes the MDP.
    if random_obs:
        observation_matrix = rng.normal(0, 2, (n_states, obs_dim)).astype(np.float32)
    else:
        observation_matrix = np.identity(n_states).astype(np.float32)

    transition = np.zeros((n_states, n_actions, n_states), dtype=np.float32)
    for state in range(n_states):
        for action in range(n_actions):
            n_successors = rng.integers(1, branch_factor + 1)
            successors = rng.choice(n_states, size=(n_successors,), replace=False)
            probs = rng.dirichlet(np.ones((n_successors,)))
            transition[state, action, successors] = probs / np.sum(probs)

    initial_state_dist = np.zeros((n_states,))
    initial_states = rng.choice(n_states, size=(branch_factor,), replace=False)
    initial_state_dist[initial_states] = rng.dirichlet(np.ones((branch_factor,)))
    initial_state_dist = initial_state_dist / np.sum(initial_state_dist)

    reward_weights = rng.normal(size=(observation_matrix.shape[-1],))
    return tabular_params(
        transition=transition,
        reward=observation_matrix @ reward_weights,
        initial_state_dist=initial_state_dist,
        observation_matrix=observation_matrix if random_obs else None,  # None: one-hot
        horizon=horizon,
    )


def _flat_draw(sampler, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """`sampler(key, shape)` drawn flat and reshaped: under `vmap` over keys, XLA's
    CPU compile time for a threefry draw grows steeply with the rank of its shape
    (about 0.7 s for 1-D, 8 s for 3-D with jax 0.10.2)."""
    return sampler(key, (int(np.prod(shape)),)).reshape(shape)


def _random_subset_dirichlet(
    key: jax.Array, n_chosen: jax.Array, n_states: int
) -> jax.Array:
    """Rows of a flat Dirichlet over `n_chosen[i]` uniformly chosen distinct states,
    as a [len(n_chosen), S] matrix."""
    shape = (2, n_chosen.shape[0], n_states)
    # Bounded away from 0 so that every Exp(1) draw below is finite and positive
    # (a zero weight on a lone successor would give 0/0).
    uniform = partial(jax.random.uniform, minval=jnp.finfo(jnp.float32).tiny)
    scores, uniforms = _flat_draw(uniform, key, shape)
    # The n_chosen states with the smallest scores are a uniform subset.
    ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
    chosen = ranks < n_chosen[:, None]
    # Normalised Exp(1) draws over the chosen states are Dirichlet(1, ..., 1).
    weights = jnp.where(chosen, -jnp.log(uniforms), 0.0)
    return weights / jnp.sum(weights, axis=-1, keepdims=True)


def random_mdp_params(
    key: jax.Array,
    n_states: int,
    n_actions: int,
    branch_factor: int,
    horizon: int,
    obs_dim: int | None,
) -> TabularParams:
    """A fresh random MDP from seals' recipe; `obs_dim=None` gives one-hot observations.

    Pure and traceable in `key` (the sizes are static), so
    `jax.vmap(lambda k: random_mdp_params(k, ...))(keys)` is a batch of MDPs.
    """
    if not 0 < branch_factor <= n_states:
        raise ValueError(
            f"branch_factor must be in [1, {n_states}], got {branch_factor}"
        )
    key_gaussian, key_branch, key_dists = jax.random.split(key, 3)
    feature_dim = n_states if obs_dim is None else obs_dim
    # Rows 0..S-1: observations (scaled to std 2); last row: reward weights.
    gaussian = _flat_draw(jax.random.normal, key_gaussian, (n_states + 1, feature_dim))
    # One-hot observations: the reward weights are the state rewards (identity features).
    observation_matrix = None if obs_dim is None else 2.0 * gaussian[:n_states]
    reward_weights = gaussian[n_states]

    # The S*A successor distributions, then the initial distribution on `branch_factor`
    # states, all drawn at once.
    n_successors = jax.random.randint(
        key_branch, (n_states * n_actions,), 1, branch_factor + 1
    )
    n_chosen = jnp.append(n_successors, branch_factor)
    dists = _random_subset_dirichlet(key_dists, n_chosen, n_states)
    return tabular_params(
        transition=dists[:-1].reshape(n_states, n_actions, n_states),
        reward=reward_weights if obs_dim is None else observation_matrix @ reward_weights,
        initial_state_dist=dists[-1],
        observation_matrix=observation_matrix,
        horizon=horizon,
    )


def make_random_transition(**kwargs) -> tuple[TabularEnv, TabularParams]:
    """seals/Random-v0; keyword arguments override seals' registered arguments
    (`n_states`, `n_actions`, `branch_factor`, `horizon`, `random_obs`, `obs_dim`,
    `generator_seed`)."""
    params = seals_random_transition_params(**{**SEALS_RANDOM_KWARGS, **kwargs})
    return TabularEnv(params, name="seals/Random-v0"), params
