"""Preference-comparisons benchmark: wall time (compile apart), agent env steps/s and final
returns, for 1 seed and for 8 seeds trained together in one call.

    python -m experiments.bench.preferences                 # seals/CartPole-v0, defaults below
    python -m experiments.bench.preferences --quick         # smoke mode: tiny sizes
    python -m experiments.bench.preferences --env Pendulum-v1 --seeds 8   # the PENDULUM preset

Each row is one `runner.run` (compile = init + chunk + evaluation programs, including the
initial reward training that init runs; run = the training chunks and the final evaluation).
Agent env steps count `init`'s rollout and every round's; steps/s is per seed and in total.
Prints a table and writes JSON atomically (`--out`).
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import tyro

SEED_COUNTS = (1, 8)


@dataclass(frozen=True)
class BenchFlags:
    env: str = "seals/CartPole-v0"
    out: Path = Path("bench_results/preferences.json")
    """where the JSON is written (atomically)"""
    preset: str | None = None
    """configuration: cartpole (the library's defaults, tuned on seals/CartPole-v0) or pendulum
    (experiments.configs.PREFERENCES_PENDULUM); None: pendulum for Pendulum-v1, cartpole otherwise"""
    total_timesteps: int | None = None
    """PPO's total_timesteps per seed; None: the preset's (cartpole: 796,672, which makes 997,888
    agent steps with the queries; pendulum: 200,000, 250,368 agent steps)"""
    total_comparisons: int | None = None
    """synthetic comparisons per seed; None: the preset's (cartpole 2000, pendulum 1000)"""
    seeds: tuple[int, ...] = SEED_COUNTS
    """seed counts to measure, each in one call"""
    quick: bool = False
    """smoke mode: 20k steps, 100 comparisons, seed counts 1 and 2"""
    compile_cache: bool = False
    """use the persistent compilation cache (off: compile times are real compilations)"""


def preset_config(flags: BenchFlags):
    """The preset's PreferenceComparisonsConfig with the flags' overrides."""
    import dataclasses

    from experiments.configs import PREFERENCES_PENDULUM
    from jaxrl_align.algorithms import preference_comparisons as pc

    name = flags.preset or ("pendulum" if flags.env == "Pendulum-v1" else "cartpole")
    presets = {"cartpole": pc.PreferenceComparisonsConfig(), "pendulum": PREFERENCES_PENDULUM}
    if name not in presets:
        raise SystemExit(f"--preset: expected one of {sorted(presets)}, got {name!r}")
    config = presets[name]
    timesteps = flags.total_timesteps or config.ppo.total_timesteps
    comparisons = flags.total_comparisons or config.total_comparisons
    if flags.quick:
        timesteps, comparisons = 20_000, 100
    return name, dataclasses.replace(
        config, total_comparisons=comparisons,
        ppo=dataclasses.replace(config.ppo, total_timesteps=timesteps))


def measure(flags: BenchFlags, num_seeds: int, config) -> dict:
    import envs
    from jaxrl_align.algorithms import preference_comparisons as pc
    from jaxrl_align.runtime import runner

    env, params = envs.make(flags.env)
    try:
        reference = envs.reference_returns(flags.env)
    except ValueError:
        reference = None
    algo = pc.make(config, env, params)
    settings = runner.RunSettings(seeds=num_seeds, num_chunks=4, eval_episodes=5, final_eval_episodes=20,
                                  progress=False)
    t0 = time.perf_counter()
    result = runner.run(algo, env, params, settings, None, reference_returns=reference)
    wall = time.perf_counter() - t0
    steps = result.env_steps  # init's rollout and the query rollouts included
    returns = result.summary["return_mean"]
    scores = result.summary.get("normalized_score")
    return {
        "seeds": num_seeds, "compile_s": result.compile_s, "run_s": result.run_s, "wall_s": wall,
        "agent_env_steps_per_seed": steps, "comparisons_per_seed": pc.comparisons_queried(config),
        "steps_per_s_per_seed": steps / result.run_s,
        "steps_per_s_total": steps * num_seeds / result.run_s,
        "return_mean": returns, "normalized_score": scores,
        "seeds_at_0.9": None if scores is None else int(np.sum(np.asarray(scores) >= 0.9)),
        "heldout_acc_final": np.asarray(result.chunk_metrics["heldout_acc"][:, -1]).tolist(),
    }


def table(rows: list[dict]) -> str:
    lines = [f"{'seeds':>5} {'compile s':>9} {'run s':>7} {'wall s':>7} {'steps/s/seed':>12} "
             f"{'steps/s total':>13} {'mean return':>11} {'>=0.9':>5} {'heldout acc':>11}"]
    for r in rows:
        at = "-" if r["seeds_at_0.9"] is None else f"{r['seeds_at_0.9']}/{r['seeds']}"
        lines.append(f"{r['seeds']:>5} {r['compile_s']:>9.1f} {r['run_s']:>7.1f} "
                     f"{r['wall_s']:>7.1f} {r['steps_per_s_per_seed']:>12.0f} "
                     f"{r['steps_per_s_total']:>13.0f} {np.mean(r['return_mean']):>11.1f} "
                     f"{at:>5} {np.mean(r['heldout_acc_final']):>11.3f}")
    return "\n".join(lines)


def main(flags: BenchFlags) -> dict:
    import jax

    from jaxrl_align.hparams import config_to_dict
    from jaxrl_align.runtime import outputs

    if flags.compile_cache:
        from jaxrl_align.platform import compilation_cache

        compilation_cache.enable()
    preset, config = preset_config(flags)
    timesteps, comparisons = config.ppo.total_timesteps, config.total_comparisons
    seed_counts = (1, 2) if flags.quick else flags.seeds
    rows = [measure(flags, n, config) for n in seed_counts]
    record = {
        "benchmark": "preferences", "env": flags.env, "preset": preset, "created": datetime.now(timezone.utc).isoformat(),
        "backend": jax.default_backend(), "devices": jax.device_count(),
        "machine": platform.processor() or platform.machine(), "quick": flags.quick,
        "config": config_to_dict(config),
        "rows": rows, "versions": outputs.package_versions(),
    }
    print(f"preference comparisons on {flags.env}: {rows[0]['agent_env_steps_per_seed']} agent "
          f"steps (PPO total_timesteps {timesteps}, plus query rollouts and init) and "
          f"{comparisons} comparisons per seed, preset {preset} ({jax.default_backend()})")
    print(table(rows))
    for r in rows:
        print(f"{r['seeds']} seed(s), final returns: "
              + ", ".join(f"{x:.0f}" for x in r["return_mean"]))
    outputs.write_json(flags.out, record)
    print(f"wrote {flags.out}")
    return record


if __name__ == "__main__":
    main(tyro.cli(BenchFlags))
