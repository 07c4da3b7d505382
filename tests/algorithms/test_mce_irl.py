"""MCE IRL: learning (imitation's ReasonablePOMDP from exact and from sampled demonstrations,
CliffWorld with XY features), stopping rules under vmap, batches of MDPs, one-hot models, the
command line and the runner. Soft value iteration, occupancy measures, the three demonstration
formats and sampling are `jaxrl_align.tabular`'s (tests/tabular/). RiskyPath, where MCE IRL and
non-causal MaxEnt IRL part ways, is in test_maxent_irl.py.

Tests that compare to 1e-3 or tighter run in float64 inside `jax.enable_x64(True)` (a context
manager, so the rest of the session keeps float32)."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.cliff_world import cliff_world_params
from jaxrl_align import algorithm, tabular
from jaxrl_align.algorithms.irl import mce_irl
from jaxrl_align.hparams import as_arrays, with_values
from jaxrl_align.runtime import runner
from tests.tabular.test_occupancy import expected_return, expert_visits, reasonable_pomdp


def train(algo, key, data, num_updates, hparams=None):
    """`hparams`: {path: value} in place of the config's own values (possibly traced)."""
    if hparams is not None:
        hparams = with_values(as_arrays(algo.config), hparams)
    return algorithm.train(algo, key, data, num_updates, hparams)


# ---------------------------------------------------------------- learning

@pytest.mark.parametrize("hidden, lr", [((), 0.1), ((32, 32), 1e-2)], ids=["linear", "mlp"])
def test_recovers_reasonable_pomdp_occupancy(hidden, lr):
    """imitation's `test_mce_irl_reasonable_mdp`: from the exact expert occupancy for
    γ ∈ {0, 0.99, 1}, occupancy to 1e-3 absolute and relative, sane weights, and for γ > 0 an
    expected return of at least (H − 1)·2·0.8 = 30.4. A fourth run, in the same vmapped
    program, learns from 2000 sampled expert episodes instead (γ = 1): sampling noise (the
    initial-state split alone) cannot be matched exactly, so it runs to max_iter, and must
    still reach the return bound. The linear reward uses lr 0.1: with imitation's 1e-2 it
    needs several thousand steps here."""
    model = reasonable_pomdp()
    discounts = jnp.array([0.0, 0.99, 1.0, 1.0])
    with jax.enable_x64(True):
        exact = jax.vmap(lambda g: expert_visits(model, g)[1])(discounts)
        expert_policy = expert_visits(model)[0]
        sampled = jax.jit(lambda key: tabular.visits_from_trajectories(
            tabular.sample_trajectories(key, model, expert_policy, 2000), 5))(
                jax.random.PRNGKey(1))
        demos = jax.tree.map(lambda e, s: e.at[3].set(s), exact, sampled)
        algo = mce_irl.make(mce_irl.MCEIRLConfig(hidden=hidden, lr=lr), None, model)
        run = jax.jit(jax.vmap(lambda demo, g: train(algo, jax.random.PRNGKey(0),
                                                     mce_irl.TabularIRLData(model, demo), 1000,
                                                     {"discount": g})))
        state, metrics = run(demos, discounts)
        returns = jax.vmap(lambda p: expected_return(model, p))(state.policy)
        state, metrics, exact, returns = jax.tree.map(np.asarray, (state, metrics, exact, returns))
    assert np.all(state.converged[:3]), state.iterations
    np.testing.assert_allclose(state.occupancy[:3], exact.total[:3], atol=1e-3, rtol=1e-3)
    assert np.all(metrics["weight_norm"][:, -1] < 1000)
    assert np.all(returns[1:] >= 30.4), returns
    assert np.max(np.abs(state.occupancy[3] - exact.total[3])) < 0.2
    # A run that met its rule is frozen: later updates changed nothing.
    np.testing.assert_array_equal(metrics["iterations"][:, -1], state.iterations)


def test_cliffworld_xy_needs_a_nonlinear_reward():
    """CliffWorld 7x4 with (x, y) features, horizon 8: the cliff and the goal share the top row,
    so no linear function of (x, y) separates them. An MLP reward matches the expert's occupancy
    to 1e-2 and its return to 0.3; a linear reward, given as many steps, does not come close."""
    model = cliff_world_params(width=7, height=4, horizon=8, use_xy_obs=True)
    expert_policy, demo = expert_visits(model)
    expert_return = float(expected_return(model, expert_policy))
    data = mce_irl.TabularIRLData(model, demo)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    results = {}
    for name, hidden in (("mlp", (32, 32)), ("linear", ())):
        algo = mce_irl.make(mce_irl.MCEIRLConfig(hidden=hidden, linf_eps=1e-2), None, model)
        state, _ = jax.jit(jax.vmap(lambda k: train(algo, k, data, 1000)))(keys)
        results[name] = (np.asarray(jnp.max(jnp.abs(state.occupancy - demo.total), axis=1)),
                         np.asarray(jax.vmap(lambda p: expected_return(model, p))(state.policy)),
                         np.asarray(state.converged))
    linf, returns, converged = results["mlp"]
    assert np.all(converged) and np.all(linf <= 1e-2), linf
    assert np.all(np.abs(returns - expert_return) <= 0.3), (returns, expert_return)
    linf, returns, converged = results["linear"]
    assert not np.any(converged)
    assert np.all(linf > 0.5), linf
    assert np.all(expert_return - returns > 5), (returns, expert_return)


# ---------------------------------------------------------------- vmap: stopping, batches

def test_stopping_rules_freeze_each_run_on_its_own():
    """Four runs in one vmapped program: one meets linf_eps at once, one grad_l2_eps at once,
    one stops at max_iter = 3, one keeps learning. A stopped run's parameters stay put: the
    norm of the parameters each update starts from never changes again."""
    model = reasonable_pomdp()
    data = mce_irl.TabularIRLData(model, expert_visits(model)[1])
    algo = mce_irl.make(mce_irl.MCEIRLConfig(hidden=(8,)), None, model)
    hparams = {"linf_eps": jnp.array([1e9, 1e-3, 1e-3, 1e-3]),
               "grad_l2_eps": jnp.array([1e-4, 1e9, 1e-4, 1e-4]),
               "max_iter": jnp.array([1000, 1000, 3, 1000])}
    state, metrics = jax.jit(jax.vmap(lambda h: train(algo, jax.random.PRNGKey(0), data, 10, h)))(
        hparams)
    np.testing.assert_array_equal(state.converged, [True, True, False, False])
    np.testing.assert_array_equal(state.iterations, [0, 0, 3, 10])
    np.testing.assert_array_equal(metrics["iterations"][:, -1], [0, 0, 3, 10])
    np.testing.assert_array_equal(metrics["converged"][:, 0], [1, 1, 0, 0])
    norms = np.asarray(metrics["weight_norm"])  # [runs, updates], all from the same init
    for run, stop in enumerate([0, 0, 3]):
        np.testing.assert_array_equal(norms[run, stop:], norms[run, stop])
        assert np.all(np.diff(norms[run, :stop + 1]) != 0)
    assert np.all(np.diff(norms[3]) != 0)
    np.testing.assert_array_equal(norms[:3, 0], norms[3, 0])


def test_batch_of_mdps_equals_each_mdp_alone():
    """One call over 3 random MDPs x 2 seeds (vmap over models and keys) gives what 6 separate
    runs give (linear rewards over random features, whose initial weights differ per seed)."""
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    models = jax.vmap(lambda k: envs.random_mdp_params(k, 6, 3, 2, 7, 4))(keys)
    first = jax.tree.map(lambda x: x[0], models)
    seeds = jax.random.split(jax.random.PRNGKey(0), 2)
    with jax.enable_x64(True):
        algo = mce_irl.make(mce_irl.MCEIRLConfig(), None, first)
        data = jax.vmap(lambda m: mce_irl.TabularIRLData(m, expert_visits(m)[1]))(models)
        one_run = jax.jit(lambda key, d: train(algo, key, d, 50)[0])
        batched = jax.jit(jax.vmap(jax.vmap(one_run, in_axes=(0, None)), in_axes=(None, 0)))(
            seeds, data)
        for m in range(3):
            for s in range(2):
                alone = one_run(seeds[s], jax.tree.map(lambda x: x[m], data))
                pick = lambda x: x[m, s]
                # Batched and single matrix products round differently, and Adam magnifies
                # that where gradients are near zero: equal to float64 noise, not bitwise.
                np.testing.assert_allclose(pick(batched.occupancy), alone.occupancy, rtol=1e-9)
                for a, b in zip(jax.tree.leaves(batched.params), jax.tree.leaves(alone.params)):
                    np.testing.assert_allclose(pick(a), b, rtol=1e-6, atol=1e-9)


def test_one_hot_models_skip_the_product_and_learn_the_same():
    """A model with one-hot observations (CliffWorld 7x4, stored without its 28x28 matrix) and
    the same model given that identity matrix explicitly as features: the reward net skips its
    first product on the first and not on the second, and 20 iterations of MCE IRL with an
    MLP reward agree, alone and vmapped over two seeds."""
    one_hot = cliff_world_params(width=7, height=4, horizon=10, use_xy_obs=False)
    assert one_hot.one_hot_observations and one_hot.observation_features is None
    explicit = one_hot.replace(observation_features=jnp.eye(28))
    assert not explicit.one_hot_observations
    np.testing.assert_array_equal(one_hot.observation_matrix, explicit.observation_features)
    seeds = jax.random.split(jax.random.PRNGKey(4), 2)
    runs = []
    # float64: the two programs fuse and round differently in the last bit, which Adam
    # magnifies where a gradient is near zero (as in the batch test below).
    with jax.enable_x64(True):
        for model in (one_hot, explicit):
            algo = mce_irl.make(mce_irl.MCEIRLConfig(hidden=(32,)), None, model)
            data = mce_irl.TabularIRLData(model, expert_visits(model)[1])
            runs.append(jax.jit(jax.vmap(lambda key: train(algo, key, data, 20)))(seeds))
    (state, metrics), (other_state, other_metrics) = runs
    for a, b in zip(jax.tree.leaves((state.params, state.occupancy, metrics["grad_norm"])),
                    jax.tree.leaves((other_state.params, other_state.occupancy,
                                     other_metrics["grad_norm"]))):
        # atol: the output bias, whose exact gradient is 0 (both occupancies sum to H + 1),
        # holds float64 rounding noise of ~1e-8.
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-7)


# ---------------------------------------------------------------- command line, runner, act

def test_train_command_runs_through_the_runner_and_acts(tmp_path):
    """`experiments.train mce_irl` on CliffWorld 7x4: its inputs (prepared as the command line
    prepares them), the runner's outputs and metrics per chunk, a policy that stays off the
    cliff (−10 a step there, −1 elsewhere), and `act`: one-hot observations of 28 dimensions
    are matched to their state through the random projection, and the action is the argmax
    of the time marginal."""
    from experiments import train as train_cli
    from experiments.common import ProcessFlags

    command = train_cli.MCEIRLCommand(
        run=runner.RunSettings(seeds=2, num_chunks=2, eval_episodes=2, final_eval_episodes=10,
                               progress=False),
        process=ProcessFlags(env="seals/CliffWorld7x4-v0", out=tmp_path),
        mce_irl=mce_irl.MCEIRLConfig(lr=0.1, max_iter=200))
    algo, env, model, data, settings, out, _ = train_cli.prepare(command)
    assert isinstance(data, mce_irl.TabularIRLData) and settings.num_updates == 200
    result = runner.run(algo, env, model, settings, data, out_dir=out)
    for name in ("config.json", "results.json", "metrics.jsonl", "learning_curve.png"):
        assert (out / name).is_file(), name
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(len(line["linf_delta"]) == 2 for line in lines)
    assert all(b < a for a, b in zip(lines[0]["linf_delta"], lines[1]["linf_delta"]))
    assert np.all(result.final_returns.mean(axis=1) > -9)

    state = jax.tree.map(lambda x: x[0], result.state)
    greedy = jnp.argmax(tabular.time_marginal_policy(state.policy, state.state_dist), axis=1)
    act = jax.jit(jax.vmap(lambda obs: algo.act(state, jax.random.PRNGKey(0), obs)))
    np.testing.assert_array_equal(act(model.observation_matrix), greedy)
    np.testing.assert_array_equal(act(jnp.arange(28, dtype=jnp.int32)), greedy)


def test_models_with_terminal_states_are_refused():
    """Occupancy matching covers fixed horizons only (as imitation's does): a model with
    terminal states is refused when the algorithm is made, before any compilation."""
    _, params = envs.make("seals/EarlyTermPos-v0")
    assert not mce_irl.has_fixed_horizon(params)
    assert mce_irl.has_fixed_horizon(cliff_world_params(width=7, height=4, horizon=8,
                                                        use_xy_obs=False))
    with pytest.raises(ValueError, match="mce_irl: the model has terminal states"):
        mce_irl.make(mce_irl.MCEIRLConfig(), None, params)
