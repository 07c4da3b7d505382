"""The `envs` package on its own: registry, episode boundaries, tabular params as
pytrees (batches of MDPs), reference returns. What importing `envs` does to the process is
`jaxrl_align.platform`'s (tests/platform/test_settings.py)."""

import functools
import operator

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.tabular import TabularEnv

SEALS_IDS = [
    "seals/CartPole-v0",
    "seals/MountainCar-v0",
    "seals/CliffWorld7x4-v0",
    "seals/CliffWorld7x4XY-v0",
    "seals/CliffWorld15x6-v0",
    "seals/CliffWorld15x6XY-v0",
    "seals/CliffWorld100x20-v0",
    "seals/CliffWorld100x20XY-v0",
    "seals/Random-v0",
]


def run_episode(env, params, key, n_steps):
    """`n_steps` uniformly random steps through `env.step` (auto-reset included)."""

    def step(state, key):
        key_action, key_step = jax.random.split(key)
        action = env.action_space(params).sample(key_action)
        obs, state, reward, terminated, truncated, info = env.step(
            key_step, state, action, params
        )
        return state, (obs, state, reward, terminated, truncated, info)

    key_reset, key_steps = jax.random.split(key)
    _, first_state = env.reset(key_reset, params)
    _, record = jax.lax.scan(step, first_state, jax.random.split(key_steps, n_steps))
    return jax.tree.map(np.asarray, record)


@pytest.mark.parametrize("env_id", SEALS_IDS)
def test_make_returns_env_and_params_whose_spaces_fit(env_id):
    env, params = envs.make(env_id)
    assert env_id in envs.registered_ids()
    assert env.name == env_id
    assert envs.is_tabular(env) == env_id.startswith(
        ("seals/CliffWorld", "seals/Random")
    )
    obs, state = env.reset(jax.random.key(0), params)
    space = env.observation_space(params)
    assert obs.shape == tuple(space.shape) and obs.dtype == space.dtype
    assert bool(space.contains(obs))
    obs, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1),
        state,
        env.action_space(params).sample(jax.random.key(2)),
        params,
    )
    assert obs.shape == tuple(space.shape) and obs.dtype == space.dtype
    assert reward.dtype == jnp.float32
    assert terminated.dtype == truncated.dtype == jnp.bool_
    assert info["final_observation"].shape == obs.shape
    assert isinstance(envs.horizon(params), int)


def test_unknown_id_raises_one_line_naming_it_and_the_known_ids():
    with pytest.raises(ValueError) as error:
        envs.make("seals/Foo-v0")
    message = str(error.value)
    assert "\n" not in message
    assert "'seals/Foo-v0'" in message
    assert all(env_id in message for env_id in SEALS_IDS)
    assert "gymnax" in message


def test_gymnax_ids_go_through_make():
    env, params = envs.make("CartPole-v1")
    assert isinstance(env, gymnax.environments.classic_control.cartpole.CartPole)
    assert params == env.default_params
    assert not envs.is_tabular(env)
    assert set(SEALS_IDS) <= set(envs.registered_ids())


def test_register_adds_an_id_and_refuses_duplicates(monkeypatch):
    monkeypatch.setattr(envs, "_REGISTRY", dict(envs._REGISTRY))
    envs.register("test/Tiny-v0", lambda **kwargs: ("env", kwargs))
    assert envs.make("test/Tiny-v0", size=3) == ("env", {"size": 3})
    with pytest.raises(ValueError, match="already registered"):
        envs.register("seals/CartPole-v0", envs.classic_control.make_cartpole)


def test_cartpole_is_truncated_at_500_and_never_terminated():
    env, params = envs.make("seals/CartPole-v0")
    obs, state, reward, terminated, truncated, info = run_episode(
        env, params, jax.random.key(0), 1000
    )
    assert not terminated.any()
    np.testing.assert_array_equal(np.flatnonzero(truncated), [499, 999])
    # Auto-reset: the returned observation starts the next episode, and the last one
    # of the finished episode is kept in info.
    np.testing.assert_array_equal(state.time[[498, 499, 500]], [499, 0, 1])
    assert not np.array_equal(obs[499], info["final_observation"][499])
    np.testing.assert_array_equal(obs[:499], info["final_observation"][:499])
    assert set(np.unique(reward)) == {0.0, 1.0}


def test_mountain_car_is_truncated_at_200_and_never_terminated():
    env, params = envs.make("seals/MountainCar-v0")
    _, _, reward, terminated, truncated, _ = run_episode(
        env, params, jax.random.key(0), 400
    )
    assert not terminated.any()
    np.testing.assert_array_equal(np.flatnonzero(truncated), [199, 399])
    np.testing.assert_array_equal(reward, -1.0)


def test_cliff_world_terminates_at_its_horizon_and_restarts_in_the_corner():
    env, params = envs.make("seals/CliffWorld7x4-v0")
    assert envs.horizon(params) == 9
    obs, state, _, terminated, truncated, _ = run_episode(
        env, params, jax.random.key(0), 18
    )
    assert not truncated.any()
    np.testing.assert_array_equal(np.flatnonzero(terminated), [8, 17])
    np.testing.assert_array_equal(state.time[[7, 8, 9]], [8, 0, 1])
    np.testing.assert_array_equal(state.s[8], 0)
    np.testing.assert_array_equal(obs[8], np.eye(28)[0])


def tiny_mdp_params(horizon):
    """s0 -a0-> s1 -a0-> s0 ...; a1 from s1 goes to the terminal state 2."""
    transition = np.zeros((3, 2, 3))
    transition[0, :, 1] = 1
    transition[1, 0, 0] = 1
    transition[1, 1, 2] = 1
    transition[2, :, 2] = 1
    return envs.tabular_params(
        transition=transition,
        reward=np.array([1.0, 2.0, 3.0]),
        initial_state_dist=np.array([1.0, 0.0, 0.0]),
        observation_matrix=np.eye(3),
        horizon=horizon,
        terminal=np.array([False, False, True]),
    )


def step_through(env, params, actions):
    """(state reached, reward, terminated, truncated) of each step."""
    _, state = env.reset(jax.random.key(0), params)
    steps = []
    for t, action in enumerate(actions):
        _, state, reward, terminated, truncated, info = env.step(
            jax.random.key(t), state, action, params
        )
        reached = int(info["final_observation"])
        steps.append((reached, float(reward), bool(terminated), bool(truncated)))
    return steps


def test_state_index_observations_terminal_states_and_time_limit_truncation():
    params = tiny_mdp_params(horizon=4)
    env = TabularEnv(params, observe_state_index=True, horizon_is_terminal=False)
    space = env.observation_space(params)
    assert isinstance(space, gymnax.environments.spaces.Discrete) and space.n == 3
    obs, _ = env.reset(jax.random.key(0), params)
    assert obs.dtype == jnp.int32 and obs.shape == ()

    # Entering the terminal state terminates; the reward is that of the state left.
    assert step_through(env, params, [0, 1]) == [
        (1, 1.0, False, False),
        (2, 2.0, True, False),
    ]
    # Without a terminal state the horizon truncates (a TimeLimit, as for RiskyPath).
    assert step_through(env, params, [0, 0, 0, 0]) == [
        (1, 1.0, False, False),
        (0, 2.0, False, False),
        (1, 1.0, False, False),
        (0, 2.0, False, True),
    ]
    # seals' in-env horizon reports termination instead, never truncation.
    seals_style = TabularEnv(params, observe_state_index=True)
    assert step_through(seals_style, params, [0, 0, 0, 0])[-1] == (0, 2.0, True, False)


# The shapes of seals/Random-v0, with a larger branch factor.
RANDOM_MDP_SIZES = dict(
    n_states=16, n_actions=3, branch_factor=3, horizon=20, obs_dim=5
)


@functools.cache
def random_mdp_batch() -> envs.TabularParams:
    """256 random MDPs, made once for the tests that need a batch."""
    make_batch = jax.jit(
        jax.vmap(functools.partial(envs.random_mdp_params, **RANDOM_MDP_SIZES))
    )
    return make_batch(jax.random.split(jax.random.key(0), 256))


def test_batch_of_random_mdps_steps_like_each_mdp_alone():
    env, _ = envs.make("seals/Random-v0")
    n_mdps = 8
    batch = jax.tree.map(lambda x: x[:n_mdps], random_mdp_batch())
    assert batch.transition.shape == (n_mdps, 16, 3, 16)
    assert envs.horizon(batch) == 20

    keys = jax.random.split(jax.random.key(1), n_mdps)
    _, states = jax.vmap(env.reset)(keys, batch)
    actions = jnp.arange(n_mdps) % 3
    batched = jax.vmap(env.step, in_axes=(0, 0, 0, 0))(keys, states, actions, batch)
    for i in range(n_mdps):
        params_i, state_i, batched_i = jax.tree.map(
            operator.itemgetter(i), (batch, states, batched)
        )
        alone = env.step(keys[i], state_i, actions[i], params_i)
        for from_batch, from_alone in zip(
            jax.tree.leaves(batched_i), jax.tree.leaves(alone), strict=True
        ):
            np.testing.assert_array_equal(from_batch, from_alone)


def test_random_mdp_params_follow_the_seals_recipe():
    batch = random_mdp_batch()
    branch_factor = RANDOM_MDP_SIZES["branch_factor"]
    transition = np.asarray(batch.transition)
    np.testing.assert_allclose(transition.sum(-1), 1, rtol=1e-5)
    n_successors = (transition > 0).sum(-1)
    assert n_successors.min() == 1 and n_successors.max() == branch_factor
    assert abs(n_successors.mean() - (1 + branch_factor) / 2) < 0.05
    assert ((np.asarray(batch.initial_state_dist) > 0).sum(-1) == branch_factor).all()
    assert abs(np.asarray(batch.observation_matrix).std() - 2.0) < 0.05
    # The reward is linear in the observation.
    observations, reward = (
        np.asarray(batch.observation_matrix[0]),
        np.asarray(batch.reward[0]),
    )
    weights, *_ = np.linalg.lstsq(observations, reward, rcond=None)
    np.testing.assert_allclose(observations @ weights, reward, atol=1e-4)


def test_random_mdp_params_with_one_hot_observations():
    one_hot = jax.jit(envs.random_mdp_params, static_argnums=(1, 2, 3, 4, 5))(
        jax.random.key(1), 4, 2, 2, 3, None
    )
    np.testing.assert_array_equal(one_hot.observation_matrix, np.eye(4))
    assert one_hot.reward.shape == (4,)
    # One-hot observations are implicit: nothing S x S is stored, for one MDP or a batch.
    assert one_hot.one_hot_observations and one_hot.observation_features is None
    batch = jax.vmap(lambda k: envs.random_mdp_params(k, 4, 2, 2, 3, None))(
        jax.random.split(jax.random.key(1), 3))
    assert batch.observation_features is None
    np.testing.assert_array_equal(batch.observation_matrix, np.broadcast_to(np.eye(4), (3, 4, 4)))
    # The environment observes row s of the identity.
    env = envs.TabularEnv(one_hot)
    obs, state = env.reset(jax.random.key(2), one_hot)
    for key in jax.random.split(jax.random.key(3), 5):
        np.testing.assert_array_equal(obs, np.eye(4, dtype=np.float32)[state.s])
        obs, state, *_ = env.step(key, state, 0, one_hot)


def test_random_env_kwargs_change_the_mdp():
    env, params = envs.make(
        "seals/Random-v0", n_states=8, n_actions=2, obs_dim=3, horizon=7
    )
    assert (env.n_states, env.n_actions, env.obs_dim) == (8, 2, 3)
    assert params.transition.shape == (8, 2, 8) and envs.horizon(params) == 7


def test_batch_of_cartpole_physics_vmaps():
    env, params = envs.make("seals/CartPole-v0")
    gravities = jnp.array([9.8, 1.6, 24.8])
    batch = jax.tree.map(lambda x: jnp.full(3, x, jnp.float32), params).replace(
        gravity=gravities
    )
    assert batch.max_steps_in_episode == 500
    _, state = env.reset(jax.random.key(0), params)
    step = jax.vmap(env.step, in_axes=(None, None, None, 0))
    _, next_states, _, _, _, _ = step(jax.random.key(1), state, 1, batch)
    assert len(set(np.asarray(next_states.theta_dot).tolist())) == 3


def test_reference_returns():
    assert envs.reference_returns("seals/CartPole-v0") == (33.33, 500.0)
    random_return, expert_return = envs.reference_returns("seals/MountainCar-v0")
    assert random_return < expert_return
    with pytest.raises(ValueError, match="seals/Foo-v0"):
        envs.reference_returns("seals/Foo-v0")


@pytest.mark.parametrize("env_id", ["seals/CartPole-v0", "seals/MountainCar-v0"])
def test_stored_random_returns_agree_with_a_fresh_measurement(env_id):
    env, params = envs.make(env_id)
    returns = np.asarray(
        envs.random_policy_returns(env, params, jax.random.key(1), 2000), np.float64
    )
    standard_error = returns.std() / np.sqrt(returns.size)
    stored, _ = envs.reference_returns(env_id)
    assert abs(returns.mean() - stored) <= 4 * standard_error + 0.01
