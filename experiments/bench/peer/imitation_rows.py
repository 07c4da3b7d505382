"""The rows against imitation 1.0.1: BC, GAIL, AIRL, preference comparisons, DAgger, SQIL and the
density reward on seals/CartPole-v0 and MCE IRL on seals/CliffWorld7x4-v0, one seed, this
package's defaults on our side (SQIL: its CartPole preset) and their translation on imitation's
(`experiments/bench/peer/imitation_side.py` says how each setting was translated; the peer's
flags are read off our configs).

Our side times what the peer times: the whole training run (`jaxrl_align.algorithm.train`:
`init`, with preference comparisons' first reward training, and every update, as one compiled
program; compilation timed apart, from an empty cache), then evaluates the final policy apart
(50 deterministic episodes; MCE IRL: the exact expected return). The demonstrations are 10
episodes of the hand-written controller (500 each), collected here with key 0 and exported for
the peer as flat arrays (`demos.npz` beside the record;
`experiments.density_vs_imitation.export_demos`). DAgger's expert is the same controller, queried
at every step (imitation's side: the formula written out as an SB3 policy), with the
demonstrations in round 0 on both sides.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from experiments.bench.peer import REPO, Row, env_steps_per_seed, train_and_evaluate

CARTPOLE = "seals/CartPole-v0"
CLIFF_WORLD = "seals/CliffWorld7x4-v0"
DEMO_EPISODES = 10
GAIL_TIMESTEPS = 600_000  # 7 of 8 seeds reach the expert (docs/algorithms/adversarial.md)
MCE_ITERATIONS = 1000
EVAL_EPISODES = 50
# imitation's interpreter (`make imitation-env`), or where JAXRL_IMITATION_PYTHON points.
PEER_PYTHON = Path(os.environ.get("JAXRL_IMITATION_PYTHON",
                                  REPO / ".venv-imitation" / "bin" / "python"))
PEER_SCRIPT = REPO / "experiments" / "bench" / "peer" / "imitation_side.py"


def controller_demos():
    from experiments.controller_demos import controller_episodes

    return controller_episodes(CARTPOLE, DEMO_EPISODES)


def export_controller_demos(path: Path) -> Path:
    """The demonstrations file the peer reads (written once, atomically, if missing)."""
    from experiments.density_vs_imitation import export_demos

    if not path.exists():
        export_demos(path, controller_demos())
    return path


def run_ours(row: str, env_id: str, make, config, data, work, unit: str,
             exact_return=None) -> dict:
    """One seed of `make(config, env, env_params)` on `env_id` (`train_and_evaluate`)."""
    import envs

    env, env_params = envs.make(env_id)
    return train_and_evaluate(row, env, env_params, make(config, env, env_params), data, 1, work,
                              unit, EVAL_EPISODES, exact_return)


def _demos():
    from jaxrl_align.types import flatten_trajectories

    return flatten_trajectories(controller_demos())


def ours_bc() -> dict:
    from jaxrl_align.algorithms import bc

    config = bc.BCConfig()
    transitions = DEMO_EPISODES * 500
    return run_ours("bc", CARTPOLE, bc.make, config, _demos(),
                    lambda state: config.epochs * (transitions // config.batch_size),
                    "gradient steps")


def ours_gail() -> dict:
    from jaxrl_align.algorithms.adversarial import gail
    from jaxrl_align.rl import ppo

    config = gail.GAILConfig(ppo=ppo.PPOConfig(total_timesteps=GAIL_TIMESTEPS))
    return run_ours("gail", CARTPOLE, gail.make, config, _demos(),
                    env_steps_per_seed, "generator env steps")


# imitation 1.0's GAIL tutorial (docs/tutorials/3_train_gail.ipynb) on both sides: SB3 PPO with
# 8 environments x 2048 steps, 5 epochs of minibatch 64, a constant lr of 4e-4, γ 0.95, no value
# clipping; 8 discriminator steps a round; 800k steps ("to match expert"). One setting differs
# from the tutorial: the replay is one round's rollout on both sides (the tutorial's 512 is
# smaller than a rollout, which this package's replay does not allow).
GAIL_TUTORIAL_TIMESTEPS = 800_000
GAIL_TUTORIAL_PEER_FLAGS = ("--n-envs", "8", "--n-steps", "2048", "--batch-size", "64",
                            "--n-epochs", "5", "--learning-rate", "4e-4", "--constant-lr",
                            "--no-value-clip", "--gamma", "0.95", "--ent-coef", "0",
                            "--disc-updates", "8", "--timesteps", str(GAIL_TUTORIAL_TIMESTEPS))


def ours_gail_tutorial() -> dict:
    from jaxrl_align.algorithms.adversarial import gail
    from jaxrl_align.rl import ppo

    config = gail.GAILConfig(n_disc_updates_per_round=8, ppo=ppo.PPOConfig(
        num_envs=8, num_steps=2048, update_epochs=5, num_minibatches=2048 * 8 // 64, lr=4e-4,
        anneal_lr=False, gamma=0.95, clip_value=False, total_timesteps=GAIL_TUTORIAL_TIMESTEPS))
    return run_ours("gail_tutorial", CARTPOLE, gail.make, config, _demos(), env_steps_per_seed,
                    "generator env steps")


# imitation 1.0's AIRL tutorial (docs/tutorials/4_train_airl.ipynb) on both sides: 8
# environments x 2048 steps, 5 epochs of minibatch 64, a constant lr of 5e-4, γ 0.95, clip 0.1,
# value coefficient 0.1, no value clipping; 2048 demonstration transitions per discriminator
# step, 16 steps a round; f itself as the generator's reward. The tutorial trains 2M steps
# (100k when FAST); 500k here. The replay is one round's rollout, as in the GAIL tutorial row.
AIRL_TUTORIAL_TIMESTEPS = 500_000
AIRL_TUTORIAL_PEER_FLAGS = ("--n-envs", "8", "--n-steps", "2048", "--batch-size", "64",
                            "--n-epochs", "5", "--learning-rate", "5e-4", "--constant-lr",
                            "--no-value-clip", "--gamma", "0.95", "--ent-coef", "0",
                            "--clip-range", "0.1", "--vf-coef", "0.1", "--disc-updates", "16",
                            "--demo-batch-size", "2048", "--raw-reward",
                            "--timesteps", str(AIRL_TUTORIAL_TIMESTEPS))


def ours_airl_tutorial() -> dict:
    from jaxrl_align.algorithms.adversarial import airl
    from jaxrl_align.rl import ppo

    config = airl.AIRLConfig(
        n_disc_updates_per_round=16, demo_batch_size=2048, normalize_reward=False,
        ppo=ppo.PPOConfig(num_envs=8, num_steps=2048, update_epochs=5,
                          num_minibatches=2048 * 8 // 64, lr=5e-4, anneal_lr=False, gamma=0.95,
                          clip_eps=0.1, vf_coef=0.1, ent_coef=0.0, clip_value=False,
                          total_timesteps=AIRL_TUTORIAL_TIMESTEPS))
    return run_ours("airl_tutorial", CARTPOLE, airl.make, config, _demos(), env_steps_per_seed,
                    "generator env steps")


def ours_airl() -> dict:
    from jaxrl_align.algorithms.adversarial import airl

    config = airl.AIRLConfig()
    return run_ours("airl", CARTPOLE, airl.make, config, _demos(),
                    env_steps_per_seed, "generator env steps")


def ours_mce_irl() -> dict:
    import envs
    import numpy as np

    from jaxrl_align.algorithms.irl import mce_irl, occupancy_matching

    # Every iteration on both sides (no early stop), so that both do the same work.
    config = mce_irl.MCEIRLConfig(linf_eps=0.0, grad_l2_eps=0.0, max_iter=MCE_ITERATIONS)

    def exact_return(state, params):  # the learned policy's expected true return
        return float(np.asarray(state.occupancy, np.float64) @ np.asarray(params.reward))

    data = occupancy_matching.expert_data(envs.make(CLIFF_WORLD)[1], config.discount)
    return run_ours("mce_irl", CLIFF_WORLD, mce_irl.make, config, data,
                    lambda state: MCE_ITERATIONS, "iterations", exact_return)


def ours_preferences() -> dict:
    from jaxrl_align.algorithms import preference_comparisons

    config = preference_comparisons.PreferenceComparisonsConfig()
    return run_ours("preferences", CARTPOLE, preference_comparisons.make, config, None,
                    env_steps_per_seed, "agent env steps")


def ours_dagger() -> dict:
    from envs.controllers import cartpole_controller
    from jaxrl_align.algorithms import dagger

    def make(config, env, env_params):
        return dagger.make(config, env, env_params, dagger.policy_expert(cartpole_controller))

    return run_ours("dagger", CARTPOLE, make, dagger.DAggerConfig(),
                    dagger.DAggerData(demos=_demos()), env_steps_per_seed, "env steps")


def sqil_config():
    """SQIL's CartPole preset (the DQN preset at lr 1e-3, 15,000 steps: docs/algorithms/sqil.md):
    `DQNConfig()`, SB3's defaults, is Atari-scale and needs 300,000 steps on CartPole."""
    from experiments.configs import SQIL_CARTPOLE

    return SQIL_CARTPOLE


def ours_sqil() -> dict:
    from jaxrl_align.algorithms import sqil

    return run_ours("sqil", CARTPOLE, sqil.make, sqil_config(), _demos(), env_steps_per_seed,
                    "env steps")


def ours_density() -> dict:
    from jaxrl_align.algorithms import density

    return run_ours("density", CARTPOLE, density.make, density.DensityConfig(), _demos(),
                    env_steps_per_seed, "agent env steps")


def peer(row: str, algo: str, *flags: str):
    def command(out: Path) -> list[str]:
        demos = export_controller_demos(out.parent / "demos.npz")
        return [str(PEER_PYTHON), str(PEER_SCRIPT), algo, "--row", row, "--demos", str(demos),
                "--out", str(out), *flags]
    return command


def _preference_flags() -> list[str]:
    from jaxrl_align.algorithms import preference_comparisons

    config = preference_comparisons.PreferenceComparisonsConfig()
    return ["--timesteps", "997888", "--comparisons", str(config.total_comparisons),
            "--iterations", "50"]


def _dagger_flags() -> list[str]:
    from jaxrl_align.algorithms import dagger

    config = dagger.DAggerConfig()
    if config.beta_schedule != "linear" or config.learner_deterministic:
        raise ValueError("dagger: the peer translates the linear β schedule and sampled learner "
                         "actions only")
    # 3 environments x one 500-step episode: imitation's round of 3 episodes and >= 500 steps.
    per_round = config.num_envs * config.steps_per_env(500)
    return ["--timesteps", str(config.rounds * per_round), "--epochs", str(config.bc_epochs),
            "--rampdown-rounds", str(config.rampdown_rounds), "--n-envs", str(config.num_envs)]


def _sqil_flags() -> list[str]:
    c = sqil_config()
    return ["--timesteps", str(c.total_timesteps), "--n-envs", str(c.num_envs),
            "--learning-rate", str(c.lr), *([] if c.anneal_lr else ["--constant-lr"]),
            "--buffer-size", str(c.buffer_size), "--learning-starts", str(c.learning_starts),
            "--batch-size", str(c.batch_size), "--tau", str(c.tau), "--gamma", str(c.gamma),
            "--train-freq", str(c.train_freq), "--gradient-steps", str(c.gradient_steps),
            "--target-update-interval", str(c.target_update_interval),
            "--exploration-fraction", str(c.exploration_fraction),
            "--exploration-initial-eps", str(c.exploration_initial_eps),
            "--exploration-final-eps", str(c.exploration_final_eps),
            "--max-grad-norm", str(c.max_grad_norm), "--q-hidden", *map(str, c.hidden),
            "--q-activation", c.activation]


def _density_flags() -> list[str]:
    from jaxrl_align.algorithms import density

    c = density.DensityConfig()
    p = c.ppo
    if (c.density_type, c.is_stationary, c.standardise_inputs) != ("state_action", True, True):
        raise ValueError("density: the peer translates a stationary, standardised state-action "
                         "density only")
    return ["--timesteps", str(p.num_updates * p.steps_per_update), "--kernel", c.kernel,
            "--bandwidth", str(c.kernel_bandwidth), "--n-envs", str(p.num_envs),
            "--n-steps", str(p.num_steps),
            "--batch-size", str(p.steps_per_update // p.num_minibatches),
            "--n-epochs", str(p.update_epochs), "--learning-rate", str(p.lr),
            *([] if p.anneal_lr else ["--constant-lr"]),
            *([] if p.clip_value else ["--no-value-clip"]), "--clip-range", str(p.clip_eps),
            "--vf-coef", str(p.vf_coef), "--gamma", str(p.gamma), "--ent-coef", str(p.ent_coef)]


ROWS = {
    "bc": Row("imitation", "CartPole, 10 demos, 40 epochs of batch 32, 32-32 tanh",
              ours_bc, peer("bc", "bc", "--epochs", "40")),
    "gail": Row("imitation", f"CartPole, 10 demos, {GAIL_TIMESTEPS:,} generator steps",
                ours_gail, peer("gail", "gail", "--timesteps", str(GAIL_TIMESTEPS))),
    "gail_tutorial": Row(
        "imitation", "CartPole, 10 demos, imitation's GAIL tutorial settings (8 x 2048 "
        f"steps, minibatch 64, 5 epochs), {GAIL_TUTORIAL_TIMESTEPS:,} generator steps",
        ours_gail_tutorial, peer("gail_tutorial", "gail", *GAIL_TUTORIAL_PEER_FLAGS)),
    "airl": Row("imitation", "CartPole, 10 demos, 800,000 generator steps", ours_airl,
                peer("airl", "airl", "--timesteps", "800000")),
    "airl_tutorial": Row(
        "imitation", "CartPole, 10 demos, imitation's AIRL tutorial settings (8 x 2048 "
        f"steps, minibatch 64, 5 epochs), {AIRL_TUTORIAL_TIMESTEPS:,} generator steps",
        ours_airl_tutorial, peer("airl_tutorial", "airl", *AIRL_TUTORIAL_PEER_FLAGS)),
    "mce_irl": Row("imitation",
                   f"CliffWorld 7x4, linear reward, {MCE_ITERATIONS:,} iterations", ours_mce_irl,
                   peer("mce_irl", "mce_irl", "--iterations", str(MCE_ITERATIONS),
                        "--lr", "0.01")),
    "preferences": Row("imitation",
                       "CartPole, 2,000 comparisons, ~1M agent steps", ours_preferences,
                       lambda out: peer("preferences", "preferences", *_preference_flags())(out)),
    "dagger": Row("imitation", "CartPole, the controller as expert (+10 demos in round 0), 15 "
                  "rounds of 3 x 500 steps, β linear over 15, 4 BC epochs of batch 32 a round",
                  ours_dagger, lambda out: peer("dagger", "dagger", *_dagger_flags())(out)),
    "sqil": Row("imitation", "CartPole, 10 demos, DQN CartPole preset (batch 256, 128 gradient "
                "steps per 256 env steps, lr 1e-3 annealed, 64-64 tanh), 15,000 env steps",
                ours_sqil, lambda out: peer("sqil", "sqil", *_sqil_flags())(out)),
    "density": Row("imitation", "CartPole, 10 demos, state-action Gaussian KDE (bandwidth 0.5), "
                   "PPO 16 x 128 (value loss unclipped), 499,712 agent steps", ours_density,
                   lambda out: peer("density", "density", *_density_flags())(out)),
}

if __name__ == "__main__":
    sys.exit("run the rows through `python -m experiments.bench.peers`")
