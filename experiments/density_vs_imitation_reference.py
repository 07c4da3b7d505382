"""imitation 1.0.1's side of experiments/density_vs_imitation.py: `DensityAlgorithm` with SB3
PPO on seals/CartPole-v0, one seed per process, from the demonstrations our side exported.

    /work/imitation_env/bin/python experiments/density_vs_imitation_reference.py \\
        --demos runs/density_vs_imitation/demos.npz --timesteps 499712 --seed 0 \\
        --out runs/density_vs_imitation/imitation_seed0.json

Runs in a separate environment (python3.11 -m venv; imitation==1.0.1, seals==0.2.1,
gymnasium==0.29.1, stable-baselines3 2.2.1, torch's CPU build; docs/algorithms/density.md), so
it imports nothing of this package and the package and the tests never import it.

The settings mirror our side: `DensityAlgorithm`'s defaults (state-action density, Gaussian
kernel, bandwidth 0.5, standardised inputs, stationary), 16 environments (imitation's
`make_vec_env`, seeded from the seed), SB3 PPO with this package's `PPOConfig()` values: 128
steps per environment, 4 epochs of 4 minibatches (batch 512), Adam 1e-3 annealed linearly to
0, γ 0.99, λ 0.95, clip 0.2, no entropy bonus, value coefficient 0.5, gradient norm 0.5, 64-64
tanh actor and critic (SB3's MlpPolicy). SB3 clips no value loss (our PPO clips it, as
PureJaxRL). The score is the mean true return of 50 deterministic episodes
(`evaluate_policy`), as our runner's final evaluation.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ENV_ID = "seals/CartPole-v0"


def load_trajectories(path: Path):
    """The flat arrays (obs, acts, next_obs, dones) as imitation `Trajectory`s, cut at dones."""
    from imitation.data import types

    with np.load(path, allow_pickle=False) as f:
        obs, acts, next_obs, dones = (f[k] for k in ("obs", "acts", "next_obs", "dones"))
    ends = np.flatnonzero(dones) + 1
    if len(ends) == 0 or ends[-1] != len(dones):
        raise ValueError(f"{path}: dones: expected the last transition to end an episode")
    trajs, start = [], 0
    for end in ends:
        episode_obs = np.concatenate([obs[start:end], next_obs[end - 1:end]])
        trajs.append(types.Trajectory(obs=episode_obs, acts=acts[start:end], infos=None,
                                      terminal=True))
        start = end
    return trajs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timesteps", type=int, default=499_712)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    import imitation
    import seals  # noqa: F401  (registers the seals/ environments with gymnasium)
    import sklearn
    import stable_baselines3
    from imitation.algorithms import density
    from imitation.util import logger as imit_logger
    from imitation.util import util
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    trajs = load_trajectories(args.demos)
    venv = util.make_vec_env(ENV_ID, n_envs=16, rng=rng)
    learner = PPO("MlpPolicy", venv, n_steps=128, batch_size=512, n_epochs=4,
                  learning_rate=lambda remaining: 1e-3 * remaining, gamma=0.99, gae_lambda=0.95,
                  clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                  seed=args.seed, device="cpu")
    log_dir = args.out.with_suffix("")  # imitation's logger writes csv files here
    trainer = density.DensityAlgorithm(
        demonstrations=trajs, venv=venv, rng=rng, rl_algo=learner,
        density_type=density.DensityType.STATE_ACTION_DENSITY, kernel="gaussian",
        kernel_bandwidth=0.5, is_stationary=True, standardise_inputs=True,
        custom_logger=imit_logger.configure(str(log_dir), ["csv"]))
    trainer.train()
    t_fit = time.perf_counter()
    trainer.train_policy(n_timesteps=args.timesteps)
    t_train = time.perf_counter()
    eval_env = util.make_vec_env(ENV_ID, n_envs=1, rng=np.random.default_rng(10_000 + args.seed))
    returns, _ = evaluate_policy(learner.policy, eval_env, n_eval_episodes=args.eval_episodes,
                                 deterministic=True, return_episode_rewards=True)
    record = dict(side="imitation", env=ENV_ID, seed=args.seed,
                  timesteps=int(learner.num_timesteps), return_mean=float(np.mean(returns)),
                  returns=[float(r) for r in returns], demo_episodes=len(trajs),
                  fit_s=t_fit - t0, train_s=t_train - t_fit,
                  wall_s=time.perf_counter() - t0,
                  versions=dict(imitation=imitation.__version__,
                                stable_baselines3=stable_baselines3.__version__,
                                torch=torch.__version__, sklearn=sklearn.__version__))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"seed {args.seed}: mean return {record['return_mean']:.1f} over {len(returns)} "
          f"episodes, {record['timesteps']} steps, {record['wall_s']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
