"""GAIL and AIRL benchmark on seals/CartPole-v0: wall time (compile apart), generator
environment steps per second per seed and in total, and final returns, for 1 and 16 seeds
trained together in one call.

    python -m experiments.bench.adversarial                 # full run (~15 min on a 2-core CPU)
    python -m experiments.bench.adversarial --quick         # smoke mode: a few rounds only

Each row is one `runner.run` with the algorithm's defaults: demonstrations are 10 episodes of
a hand-written controller that scores 500 (the expert), evaluation happens at 4 chunk
boundaries (its time is part of "run s"), and the final return of each seed is the mean of 20
deterministic episodes. "steps/s" counts generator environment steps, the quantity the PyTorch
`imitation` library spends about 3.5 minutes on for 800k steps of one GAIL seed here.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import jax
import numpy as np

from envs.controllers import cartpole_controller
from experiments.bench.harness import finish_report, machine_info, text_table

ENV_ID = "seals/CartPole-v0"
ALGORITHMS = ("gail", "airl")
SEED_COUNTS = (1, 16)


def _gail_config():
    from jaxrl_align.algorithms.adversarial import gail
    from jaxrl_align.rl import ppo

    # 600k generator steps: 7 of 8 seeds reach the expert (docs/algorithms/adversarial.md).
    return gail.GAILConfig(ppo=ppo.PPOConfig(total_timesteps=600_000))


IMITATION_GAIL = "PyTorch imitation, 1 GAIL seed: ~800k generator steps, ~3.5 min to near expert"


@dataclass(frozen=True)
class BenchFlags:
    out: Path = Path("bench_results/adversarial.json")
    """where the JSON is written (atomically)"""
    timesteps: int | None = None
    """generator environment steps per seed (default: GAIL 600k, AIRL its config's 800k)"""
    quick: bool = False
    """smoke mode: 3 short rounds per run, returns meaningless"""


def make_algorithm(name: str, timesteps: int | None, env, env_params):
    from jaxrl_align.algorithms.adversarial import airl, gail

    module, config = {"gail": (gail, _gail_config()), "airl": (airl, airl.AIRLConfig())}[name]
    if timesteps is not None:
        config = replace(config, ppo=replace(config.ppo, total_timesteps=timesteps))
    return module.make(config, env, env_params), config.ppo.num_updates


def bench_row(name: str, num_seeds: int, flags: BenchFlags, env, env_params, demos) -> dict:
    import envs
    from jaxrl_align.runtime import runner

    timesteps = 3 * 16 * 128 if flags.quick else flags.timesteps
    algo, num_updates = make_algorithm(name, timesteps, env, env_params)
    settings = runner.RunSettings(seeds=num_seeds, num_updates=num_updates,
                                  num_chunks=4, eval_episodes=5, final_eval_episodes=20,
                                  progress=False)
    result = runner.run(algo, env, env_params, settings, demos,
                        reference_returns=envs.reference_returns(ENV_ID))
    steps = result.env_steps
    returns = np.asarray(result.summary["return_mean"])
    scores = np.asarray(result.summary["normalized_score"])
    return dict(algo=name, seeds=num_seeds, env_steps_per_seed=steps, compile_s=result.compile_s,
                run_s=result.run_s, steps_per_s_per_seed=steps / result.run_s,
                steps_per_s_total=steps * num_seeds / result.run_s,
                final_returns=returns.tolist(), seeds_at_0_9=int((scores >= 0.9).sum()),
                iqm=result.summary["iqm"], iqm_ci95=result.summary["iqm_ci95"])


def format_table(rows: list[dict]) -> str:
    header = ("algo", "seeds", "steps/seed", "compile s", "run s", "steps/s/seed",
              "steps/s total", "seeds >= 0.9", "IQM score", "mean return")
    lines = [(r["algo"], r["seeds"], f"{r['env_steps_per_seed']:,}", f"{r['compile_s']:.1f}",
              f"{r['run_s']:.1f}", f"{r['steps_per_s_per_seed'] / 1e3:.1f}k",
              f"{r['steps_per_s_total'] / 1e3:.1f}k", f"{r['seeds_at_0_9']}/{r['seeds']}",
              f"{r['iqm']:.3f}", f"{np.mean(r['final_returns']):.1f}") for r in rows]
    return text_table(header, lines, left=(0,))


def main(flags: BenchFlags) -> dict:
    import envs
    from jaxrl_align.data import rollout
    from jaxrl_align.runtime import outputs
    from jaxrl_align.types import flatten_trajectories

    if flags.timesteps is not None and flags.timesteps <= 0:
        raise ValueError(f"--timesteps: expected a positive integer, got {flags.timesteps}")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    env, env_params = envs.make(ENV_ID)
    demos = flatten_trajectories(rollout.collect_episodes(
        env, env_params, cartpole_controller, jax.random.PRNGKey(0), 10, 500))
    rows = []
    for name in ALGORITHMS:
        for num_seeds in SEED_COUNTS:
            print(f"[{time.perf_counter() - t0:6.1f}s] {name} x {num_seeds} seeds ...", flush=True)
            rows.append(bench_row(name, num_seeds, flags, env, env_params, demos))
    record = dict(benchmark="adversarial", env=ENV_ID, timestamp=started.isoformat(),
                  quick=flags.quick, timesteps=flags.timesteps, reference=IMITATION_GAIL,
                  machine=machine_info(), versions=outputs.package_versions(),
                  bench_wall_s=time.perf_counter() - t0, rows=rows)
    print(format_table(rows))
    finish_report(record, flags.out, f"for scale: {IMITATION_GAIL}")
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(BenchFlags))


if __name__ == "__main__":
    cli()
