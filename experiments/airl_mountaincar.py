"""AIRL on seals/MountainCar-v0 from 10 episodes of the hand-written pumping controller, many
seeds in one program.

    python -m experiments.airl_mountaincar --seeds 8
    python -m experiments.airl_mountaincar --seeds 8 --airl.ppo.obs-normalization none  # fails

The same run through the general command line:

    python -m experiments.controller_demos --env seals/MountainCar-v0 --out runs/mcar_demos.npz
    python -m experiments.train airl --env seals/MountainCar-v0 --demos runs/mcar_demos.npz \\
        --seeds 8 --airl.ppo.obs-normalization box

`AIRL_MOUNTAIN_CAR` (in `experiments.configs`) is AIRL's defaults with one change: the
generator's actor and critic see observations rescaled to [-1, 1] by the observation space's
bounds. With raw observations (velocity within ±0.07) every seed stays at −200. Writes the
demonstrations (`demos.npz`) and the usual run outputs to `--out`, and prints per-seed returns
and how many seeds reach the 0.8 normalised score (a return of −120 or better).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro

from experiments.configs import AIRL_MOUNTAIN_CAR
from jaxrl_align.algorithms.adversarial import airl

ENV_ID = "seals/MountainCar-v0"


@dataclass(frozen=True)
class Flags:
    seeds: int = 8
    """AIRL seeds, trained together in one program"""
    demo_episodes: int = 10
    """controller episodes used as demonstrations"""
    airl: airl.AIRLConfig = field(default_factory=lambda: AIRL_MOUNTAIN_CAR)
    """AIRL settings (default: experiments.configs.AIRL_MOUNTAIN_CAR)"""
    num_chunks: int = 8
    """pieces of the training scan (evaluation and metrics between them)"""
    final_eval_episodes: int = 50
    """deterministic evaluation episodes per seed at the end"""
    progress: bool = True
    """show a progress bar"""
    out: Path = Path("runs/airl_mountaincar")
    """output folder"""


def main(flags: Flags):
    import envs
    from experiments.common import results_table
    from experiments.controller_demos import save_controller_demos
    from jaxrl_align.data import demonstrations as demos
    from jaxrl_align.platform import compilation_cache
    from jaxrl_align.runtime import runner

    if flags.seeds <= 0 or flags.demo_episodes <= 0:
        raise SystemExit("error: --seeds and --demo-episodes: expected positive integers")
    compilation_cache.enable()
    env, env_params = envs.make(ENV_ID)
    reference = envs.reference_returns(ENV_ID)
    flags.out.mkdir(parents=True, exist_ok=True)
    path = save_controller_demos(flags.out / "demos.npz", ENV_ID, flags.demo_episodes)
    trajs, meta = demos.load_demos(path, env=env, env_params=env_params, env_id=ENV_ID)
    print(f"demonstrations: {meta['num_episodes']} controller episodes, "
          f"mean return {meta['mean_return']:.1f} ({path})")
    algo = airl.make(flags.airl, env, env_params)
    settings = runner.RunSettings(seeds=flags.seeds, num_chunks=flags.num_chunks,
                                  final_eval_episodes=flags.final_eval_episodes,
                                  progress=flags.progress)
    result = runner.run(algo, env, env_params, settings, demos.demo_transitions(trajs),
                        env_id=ENV_ID, reference_returns=reference, out_dir=flags.out,
                        extra_config={"command": "airl_mountaincar"})
    print(results_table(f"AIRL on {ENV_ID}", result.seeds, result.summary))
    scores = np.asarray(result.summary["normalized_score"])
    print(f"{int((scores >= 0.8).sum())} of {len(scores)} seeds at a normalised score >= 0.8; "
          f"compile {result.compile_s:.1f}s, run {result.run_s:.1f}s; wrote {flags.out}/")
    return result


if __name__ == "__main__":
    main(tyro.cli(Flags))
