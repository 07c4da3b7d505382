"""Non-causal MaxEnt IRL: the trajectory distribution against brute-force enumeration, its
equality with MCE under deterministic dynamics, learning, and the RiskyPath contrast (why
causal entropy matters under stochastic dynamics)."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl_align import tabular
from jaxrl_align.algorithms.irl import maxent_irl, mce_irl
from jaxrl_align.data.rollout import collect_episodes
from tests.algorithms.test_mce_irl import train
from tests.tabular.test_occupancy import expected_return, expert_visits, reasonable_pomdp


def enumerated_marginals(model, reward):
    """P(τ | s_0) ∝ Π T(s_{t+1} | s_t, a_t) exp(Σ_{t<H} r(s_t)) over every trajectory, by brute
    force: per-step state marginals [H+1, S] and P(a_0 | s_0) [S, A]."""
    T = np.asarray(model.transition, np.float64)
    p0 = np.asarray(model.initial_state_dist, np.float64)
    horizon, (n_states, n_actions, _) = model.max_steps_in_episode, T.shape
    marginals, first_action = np.zeros((horizon + 1, n_states)), np.zeros((n_states, n_actions))
    for s0 in np.flatnonzero(p0):
        weights = np.zeros((horizon + 1, n_states))
        action_weights = np.zeros(n_actions)
        for actions in itertools.product(range(n_actions), repeat=horizon):
            for later in itertools.product(range(n_states), repeat=horizon):
                states = (s0,) + later
                w = np.prod([T[states[t], actions[t], states[t + 1]] for t in range(horizon)])
                w *= np.exp(sum(reward[states[t]] for t in range(horizon)))
                weights[np.arange(horizon + 1), states] += w
                action_weights[actions[0]] += w
        marginals += p0[s0] * weights / weights[0].sum()
        first_action[s0] = action_weights / action_weights.sum()
    return marginals, first_action


def test_trajectory_marginals_match_enumeration():
    model = envs.random_mdp_params(jax.random.PRNGKey(3), 3, 2, 2, 4, None)
    reward = np.array([0.3, -1.0, 2.0])
    marginals, first_action = enumerated_marginals(model, reward)
    with jax.enable_x64(True):
        policy, occupancy = jax.jit(maxent_irl.trajectory_occupancy)(model, reward)
        policy, occupancy = jax.tree.map(np.asarray, (policy, occupancy))
    np.testing.assert_allclose(occupancy.per_step, marginals, rtol=1e-10, atol=1e-12)
    starts = np.flatnonzero(model.initial_state_dist)
    np.testing.assert_allclose(policy[0, starts], first_action[starts], rtol=1e-10)
    np.testing.assert_allclose(occupancy.total.sum(), 5, rtol=1e-6)


def test_deterministic_dynamics_make_causal_and_noncausal_agree():
    """Without chance there is nothing to take credit for: the two models coincide, and so do
    the two algorithms' gradients (up to float32 transition rows that sum to 1 − 6e-8)."""
    model = envs.random_mdp_params(jax.random.PRNGKey(4), 6, 3, 1, 7, 4)
    with jax.enable_x64(True):
        noncausal_policy, noncausal = maxent_irl.trajectory_occupancy(model, model.reward)
        causal_policy, demo = expert_visits(model)
        np.testing.assert_allclose(noncausal_policy, causal_policy, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(noncausal.total, demo.total, rtol=1e-5)
        data = mce_irl.TabularIRLData(model, demo)
        key = jax.random.PRNGKey(0)
        algos = (mce_irl.make(mce_irl.MCEIRLConfig(hidden=(8,)), None, model),
                 maxent_irl.make(maxent_irl.MaxEntIRLConfig(hidden=(8,)), None, model))
        # One update: Adam's first step is the sign of each gradient component, so later
        # iterates would amplify the 1e-7 differences wherever a component is near zero.
        (causal_state, causal_metrics), (noncausal_state, noncausal_metrics) = (
            jax.jit(lambda: train(algo, key, data, 1))() for algo in algos)
        for name in ("loss", "grad_norm", "linf_delta"):
            np.testing.assert_allclose(noncausal_metrics[name], causal_metrics[name], rtol=1e-5)
        np.testing.assert_allclose(noncausal_state.policy, causal_state.policy, rtol=1e-5,
                                   atol=1e-9)


def test_recovers_its_own_expert_on_a_stochastic_mdp():
    """MaxEnt IRL matches demonstrations drawn from its own model (the trajectory distribution
    of the true reward on imitation's ReasonablePOMDP) to 1e-3."""
    model = reasonable_pomdp()
    with jax.enable_x64(True):
        _, occupancy = maxent_irl.trajectory_occupancy(model, model.reward)
        demo = tabular.visits_from_occupancy(occupancy)
        algo = maxent_irl.make(maxent_irl.MaxEntIRLConfig(hidden=(32, 32)), None, model)
        state, _ = jax.jit(lambda k: train(algo, k, mce_irl.TabularIRLData(model, demo), 1000))(
            jax.random.PRNGKey(0))
        state = jax.tree.map(np.asarray, state)
        expected = np.asarray(demo.total)
    assert state.converged
    np.testing.assert_allclose(state.occupancy, expected, atol=1e-3, rtol=1e-3)


SAFE, RISKY = 0, 1


def test_riskypath_true_reward_causal_is_safe_noncausal_gambles():
    """With RiskyPath's true reward the MCE policy takes the safe path; the trajectory
    distribution credits the risky action with its lucky outcome and puts most of its mass on
    it, though it lands in the −100 pit half the time in the real dynamics."""
    env, model = envs.make("seals/RiskyPath-v0")
    causal = tabular.soft_value_iteration(model, model.reward).policy
    noncausal, occupancy = maxent_irl.trajectory_occupancy(model, model.reward)
    assert float(causal[0, 0, SAFE]) > 0.999
    assert float(noncausal[0, 0, RISKY]) > 0.6
    # Under its own (tilted) dynamics the risky action almost never meets the pit ...
    assert float(occupancy.per_step[1, 3]) < 1e-30
    # ... but executed in the real dynamics, its gamble costs dearly.
    assert float(expected_return(model, noncausal)) < -100
    assert float(expected_return(model, causal)) > 2.5


def test_riskypath_safe_demonstrations_mislead_maxent_not_mce():
    """Both algorithms see the same safe-path demonstrations. MCE IRL learns to take the safe
    path. MaxEnt IRL matches the demonstrations' occupancy just as closely, yet believes the
    risky action leads to the goal: its policy still takes it often and, executed in the real
    dynamics, falls into the pit."""
    env, model = envs.make("seals/RiskyPath-v0")
    safe = lambda key, obs: jnp.int32(SAFE)
    trajs = collect_episodes(env, model, safe, jax.random.PRNGKey(0), 4, 5)
    data = mce_irl.TabularIRLData(model, jax.jit(tabular.visits_from_trajectories,
                                                 static_argnums=1)(trajs, 4))
    key = jax.random.PRNGKey(0)
    mce = jax.jit(lambda: train(mce_irl.make(mce_irl.MCEIRLConfig(), env, model),
                                key, data, 1000)[0])()
    maxent = jax.jit(lambda: train(maxent_irl.make(maxent_irl.MaxEntIRLConfig(), env, model),
                                   key, data, 1000)[0])()
    for state in (mce, maxent):
        assert float(jnp.max(jnp.abs(state.occupancy - data.demo.total))) < 0.05
    assert float(mce.policy[0, 0, SAFE]) > 0.99
    assert float(expected_return(model, mce.policy)) > 2
    assert float(maxent.policy[0, 0, RISKY]) > 0.2
    assert float(expected_return(model, maxent.policy)) < -20
