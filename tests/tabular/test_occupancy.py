"""Occupancy measures, state visits and exact expected returns (`jaxrl_align.tabular`): their
dtype, their sums on batches of MDPs, the three demonstration formats, and exact returns by hand,
against Monte Carlo, under jit/vmap, x64 and a traced horizon, and against rollouts of the env.

Also home to the models the tabular and the occupancy-matching tests share (`reasonable_pomdp`,
`expert_visits`, `expected_return`). Tests that compare to 1e-3 or tighter run in float64 inside
`jax.enable_x64(True)` (a context manager, so the rest of the session keeps float32)."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import envs
from jaxrl_align import tabular
from jaxrl_align.evaluation import evaluate_policy
from jaxrl_align.tabular import exact_expected_return
from jaxrl_align.types import flatten_trajectories


def reasonable_pomdp():
    """imitation's `ReasonablePOMDP` (tests/algorithms/test_mce_irl.py): 5 states, 3 actions,
    horizon 20, an 8-dimensional observation matrix."""
    observation_matrix = np.array([[3, -5, -1, -1, -4, 5, 3, 0],
                                   [4, -4, 2, 2, -4, -1, -2, -2],
                                   [3, -1, 5, -1, 0, 2, -5, 2],
                                   [-5, -1, 4, 1, 4, 1, 5, 3],
                                   [2, -5, 1, -5, 1, 4, 4, -3]])
    from_1_or_2 = [[0, 0, 0, 0.05, 0.95], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]
    transition = np.array([[[0, 0.9, 0.1, 0, 0], [0, 0, 0, 1, 0], [0, 0.1, 0.9, 0, 0]],
                           from_1_or_2, from_1_or_2,
                           [[0, 0, 0, 0, 1]] * 3,
                           [[1, 0, 0, 0, 0]] * 3])
    return envs.tabular_params(transition=transition, reward=[1, 2, 2, -20, 3],
                               initial_state_dist=[0.5, 0, 0, 0, 0.5],
                               observation_matrix=observation_matrix, horizon=20)


@jax.jit
def expert_visits(model, discount=1.0):
    """The exact visits of the soft-optimal policy of the model's true reward."""
    policy = tabular.soft_value_iteration(model, model.reward, discount).policy
    return policy, tabular.visits_from_occupancy(
        tabular.occupancy_measures(model, policy, discount), discount)


@jax.jit
def expected_return(model, policy):
    # Under x64 the policy is float64 and the model float32: computed in float64.
    return tabular.exact_expected_return(model, policy)


# ---------------------------------------------------------------- occupancy measures, visits

def test_float32_by_default():
    model = reasonable_pomdp()
    policy, visits = expert_visits(model)
    assert policy.dtype == visits.total.dtype == jnp.float32


def test_occupancy_sums_on_a_batch_of_random_mdps():
    """Σ_s D = H + 1, or (1 − γ^{H+1}) / (1 − γ), for every MDP of a batch (one vmapped call)."""
    horizon = 15
    keys = jax.random.split(jax.random.PRNGKey(1), 16)
    models = jax.vmap(lambda k: envs.random_mdp_params(k, 12, 3, 3, horizon, 4))(keys)
    with jax.enable_x64(True):
        for discount in (0.0, 0.9, 1.0):
            totals = jax.vmap(lambda m: expert_visits(m, discount)[1].total)(models)
            expected = (horizon + 1 if discount == 1.0
                        else (1 - discount**(horizon + 1)) / (1 - discount))
            np.testing.assert_allclose(totals.sum(axis=1), expected, rtol=1e-6)
            assert np.all(totals >= 0)


# ---------------------------------------------------------------- demonstration formats

def test_three_demonstration_formats_agree():
    """A deterministic MDP and policy make every episode the same, so the exact occupancy
    measure, trajectories (one-hot observations matched back to states) and flat transitions
    must all give the same visits: the definitions agree (discounting, the final state, the
    H + 1 normalisation), not just the estimates."""
    model = envs.random_mdp_params(jax.random.PRNGKey(3), 7, 3, 1, 6, None)
    policy = jax.nn.one_hot(jnp.arange(7) % 3, 3)

    @jax.jit
    def exact_and_sampled(discount):
        exact = tabular.visits_from_occupancy(
            tabular.occupancy_measures(model, policy, discount), discount)
        trajs = tabular.sample_trajectories(jax.random.PRNGKey(0), model, policy, 3)
        trajs = trajs.replace(obs=model.observation_matrix[trajs.obs])  # as the env observes
        return exact, trajs, tabular.visits_from_trajectories(trajs, 7, discount,
                                                              model.observation_matrix)

    for discount in (0.9, 1.0):
        exact, trajs, from_trajs = exact_and_sampled(discount)
        for a, b in zip(exact, from_trajs):
            np.testing.assert_allclose(a, b, atol=1e-6)
    from_trans = tabular.visits_from_transitions(flatten_trajectories(trajs), 7, 6,
                                                 observation_matrix=model.observation_matrix)
    for a, b in zip(exact, from_trans):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert float(from_trans.total.sum()) == pytest.approx(7)
    assert float(from_trans.final_state.sum()) == pytest.approx(1)


# ---------------------------------------------------------------- exact expected returns

@struct.dataclass
class TabularParams:
    transition: jax.Array
    reward: jax.Array
    initial_state_dist: jax.Array
    terminal: jax.Array
    max_steps_in_episode: int = struct.field(pytree_node=False, default=3)


def three_state_mdp(initial=(1.0, 0.0, 0.0), terminal=(False, False, True)) -> TabularParams:
    """State 0: action 0 -> state 1, action 1 -> state 2 (terminal, reward 10).
    State 1: either action -> 0 or 1 with probability 1/2. State 2 is absorbing."""
    transition = np.zeros((3, 2, 3), np.float32)
    transition[0, 0, 1] = transition[0, 1, 2] = 1.0
    transition[1, :, 0] = transition[1, :, 1] = 0.5
    transition[2, :, 2] = 1.0
    return TabularParams(transition=jnp.asarray(transition),
                         reward=jnp.array([1.0, 2.0, 10.0]),
                         initial_state_dist=jnp.asarray(initial, jnp.float32),
                         terminal=jnp.asarray(terminal))


UNIFORM_AT_0 = jnp.array([[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])


def monte_carlo_return(params: TabularParams, policy_probs, num_episodes=200_000, seed=0):
    """Simulate seals semantics: pay R[s] on leaving s; an episode stops on entering a terminal
    state or after H steps. Returns (mean, standard error)."""
    rng = np.random.default_rng(seed)
    transition, reward = np.asarray(params.transition), np.asarray(params.reward)
    terminal, pi = np.asarray(params.terminal), np.asarray(policy_probs)
    num_states = reward.shape[0]
    state = rng.choice(num_states, size=num_episodes, p=np.asarray(params.initial_state_dist))
    alive = np.ones(num_episodes, bool)
    total = np.zeros(num_episodes)
    for t in range(params.max_steps_in_episode):
        pi_t = pi[t] if pi.ndim == 3 else pi
        total += np.where(alive, reward[state], 0.0)
        action = (rng.random(num_episodes)[:, None] > np.cumsum(pi_t[state], axis=1)).sum(axis=1)
        next_dist = transition[state, action]
        state = (rng.random(num_episodes)[:, None] > np.cumsum(next_dist, axis=1)).sum(axis=1)
        alive &= ~terminal[state]
    return total.mean(), total.std() / np.sqrt(num_episodes)


def test_exact_return_by_hand():
    params = three_state_mdp()
    # t=0: in state 0, pay 1. t=1: half went to terminal state 2 (ended, unpaid), half in
    # state 1, pay 0.5*2. t=2: that half split between 0 and 1, pay 0.25*1 + 0.25*2.
    assert exact_expected_return(params, UNIFORM_AT_0) == pytest.approx(1 + 1 + 0.75)
    assert exact_expected_return(params, UNIFORM_AT_0, discount=0.9) == pytest.approx(
        1 + 0.9 * 1 + 0.81 * 0.75)
    # Without terminal states the mass in state 2 keeps paying 10 per step.
    absorbing = three_state_mdp(terminal=(False, False, False))
    assert exact_expected_return(absorbing, UNIFORM_AT_0) == pytest.approx(1 + 6 + 5.75)


def test_exact_return_is_the_reward_of_the_occupancy_measure():
    """The return and the occupancy measure are one forward recursion: with the mass entering
    a terminal state dropped, the return is the reward of the visits in the decision steps,
    Σ_{t<H} γ^t D[t]·R (the final state is never left, so never paid)."""
    params = three_state_mdp(initial=(0.6, 0.3, 0.1)).replace(max_steps_in_episode=6)
    time_varying = jnp.stack([UNIFORM_AT_0, jnp.array([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]])] * 3)
    for policy in (UNIFORM_AT_0, time_varying):
        for discount in (0.9, 1.0):
            occupancy = tabular.occupancy_measures(params, policy, discount, drop_terminal=True)
            visits = tabular.visits_from_occupancy(occupancy, discount)
            assert float(exact_expected_return(params, policy, discount)) == pytest.approx(
                float(visits.decision_steps @ params.reward), rel=1e-6)


def test_exact_return_matches_monte_carlo():
    params = three_state_mdp(initial=(0.6, 0.3, 0.1)).replace(max_steps_in_episode=6)
    time_varying = jnp.stack([UNIFORM_AT_0, jnp.array([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]])] * 3)
    for policy in (UNIFORM_AT_0, time_varying):
        mean, stderr = monte_carlo_return(params, policy)
        assert float(exact_expected_return(params, policy)) == pytest.approx(mean, abs=4 * stderr)


def test_exact_return_jits_and_vmaps_over_mdps():
    params = three_state_mdp()
    other = three_state_mdp(initial=(0.0, 1.0, 0.0))
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, other)
    batched = jax.jit(jax.vmap(exact_expected_return, in_axes=(0, None)))(batch, UNIFORM_AT_0)
    np.testing.assert_allclose(batched, [exact_expected_return(params, UNIFORM_AT_0),
                                         exact_expected_return(other, UNIFORM_AT_0)], rtol=1e-6)
    # A time-indexed policy that repeats the stationary one gives the same value.
    repeated = jnp.broadcast_to(UNIFORM_AT_0, (3, 3, 2))
    assert jax.jit(exact_expected_return)(params, repeated) == pytest.approx(2.75)


def test_exact_return_of_a_float64_policy_on_a_float32_model():
    """Under x64, MCE IRL's policies are float64 while env models stay float32: the return is
    computed in the wider dtype."""
    params = three_state_mdp()
    with jax.enable_x64(True):
        policy = jnp.asarray(UNIFORM_AT_0, jnp.float64)
        value = jax.jit(exact_expected_return)(params, policy)
        assert value.dtype == jnp.float64 and float(value) == pytest.approx(2.75, rel=1e-12)


def test_exact_return_with_a_traced_horizon():
    """Envs may keep the horizon as an array leaf of params; a batch of them is then traced."""
    @struct.dataclass
    class ArrayHorizonParams:
        transition: jax.Array
        reward: jax.Array
        initial_state_dist: jax.Array
        terminal: jax.Array
        max_steps_in_episode: jax.Array

    base = three_state_mdp()
    stacked = {name: jnp.stack([getattr(base, name)] * 2)
               for name in ("transition", "reward", "initial_state_dist", "terminal")}
    batch = ArrayHorizonParams(**stacked, max_steps_in_episode=jnp.array([1, 3]))
    returns = jax.jit(jax.vmap(exact_expected_return, in_axes=(0, None)))(batch, UNIFORM_AT_0)
    np.testing.assert_allclose(returns, [1.0, 2.75], rtol=1e-6)


def random_action(num_actions, key, obs):
    return jax.random.randint(key, (), 0, num_actions)


def test_exact_return_matches_rollouts_on_cliffworld():
    """Cross-check against the real tabular env."""
    env, params = envs.make("seals/CliffWorld7x4-v0")
    num_actions = params.transition.shape[1]
    uniform = jnp.full(params.transition.shape[:2], 1.0 / num_actions)
    returns = np.asarray(evaluate_policy(env, params, partial(random_action, num_actions),
                                         jax.random.key(0), num_episodes=20_000))
    stderr = returns.std() / np.sqrt(returns.size)
    assert float(exact_expected_return(params, uniform)) == pytest.approx(
        returns.mean(), abs=4 * stderr + 1e-4)
