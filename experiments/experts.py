"""Train an expert per seals MuJoCo task and save its policy and demonstrations.

    python -m experiments.experts --env seals/HalfCheetah-v1        # one task
    python -m experiments.experts --env all                         # every task with a recipe

Each task's recipe (`RECIPES`) is PPO with settings for MuJoCo: 16 environments × 256 steps,
10 epochs of 32 minibatches, observations standardised by their running statistics (imitation's
experts were trained behind SB3's VecNormalize), rewards scaled by 0.1 for the critic, an
unclipped value loss; Swimmer takes imitation's own settings for its expert. Several seeds train in one program and the best becomes the expert. Writes,
under `--out/<task>/` (default runs/experts/): the run (config.json, results.json, metrics.jsonl,
learning_curve.png), `policy.msgpack` + `policy.json` (`dagger --expert-policy` reads it) and
`demos.npz`, `--num-demos` episodes of the expert's deterministic policy (what BC, GAIL, AIRL,
DAgger, SQIL and density read with `--demos`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import tyro

from jaxrl_align.rl import ppo

MUJOCO_PPO = ppo.PPOConfig(num_envs=16, num_steps=256, update_epochs=10, num_minibatches=32,
                           lr=3e-4, obs_normalization="running", clip_value=False,
                           reward_scale=0.1, total_timesteps=3_000_000)

# Swimmer's reward is a slow drift that the 16 x 256 rollouts above never find (returns below
# 40 after 2M steps): imitation's own seals/Swimmer-v1 expert settings (one environment, rollouts
# of 2,048 steps, minibatches of 8, 20 epochs, γ 0.999, lr 1.2e-4, clip 0.1), 3M steps.
SWIMMER_PPO = ppo.PPOConfig(num_envs=1, num_steps=2048, update_epochs=20, num_minibatches=256,
                            lr=1.2e-4, anneal_lr=False, gamma=0.999, clip_eps=0.1,
                            max_grad_norm=2.0, obs_normalization="running", clip_value=False,
                            total_timesteps=3_000_000)

# Per task: the PPO settings and the seeds trained together.
RECIPES: dict[str, tuple[ppo.PPOConfig, int]] = {
    "seals/HalfCheetah-v1": (MUJOCO_PPO, 2),
    "seals/Hopper-v1": (replace(MUJOCO_PPO, total_timesteps=2_000_000), 2),
    "seals/Swimmer-v1": (SWIMMER_PPO, 2),
    "seals/Walker2d-v1": (replace(MUJOCO_PPO, total_timesteps=5_000_000), 2),
    "seals/Ant-v1": (replace(MUJOCO_PPO, total_timesteps=5_000_000), 2),
    "seals/Humanoid-v1": (replace(MUJOCO_PPO, total_timesteps=5_000_000), 2),
}


@dataclass(frozen=True)
class ExpertFlags:
    env: str = "seals/HalfCheetah-v1"
    """a task of RECIPES, or "all" """
    out: Path = Path("runs/experts")
    """parent folder; each task writes <out>/<task name>/"""
    seeds: int | None = None
    """seeds trained together (default: the recipe's); the best is kept"""
    total_timesteps: int | None = None
    """environment steps per seed (default: the recipe's)"""
    num_demos: int = 10
    """expert episodes saved as demonstrations (imitation's BC benchmark learns from 10)"""
    backend: str | None = None
    """physics backend: mujoco, mjx or None (the platform's default)"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache"""
    progress: bool = True
    """show a progress bar"""


def task_folder(out: Path, env_id: str) -> Path:
    return out / env_id.split("/")[-1]


def train_expert(env_id: str, flags: ExpertFlags) -> dict:
    """Train the recipe for `env_id`, save the best seed's policy and demonstrations."""
    import envs
    from jaxrl_align.algorithms import dagger
    from jaxrl_align.data import demonstrations, rollout
    from jaxrl_align.runtime import runner

    config, seeds = RECIPES[env_id]
    if flags.total_timesteps is not None:
        config = replace(config, total_timesteps=flags.total_timesteps)
    seeds = flags.seeds or seeds
    env, env_params = envs.make(env_id, backend=flags.backend)
    out = task_folder(flags.out, env_id)
    print(f"PPO expert for {env_id}: {seeds} seeds x {config.total_timesteps:,} steps "
          f"({env.backend} physics)")
    start = time.perf_counter()
    algo = ppo.make(config, env, env_params)
    run = runner.run(algo, env, env_params,
                     runner.RunSettings(seeds=seeds, num_chunks=20, progress=flags.progress,
                                        eval_episodes=4, overwrite=True),
                     env_id=env_id, out_dir=out)
    train_s = time.perf_counter() - start
    best = run.best_run()
    state = run.run_state(best)
    dagger.save_ppo_expert(out / "policy.msgpack", config, env_id, state.params)

    policy = lambda key, obs: algo.act(state, key, obs)
    trajs = jax.jit(lambda key: rollout.rollout_episodes(
        env, env_params, policy, key, flags.num_demos,
        rollout.max_episode_steps(env_params)))(jax.random.PRNGKey(12345))
    demo_path = demonstrations.save_demos(
        out / "demos.npz", trajs, env_id=env_id,
        source=f"PPO expert (experiments.experts, seed {best})")
    _, meta = demonstrations.load_demos(demo_path, env=env, env_params=env_params, env_id=env_id)
    record = {
        "env_id": env_id, "backend": env.backend, "seeds": seeds,
        "total_timesteps": config.total_timesteps, "best_seed": int(best),
        "seed_returns": [float(r) for r in run.summary["return_mean"]],
        "demo_episodes": flags.num_demos, "demo_mean_return": float(meta["mean_return"]),
        "compile_s": run.compile_s, "run_s": run.run_s, "wall_s": time.perf_counter() - start,
        "train_wall_s": train_s,
    }
    (out / "expert.json").write_text(json.dumps(record, indent=2))
    print(f"  best seed {best}: demonstrations' mean return {meta['mean_return']:.1f} "
          f"({flags.num_demos} episodes); compile {run.compile_s:.0f}s, run {run.run_s:.0f}s; "
          f"wrote {out}/")
    return record


def main(flags: ExpertFlags) -> list[dict]:
    from jaxrl_align.platform import compilation_cache

    env_ids = list(RECIPES) if flags.env == "all" else [flags.env]
    unknown = [e for e in env_ids if e not in RECIPES]
    if unknown:
        raise SystemExit(f"error: --env: expected one of {', '.join(RECIPES)} or all, "
                         f"got {flags.env!r}")
    if flags.seeds is not None and flags.seeds <= 0:
        raise SystemExit(f"error: --seeds: expected a positive integer, got {flags.seeds}")
    if flags.num_demos <= 0:
        raise SystemExit(f"error: --num-demos: expected a positive integer, got {flags.num_demos}")
    if flags.compile_cache:
        compilation_cache.enable()
    return [train_expert(env_id, flags) for env_id in env_ids]


if __name__ == "__main__":
    main(tyro.cli(ExpertFlags))
