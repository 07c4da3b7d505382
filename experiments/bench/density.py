"""Density-based reward benchmark on seals/CartPole-v0: the KDE's evaluations per second, and
whole training runs (compile apart) with environment steps per second per seed and in total.

    python -m experiments.bench.density             # full run (~10 min on a 2-core CPU)
    python -m experiments.bench.density --quick     # smoke mode: a few rounds, short timings

KDE rows: `density.log_density` of one rollout's transitions (16 environments × 128 steps =
2,048 queries) against 10 controller episodes (5,000 state-action points, 6 features),
stationary and per-timestep, compiled ahead of time and timed apart (`harness.time_program`:
each call a `lax.scan` of `--kde-calls` evaluations). "evals/s" counts query transitions
scored; "pairs/s" query × demonstration-point kernel terms. For scale: imitation scores each
transition with its own scikit-learn `score` call in a Python loop.

Training rows: one `runner.run` each with `DensityConfig()` (PPO 500k steps per seed),
evaluation at 4 chunk boundaries (its time is part of "run s"), the final return of each seed
the mean of 20 deterministic episodes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from envs.controllers import cartpole_controller
from experiments.bench.harness import (finish_report, machine_info, measurement, text_table,
                                        time_program)

ENV_ID = "seals/CartPole-v0"
SEED_COUNTS = (1, 8)
ROLLOUT = (128, 16)  # the default PPO rollout: steps × environments


@dataclass(frozen=True)
class BenchFlags:
    out: Path = Path("bench_results/density.json")
    """where the JSON is written (atomically)"""
    timesteps: int | None = None
    """PPO environment steps per seed (default: the config's 500k)"""
    kde_calls: int = 20
    """log-density evaluations of one rollout per timed call"""
    repeats: int = 3
    """timings per KDE row (best and median reported)"""
    quick: bool = False
    """smoke mode: 3 short rounds per run and one short KDE timing; numbers meaningless"""


def kde_row(name: str, stationary: bool, trajs, spec, flags: BenchFlags) -> dict:
    from jaxrl_align.algorithms import density

    inputs, mask = density.demo_inputs(spec, "state_action", trajs, stationary)
    kde = density.fit(inputs, mask)
    steps, envs_ = ROLLOUT
    queries = density.density_inputs(spec, "state_action", trajs.obs[0, :steps].repeat(envs_, 0),
                                     jnp.zeros(steps * envs_, jnp.int32), None)
    timesteps = jnp.arange(steps * envs_, dtype=jnp.int32) % 500
    calls = 2 if flags.quick else flags.kde_calls

    def run(total, kde, queries, timesteps):
        def one(total, i):  # shift the queries so that no two evaluations are the same
            x = queries + i * 1e-3
            return total + jnp.sum(density.log_density(kde, x, 0.5, timesteps=timesteps)), None
        return jax.lax.scan(one, total, jnp.arange(calls, dtype=jnp.float32))

    timing = time_program(run, jnp.zeros(()), kde, queries, timesteps,
                          repeats=1 if flags.quick else flags.repeats,
                          min_time=0.0 if flags.quick else 0.5)
    points = int(mask.sum()) if stationary else int(mask.shape[-1])  # per query
    evals = calls * steps * envs_
    row = measurement(name, f"{steps * envs_} queries x {points} points x {inputs.shape[-1]} "
                      f"features", timing, evals, None, "evals/s")
    row["pairs_per_s"] = row["throughput_total"] * points
    return row


def training_row(num_seeds: int, flags: BenchFlags, env, env_params, trajs) -> dict:
    import envs
    from jaxrl_align.algorithms import density
    from jaxrl_align.runtime import runner

    config = density.DensityConfig()
    timesteps = 3 * config.ppo.steps_per_update if flags.quick else flags.timesteps
    if timesteps is not None:
        config = replace(config, ppo=replace(config.ppo, total_timesteps=timesteps))
    algo = density.make(config, env, env_params)
    settings = runner.RunSettings(seeds=num_seeds, num_chunks=4, eval_episodes=5,
                                  final_eval_episodes=20, progress=False)
    result = runner.run(algo, env, env_params, settings, trajs,
                        reference_returns=envs.reference_returns(ENV_ID))
    steps = result.env_steps
    returns = np.asarray(result.summary["return_mean"])
    return dict(algo="density", seeds=num_seeds, env_steps_per_seed=steps,
                compile_s=result.compile_s, run_s=result.run_s,
                steps_per_s_per_seed=steps / result.run_s,
                steps_per_s_total=steps * num_seeds / result.run_s,
                final_returns=returns.tolist(),
                normalized_scores=result.summary["normalized_score"],
                iqm=result.summary["iqm"], iqm_ci95=result.summary["iqm_ci95"])


def _table(header, lines) -> str:
    return text_table(header, lines, left=(0,))


def format_tables(kde_rows: list[dict], train_rows: list[dict]) -> str:
    kde = _table(("KDE", "sizes", "compile s", "ms/eval batch", "evals/s", "pairs/s"),
                 [(r["name"], r["sizes"], f"{r['compile_s']:.2f}",
                   f"{1e3 * r['run_s'] / (r['work_per_call'] / (ROLLOUT[0] * ROLLOUT[1])):.2f}",
                   f"{r['throughput_total'] / 1e6:.2f}M", f"{r['pairs_per_s'] / 1e9:.2f}G")
                  for r in kde_rows])
    train = _table(("training", "seeds", "steps/seed", "compile s", "run s", "steps/s/seed",
                    "steps/s total", "IQM score", "mean return"),
                   [("density", r["seeds"], f"{r['env_steps_per_seed']:,}",
                     f"{r['compile_s']:.1f}", f"{r['run_s']:.1f}",
                     f"{r['steps_per_s_per_seed'] / 1e3:.1f}k",
                     f"{r['steps_per_s_total'] / 1e3:.1f}k", f"{r['iqm']:.3f}",
                     f"{np.mean(r['final_returns']):.1f}") for r in train_rows])
    return kde + "\n\n" + train


def main(flags: BenchFlags) -> dict:
    import envs
    from jaxrl_align.data import rollout
    from jaxrl_align.runtime import outputs
    from jaxrl_align.spaces import space_spec

    if flags.timesteps is not None and flags.timesteps <= 0:
        raise ValueError(f"--timesteps: expected a positive integer, got {flags.timesteps}")
    for name in ("kde_calls", "repeats"):
        if getattr(flags, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')}: expected a positive integer, got "
                             f"{getattr(flags, name)}")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    env, env_params = envs.make(ENV_ID)
    trajs = rollout.collect_episodes(env, env_params, cartpole_controller,
                                     jax.random.PRNGKey(0), 10, 500)
    spec = space_spec(env, env_params)
    kde_rows = []
    for name, stationary in (("stationary", True), ("per-timestep", False)):
        print(f"[{time.perf_counter() - t0:6.1f}s] KDE {name} ...", flush=True)
        kde_rows.append(kde_row(name, stationary, trajs, spec, flags))
    train_rows = []
    for num_seeds in SEED_COUNTS:
        print(f"[{time.perf_counter() - t0:6.1f}s] density x {num_seeds} seeds ...", flush=True)
        train_rows.append(training_row(num_seeds, flags, env, env_params, trajs))
    record = dict(benchmark="density", env=ENV_ID, timestamp=started.isoformat(),
                  quick=flags.quick, timesteps=flags.timesteps, machine=machine_info(),
                  versions=outputs.package_versions(), bench_wall_s=time.perf_counter() - t0,
                  kde=kde_rows, rows=train_rows)
    print(format_tables(kde_rows, train_rows))
    finish_report(record, flags.out)
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(BenchFlags))


if __name__ == "__main__":
    cli()
