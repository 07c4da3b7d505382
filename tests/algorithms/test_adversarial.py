"""GAIL and AIRL learn to imitate on seals/CartPole-v0 from the controller's demonstrations,
AIRL on seals/MountainCar-v0 (slow), and the adversarial machinery (replay, discriminator,
exported reward) behaves."""
import json

import jax
import numpy as np
import pytest

import envs
from experiments import configs, controller_demos
from jaxrl_align.algorithms.adversarial import airl, gail
from jaxrl_align.hparams import config_to_dict
from jaxrl_align.rl import ppo
from jaxrl_align.runtime import runner
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import flatten_trajectories

REFERENCE = envs.reference_returns("seals/CartPole-v0")


def train_adversarial(module, config, cartpole, demos, seeds):
    env, params = cartpole
    algo = module.make(config, env, params)
    settings = runner.RunSettings(seeds=seeds, num_updates=config.ppo.num_updates, num_chunks=3,
                                  eval_episodes=5, final_eval_episodes=20, progress=False)
    return algo, runner.run(algo, env, params, settings, flatten_trajectories(demos),
                            reference_returns=REFERENCE)


@pytest.fixture(scope="module")
def gail_run(cartpole, cartpole_demos):
    config = gail.GAILConfig(ppo=ppo.PPOConfig(total_timesteps=600_000))
    return train_adversarial(gail, config, cartpole, cartpole_demos, 3)


def test_gail_imitates_the_expert(gail_run):
    _, result = gail_run
    scores = np.asarray(result.summary["normalized_score"])
    # Random play scores 0 and a generator pushed the wrong way by a sign error stays near it.
    assert (scores >= 0.9).sum() >= 2, result.summary["return_mean"]


def test_gail_discriminator_tells_expert_from_generator(gail_run):
    _, result = gail_run
    accuracy = result.chunk_metrics["disc_acc"]
    assert np.all(accuracy[:, 0] > 0.6)
    # GAIL's generator reward softplus(logit) is positive.
    assert np.all(result.chunk_metrics["learned_reward"] > 0)


@pytest.fixture(scope="module")
def airl_run(cartpole, cartpole_demos):
    return train_adversarial(airl, airl.AIRLConfig(), cartpole, cartpole_demos, 3)


def test_airl_imitates_the_expert(airl_run):
    _, result = airl_run
    scores = np.asarray(result.summary["normalized_score"])
    assert (scores >= 0.9).sum() >= 2, result.summary["return_mean"]


def test_airl_reward_g_alone_trains_a_fresh_agent(airl_run, cartpole):
    """Reward transfer: PPO from scratch on each seed's exported g (no shaping, no
    discriminator, no demonstrations), standardised as imitation's scripts do, balances the
    pole. A g that ignores the task (zeros, or the shaping left in and cancelling) or has the
    wrong sign leaves the fresh agent near random play (score ~0)."""
    from jaxrl_align import algorithm, evaluation
    from jaxrl_align.data import rollout

    _, result = airl_run
    env, params = cartpole
    config = airl.AIRLConfig()
    transfer = ppo.PPOConfig(total_timesteps=1_000_000)
    learner = ppo.make(transfer, env, params, reward_apply=airl.learned_reward(config, env, params),
                       normalize_reward=True)

    def train_and_evaluate(key, reward_vars):
        state, _ = algorithm.train(learner, key, reward_vars, transfer.num_updates)
        return rollout.rollout_episodes(
            env, params, lambda k, obs: learner.act(state, k, obs, True),
            jax.random.fold_in(key, 1), 10, 500).returns

    keys = runner.seed_keys([1000, 1001, 1002])
    returns = np.asarray(jax.jit(jax.vmap(train_and_evaluate))(keys, result.state.disc_vars))
    scores = np.asarray(evaluation.summarize(returns, *REFERENCE)["normalized_score"])
    assert (scores >= 0.8).sum() >= 2, returns.mean(-1)


def test_airl_generator_reward_modes(cartpole, cartpole_demos):
    """"f" trains PPO on the shaped reward; "logit" on f − log π (the paper's log D − log(1−D))."""
    env, params = cartpole
    engine = ppo.PPOEngine(ppo.PPOConfig(), env, params)
    demos = flatten_trajectories(cartpole_demos)
    batch = (demos.obs[:16], demos.acts[:16], demos.next_obs[:16], demos.terminated[:16])
    gen = engine.init(jax.random.PRNGKey(0))
    rewards = {}
    for mode in airl.GENERATOR_REWARDS:
        disc = airl.discriminator(airl.AIRLConfig(generator_reward=mode), engine)
        disc_vars = disc.module.init(jax.random.PRNGKey(1), *batch)
        rewards[mode] = disc.generator_reward(disc_vars, gen.params, *batch)
    log_pi = engine.policy(gen.params, batch[0])[0].log_prob(batch[1])
    np.testing.assert_allclose(rewards["logit"], rewards["f"] - log_pi, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="generator_reward"):
        airl.AIRLConfig(generator_reward="shaped")


def gail_replay_rounds(cartpole, cartpole_demos, capacity: int, rounds: int):
    """A small GAIL (rollouts of 2 envs x 8 steps) with a replay of `capacity`: its config and
    its state before each of `rounds` updates and after the last."""
    env, params = cartpole
    config = gail.GAILConfig(ppo=ppo.PPOConfig(num_envs=2, num_steps=8, num_minibatches=1),
                             gen_replay_buffer_capacity=capacity, demo_batch_size=4)
    algo = gail.make(config, env, params)
    demos = flatten_trajectories(cartpole_demos)
    states = [algo.init(jax.random.PRNGKey(0), demos)]
    update = jax.jit(algo.update)
    for _ in range(rounds):
        states.append(update(states[-1], demos)[0])
    return config, states


def test_replay_keeps_the_latest_rollouts(cartpole, cartpole_demos):
    _, states = gail_replay_rounds(cartpole, cartpole_demos, capacity=32, rounds=3)
    assert [int(s.replay.size) for s in states[1:]] == [16, 32, 32]
    assert [int(s.replay.next) for s in states[1:]] == [16, 0, 16]


def test_replay_capacity_must_hold_whole_rollouts():
    rollout = gail.GAILConfig().ppo.steps_per_update
    with pytest.raises(ValueError, match="gen_replay_buffer_capacity"):
        gail.GAILConfig(gen_replay_buffer_capacity=rollout + 1)


def test_a_replay_smaller_than_a_rollout_keeps_its_newest_steps(cartpole, cartpole_demos):
    """imitation's HalfCheetah presets keep 512 of a 4,096-step rollout: the replay holds the
    rollout's last `capacity` transitions (time-major: the newest steps of every env)."""
    env, params = cartpole
    config, states = gail_replay_rounds(cartpole, cartpole_demos, capacity=6, rounds=2)
    _, batch = jax.jit(ppo.PPOEngine(config.ppo, env, params).rollout)(states[-2].gen)
    newest = np.asarray(batch.transitions.obs[-3:]).reshape(6, -1)  # last 3 steps of 2 envs
    assert int(states[-1].replay.size) == 6
    kept = np.asarray(states[-1].replay.items.obs)
    by_first = lambda x: x[np.argsort(x[:, 0])]
    np.testing.assert_allclose(by_first(kept), by_first(newest), rtol=1e-6)


def test_airl_exported_reward_is_the_unshaped_g(cartpole, cartpole_demos, tmp_path):
    env, params = cartpole
    config = airl.AIRLConfig(ppo=ppo.PPOConfig(num_envs=2, num_steps=8, num_minibatches=1),
                             demo_batch_size=8)
    algo = airl.make(config, env, params)
    demos = flatten_trajectories(cartpole_demos)
    state, _ = jax.jit(algo.update)(algo.init(jax.random.PRNGKey(0), demos), demos)
    g = airl.learned_reward(config, env, params)
    batch = (demos.obs[:16], demos.acts[:16], demos.next_obs[:16], demos.terminated[:16])
    net = airl.reward_net(config, space_spec(env, params))
    np.testing.assert_allclose(g(state.disc_vars, *batch),
                               net.apply(state.disc_vars, *batch, method=net.base_reward))
    shaped = net.apply(state.disc_vars, *batch)
    assert not np.allclose(shaped, g(state.disc_vars, *batch))
    path = airl.save_reward(tmp_path / "reward.msgpack", config, "seals/CartPole-v0", state.disc_vars)
    restored = airl.load_reward(path, config, state.disc_vars)
    np.testing.assert_array_equal(g(restored, *batch), g(state.disc_vars, *batch))
    assert (tmp_path / "reward.json").is_file()


def test_adversarial_configs_are_written_whole():
    """config.json holds the generator's nested PPO settings (a nested dataclass once broke it)."""
    config = config_to_dict(airl.AIRLConfig())
    assert json.loads(json.dumps(config))["ppo"]["gamma"] == 0.95
    assert config["reward_hidden"] == [32]


MOUNTAIN_CAR = "seals/MountainCar-v0"


@pytest.fixture(scope="module")
def mountain_car_demos():
    """10 episodes of the pumping controller (experiments.controller_demos)."""
    return controller_demos.controller_episodes(MOUNTAIN_CAR, 10)


def test_mountain_car_controller_clears_the_mark(mountain_car_demos):
    """The demonstrations must beat the 0.8 normalised score (−120) with room to spare, or an
    imitator could not reach it: the plain velocity-sign rule averages −120."""
    returns = np.asarray(mountain_car_demos.rews).sum(axis=1)
    assert returns.mean() >= -110 and returns.min() >= -120, returns


@pytest.mark.slow  # 8 seeds × 800k generator steps: ~4.5 min on 2 CPU cores (cached compile)
def test_airl_imitates_the_mountain_car_controller(mountain_car_demos):
    """Issue 4: AIRL reaches a normalised score ≥ 0.8 on at least 6 of 8 seeds trained in one
    call (measured: 8 of 8, returns −110 to −117), with `experiments.configs.AIRL_MOUNTAIN_CAR`."""
    env, params = envs.make(MOUNTAIN_CAR)
    config = configs.AIRL_MOUNTAIN_CAR
    algo = airl.make(config, env, params)
    settings = runner.RunSettings(seeds=8, num_updates=config.ppo.num_updates,
                                  num_chunks=8, eval_episodes=5, final_eval_episodes=20,
                                  progress=False)
    result = runner.run(algo, env, params, settings, flatten_trajectories(mountain_car_demos),
                        reference_returns=envs.reference_returns(MOUNTAIN_CAR))
    scores = np.asarray(result.summary["normalized_score"])
    assert (scores >= 0.8).sum() >= 6, result.summary["return_mean"]
