"""Every algorithm that takes continuous actions runs on a seals MuJoCo task through the command
line (tiny budgets: the point is that the task fits every algorithm's contract, not learning)."""
import json

import jax
import numpy as np
import pytest

from experiments import train
from experiments.common import parse_command_line

ENV_ID = "seals/Hopper-v1"
RUN = ["--seeds", "1", "--num-chunks", "1", "--eval-episodes", "1", "--final-eval-episodes", "1",
       "--no-progress", "--checkpoint-every", "0"]
TINY_PPO = lambda prefix: [f"--{prefix}num-envs", "2", f"--{prefix}num-steps", "16",
                           f"--{prefix}update-epochs", "1", f"--{prefix}num-minibatches", "1",
                           f"--{prefix}hidden", "8", f"--{prefix}total-timesteps", "64"]


@pytest.fixture(scope="module")
def hopper_demos(tmp_path_factory):
    """Two episodes of uniformly random actions (shapes are what matters here)."""
    import envs
    from jaxrl_align.data import demonstrations, rollout

    env, params = envs.make(ENV_ID, backend="mujoco")
    space = env.action_space(params)
    trajs = rollout.collect_episodes(env, params, lambda key, obs: space.sample(key),
                                     jax.random.PRNGKey(0), 2, 1000)
    path = tmp_path_factory.mktemp("demos") / "hopper.npz"
    return demonstrations.save_demos(path, trajs, env_id=ENV_ID, source="random actions")


@pytest.fixture(scope="module")
def hopper_expert(tmp_path_factory):
    """A (barely trained) PPO policy written by `experiments.train ppo`, with running
    observation statistics in its parameters."""
    out = tmp_path_factory.mktemp("ppo")
    run(out, "ppo", *TINY_PPO("ppo."), "--ppo.obs-normalization", "running")
    return out / "policy.msgpack"


def run(out, *argv):
    result = train.main(parse_command_line(train.COMMANDS, [*argv, "--env", ENV_ID, *RUN,
                                                            "--out", str(out)]))
    results = json.loads((out / "results.json").read_text())
    assert results["env"] == ENV_ID and np.isfinite(results["return_mean"]).all()
    return result


def test_ppo_expert_file_loads_for_dagger(tmp_path, hopper_expert):
    assert hopper_expert.is_file() and hopper_expert.with_suffix(".json").is_file()
    run(tmp_path, "dagger", "--expert-policy", str(hopper_expert), "--dagger.rounds", "1",
        "--dagger.num-envs", "2", "--dagger.min-timesteps", "64", "--dagger.bc-epochs", "1",
        "--dagger.bc.hidden", "8")


@pytest.mark.parametrize("argv", [
    ["bc", "--bc.epochs", "1", "--bc.hidden", "8"],
    ["gail", *TINY_PPO("gail.ppo."), "--gail.reward-hidden", "8",
     "--gail.demo-batch-size", "32"],
    ["airl", *TINY_PPO("airl.ppo."), "--airl.demo-batch-size", "32"],
    ["sqil", "--sac.total-timesteps", "64", "--sac.learning-starts", "32", "--sac.hidden", "8",
     "--sac.batch-size", "16"],
    ["density", *TINY_PPO("density.ppo."), "--density.kernel-bandwidth", "0.5"],
], ids=lambda argv: argv[0])
def test_runs_from_demonstrations(tmp_path, hopper_demos, argv):
    run(tmp_path, *argv, "--demos", str(hopper_demos))


def test_preference_comparisons(tmp_path):
    run(tmp_path, "preferences", "--preferences.total-comparisons", "8",
        "--preferences.fragment-length", "8", "--preferences.initial-reward-steps", "1",
        "--preferences.reward-steps-per-round", "1", "--preferences.no-active-selection",
        "--preferences.exploration-frac", "0", "--preferences.heldout-size", "4",
        "--preferences.heldout-pairs-per-round", "2", "--preferences.model.ensemble-size", "1",
        "--preferences.model.hidden", "8", *TINY_PPO("preferences.ppo."))


def test_experts_command_writes_policy_and_demonstrations(tmp_path):
    """`experiments.experts` (one short update here) writes the run, an expert file that DAgger
    loads, demonstrations that load against the task, and expert.json."""
    import envs
    from experiments import experts
    from jaxrl_align.algorithms import dagger
    from jaxrl_align.data import demonstrations

    [record] = experts.main(experts.ExpertFlags(env=ENV_ID, out=tmp_path, seeds=1,
                                                total_timesteps=64, num_demos=2,
                                                progress=False))
    out = tmp_path / "Hopper-v1"
    for name in ("results.json", "policy.msgpack", "policy.json", "demos.npz", "expert.json"):
        assert (out / name).is_file(), name
    env, params = envs.make(ENV_ID)
    trajs, meta = demonstrations.load_demos(out / "demos.npz", env=env, env_params=params,
                                            env_id=ENV_ID)
    assert trajs.obs.shape == (2, 1001, 12) and meta["mean_return"] == record["demo_mean_return"]
    expert, expert_params = dagger.load_ppo_expert(out / "policy.msgpack", env, params, ENV_ID)
    action = expert(expert_params, jax.random.PRNGKey(0), trajs.obs[0, 0])
    assert action.shape == (3,) and np.all(np.abs(np.asarray(action)) <= 1.0)
    assert record["env_id"] == ENV_ID and record["total_timesteps"] == 64
    with pytest.raises(SystemExit, match="--env"):
        experts.main(experts.ExpertFlags(env="seals/Nope-v1", out=tmp_path))
