"""The diagnostic tasks on their own: the API contract, experts, reference returns and
the MultiDiscrete space of Sort (conformance with seals is in
test_conformance_diagnostics.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.diagnostics import DIAGNOSTIC_ENVS
from envs.diagnostics.experts import (
    CLOSED_FORM_RETURNS,
    expert_policy,
    optimal_return,
    tabular_expert_actions,
)
from envs.diagnostics.spaces import FlatActions, MultiDiscrete
from experiments.reference_returns import derive
from jaxrl_align.tabular import exact_expected_return

DIAGNOSTIC_IDS = list(DIAGNOSTIC_ENVS)
TABULAR_IDS = [i for i in DIAGNOSTIC_IDS if envs.is_tabular(envs.make(i)[0])]


@pytest.mark.parametrize("env_id", DIAGNOSTIC_IDS)
def test_make_reset_step_fit_the_spaces_under_jit_and_vmap(env_id):
    env, params = envs.make(env_id)
    assert env.name == env_id
    obs_space, act_space = env.observation_space(params), env.action_space(params)

    @jax.jit
    def first_steps(key):
        key_reset, key_action, key_step = jax.random.split(key, 3)
        obs, state = env.reset(key_reset, params)
        action = act_space.sample(key_action)
        return obs, action, env.step(key_step, state, action, params)

    obs, action, (next_obs, _, reward, terminated, truncated, info) = jax.vmap(
        first_steps
    )(jax.random.split(jax.random.key(0), 8))
    for o in (obs, next_obs, info["final_observation"]):
        assert o.shape == (8, *obs_space.shape) and o.dtype == obs_space.dtype
        assert bool(jax.vmap(obs_space.contains)(o).all())
    assert bool(jax.vmap(act_space.contains)(action).all())
    assert reward.dtype == jnp.float32 and reward.shape == (8,)
    assert terminated.dtype == truncated.dtype == jnp.bool_
    assert isinstance(envs.horizon(params), int)


@pytest.mark.parametrize("env_id", TABULAR_IDS)
def test_tabular_expert_is_optimal_and_returns_are_stored(env_id):
    env, params = envs.make(env_id)
    greedy = jax.nn.one_hot(tabular_expert_actions(params), env.n_actions)
    uniform = jnp.full((env.n_states, env.n_actions), 1 / env.n_actions)
    random_return, expert_return = envs.reference_returns(env_id)
    # The stationary greedy policy reaches the optimum of time-dependent policies.
    assert float(exact_expected_return(params, greedy)) == pytest.approx(
        float(optimal_return(params)), abs=1e-5
    )
    assert float(optimal_return(params)) == pytest.approx(expert_return, abs=1e-5)
    assert float(exact_expected_return(params, uniform)) == pytest.approx(
        random_return, abs=1e-5
    )


def test_tabular_optima_are_the_ones_the_tasks_are_built_around():
    returns = {i: envs.reference_returns(i)[1] for i in TABULAR_IDS}
    assert returns == {
        "seals/Branching-v0": 1.0,  # the one path to the goal
        "seals/EarlyTermNeg-v0": -2.0,  # end the episode as soon as possible
        "seals/EarlyTermPos-v0": 10.0,  # never end it
        "seals/InitShiftTrain-v0": 2.0,  # s0 -> s2 -> s6
        "seals/InitShiftTest-v0": 2.0,  # s1 -> s3, paid twice
        "seals/RiskyPath-v0": 3.0,  # the safe path
    }
    _, params = envs.make("seals/RiskyPath-v0")
    assert int(tabular_expert_actions(params)[0]) == 0  # not the risky action


def expert_returns(env_id, n_episodes, key=jax.random.key(0)):
    env, params = envs.make(env_id)
    policy = expert_policy(env, params)
    return np.asarray(
        jax.jit(lambda key: envs.policy_returns(env, params, policy, key, n_episodes))(
            key
        ),
        np.float64,
    )


@pytest.mark.parametrize("env_id", list(CLOSED_FORM_RETURNS))
def test_closed_form_expert_returns_are_what_the_expert_gets(env_id):
    returns = expert_returns(env_id, 20_000)
    closed_form = CLOSED_FORM_RETURNS[env_id]["expert"]
    if env_id == "seals/Sort-v0":  # random initial order: only the mean is fixed
        assert abs(returns.mean() - closed_form) <= 4 * returns.std() / np.sqrt(20_000)
    else:
        np.testing.assert_allclose(returns, closed_form, atol=1e-4)
    assert envs.reference_returns(env_id)[1] == pytest.approx(closed_form)


@pytest.mark.parametrize("env_id", [i for i in DIAGNOSTIC_IDS if i not in TABULAR_IDS])
def test_stored_random_returns_agree_with_a_fresh_measurement(env_id):
    estimate = derive(env_id, "random", 20_000, jax.random.key(1))
    stored, _ = envs.reference_returns(env_id)
    # Twice the 95% half-width is about 4 standard errors; 0.005 is the rounding.
    assert abs(estimate.value - stored) <= 2 * estimate.half_width + 0.005


def test_early_termination_ends_the_return():
    env, params = envs.make("seals/EarlyTermNeg-v0")
    returns = expert_returns("seals/EarlyTermNeg-v0", 4)
    np.testing.assert_array_equal(returns, -2.0)  # not -10: the episode ended
    obs, state = env.reset(jax.random.key(0), params)
    _, state, _, terminated, _, _ = env.step(jax.random.key(1), state, 0, params)
    _, state, _, terminated, truncated, info = env.step(
        jax.random.key(2), state, 1, params
    )
    assert bool(terminated) and not bool(truncated)
    assert int(info["final_observation"]) == 2 and int(state.s) == 0  # auto-reset


def test_init_shift_rejects_a_state_outside_the_tree():
    with pytest.raises(ValueError, match="initial_state 7"):
        envs.make("seals/InitShiftTrain-v0", initial_state=7)


def test_batch_of_parabola_params_vmaps():
    env, params = envs.make("seals/Parabola-v0")
    batch = jax.tree.map(lambda x: jnp.full(3, x, jnp.float32), params).replace(
        x_step=jnp.array([0.05, 0.1, 0.2])
    )
    _, state = env.reset(jax.random.key(0), params)
    step = jax.vmap(env.step, in_axes=(None, None, None, 0))
    obs, *_ = step(jax.random.key(1), state, jnp.float32(0.0), batch)
    np.testing.assert_allclose(obs[:, 0], [0.05, 0.1, 0.2])


def test_multi_discrete_space():
    space = MultiDiscrete((2, 3))
    samples = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 600))
    assert samples.shape == (600, 2) and samples.dtype == jnp.int32
    assert set(map(tuple, np.asarray(samples).tolist())) == {
        (i, j) for i in range(2) for j in range(3)
    }
    assert bool(space.contains(jnp.array([1, 2])))
    assert not bool(space.contains(jnp.array([2, 0])))
    with pytest.raises(ValueError, match="positive"):
        MultiDiscrete((2, 0))


def test_flat_actions_sort_is_sort_with_numbered_swaps():
    env, params = envs.make("seals/Sort-v0")
    flat = FlatActions(env)
    assert flat.action_space(params).n == 16 and flat.name == "seals/Sort-v0"
    assert flat.observation_space(params).shape == (4,)
    vectors = jax.vmap(flat.to_vector)(jnp.arange(16))
    np.testing.assert_array_equal(vectors, [(i, j) for i in range(4) for j in range(4)])
    np.testing.assert_array_equal(jax.vmap(flat.to_flat)(vectors), np.arange(16))

    _, state = env.reset(jax.random.key(0), params)
    for k in range(16):
        ours = flat.step(jax.random.key(1), state, jnp.int32(k), params)
        theirs = env.step(jax.random.key(1), state, vectors[k], params)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_array_equal(a, b)


def test_sort_expert_sorts_in_the_fewest_swaps():
    env, params = envs.make("seals/Sort-v0")
    policy = expert_policy(env, params)
    x = jnp.array([0.4, 0.1, 0.3, 0.2])  # cycles (0 3 1)(2): two swaps
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(x=x)
    rewards = []
    for t in range(6):
        _, state, reward, _, _, info = env.step(
            jax.random.key(t), state, policy(None, x), params
        )
        x = info["final_observation"]  # the last step truncates and resets
        rewards.append(float(reward))
    np.testing.assert_array_equal(x, jnp.sort(x))
    # 1 correct at first; a swap fixing one, then one fixing two and sorting.
    assert rewards == [1.0, 3.0, 1.0, 1.0, 1.0, 1.0]
