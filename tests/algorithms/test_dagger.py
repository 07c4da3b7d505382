"""DAgger: imitation's β schedules, executed actions that follow β with the expert's labels,
BC epochs over the filled part of the aggregate only, CartPole at 500 on 8 of 8 seeds from 4
rounds, and (slow) DAgger beating expert-only aggregation on Pendulum with a PPO expert."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

import envs
from envs.controllers import cartpole_controller
from experiments.configs import DAGGER_PENDULUM
from jaxrl_align.algorithms import bc, dagger
from jaxrl_align.runtime import runner
from jaxrl_align.types import flatten_trajectories


def imitation_linear(rampdown_rounds, round_num):
    return min(1, max(0, (rampdown_rounds - round_num) / rampdown_rounds))


@pytest.mark.parametrize("rampdown", [1, 3, 15])
def test_linear_beta_schedule_is_imitations(rampdown):
    hp = dagger.DAggerConfig(rampdown_rounds=rampdown)
    got = [float(dagger.beta(hp, "linear", jnp.int32(r))) for r in range(20)]
    np.testing.assert_allclose(got, [imitation_linear(rampdown, r) for r in range(20)],
                               rtol=1e-6)
    assert got[0] == 1.0 and got[rampdown] == 0.0


@pytest.mark.parametrize("p", [0.5, 0.9, 1.0])
def test_exponential_beta_schedule_is_imitations(p):
    hp = dagger.DAggerConfig(beta_schedule="exponential", decay_probability=p)
    got = [float(dagger.beta(hp, "exponential", jnp.int32(r))) for r in range(10)]
    np.testing.assert_allclose(got, [p**r for r in range(10)], rtol=1e-5)
    if p == 1.0:
        assert got == [1.0] * 10  # expert only: the BC baseline of the Pendulum comparison


@pytest.mark.parametrize("field,value,match", [
    ("decay_probability", 0.0, "decay_probability: expected a value in"),
    ("decay_probability", 1.5, "decay_probability: expected a value in"),
    ("rampdown_rounds", 0, "rampdown_rounds: expected a positive integer"),
    ("beta_schedule", "cosine", "beta_schedule: expected one of"),
    ("rounds", 0, "rounds: expected a positive integer"),
    ("num_steps", 0, "num_steps: expected a positive integer"),
])
def test_bad_config_is_a_clear_error(field, value, match):
    with pytest.raises(ValueError, match=match):
        dagger.DAggerConfig(**{field: value})


# A probe whose observation is the last executed action (and the time), so the aggregate's next
# observation shows what each environment executed at the step before.
@struct.dataclass
class ProbeState(environment.EnvState):
    time: jax.Array


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = struct.field(pytree_node=False, default=10)


class LastAction(environment.Environment):
    @property
    def default_params(self):
        return ProbeParams()

    def step_env(self, key, state, action, params):
        state = ProbeState(time=state.time + 1)
        obs = jnp.stack([jnp.reshape(action, ()), state.time.astype(jnp.float32)])
        return obs, state, jnp.float32(0.0), jnp.array(False), {}

    def reset_env(self, key, params):
        return jnp.zeros(2), ProbeState(time=jnp.int32(0))

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)

    def action_space(self, params=None):
        return spaces.Box(-2.0, 2.0, (1,), jnp.float32)


EXPERT_ACTION = 1.5
NUM_PROBE_ENVS = 16


@pytest.fixture(scope="module")
def probe_rounds():
    """One round at each β of an untrained learner (it samples N(≈0, 1), never exactly the
    expert's 1.5): (β, aggregate obs [T, E, 2], labels [T, E, 1], metrics) per β."""
    env, params = LastAction(), ProbeParams()
    config = dagger.DAggerConfig(beta_schedule="exponential", decay_probability=0.5,
                                 num_envs=NUM_PROBE_ENVS, num_steps=200, rounds=3)
    expert = dagger.policy_expert(lambda key, obs: jnp.full((1,), EXPERT_ACTION))
    algo = dagger.make(config, env, params, expert)
    state = jax.jit(algo.init)(jax.random.PRNGKey(0), dagger.DAggerData())
    one_round = jax.jit(lambda state, round_num, p: algo.update(
        state.replace(round=round_num, hparams=state.hparams.replace(decay_probability=p)),
        dagger.DAggerData()))
    rounds = {}
    # β = p ** round: 0.5 ** 0 = 1, 0.5 ** 1 = 0.5, and 1e-30 ** 1 as good as 0.
    for b, (round_num, p) in {1.0: (0, 0.5), 0.5: (1, 0.5), 0.0: (1, 1e-30)}.items():
        new, metrics = one_round(state, jnp.int32(round_num), jnp.float32(p))
        items = jax.tree.map(lambda x, size=int(new.dataset.size): np.asarray(x[:size]).reshape(
            (-1, NUM_PROBE_ENVS) + x.shape[1:]), new.dataset.items)
        rounds[b] = (items.obs, items.acts, metrics)
    return rounds


def executed_by_expert(obs):
    """[T−1, E] bool: whether the action at step t was the expert's, on the steps whose next
    observation is not an auto-reset one; and that mask."""
    executed, not_reset = obs[1:, :, 0], obs[1:, :, 1] > 0
    return executed == np.float32(EXPERT_ACTION), not_reset


@pytest.mark.parametrize("b", [1.0, 0.5, 0.0])
def test_executed_actions_follow_beta_and_labels_are_the_experts(probe_rounds, b):
    obs, labels, metrics = probe_rounds[b]
    assert np.all(labels == np.float32(EXPERT_ACTION))  # whatever was executed
    by_expert, valid = executed_by_expert(obs)
    fraction = by_expert[valid].mean()
    assert float(metrics["beta"]) == pytest.approx(b)
    if b == 1.0:
        assert by_expert[valid].all()
    elif b == 0.0:
        assert not by_expert[valid].any()
    else:
        # 16 envs x 200 steps: the standard deviation of the fraction is about 0.01.
        assert abs(fraction - 0.5) < 0.05, fraction
        # Each environment draws its own mask (imitation's code; its docstring says otherwise):
        # at most steps some environments execute the expert's action and others the learner's.
        rows = [by_expert[t, valid[t]] for t in range(len(valid)) if valid[t].all()]
        mixed = np.mean([r.any() and not r.all() for r in rows])
        assert mixed > 0.95, mixed
    np.testing.assert_allclose(float(metrics["expert_fraction"]), fraction, atol=0.02)


@pytest.fixture(scope="module")
def filled_demos(cartpole_demos):
    return flatten_trajectories(cartpole_demos)


def test_bc_epoch_over_the_filled_part_only(cartpole, filled_demos):
    """`bc.update(..., count)`: entries past `count` never reach a gradient (NaN there leaves
    the parameters finite), fewer than a batch is no step at all, and count = N is the epoch."""
    env, params = cartpole
    algo = bc.make(bc.BCConfig(), env, params)
    n = len(filled_demos)
    state = algo.init(jax.random.PRNGKey(0), filled_demos)
    update = jax.jit(algo.update)

    full, full_metrics = update(state, filled_demos)
    counted, counted_metrics = update(state, filled_demos, jnp.int32(n))
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(counted.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(full_metrics["loss"], counted_metrics["loss"], rtol=1e-5)

    poisoned = filled_demos.replace(obs=filled_demos.obs.at[1000:].set(jnp.nan))
    part, metrics = update(state, poisoned, jnp.int32(1000))
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(part.params))
    assert np.isfinite(float(metrics["loss"]))
    none, _ = update(state, poisoned, jnp.int32(31))  # under one batch of 32: no step
    for a, b in zip(jax.tree.leaves(none.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)


CARTPOLE_SEEDS = 8
CARTPOLE_ROUNDS = 4


@pytest.fixture(scope="module")
def cartpole_run(cartpole, filled_demos):
    """8 seeds, 4 rounds, the controller as the expert, in one call; 100 demonstration
    transitions injected into round 0."""
    env, params = cartpole
    algo = dagger.make(dagger.DAggerConfig(rounds=CARTPOLE_ROUNDS), env, params,
                       dagger.policy_expert(cartpole_controller))
    demos = jax.tree.map(lambda x: x[:100], filled_demos)
    settings = runner.RunSettings(seeds=CARTPOLE_SEEDS, num_chunks=CARTPOLE_ROUNDS,
                                  eval_episodes=10, final_eval_episodes=20, progress=False)
    data = dagger.DAggerData(demos=demos)
    return algo, data, runner.run(algo, env, params, settings, data,
                                  reference_returns=envs.reference_returns("seals/CartPole-v0"))


def test_cartpole_every_seed_at_500_from_four_rounds(cartpole_run):
    _, _, result = cartpole_run
    # The controller scores 500; random play about 33, an untrained learner far below 500.
    assert np.all(np.asarray(result.summary["return_mean"]) == 500.0), result.summary
    assert result.final_returns.shape == (CARTPOLE_SEEDS, 20)


def test_cartpole_rounds_follow_the_schedule(cartpole_run):
    _, data, result = cartpole_run
    m = result.chunk_metrics  # [seeds, rounds]: one round per chunk
    np.testing.assert_allclose(m["beta"][0], [1, 14 / 15, 13 / 15, 12 / 15], rtol=1e-6)
    # 3 envs x 500 steps per round, after the 100 injected demonstration transitions.
    np.testing.assert_array_equal(m["dataset_size"][0], 100 + 1500 * np.arange(1, 5))
    assert result.env_steps == CARTPOLE_ROUNDS * 1500
    assert np.all(m["expert_fraction"][:, 0] == 1.0)  # round 0: the expert alone
    assert np.all(np.abs(m["expert_fraction"][:, 1:] - m["beta"][:, 1:]) < 0.05)
    assert np.all(m["loss"][:, -1] < m["loss"][:, 0])
    state = result.run_state(0)
    np.testing.assert_array_equal(state.dataset.items.obs[:100], data.demos.obs)


def test_bad_data_is_a_clear_error(cartpole, filled_demos):
    env, params = cartpole
    config = dagger.DAggerConfig(rounds=1)
    wrong_shape = dagger.make(config, env, params,
                              dagger.policy_expert(lambda key, obs: jnp.zeros(2, jnp.int32)))
    with pytest.raises(ValueError, match=r"expert: expected an action of shape \(\)"):
        wrong_shape.init(jax.random.PRNGKey(0), dagger.DAggerData())
    as_float = dagger.make(config, env, params,
                           dagger.policy_expert(lambda key, obs: jnp.zeros(())))
    with pytest.raises(ValueError, match="expert: expected integer actions"):
        as_float.init(jax.random.PRNGKey(0), dagger.DAggerData())
    algo = dagger.make(config, env, params, dagger.policy_expert(cartpole_controller))
    bad = dagger.DAggerData(demos=filled_demos.replace(obs=filled_demos.obs[:, :3]))
    with pytest.raises(ValueError, match="demos: expected observations"):
        algo.init(jax.random.PRNGKey(0), bad)
    with pytest.raises(ValueError, match="fewer than bc.batch_size=32"):
        dagger.make(dataclasses.replace(config, num_steps=10), env, params,
                    dagger.policy_expert(cartpole_controller))


def test_saved_ppo_expert_acts_as_the_policy_did(tmp_path):
    from experiments import configs
    from jaxrl_align.rl import ppo

    env, params = envs.make("Pendulum-v1")
    engine = ppo.PPOEngine(configs.PPO_PENDULUM, env, params)
    state = engine.init(jax.random.PRNGKey(3))
    path = dagger.save_ppo_expert(tmp_path / "policy.msgpack", configs.PPO_PENDULUM,
                                  "Pendulum-v1", state.params)
    expert, expert_params = dagger.load_ppo_expert(path, env, params, env_id="Pendulum-v1")
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    np.testing.assert_array_equal(
        jax.vmap(lambda o: expert(expert_params, None, o))(obs),
        jax.vmap(lambda o: engine.act(state, None, o, deterministic=True))(obs))
    with pytest.raises(ValueError, match="holds a policy for Pendulum-v1, not seals/CartPole"):
        dagger.load_ppo_expert(path, env, params, env_id="seals/CartPole-v0")


# Pendulum-v1: a PPO expert (PPO_PENDULUM) against expert-only aggregation (β = 1 every round,
# the same rounds and BC epochs: BC on the same number of expert-driven episodes). β follows
# LinearBetaSchedule(1), the schedule of imitation's own Pendulum test (all expert in round 0,
# all learner after), and BC takes 10 epochs a round (docs/algorithms/dagger.md has 4, too).
PENDULUM_SEEDS = 8
PENDULUM_ROUNDS = DAGGER_PENDULUM.rounds
PENDULUM = DAGGER_PENDULUM


@pytest.fixture(scope="module")
def pendulum_runs():
    from experiments import configs
    from jaxrl_align.rl import ppo

    env, params = envs.make("Pendulum-v1")
    ppo_algo = ppo.make(configs.PPO_PENDULUM, env, params)
    expert_run = runner.run(ppo_algo, env, params, runner.RunSettings(
        seeds=1, num_chunks=1, eval_episodes=50, final_eval_episodes=50, progress=False))
    expert_params = expert_run.run_state(0).params
    expert = dagger.ppo_expert(configs.PPO_PENDULUM, env, params)
    data = dagger.DAggerData(expert_params=expert_params)
    settings = runner.RunSettings(seeds=PENDULUM_SEEDS, num_chunks=1, eval_episodes=50,
                                  final_eval_episodes=50, progress=False)
    results = {}
    for name, config in {
            "dagger": PENDULUM,
            "expert_only": dataclasses.replace(PENDULUM, beta_schedule="exponential",
                                               decay_probability=1.0)}.items():
        algo = dagger.make(config, env, params, expert)
        results[name] = runner.run(algo, env, params, settings, data)
    return float(np.mean(expert_run.summary["return_mean"])), results


@pytest.mark.slow
def test_pendulum_dagger_beats_expert_only_aggregation(pendulum_runs):
    expert_return, results = pendulum_runs
    assert expert_return >= -200, expert_return
    dagger_returns = np.asarray(results["dagger"].summary["return_mean"])
    expert_only = np.asarray(results["expert_only"].summary["return_mean"])
    print("expert", expert_return, "dagger", dagger_returns, "expert only", expert_only)
    assert np.sum(dagger_returns > expert_only) >= 6, (dagger_returns, expert_only)
    assert np.sum(dagger_returns >= -250) >= 6, dagger_returns
