"""seals' diagnostic tasks in JAX against the seals originals.

Where both sides are deterministic given the state and action, each of a few thousand
random (state, action) pairs must give the same next state, observation, reward,
termination and truncation. Where seals draws from NumPy's generator (initial states,
NoisyObs' noise, RiskyPath's coin) the streams cannot be matched, so the two
distributions are compared with chi-square and Kolmogorov-Smirnov tests at fixed
seeds (a failure is then reproducible, not flaky).
"""

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from tests.envs.seals_conformance import assert_same_space, batched_step, make_seals

import envs
from envs.diagnostics import DIAGNOSTIC_ENVS
from envs.diagnostics.largest_sum import LargestSumState
from envs.diagnostics.noisy_obs import NoisyObsState
from envs.diagnostics.parabola import ParabolaState
from envs.diagnostics.proc_goal import ProcGoalState
from envs.diagnostics.sort import SortState
from envs.tabular import TabularState

N_PAIRS = 2000
N_RESETS = 2000
# Distributions count as different below this p-value. The seeds are fixed, so a
# pass or a fail is reproducible rather than a 1-in-1000 accident.
P_VALUE = 1e-3

DIAGNOSTIC_IDS = list(DIAGNOSTIC_ENVS)
TABULAR_IDS = [i for i in DIAGNOSTIC_IDS if envs.is_tabular(envs.make(i)[0])]
NON_TABULAR_IDS = [i for i in DIAGNOSTIC_IDS if i not in TABULAR_IDS]


@dataclass(frozen=True)
class StateCodec:
    """How one environment's states look on both sides."""

    # (rng, n) -> n random seals states, stacked.
    random_states: Callable[[np.random.Generator, int], np.ndarray]
    # Stacked seals states -> our batched state (at time 0).
    ours: Callable[[np.ndarray], Any]
    # Our batched state -> stacked seals states.
    theirs: Callable[[Any], np.ndarray]
    # (rng, n) -> n random actions in seals' action space.
    random_actions: Callable[[np.random.Generator, int], np.ndarray]
    # The part of an observation that is a function of the state (NoisyObs adds noise).
    observed_state: Callable[[np.ndarray], np.ndarray] = lambda obs: obs


def zeros_time(n):
    return jnp.zeros(n, jnp.int32)


def tabular_codec(env_id):
    env, _ = envs.make(env_id)
    return StateCodec(
        random_states=lambda rng, n: rng.integers(0, env.n_states, n),
        ours=lambda s: TabularState(s=jnp.asarray(s, jnp.int32), time=zeros_time(len(s))),
        theirs=lambda state: np.asarray(state.s, np.int64),
        random_actions=lambda rng, n: rng.integers(0, env.n_actions, n),
    )


def uniform_vectors(length):
    return lambda rng, n: rng.random((n, length), dtype=np.float32)


def sort_states(rng, n):
    """Random lists, sorted lists and lists one swap away from sorted, so that the
    sorted bonus and every change in the number of correct positions occur."""
    states = np.sort(rng.random((n, 4), dtype=np.float32), axis=1)
    rows = np.arange(n)
    i, j = rng.integers(0, 4, (2, n))
    states[rows, i], states[rows, j] = states[rows, j], states[rows, i].copy()
    shuffled = rng.permuted(states, axis=1)
    return np.where((rows % 3 == 0)[:, None], shuffled, states)


def parabola_states(rng, n):
    high = np.array([5.0, 5.0, 1.0, 1.0, 1.0], np.float32)
    return rng.uniform(-high, high, (n, 5)).astype(np.float32)


CODECS = {
    **{env_id: tabular_codec(env_id) for env_id in TABULAR_IDS},
    "seals/NoisyObs-v0": StateCodec(
        random_states=lambda rng, n: rng.integers(0, 5, (n, 2)),
        ours=lambda s: NoisyObsState(
            position=jnp.asarray(s, jnp.int32), time=zeros_time(len(s))
        ),
        theirs=lambda state: np.asarray(state.position, np.int64),
        random_actions=lambda rng, n: rng.integers(0, 5, n),
        observed_state=lambda obs: obs[..., :2],
    ),
    "seals/Parabola-v0": StateCodec(
        random_states=parabola_states,
        ours=lambda s: ParabolaState(point=jnp.asarray(s), time=zeros_time(len(s))),
        theirs=lambda state: np.asarray(state.point),
        # Beyond the +-5 bounds of y too, so that clipping is exercised.
        random_actions=lambda rng, n: rng.uniform(-10, 10, n).astype(np.float32),
    ),
    "seals/LargestSum-v0": StateCodec(
        random_states=uniform_vectors(50),
        ours=lambda s: LargestSumState(x=jnp.asarray(s), time=zeros_time(len(s))),
        theirs=lambda state: np.asarray(state.x),
        random_actions=lambda rng, n: rng.integers(0, 2, n),
    ),
    "seals/ProcGoal-v0": StateCodec(
        random_states=lambda rng, n: rng.integers(-300, 300, (n, 4)).astype(np.float32),
        ours=lambda s: ProcGoalState(
            position=jnp.asarray(s[:, :2], jnp.int32),
            goal=jnp.asarray(s[:, 2:], jnp.int32),
            time=zeros_time(len(s)),
        ),
        theirs=lambda state: np.concatenate(
            [np.asarray(state.position), np.asarray(state.goal)], -1
        ).astype(np.float32),
        random_actions=lambda rng, n: rng.integers(0, 5, n),
    ),
    "seals/Sort-v0": StateCodec(
        random_states=sort_states,
        ours=lambda s: SortState(x=jnp.asarray(s), time=zeros_time(len(s))),
        theirs=lambda state: np.asarray(state.x),
        random_actions=lambda rng, n: rng.integers(0, 4, (n, 2)),
    ),
}


def test_every_seals_diagnostic_is_registered_and_covered():
    import gymnasium as gym

    seals_ids = {
        env_id
        for env_id, spec in gym.registry.items()
        if str(spec.entry_point).startswith("seals.diagnostics.")
        and not env_id.startswith(("seals/CliffWorld", "seals/Random"))
    }
    assert set(DIAGNOSTIC_IDS) == seals_ids and len(seals_ids) == 11
    assert set(CODECS) == seals_ids
    assert set(DIAGNOSTIC_IDS) <= set(envs.registered_ids())


@pytest.mark.parametrize("env_id", DIAGNOSTIC_IDS)
def test_spaces_and_time_limit(env_id):
    env, params = envs.make(env_id)
    theirs = make_seals(env_id)
    assert env.name == env_id
    assert_same_space(env.observation_space(params), theirs.observation_space)
    assert_same_space(env.action_space(params), theirs.action_space)
    assert_same_space(env.state_space(params), theirs.unwrapped.state_space)
    # The horizon is gymnasium's TimeLimit (truncation), never seals' in-env horizon.
    assert theirs.spec.max_episode_steps == params.max_steps_in_episode
    assert getattr(theirs.unwrapped, "horizon", None) is None


@pytest.mark.parametrize("env_id", TABULAR_IDS)
def test_tabular_model_is_seals_model(env_id):
    _, params = envs.make(env_id)
    theirs = make_seals(env_id).unwrapped
    np.testing.assert_array_equal(
        params.transition, theirs.transition_matrix.astype(np.float32)
    )
    np.testing.assert_array_equal(params.reward, theirs.reward_matrix.astype(np.float32))
    np.testing.assert_array_equal(
        params.observation_matrix, theirs.feature_matrix.astype(np.float32)
    )
    # InitShift overrides `initial_state()`, not `initial_state_dist`: ask it.
    theirs.reset(seed=0)
    np.testing.assert_array_equal(
        params.initial_state_dist, np.eye(theirs.state_dim)[theirs.state]
    )
    terminal = [theirs.terminal(np.int64(s), 1) for s in range(theirs.state_dim)]
    np.testing.assert_array_equal(params.terminal, terminal)


def assert_same_rewards(env_id, ours, theirs):
    theirs = np.asarray(theirs, np.float32)
    if env_id != "seals/Parabola-v0":
        np.testing.assert_array_equal(ours, theirs)
        return
    # Parabola pays -(y - p(x))^2. XLA fuses a x^2 + b x + c into fused multiply-adds
    # where NumPy rounds every operation, so p(x) may differ by float32 rounding
    # (ulp(25) = 2e-6); compare the distances |y - p(x)| to that precision.
    np.testing.assert_allclose(np.sqrt(-ours), np.sqrt(-theirs), rtol=0, atol=1e-5)


def step_seals_from(theirs, state, action):
    """One seals step from `state`, in a fresh episode so the time limit is 1 away at
    most for LargestSum only (whose limit is 1)."""
    theirs.reset()
    theirs.unwrapped.state = state
    obs, reward, terminated, truncated, info = theirs.step(action)
    return obs, reward, terminated, truncated, info["new_state"]


def seals_action(action):
    # seals checks `action in action_space`; Parabola's Box has shape ().
    return np.asarray(action, np.float32) if action.dtype.kind == "f" else action


@pytest.mark.parametrize("env_id", DIAGNOSTIC_IDS)
def test_random_state_action_pairs_match_seals(env_id):
    env, params = envs.make(env_id)
    codec = CODECS[env_id]
    rng = np.random.default_rng(0)
    states = codec.random_states(rng, N_PAIRS)
    actions = codec.random_actions(rng, N_PAIRS)
    obs, _, reward, terminated, truncated, info = jax.tree.map(
        np.asarray,
        batched_step(
            env,
            params,
            jax.random.split(jax.random.key(0), N_PAIRS),
            codec.ours(states),
            jnp.asarray(actions),
        ),
    )
    final_obs = info["final_observation"]

    theirs = make_seals(env_id)
    their_steps = [
        step_seals_from(theirs, states[i], seals_action(actions[i]))
        for i in range(N_PAIRS)
    ]
    their_obs, their_reward, their_terminated, their_truncated, their_next = map(
        np.array, zip(*their_steps)
    )
    assert final_obs.dtype == their_obs.dtype or env_id in TABULAR_IDS
    assert_same_rewards(env_id, reward, their_reward)
    np.testing.assert_array_equal(terminated, their_terminated)
    np.testing.assert_array_equal(truncated, their_truncated)
    # Not vacuous: the pairs reach several rewards (EarlyTerm pays the same everywhere).
    assert len(np.unique(reward)) >= (1 if env_id.startswith("seals/EarlyTerm") else 2)
    if env_id == "seals/Sort-v0":
        # Every change in correct positions, and a swap that sorts the list (2 + 1).
        assert {-2, -1, 0, 1, 2, 3} <= set(reward.tolist())

    if env_id in TABULAR_IDS:
        # Both samplers only reach successors of the model, and observe them alike.
        transition = np.asarray(params.transition)
        assert (transition[states, actions, final_obs] > 0).all()
        assert (transition[states, actions, their_next] > 0).all()
        np.testing.assert_array_equal(their_obs, their_next)
        deterministic = transition[states, actions].max(-1) == 1.0
        np.testing.assert_array_equal(
            final_obs[deterministic], their_next[deterministic]
        )
        return
    np.testing.assert_array_equal(
        codec.observed_state(final_obs), codec.observed_state(their_obs)
    )
    np.testing.assert_array_equal(
        codec.observed_state(final_obs), codec.observed_state(their_next)
    )
    if env_id == "seals/NoisyObs-v0":
        assert_same_distribution(final_obs[:, 2:].ravel(), their_obs[:, 2:].ravel())
        assert_same_distribution(final_obs[:, 2:].ravel(), stats.norm.cdf)


def assert_same_distribution(ours, theirs):
    """Two-sample KS test, or one-sample against a CDF."""
    result = stats.kstest(ours, theirs)
    assert result.pvalue > P_VALUE, result


def assert_same_frequencies(ours, theirs):
    """Chi-square test of homogeneity on two samples of a categorical variable (a
    category is a value, or a row when the samples are 2-D)."""
    both = np.concatenate([ours, theirs]).reshape(len(ours) + len(theirs), -1)
    _, category = np.unique(both, axis=0, return_inverse=True)
    category = category.ravel()
    table = [
        np.bincount(part, minlength=category.max() + 1)
        for part in (category[: len(ours)], category[len(ours) :])
    ]
    result = stats.chi2_contingency(table)
    assert result.pvalue > P_VALUE, (table, result)


def our_resets(env_id, n):
    env, params = envs.make(env_id)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(
        jax.random.split(jax.random.key(1), n), params
    )
    return np.asarray(obs), CODECS[env_id].theirs(state)


def seals_resets(env_id, n):
    theirs = make_seals(env_id)
    observations, states = [], []
    for seed in range(n):
        obs, _ = theirs.reset(seed=seed)
        observations.append(obs)
        states.append(theirs.unwrapped.state)
    return np.array(observations), np.array(states)


@pytest.mark.parametrize("env_id", TABULAR_IDS)
def test_tabular_initial_state_is_seals_initial_state(env_id):
    our_obs, our_states = our_resets(env_id, 100)
    their_obs, their_states = seals_resets(env_id, 100)
    assert len(set(their_states)) == 1
    np.testing.assert_array_equal(our_states, their_states)
    np.testing.assert_array_equal(our_obs, their_obs)


@pytest.mark.parametrize("env_id", NON_TABULAR_IDS)
def test_initial_states_are_distributed_like_seals(env_id):
    our_obs, ours = our_resets(env_id, N_RESETS)
    their_obs, theirs = seals_resets(env_id, N_RESETS)
    codec = CODECS[env_id]
    assert our_obs.dtype == their_obs.dtype
    np.testing.assert_array_equal(codec.observed_state(our_obs), ours.astype(our_obs.dtype))
    if env_id == "seals/NoisyObs-v0":
        assert_same_frequencies(ours, theirs)
        assert {tuple(corner) for corner in ours} == {(0, 0), (0, 4), (4, 0), (4, 4)}
        assert_same_distribution(our_obs[:, 2:].ravel(), their_obs[:, 2:].ravel())
    elif env_id == "seals/Parabola-v0":
        np.testing.assert_array_equal(ours[:, 0], 0.0)
        np.testing.assert_array_equal(ours[:, 1], ours[:, 4])  # y starts at c = p(0)
        for column in (2, 3, 4):
            assert_same_distribution(ours[:, column], theirs[:, column])
        assert np.abs(ours[:, 2:]).max() <= 1.0
    elif env_id == "seals/ProcGoal-v0":
        position, goal = ours[:, :2], ours[:, 2:]
        assert position.min() >= -100 and position.max() <= 99
        assert_same_frequencies(position.ravel() // 20, theirs[:, :2].ravel() // 20)
        assert_same_frequencies(goal - position, theirs[:, 2:] - theirs[:, :2])
        np.testing.assert_array_equal(np.abs(goal - position).sum(-1), 10)
    else:  # LargestSum and Sort: i.i.d. U[0, 1] vectors
        assert_same_distribution(ours.ravel(), theirs.ravel())
        assert_same_distribution(ours.ravel(), stats.uniform.cdf)
        # Independent components: the label (or order) is balanced like seals'.
        assert_same_frequencies(np.argmax(ours, -1), np.argmax(theirs, -1))


def test_risky_path_coin_is_fair_like_seals():
    env, params = envs.make("seals/RiskyPath-v0")
    n = 4000
    _, state, *_ = batched_step(
        env,
        params,
        jax.random.split(jax.random.key(3), n),
        TabularState(s=jnp.zeros(n, jnp.int32), time=zeros_time(n)),
        jnp.ones(n, jnp.int32),
    )
    theirs = make_seals("seals/RiskyPath-v0")
    theirs.reset(seed=0)
    their_next = [step_seals_from(theirs, np.int64(0), np.int64(1))[-1] for _ in range(n)]
    ours = np.asarray(state.s)
    assert set(ours) == {2, 3}
    assert_same_frequencies(ours, np.array(their_next))
    assert stats.binomtest(int(np.sum(ours == 2)), n, 0.5).pvalue > P_VALUE


def record_steps(env, params, key, n_steps):
    """`n_steps` uniformly random steps across episodes (auto-reset included), with
    the state before each step."""

    def step(state, key):
        key_action, key_step = jax.random.split(key)
        action = env.action_space(params).sample(key_action)
        _, next_state, reward, terminated, truncated, info = env.step(
            key_step, state, action, params
        )
        return next_state, (state, action, info["final_observation"], reward,
                            terminated, truncated)

    @jax.jit
    def run(key):
        key_reset, key_steps = jax.random.split(key)
        _, first_state = env.reset(key_reset, params)
        _, record = jax.lax.scan(step, first_state, jax.random.split(key_steps, n_steps))
        return record

    return jax.tree.map(np.asarray, run(key))


@pytest.mark.parametrize("env_id", DIAGNOSTIC_IDS)
def test_episodes_end_and_restart_like_seals(env_id):
    """Over several episodes, seals (with its own TimeLimit counting) steps from our
    state before each step and must agree on reward, termination and truncation."""
    env, params = envs.make(env_id)
    codec = CODECS[env_id]
    n_steps = 4 * params.max_steps_in_episode + 3
    states, actions, final_obs, rewards, terminated, truncated = record_steps(
        env, params, jax.random.key(4), n_steps
    )
    their_states = codec.theirs(states)
    theirs = make_seals(env_id)
    theirs.reset(seed=0)
    for t in range(n_steps):
        theirs.unwrapped.state = their_states[t]
        obs, reward, their_terminated, their_truncated, info = theirs.step(
            seals_action(actions[t])
        )
        assert_same_rewards(env_id, rewards[t], reward)
        assert (their_terminated, their_truncated) == (terminated[t], truncated[t]), t
        if env_id != "seals/RiskyPath-v0":  # the only stochastic transition
            np.testing.assert_array_equal(
                codec.observed_state(final_obs[t]), codec.observed_state(obs)
            )
        if their_terminated or their_truncated:
            theirs.reset()
            # Our episode restarted too: time went back to 0.
            assert t + 1 == n_steps or states.time[t + 1] == 0
    ends = np.flatnonzero(terminated | truncated)
    assert len(ends) >= 4
    if env_id.startswith("seals/EarlyTerm"):
        assert terminated.any()
