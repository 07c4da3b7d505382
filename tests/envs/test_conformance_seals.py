"""Our JAX envs against the seals originals (seals and gymnasium are the reference).

seals is NumPy and steps one transition at a time, so the seals side is a Python loop
over a few thousand transitions; the JAX side is one vmapped call per env.
"""

import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from seals.diagnostics.random_trans import RandomTransitionEnv
from tests.envs.seals_conformance import (
    assert_same_space,
    batched_step,
    make_seals,
    run_episodes,
    uniform_policy,
)

import envs
from envs.tabular import TabularState

N_PAIRS = 2000
CLASSIC_IDS = ["seals/CartPole-v0", "seals/MountainCar-v0"]
TABULAR_IDS = [i for i in envs.registered_ids() if i.startswith("seals/CliffWorld")] + [
    "seals/Random-v0"
]


@pytest.mark.parametrize("env_id", CLASSIC_IDS + TABULAR_IDS)
def test_spaces_and_horizon(env_id):
    env, params = envs.make(env_id)
    theirs = make_seals(env_id)
    assert_same_space(env.observation_space(params), theirs.observation_space)
    assert_same_space(env.action_space(params), theirs.action_space)
    if env_id in CLASSIC_IDS:
        assert theirs.spec.max_episode_steps == params.max_steps_in_episode
    else:
        # The tabular horizon lives inside the seals env (reported as termination),
        # not in a TimeLimit wrapper.
        assert theirs.spec.max_episode_steps is None
        assert theirs.unwrapped.horizon == params.max_steps_in_episode


# ---------------------------------------------------------------- classic control


def test_cartpole_transitions_match_seals():
    env, params = envs.make("seals/CartPole-v0")
    rng = np.random.default_rng(0)
    # Well beyond the failure thresholds, since seals keeps simulating after a fall.
    states = rng.uniform(-1, 1, (N_PAIRS, 4)) * [3.0, 3.0, np.pi, 6.0]
    states = states.astype(np.float32)
    actions = rng.integers(0, 2, N_PAIRS)

    ours = batched_step(
        env,
        params,
        jax.random.split(jax.random.key(0), N_PAIRS),
        envs.CartPoleState(
            x=jnp.asarray(states[:, 0]),
            x_dot=jnp.asarray(states[:, 1]),
            theta=jnp.asarray(states[:, 2]),
            theta_dot=jnp.asarray(states[:, 3]),
            time=jnp.zeros(N_PAIRS, jnp.int32),
        ),
        jnp.asarray(actions),
    )
    our_obs, _, our_rew, our_terminated, _, _ = jax.tree.map(np.asarray, ours)

    seals_cartpole = make_seals("seals/CartPole-v0").unwrapped
    for i in range(N_PAIRS):
        seals_cartpole.state = states[i].astype(np.float64)
        obs, rew, terminated, truncated, _ = seals_cartpole.step(int(actions[i]))
        np.testing.assert_allclose(our_obs[i], obs, rtol=1e-5, atol=1e-5)
        assert our_rew[i] == rew, i
        assert not terminated and not truncated
    assert not our_terminated.any()
    assert 0.05 < our_rew.mean() < 0.95  # both reward values were exercised


def test_mountain_car_transitions_match_seals():
    env, params = envs.make("seals/MountainCar-v0")
    rng = np.random.default_rng(0)
    position = rng.uniform(-1.2, 0.6, N_PAIRS)
    velocity = rng.uniform(-0.07, 0.07, N_PAIRS)
    # Exercise the left wall (velocity zeroed) and the goal region.
    position[:100] = -1.2
    velocity[:100] = -np.abs(velocity[:100])
    position[100:300] = rng.uniform(0.45, 0.6, 200)
    states = np.stack([position, velocity], 1).astype(np.float32)
    actions = rng.integers(0, 3, N_PAIRS)

    ours = batched_step(
        env,
        params,
        jax.random.split(jax.random.key(0), N_PAIRS),
        envs.MountainCarState(
            position=jnp.asarray(states[:, 0]),
            velocity=jnp.asarray(states[:, 1]),
            time=jnp.zeros(N_PAIRS, jnp.int32),
            absorbed=jnp.zeros(N_PAIRS, bool),
        ),
        jnp.asarray(actions),
    )
    our_obs, our_state, our_rew, _, _, _ = ours

    gym_mountain_car = make_seals("seals/MountainCar-v0").unwrapped
    reached_goal = []
    for i in range(N_PAIRS):
        gym_mountain_car.state = states[i].astype(np.float64)
        obs, rew, terminated, _, _ = gym_mountain_car.step(int(actions[i]))
        np.testing.assert_allclose(np.asarray(our_obs[i]), obs, rtol=1e-5, atol=1e-7)
        assert float(our_rew[i]) == rew
        reached_goal.append(terminated)
    np.testing.assert_array_equal(np.asarray(our_state.absorbed), reached_goal)
    assert 0 < np.mean(reached_goal) < 1


def test_cartpole_episodes_match_seals():
    """Never terminated; truncated exactly at step 500; then auto-reset.

    After the pole falls CartPole is chaotic, and float32 (ours) and float64 (seals)
    trajectories part within a few hundred steps. So each seals step starts from our
    state before that step, while seals' own TimeLimit counts the whole episode.
    """
    env, params = envs.make("seals/CartPole-v0")
    theirs = make_seals("seals/CartPole-v0")
    _, episodes = run_episodes(env, params, jax.random.key(0), 3, uniform_policy(2))
    for episode in range(3):
        states, actions, obs, final_obs, rewards, terminated, truncated = jax.tree.map(
            operator.itemgetter(episode), episodes
        )
        theirs.reset(seed=episode)
        for t in range(params.max_steps_in_episode):
            theirs.unwrapped.state = np.array(
                [states.x[t], states.x_dot[t], states.theta[t], states.theta_dot[t]],
                np.float64,
            )
            their_obs, their_rew, their_terminated, their_truncated, _ = theirs.step(
                int(actions[t])
            )
            np.testing.assert_allclose(final_obs[t], their_obs, rtol=1e-5, atol=1e-5)
            assert rewards[t] == their_rew
            assert terminated[t] == their_terminated
            assert truncated[t] == their_truncated
        assert not terminated.any()
        np.testing.assert_array_equal(np.flatnonzero(truncated), [499])
        # The pole fell, so the physics were exercised past failure.
        assert 0 < rewards.sum() < 500
        # The last step's observation is the next episode's first.
        assert np.abs(obs[-1]).max() <= 0.05
        np.testing.assert_array_equal(obs[:-1], final_obs[:-1])


def pump_energy(key, obs):
    """Pushes along the velocity: reaches the goal in about 100 steps."""
    del key
    return jnp.where(obs[1] >= 0, 2, 0)


@pytest.mark.parametrize(
    "policy_name, policy",
    [("pump_energy", pump_energy), ("uniform", uniform_policy(3))],
)
def test_mountain_car_episodes_match_seals(policy_name, policy):
    """The step reaching the goal pays -1; afterwards seals' AbsorbAfterDoneWrapper
    repeats that observation with reward 0 until truncation at step 200. MountainCar
    is not chaotic, so here seals runs open loop on the same actions."""
    env, params = envs.make("seals/MountainCar-v0")
    theirs = make_seals("seals/MountainCar-v0")
    first_obs, episodes = run_episodes(env, params, jax.random.key(0), 3, policy)
    for episode in range(3):
        states, actions, obs, final_obs, rewards, terminated, truncated = jax.tree.map(
            operator.itemgetter(episode), episodes
        )
        theirs.reset(seed=episode)
        theirs.unwrapped.state = first_obs[episode].astype(np.float64)
        for t in range(params.max_steps_in_episode):
            their_obs, their_rew, their_terminated, their_truncated, _ = theirs.step(
                int(actions[t])
            )
            np.testing.assert_allclose(final_obs[t], their_obs, rtol=1e-5, atol=1e-6)
            assert rewards[t] == their_rew, t
            assert terminated[t] == their_terminated
            assert truncated[t] == their_truncated
        assert not terminated.any()
        np.testing.assert_array_equal(np.flatnonzero(truncated), [199])

        steps_to_goal = int(-rewards.sum())
        if policy_name == "uniform":
            assert steps_to_goal == 200
            continue
        assert steps_to_goal < 200
        # Absorbing from the goal-reaching step on: one frozen observation, reward 0.
        np.testing.assert_array_equal(rewards[:steps_to_goal], -1.0)
        np.testing.assert_array_equal(rewards[steps_to_goal:], 0.0)
        goal_obs = final_obs[steps_to_goal - 1]
        assert goal_obs[0] >= params.goal_position
        np.testing.assert_array_equal(
            final_obs[steps_to_goal:], goal_obs[None].repeat(200 - steps_to_goal, 0)
        )
        assert states.absorbed[steps_to_goal:].all()
        assert not states.absorbed[:steps_to_goal].any()


# ---------------------------------------------------------------- tabular


def assert_same_model(params, seals_env):
    """Same matrices as seals, exactly, once cast to our float32."""
    for ours, theirs in [
        (params.transition, seals_env.transition_matrix),
        (params.reward, seals_env.reward_matrix),
        (params.initial_state_dist, seals_env.initial_state_dist),
        (params.observation_matrix, seals_env.observation_matrix),
    ]:
        np.testing.assert_array_equal(np.asarray(ours), theirs.astype(np.float32))
    assert not np.asarray(params.terminal).any()
    assert params.max_steps_in_episode == seals_env.horizon


@pytest.mark.parametrize("env_id", TABULAR_IDS)
def test_tabular_model_and_transitions_match_seals(env_id):
    env, params = envs.make(env_id)
    theirs = make_seals(env_id).unwrapped
    assert_same_model(params, theirs)

    rng = np.random.default_rng(0)
    s = rng.integers(0, env.n_states, N_PAIRS)
    a = rng.integers(0, env.n_actions, N_PAIRS)
    our_obs, our_state, our_rew, our_terminated, our_truncated, _ = jax.tree.map(
        np.asarray,
        batched_step(
            env,
            params,
            jax.random.split(jax.random.key(0), N_PAIRS),
            TabularState(
                s=jnp.asarray(s, jnp.int32), time=jnp.zeros(N_PAIRS, jnp.int32)
            ),
            jnp.asarray(a),
        ),
    )
    our_next = np.asarray(our_state.s)

    transition = np.asarray(params.transition)
    observation_matrix = np.asarray(params.observation_matrix)
    their_next, their_obs, their_rew = [], [], []
    for i in range(N_PAIRS):
        theirs.reset()  # restarts seals' step count, so its horizon is never reached
        theirs.state = np.int64(s[i])
        obs, rew, terminated, truncated, info = theirs.step(np.int64(a[i]))
        assert not terminated and not truncated
        their_next.append(info["new_state"])
        their_obs.append(obs)
        their_rew.append(rew)
    their_next = np.array(their_next)

    # Reward of the state being left.
    np.testing.assert_array_equal(our_rew, np.float32(their_rew))
    np.testing.assert_array_equal(our_rew, np.asarray(params.reward)[s])
    # Both samplers only reach successors of the model, and observe them the same way.
    assert (transition[s, a, their_next] > 0).all()
    assert (transition[s, a, our_next] > 0).all()
    np.testing.assert_array_equal(observation_matrix[their_next], np.array(their_obs))
    np.testing.assert_array_equal(our_obs, observation_matrix[our_next])
    assert not our_terminated.any() and not our_truncated.any()


@pytest.mark.parametrize("env_id", ["seals/CliffWorld7x4-v0", "seals/Random-v0"])
def test_sampled_next_and_initial_states_follow_the_model(env_id):
    env, params = envs.make(env_id)
    n_samples = 2000
    n_s, n_a = env.n_states, env.n_actions
    s, a = np.divmod(np.arange(n_s * n_a), n_a)
    s, a = np.repeat(s, n_samples), np.repeat(a, n_samples)
    _, next_state, _, _, _, _ = batched_step(
        env,
        params,
        jax.random.split(jax.random.key(1), s.size),
        TabularState(s=jnp.asarray(s, jnp.int32), time=jnp.zeros(s.size, jnp.int32)),
        jnp.asarray(a),
    )
    counts = np.zeros((n_s, n_a, n_s))
    np.add.at(counts, (s, a, np.asarray(next_state.s)), 1)
    expected = np.asarray(params.transition, np.float64)
    # Five standard errors for every (s, a, s') cell.
    tolerance = 5 * np.sqrt(expected * (1 - expected) / n_samples) + 1e-9
    assert (np.abs(counts / n_samples - expected) <= tolerance).all()

    n_resets = 20000
    _, first = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(jax.random.key(2), n_resets), params
    )
    frequency = np.bincount(np.asarray(first.s), minlength=n_s) / n_resets
    expected = np.asarray(params.initial_state_dist, np.float64)
    assert (
        np.abs(frequency - expected)
        <= 5 * np.sqrt(expected * (1 - expected) / n_resets) + 1e-9
    ).all()


# Every id's horizon is compared with seals' in test_spaces_and_horizon; the episode
# mechanics are shared code, so a small and a large CliffWorld and Random-v0 suffice.
@pytest.mark.parametrize(
    "env_id",
    ["seals/CliffWorld7x4-v0", "seals/CliffWorld100x20XY-v0", "seals/Random-v0"],
)
def test_tabular_episode_terminates_at_the_horizon_like_seals(env_id):
    env, params = envs.make(env_id)
    theirs = make_seals(env_id)
    their_terminated, their_truncated = [], []
    for _ in range(params.max_steps_in_episode):
        _, _, terminated, truncated, _ = theirs.step(theirs.action_space.sample())
        their_terminated.append(terminated)
        their_truncated.append(truncated)

    _, (_, _, _, _, _, terminated, truncated) = run_episodes(
        env, params, jax.random.key(0), 1, uniform_policy(env.n_actions)
    )
    terminated, truncated = terminated[0], truncated[0]
    np.testing.assert_array_equal(terminated, their_terminated)
    np.testing.assert_array_equal(truncated, their_truncated)
    np.testing.assert_array_equal(
        np.flatnonzero(terminated), [params.max_steps_in_episode - 1]
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(
            n_states=7,
            n_actions=4,
            branch_factor=3,
            horizon=5,
            random_obs=True,
            obs_dim=2,
            generator_seed=3,
        ),
        dict(
            n_states=5,
            n_actions=2,
            branch_factor=5,
            horizon=4,
            random_obs=False,
            obs_dim=None,
            generator_seed=0,
        ),
        dict(
            n_states=6,
            n_actions=2,
            branch_factor=1,
            horizon=3,
            random_obs=True,
            obs_dim=None,
            generator_seed=1,
        ),
    ],
)
def test_random_transition_kwargs_match_seals(kwargs):
    _, params = envs.make("seals/Random-v0", **kwargs)
    assert_same_model(params, RandomTransitionEnv(**kwargs))
