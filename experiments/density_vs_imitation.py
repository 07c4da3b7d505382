"""Density-based reward on seals/CartPole-v0, this package against imitation 1.0.1's
`DensityAlgorithm`, from the same 10 expert episodes and the same PPO budget.

    python -m experiments.density_vs_imitation --out runs/density_vs_imitation      # our side
    /work/imitation_env/bin/python experiments/density_vs_imitation_reference.py \\
        --demos runs/density_vs_imitation/demos.npz --seed 0 \\
        --out runs/density_vs_imitation/imitation_seed0.json                         # imitation's
    python -m experiments.density_vs_imitation --out runs/density_vs_imitation --report

This script (our side) collects 10 episodes of `envs.controllers.cartpole_controller` (500 on
every episode), writes them to `<out>/demos.npz` as flat arrays (obs, acts, next_obs, dones,
rews and a JSON string `metadata`; no pickle) for the reference script, trains
`density.make(DensityConfig())` on them for every seed in one call and writes
`<out>/ours.json`. The reference script runs in a
separate environment with imitation, SB3 and scikit-learn (docs/algorithms/density.md says how
it was made) and is never imported by the package or the tests. `--report` prints both sides
from the JSON files found in `<out>`.

Both sides: state-action density, Gaussian kernel, bandwidth 0.5, standardised inputs, one
stationary model; PPO with this package's `PPOConfig()` settings (16 environments × 128 steps,
4 epochs of 4 minibatches, Adam 1e-3 annealed to 0, γ 0.99, λ 0.95, clip 0.2, no entropy bonus,
value coefficient 0.5, gradient norm 0.5, 64-64 tanh actor and critic) and an unclipped value
loss; the final score of a seed is the mean true return of 50 deterministic episodes. Each side
keeps its own reward path: ours running-normalises the log density (`DensityConfig()`'s
default), imitation's `DensityAlgorithm` hands SB3 the raw log density.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ENV_ID = "seals/CartPole-v0"


@dataclass(frozen=True)
class Flags:
    out: Path = Path("runs/density_vs_imitation")
    """folder for demos.npz, ours.json and the reference script's imitation_seed*.json"""
    seeds: int = 8
    """seeds of our side, trained together in one call"""
    timesteps: int = 500_000
    """PPO environment steps per seed (both sides)"""
    episodes: int = 10
    """expert episodes in the demonstrations"""
    demo_seed: int = 0
    """PRNG seed of the expert episodes' initial states"""
    report: bool = False
    """only print the table of both sides from the JSON files in --out"""


def collect_demos(num_episodes: int, seed: int):
    import jax

    import envs
    from envs.controllers import cartpole_controller
    from jaxrl_align.data import rollout

    env, params = envs.make(ENV_ID)
    return rollout.collect_episodes(env, params, cartpole_controller, jax.random.PRNGKey(seed),
                                    num_episodes, rollout.max_episode_steps(params))


def export_demos(path: Path, trajs) -> Path:
    """The episodes as flat transitions in an `.npz` of plain arrays that the reference script
    reads with `allow_pickle=False`: obs [M, 4], acts [M], next_obs [M, 4], dones [M] (an
    episode's last step: terminated or truncated), rews [M], metadata (a JSON string)."""
    from jaxrl_align.data.files import save_npz
    from jaxrl_align.types import flatten_trajectories

    flat = flatten_trajectories(trajs)
    arrays = dict(obs=np.asarray(flat.obs, np.float32), acts=np.asarray(flat.acts, np.int64),
                  next_obs=np.asarray(flat.next_obs, np.float32),
                  dones=np.asarray(flat.terminated | flat.truncated),
                  rews=np.asarray(flat.rews, np.float32))
    return save_npz(path, arrays, {"env_id": ENV_ID, "source": "envs.controllers."
                                   "cartpole_controller (experiments.density_vs_imitation)"})


def run_ours(flags: Flags, trajs) -> dict:
    import envs
    from jaxrl_align.algorithms import density
    from jaxrl_align.runtime import runner

    env, params = envs.make(ENV_ID)
    config = density.DensityConfig()
    config = replace(config, ppo=replace(config.ppo, total_timesteps=flags.timesteps))
    algo = density.make(config, env, params)
    settings = runner.RunSettings(seeds=flags.seeds, num_chunks=10, eval_episodes=10,
                                  final_eval_episodes=50, progress=False)
    t0 = time.perf_counter()
    result = runner.run(algo, env, params, settings, trajs, env_id=ENV_ID,
                        reference_returns=envs.reference_returns(ENV_ID))
    return dict(side="jaxrl_align", env=ENV_ID, seeds=result.seeds,
                timesteps=int(result.env_steps),
                returns=[float(r) for r in result.summary["return_mean"]],
                normalized_score=result.summary["normalized_score"],
                iqm=result.summary["iqm"], iqm_ci95=result.summary["iqm_ci95"],
                compile_s=result.compile_s, run_s=result.run_s,
                wall_s=time.perf_counter() - t0,
                log_density_per_chunk=np.mean(result.chunk_metrics["log_density"], 0).tolist(),
                eval_return_per_chunk=np.mean(result.eval_returns, 0).tolist())


def load_sides(out: Path) -> tuple[dict | None, list[dict]]:
    ours = json.loads((out / "ours.json").read_text()) if (out / "ours.json").exists() else None
    theirs = [json.loads(p.read_text()) for p in sorted(out.glob("imitation_seed*.json"))]
    return ours, theirs


def report(out: Path) -> str:
    import envs

    low, high = envs.reference_returns(ENV_ID)
    ours, theirs = load_sides(out)
    lines = [("| side | seeds | steps/seed | returns | mean return | mean normalised "
              "| wall s |"), "|---|---|---|---|---|---|---|"]
    if ours is not None:
        r = np.asarray(ours["returns"])
        lines.append(f"| jaxrl_align (8 seeds in one call) | {len(r)} | {ours['timesteps']:,} | "
                     f"{', '.join(f'{x:.0f}' for x in r)} | {r.mean():.1f} | "
                     f"{((r - low) / (high - low)).mean():.3f} | "
                     f"{ours['wall_s']:.0f} (all seeds; compile {ours['compile_s']:.0f}) |")
    if theirs:
        r = np.asarray([t["return_mean"] for t in theirs])
        wall = np.mean([t["wall_s"] for t in theirs])
        lines.append(f"| imitation 1.0.1 + SB3 (one seed per process) | {len(r)} | "
                     f"{theirs[0]['timesteps']:,} | {', '.join(f'{x:.0f}' for x in r)} | "
                     f"{r.mean():.1f} | {((r - low) / (high - low)).mean():.3f} | "
                     f"{wall:.0f} (mean per seed) |")
    return "\n".join(lines)


def main(flags: Flags) -> None:
    from jaxrl_align.runtime import outputs

    if not flags.report:
        for name in ("seeds", "timesteps", "episodes"):
            if getattr(flags, name) <= 0:
                raise SystemExit(f"--{name}: expected a positive integer, got "
                                 f"{getattr(flags, name)}")
        trajs = collect_demos(flags.episodes, flags.demo_seed)
        path = export_demos(flags.out / "demos.npz", trajs)
        print(f"wrote {path}: {flags.episodes} episodes, returns "
              f"{np.asarray(trajs.returns).round(1).tolist()}")
        record = run_ours(flags, trajs)
        outputs.write_json(flags.out / "ours.json", record)
        print(f"wrote {flags.out / 'ours.json'}")
    print(report(flags.out))


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Flags))
