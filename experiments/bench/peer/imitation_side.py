"""imitation 1.0.1's side of the peer benchmark (`experiments/bench/peers.py`): one algorithm,
one seed per process, with this package's default settings translated, writing the record of
`experiments/bench/peer/__init__.py` (RECORD_FIELDS).

    .venv-imitation/bin/python experiments/bench/peer/imitation_side.py gail \\
        --demos runs/peers/demos.npz --seed 0 --out runs/peers/gail-imitation.json

Runs in imitation's own environment (`make imitation-env`: imitation 1.0.1, SB3, seals 0.2.1,
gymnasium 0.29, torch's CPU build); it imports nothing of the package. Translations (ours →
imitation), each row's defaults in `experiments/bench/peer/imitation_rows.py`:
- PPO (every generator and agent): 16 environments × 128 steps, 4 epochs of 4 minibatches
  (batch 512), Adam annealed linearly to 0 over the whole run (SB3's own schedule restarts at
  every `learn` call that GAIL, AIRL and the preference agent make each round, so the schedule
  here reads the learner's step count), γ, λ 0.95, clip 0.2 with value clipping (SB3
  `clip_range_vf`), entropy, value coefficient 0.5, gradient norm 0.5, 64-64 tanh (SB3's
  MlpPolicy).
- BC: `bc.BC`, batch 32, Adam 1e-3, entropy weight 1e-3, no L2, 32-32 tanh (imitation's
  default policy, as ours), the same number of epochs.
- GAIL: `BasicRewardNet` 32-32 over (s, a) with a running input norm, 1024 demonstration
  transitions per discriminator step, 2 steps a round, a replay of one round's rollout, Adam 1e-3.
- AIRL: `BasicShapedRewardNet` (g 32, Φ 32-32, shaping γ 0.99) with a running input norm and its
  output running-normalised for the generator (`NormalizedRewardNet`), 16 discriminator steps a
  round, the generator's γ 0.95 and entropy 0.01.
- MCE IRL: seals' CliffWorld (7 × 4, horizon 9, as `seals/CliffWorld7x4-v0`), the expert's
  occupancy from the soft-optimal policy of the true reward, a `BasicRewardNet` over the state
  with the same hidden layers, Adam with the same learning rate, every iteration run (no early
  stop on either side, so the work is equal). Return: the exact expected true return of the
  learned policy (occupancy · reward), as ours.
- Preference comparisons: the closest set-up imitation has to ours. A 3-member state-only
  `RewardEnsemble` (32-32, running input norm), `ActiveSelectionFragmenter` (4 candidates per
  pair, logit disagreement), deterministic synthetic labels (`sample=False`), 25-step fragments,
  2,000 comparisons on the hyperbolic schedule with 10% first, 160 epochs on those first ones
  (ours: 1,000 steps of 32 pairs) and 3 epochs an iteration after, Adam 1e-3, the agent's
  reward running-normalised. imitation trains the reward in a few long phases (`--iterations`),
  ours a few steps every PPO round, and has no separate ε-greedy query rollout: those stay
  imitation's, so this row compares time to a return, not identical computations.
- DAgger: `SimpleDAggerTrainer` (round 0's data from `--demos`, its `expert_trajs`, when given)
  with the BC above, `LinearBetaSchedule(--rampdown-rounds)`, `--epochs` BC epochs a round,
  `--n-envs` environments and at least 3 episodes and 500 steps a round (seals/CartPole-v0:
  3 × 500, as ours), `--timesteps` in all. The expert is `envs.controllers.cartpole_controller`
  written out as an SB3 policy (`CartPoleController`: push right when
  θ + 0.3·θ̇ + 0.05·x + 0.2·ẋ > 0, in float32); the learner's actions are sampled, the expert's
  deterministic (imitation's). BC's rollout logging is off (`log_rollouts_venv=None`), so
  training is all that is timed; imitation writes each episode to a temporary `scratch_dir`
  and reads them back every round (its way; in the time).
- SQIL: `sqil.SQIL` over SB3 DQN with the row's DQN settings (lr, annealed linearly to 0 unless
  `--constant-lr`, buffer, learning starts, batch, τ, γ, train frequency, gradient steps,
  target interval, ε schedule, gradient norm 10, the Q-network's widths and activation), one
  environment. imitation's replay stores every `done` as terminal: its learner's time limits
  and every demonstration's last step (`handle_timeout_termination=False`) stop the bootstrap,
  where ours bootstraps through both (only termination stops it): a setting ours has no switch
  for.
- Density: `DensityAlgorithm` (state-action, `--kernel`, `--bandwidth`, stationary,
  standardised) with the PPO above, its value loss unclipped (`--no-value-clip`, as
  `DensityConfig()`'s), as `experiments/density_vs_imitation_reference.py`: SB3 gets the raw log
  density, ours running-normalises it (`DensityConfig()`; imitation's reward is not a reward
  net, so no `NormalizedRewardNet` can wrap it). Fitting the KDE is in the time (ours refits it
  in every update).
Evaluation: `evaluate_policy`, deterministic, `--eval-episodes` episodes (50, as the runner).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

WALL_START = time.perf_counter()
REPO = Path(__file__).resolve().parents[3]
ENV_ID = "seals/CartPole-v0"
ALGOS = ("bc", "gail", "airl", "mce_irl", "preferences", "dagger", "sqil", "density")
# Ours trains the reward model 1,000 steps of 32 pairs on the first 200 comparisons: 160 epochs.
INITIAL_EPOCHS = 160


def make_ppo(venv, args, gamma: float, ent_coef: float):
    """SB3 PPO with the row's settings (by default this package's `PPOConfig()`)."""
    from stable_baselines3 import PPO

    learner = None

    def annealed(_progress_remaining: float) -> float:
        done = learner.num_timesteps if learner is not None else 0
        return args.learning_rate * max(0.0, 1.0 - done / args.timesteps)

    learner = PPO("MlpPolicy", venv, n_steps=args.n_steps, batch_size=args.batch_size,
                  n_epochs=args.n_epochs,
                  learning_rate=args.learning_rate if args.constant_lr else annealed,
                  gamma=gamma, gae_lambda=0.95, clip_range=args.clip_range,
                  clip_range_vf=None if args.no_value_clip else args.clip_range,
                  ent_coef=ent_coef, vf_coef=args.vf_coef, max_grad_norm=0.5, seed=args.seed,
                  device="cpu")
    return learner


def cartpole_returns(policy, seed: int, episodes: int) -> float:
    from imitation.util import util
    from stable_baselines3.common.evaluation import evaluate_policy

    env = util.make_vec_env(ENV_ID, n_envs=1, rng=np.random.default_rng(10_000 + seed))
    returns, _ = evaluate_policy(policy, env, n_eval_episodes=episodes, deterministic=True,
                                 return_episode_rewards=True)
    return float(np.mean(returns))


def train_bc(args, rng, logger):
    from experiments.density_vs_imitation_reference import load_trajectories
    from imitation.util import util

    trajs = load_trajectories(args.demos)
    venv = util.make_vec_env(ENV_ID, n_envs=1, rng=rng)
    trainer = make_bc(venv, rng, logger, trajs)
    t = time.perf_counter()
    trainer.train(n_epochs=args.epochs, log_interval=10**9, progress_bar=False)
    run_s = time.perf_counter() - t
    steps = args.epochs * (sum(len(tr.acts) for tr in trajs) // 32)
    return run_s, steps, "gradient steps", cartpole_returns(trainer.policy, args.seed,
                                                             args.eval_episodes)


def train_adversarial(args, rng, logger, algo: str):
    from experiments.density_vs_imitation_reference import load_trajectories
    from imitation.algorithms.adversarial.airl import AIRL
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.rewards.reward_nets import (BasicRewardNet, BasicShapedRewardNet,
                                               NormalizedRewardNet)
    from imitation.util import util
    from imitation.util.networks import RunningNorm

    trajs = load_trajectories(args.demos)
    venv = util.make_vec_env(ENV_ID, n_envs=args.n_envs, rng=rng)
    if algo == "gail":
        learner = make_ppo(venv, args, gamma=0.99 if args.gamma is None else args.gamma,
                           ent_coef=0.0 if args.ent_coef is None else args.ent_coef)
        reward_net = BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=(32, 32),
                                    normalize_input_layer=RunningNorm)
        trainer = GAIL(demonstrations=trajs, demo_batch_size=args.demo_batch_size,
                       n_disc_updates_per_round=args.disc_updates or 2, venv=venv,
                       gen_algo=learner, reward_net=reward_net,
                       disc_opt_kwargs=dict(lr=1e-3), custom_logger=logger)
    else:
        learner = make_ppo(venv, args, gamma=0.95 if args.gamma is None else args.gamma,
                           ent_coef=0.01 if args.ent_coef is None else args.ent_coef)
        shaped = BasicShapedRewardNet(venv.observation_space, venv.action_space,
                                      reward_hid_sizes=(32,), potential_hid_sizes=(32, 32),
                                      discount_factor=0.99, normalize_input_layer=RunningNorm)
        reward_net = (shaped if args.raw_reward
                      else NormalizedRewardNet(shaped, normalize_output_layer=RunningNorm))
        trainer = AIRL(demonstrations=trajs, demo_batch_size=args.demo_batch_size,
                       n_disc_updates_per_round=args.disc_updates or 16,
                       venv=venv, gen_algo=learner, reward_net=reward_net,
                       disc_opt_kwargs=dict(lr=1e-3), custom_logger=logger)
    t = time.perf_counter()
    trainer.train(args.timesteps)
    run_s = time.perf_counter() - t
    return (run_s, int(learner.num_timesteps), "generator env steps",
            cartpole_returns(learner.policy, args.seed, args.eval_episodes))


def train_mce_irl(args, rng, logger):
    import torch
    from imitation.algorithms import mce_irl
    from imitation.rewards.reward_nets import BasicRewardNet
    from seals.diagnostics import cliff_world

    model = cliff_world.CliffWorldEnv(width=7, height=4, horizon=9, use_xy_obs=False)
    _, _, expert_pi = mce_irl.mce_partition_fh(model, discount=args.discount)
    _, expert_occupancy = mce_irl.mce_occupancy_measures(model, pi=expert_pi,
                                                         discount=args.discount)
    reward_net = BasicRewardNet(model.observation_space, model.action_space,
                                hid_sizes=tuple(args.hidden), use_action=False, use_done=False,
                                use_next_state=False)
    trainer = mce_irl.MCEIRL(expert_occupancy, model, reward_net, rng=rng,
                             discount=args.discount, linf_eps=0.0, grad_l2_eps=0.0,
                             log_interval=None, optimizer_cls=torch.optim.Adam,
                             optimizer_kwargs=dict(lr=args.lr), custom_logger=logger)
    t = time.perf_counter()
    trainer.train(max_iter=args.iterations)
    run_s = time.perf_counter() - t
    occupancy, _ = mce_irl.mce_occupancy_measures(model, pi=trainer.policy.pi,
                                                  discount=args.discount)
    true_return = float(np.sum(occupancy * model.reward_matrix))
    return run_s, args.iterations, "iterations", true_return


def train_preferences(args, rng, logger):
    from imitation.algorithms import preference_comparisons as pc
    from imitation.rewards.reward_nets import BasicRewardNet, NormalizedRewardNet, RewardEnsemble
    from imitation.util import util
    from imitation.util.networks import RunningNorm

    venv = util.make_vec_env(ENV_ID, n_envs=args.n_envs, rng=rng)
    members = [BasicRewardNet(venv.observation_space, venv.action_space, hid_sizes=(32, 32),
                              use_action=False, normalize_input_layer=RunningNorm)
               for _ in range(3)]
    reward_net = RewardEnsemble(venv.observation_space, venv.action_space, members)
    preference_model = pc.PreferenceModel(reward_net)
    fragmenter = pc.ActiveSelectionFragmenter(
        preference_model, pc.RandomFragmenter(rng=rng, warning_threshold=0, custom_logger=logger),
        fragment_sample_factor=4, uncertainty_on="logit", custom_logger=logger)
    gatherer = pc.SyntheticGatherer(rng=rng, sample=False, custom_logger=logger)
    reward_trainer = pc.EnsembleTrainer(preference_model, loss=pc.CrossEntropyRewardLoss(),
                                        rng=rng, epochs=3, lr=1e-3, custom_logger=logger)
    learner = make_ppo(venv, args, gamma=0.99, ent_coef=0.0)
    agent = pc.AgentTrainer(algorithm=learner,
                            reward_fn=NormalizedRewardNet(reward_net, RunningNorm),
                            venv=venv, rng=rng, exploration_frac=0.0, custom_logger=logger)
    trainer = pc.PreferenceComparisons(
        agent, reward_net, num_iterations=args.iterations, fragmenter=fragmenter,
        preference_gatherer=gatherer, reward_trainer=reward_trainer, fragment_length=25,
        initial_comparison_frac=0.1, initial_epoch_multiplier=INITIAL_EPOCHS / 3,
        query_schedule="hyperbolic", custom_logger=logger)
    t = time.perf_counter()
    trainer.train(total_timesteps=args.timesteps, total_comparisons=args.comparisons)
    run_s = time.perf_counter() - t
    return (run_s, int(learner.num_timesteps), "agent env steps",
            cartpole_returns(learner.policy, args.seed, args.eval_episodes))


def make_bc(venv, rng, logger, demonstrations=None):
    """imitation's `BC` with this package's `BCConfig()` (batch 32, Adam 1e-3, entropy 1e-3)."""
    from imitation.algorithms import bc

    return bc.BC(observation_space=venv.observation_space, action_space=venv.action_space,
                 rng=rng, demonstrations=demonstrations, batch_size=32, ent_weight=1e-3,
                 l2_weight=0.0, optimizer_kwargs=dict(lr=1e-3), custom_logger=logger)


def cartpole_controller(observation_space, action_space):
    """`envs.controllers.cartpole_controller` as an SB3 policy (imitation's DAgger expert must be
    one: it calls `predict(..., deterministic=True)`): push right (1) when
    θ + 0.3·θ̇ + 0.05·x + 0.2·ẋ > 0, else left (0), computed in float32 as ours."""
    import torch
    from stable_baselines3.common.policies import BasePolicy

    class CartPoleController(BasePolicy):
        def _predict(self, observation, deterministic: bool = False):
            x, x_dot, theta, theta_dot = observation.to(torch.float32).unbind(-1)
            return (theta + 0.3 * theta_dot + 0.05 * x + 0.2 * x_dot > 0).long()

    return CartPoleController(observation_space, action_space)


def train_dagger(args, rng, logger):
    import tempfile

    from experiments.density_vs_imitation_reference import load_trajectories
    from imitation.algorithms import dagger
    from imitation.util import util

    venv = util.make_vec_env(ENV_ID, n_envs=args.n_envs, rng=rng)
    trajs = None if args.demos is None else load_trajectories(args.demos)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = dagger.SimpleDAggerTrainer(
            venv=venv, scratch_dir=scratch,
            expert_policy=cartpole_controller(venv.observation_space, venv.action_space),
            rng=rng, expert_trajs=trajs,
            beta_schedule=dagger.LinearBetaSchedule(args.rampdown_rounds),
            bc_trainer=make_bc(venv, rng, logger), custom_logger=logger)
        t = time.perf_counter()
        trainer.train(args.timesteps, rollout_round_min_episodes=3,
                      rollout_round_min_timesteps=500,
                      bc_train_kwargs=dict(n_epochs=args.epochs, log_rollouts_venv=None,
                                           log_interval=10**9, progress_bar=False))
        run_s = time.perf_counter() - t
    # The aggregate holds every round's episodes after the demonstrations.
    steps = sum(len(tr) for tr in trainer._all_demos) - sum(len(tr) for tr in trajs or [])
    return run_s, steps, "env steps", cartpole_returns(trainer.policy, args.seed,
                                                        args.eval_episodes)


def train_sqil(args, rng, logger):
    import torch
    from experiments.density_vs_imitation_reference import load_trajectories
    from imitation.algorithms import sqil
    from imitation.util import util

    trajs = load_trajectories(args.demos)
    venv = util.make_vec_env(ENV_ID, n_envs=args.n_envs, rng=rng)
    lr = args.learning_rate
    rl_kwargs = dict(
        learning_rate=lr if args.constant_lr else (lambda remaining: lr * remaining),
        buffer_size=args.buffer_size, learning_starts=args.learning_starts,
        batch_size=args.batch_size, tau=args.tau,
        gamma=0.99 if args.gamma is None else args.gamma, train_freq=args.train_freq,
        gradient_steps=args.gradient_steps, target_update_interval=args.target_update_interval,
        exploration_fraction=args.exploration_fraction,
        exploration_initial_eps=args.exploration_initial_eps,
        exploration_final_eps=args.exploration_final_eps, max_grad_norm=args.max_grad_norm,
        policy_kwargs=dict(net_arch=list(args.q_hidden), activation_fn={
            "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[args.q_activation]),
        seed=args.seed, device="cpu")
    trainer = sqil.SQIL(venv=venv, demonstrations=trajs, policy="MlpPolicy",
                        custom_logger=logger, rl_kwargs=rl_kwargs)
    t = time.perf_counter()
    trainer.train(total_timesteps=args.timesteps)
    run_s = time.perf_counter() - t
    return (run_s, int(trainer.rl_algo.num_timesteps), "env steps",
            cartpole_returns(trainer.policy, args.seed, args.eval_episodes))


def train_density(args, rng, logger):
    from experiments.density_vs_imitation_reference import load_trajectories
    from imitation.algorithms import density
    from imitation.util import util

    trajs = load_trajectories(args.demos)
    venv = util.make_vec_env(ENV_ID, n_envs=args.n_envs, rng=rng)
    learner = make_ppo(venv, args, gamma=0.99 if args.gamma is None else args.gamma,
                       ent_coef=0.0 if args.ent_coef is None else args.ent_coef)
    trainer = density.DensityAlgorithm(
        demonstrations=trajs, venv=venv, rng=rng, rl_algo=learner,
        density_type=density.DensityType.STATE_ACTION_DENSITY, kernel=args.kernel,
        kernel_bandwidth=args.bandwidth, is_stationary=True, standardise_inputs=True,
        custom_logger=logger)
    t = time.perf_counter()
    trainer.train()  # the KDE
    trainer.train_policy(n_timesteps=args.timesteps)
    run_s = time.perf_counter() - t
    return (run_s, int(learner.num_timesteps), "agent env steps",
            cartpole_returns(learner.policy, args.seed, args.eval_episodes))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", choices=ALGOS)
    parser.add_argument("--row", default=None, help="the row's name in the record")
    parser.add_argument("--demos", type=Path, help="flat demonstrations (bc, gail, airl, sqil, "
                        "density; dagger: optional, round 0's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timesteps", type=int, default=600_000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--comparisons", type=int, default=2000)
    parser.add_argument("--hidden", type=int, nargs="*", default=[])
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--discount", type=float, default=1.0)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--rampdown-rounds", type=int, default=15,
                        help="DAgger: LinearBetaSchedule's rounds")
    parser.add_argument("--kernel", default="gaussian", help="density: the KDE's kernel")
    parser.add_argument("--bandwidth", type=float, default=0.5, help="density: its bandwidth")
    ppo = parser.add_argument_group("PPO (defaults: this package's PPOConfig())")
    ppo.add_argument("--n-envs", type=int, default=16)
    ppo.add_argument("--n-steps", type=int, default=128)
    ppo.add_argument("--batch-size", type=int, default=512)
    ppo.add_argument("--n-epochs", type=int, default=4)
    ppo.add_argument("--learning-rate", type=float, default=1e-3)
    ppo.add_argument("--constant-lr", action="store_true", help="no annealing")
    ppo.add_argument("--no-value-clip", action="store_true")
    ppo.add_argument("--clip-range", type=float, default=0.2)
    ppo.add_argument("--vf-coef", type=float, default=0.5)
    ppo.add_argument("--gamma", type=float, default=None, help="default: the algorithm's")
    ppo.add_argument("--ent-coef", type=float, default=None, help="default: the algorithm's")
    ppo.add_argument("--disc-updates", type=int, default=None,
                     help="discriminator steps a round (default: the algorithm's)")
    ppo.add_argument("--demo-batch-size", type=int, default=1024)
    ppo.add_argument("--raw-reward", action="store_true",
                     help="AIRL: the generator sees f itself, not running-normalised")
    dqn = parser.add_argument_group(
        "DQN (sqil; with --learning-rate, --constant-lr, --batch-size, --gamma, --n-envs; "
        "defaults: SB3's, this package's DQNConfig())")
    dqn.add_argument("--buffer-size", type=int, default=1_000_000)
    dqn.add_argument("--learning-starts", type=int, default=100)
    dqn.add_argument("--tau", type=float, default=1.0)
    dqn.add_argument("--train-freq", type=int, default=4)
    dqn.add_argument("--gradient-steps", type=int, default=1)
    dqn.add_argument("--target-update-interval", type=int, default=10_000)
    dqn.add_argument("--exploration-fraction", type=float, default=0.1)
    dqn.add_argument("--exploration-initial-eps", type=float, default=1.0)
    dqn.add_argument("--exploration-final-eps", type=float, default=0.05)
    dqn.add_argument("--max-grad-norm", type=float, default=10.0)
    dqn.add_argument("--q-hidden", type=int, nargs="+", default=[64, 64])
    dqn.add_argument("--q-activation", choices=("relu", "tanh"), default="relu")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.algo in ("bc", "gail", "airl", "sqil", "density") and args.demos is None:
        parser.error(f"--demos: required for {args.algo}")
    return args


def main() -> None:
    args = parse_args()

    sys.path.insert(0, str(REPO))  # experiments.density_vs_imitation_reference: the demo reader
    import torch

    torch.set_num_threads(1)  # one seed per process, as imitation's benchmark runs them
    import imitation
    import seals  # noqa: F401  (registers the seals/ environments)
    import stable_baselines3
    from imitation.util import logger as imit_logger

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    logger = imit_logger.configure(None, [])
    train = {"bc": train_bc, "mce_irl": train_mce_irl, "preferences": train_preferences,
             "dagger": train_dagger, "sqil": train_sqil, "density": train_density}.get(
        args.algo) or (lambda a, r, lg: train_adversarial(a, r, lg, args.algo))
    run_s, work, unit, mean_return = train(args, rng, logger)
    record = dict(side="imitation", row=args.row or args.algo, seeds=1, work=int(work),
                  work_unit=unit, compile_s=None, run_s=run_s,
                  wall_s=time.perf_counter() - WALL_START, returns=[mean_return],
                  eval_episodes=1 if args.algo == "mce_irl" else args.eval_episodes,
                  versions=dict(imitation=imitation.__version__,
                                stable_baselines3=stable_baselines3.__version__,
                                torch=torch.__version__))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"imitation {args.algo}: return {mean_return:.2f}, {work:,} {unit} in {run_s:.1f} s; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
