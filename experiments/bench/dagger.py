"""DAgger benchmark: whole runs (init and every round) timed with compile apart, environment
steps (and BC gradient steps) per second per seed and in total, for 1 seed and for 8 seeds
vmapped into one call; then the learning results of 8 seeds through the runner.

    python -m experiments.bench.dagger            # full run (~6 min on a 2-core CPU)
    python -m experiments.bench.dagger --quick    # smoke mode: tiny sizes, compile-bound
    python -m experiments.bench.dagger --results-only --pendulum-bc-epochs 4 --first-seed 8

Cases:
- `cartpole`: seals/CartPole-v0, `DAggerConfig(rounds=4)` (imitation's defaults otherwise:
  LinearBetaSchedule(15), 4 BC epochs a round, 3 × 500 steps a round), the hand-written
  controller (500 on every episode) as the expert.
- `pendulum`: Pendulum-v1, `DAggerConfig(rounds=5, rampdown_rounds=1, bc_epochs=10)` (β 1 in
  round 0 and 0 after, the schedule of imitation's own Pendulum test; 3 × 200 steps a round;
  `--pendulum-rampdown-rounds` and `--pendulum-bc-epochs` change the two),
  a PPO expert trained here first with `experiments.configs.PPO_PENDULUM` (seed 0; its time and
  return are in the JSON), or loaded with `--pendulum-expert` (flax msgpack of `PPOState.params`).
- `pendulum_expert_only`: the same with β = 1 in every round (ExponentialBetaSchedule(1)): BC on
  as many expert-driven episodes, the same epochs. Learning results only.

Timing is `experiments.bench.harness.time_program` of `init` plus a `lax.scan` of every round:
each call trains fresh runs from new keys (a DAgger run's rounds grow in cost as the aggregate
grows, so a call is a whole run, not a continuation). Learning results: one `runner.run` per
case, 8 seeds, the final return the mean of 50 deterministic episodes per seed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import jax
import numpy as np

from experiments.bench.harness import (finish_report, machine_info, measurement, text_table,
                                        time_program)

SEED_COUNTS = (1, 8)
RESULT_SEEDS = 8


@dataclass(frozen=True)
class BenchFlags:
    out: Path = Path("bench_results/dagger.json")
    """where the JSON is written (atomically)"""
    quick: bool = False
    """smoke mode: 2 rounds, a barely trained Pendulum expert, 1 timed seed and 2 trained;
    results meaningless"""
    repeats: int = 3
    """timed repetitions of every measurement; the best and the median are reported"""
    pendulum_expert: Path | None = None
    """PPO_PENDULUM parameters (flax msgpack of PPOState.params); None: train one here"""
    pendulum_rampdown_rounds: int = 1
    """the pendulum case's LinearBetaSchedule (rounds over which β falls from 1 to 0)"""
    pendulum_bc_epochs: int = 10
    """the pendulum cases' BC epochs per round"""
    first_seed: int = 0
    """the learning results' first seed (seeds first_seed, first_seed + 1, ...)"""
    results_only: bool = False
    """skip the timings: learning results only"""


@dataclass(frozen=True)
class Case:
    key: str
    env_id: str
    algo: object
    data: object
    timed: bool = True


def pendulum_expert(flags: BenchFlags, env, env_params) -> tuple[object, dict]:
    """(PPO parameters, a record of where they came from and what they score)."""
    from flax import serialization

    from experiments.configs import PPO_PENDULUM
    from jaxrl_align.rl import ppo
    from jaxrl_align.runtime import runner

    config = replace(PPO_PENDULUM, total_timesteps=4096) if flags.quick else PPO_PENDULUM
    if flags.pendulum_expert is not None:
        template = ppo.PPOEngine(config, env, env_params).init(jax.random.PRNGKey(0)).params
        params = serialization.from_bytes(template, Path(flags.pendulum_expert).read_bytes())
        return params, dict(source=str(flags.pendulum_expert))
    result = runner.run(ppo.make(config, env, env_params), env, env_params, runner.RunSettings(
        seeds=1, num_chunks=1, eval_episodes=50, final_eval_episodes=50, progress=False))
    return result.run_state(0).params, dict(
        source="PPO_PENDULUM, seed 0, trained here", total_timesteps=config.total_timesteps,
        compile_s=result.compile_s, run_s=result.run_s,
        return_mean=float(result.summary["return_mean"][0]))


def cases(flags: BenchFlags) -> tuple[list[Case], dict]:
    import envs
    from envs.controllers import cartpole_controller
    from experiments.configs import PPO_PENDULUM
    from jaxrl_align.algorithms import dagger

    cartpole, cartpole_params = envs.make("seals/CartPole-v0")
    pendulum, pendulum_params = envs.make("Pendulum-v1")
    expert_params, expert_record = pendulum_expert(flags, pendulum, pendulum_params)
    rounds = lambda n: 2 if flags.quick else n
    pendulum_config = dagger.DAggerConfig(rounds=rounds(5),
                                          rampdown_rounds=flags.pendulum_rampdown_rounds,
                                          bc_epochs=flags.pendulum_bc_epochs)
    ppo_expert = dagger.ppo_expert(PPO_PENDULUM, pendulum, pendulum_params)
    pendulum_data = dagger.DAggerData(expert_params=expert_params)
    return [
        Case("cartpole", "seals/CartPole-v0",
             dagger.make(dagger.DAggerConfig(rounds=rounds(4)), cartpole, cartpole_params,
                         dagger.policy_expert(cartpole_controller)), dagger.DAggerData()),
        Case("pendulum", "Pendulum-v1",
             dagger.make(pendulum_config, pendulum, pendulum_params, ppo_expert), pendulum_data),
        Case("pendulum_expert_only", "Pendulum-v1",
             dagger.make(replace(pendulum_config, beta_schedule="exponential",
                                 decay_probability=1.0), pendulum, pendulum_params, ppo_expert),
             pendulum_data, timed=False),
    ], expert_record


def work(algo, env_params) -> tuple[int, int]:
    """(environment steps, BC gradient steps) of one seed's whole run."""
    from jaxrl_align.data.rollout import max_episode_steps

    config = algo.config
    per_round = config.num_envs * config.steps_per_env(max_episode_steps(env_params))
    batches = sum(per_round * (r + 1) // config.bc.batch_size for r in range(config.rounds))
    return config.rounds * per_round, config.bc_epochs * batches


def bench_case(case: Case, env_params, num_seeds: int, quick: bool, repeats: int) -> dict:
    from jaxrl_align.algorithm import train

    algo = case.algo
    env_steps, grad_steps = work(algo, env_params)

    def whole_runs(keys, data):
        states, metrics = jax.vmap(lambda k: train(algo, k, data, algo.config.rounds))(keys)
        # The final round's metrics stay an output, so that XLA cannot drop the training.
        next_keys = jax.vmap(lambda k: jax.random.split(k)[0])(keys)
        return next_keys, (jax.tree.map(lambda m: m[:, -1], metrics), states.env_steps)

    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    timing = time_program(whole_runs, keys, case.data, repeats=repeats,
                          min_time=0.0 if quick else 0.5)
    row = measurement(
        case.key, f"{num_seeds} seed(s) x {algo.config.rounds} rounds: {env_steps:,} env steps, "
                  f"{grad_steps:,} BC gradient steps of {algo.config.bc.batch_size}", timing,
        work_per_call=num_seeds * env_steps, seeds=num_seeds, unit="env steps/s")
    row.update(env=case.env_id, gradient_steps_per_s_per_seed=(
        row["throughput_per_seed"] * grad_steps / env_steps))
    return row


def learning_result(case: Case, env, env_params, quick: bool, first_seed: int) -> dict:
    from experiments.common import reference_returns_or_none
    from jaxrl_align.runtime import runner

    seeds = 2 if quick else RESULT_SEEDS
    settings = runner.RunSettings(seeds=seeds, first_seed=first_seed,
                                  num_chunks=case.algo.config.rounds,
                                  eval_episodes=10 if quick else 50,
                                  final_eval_episodes=10 if quick else 50, progress=False)
    result = runner.run(case.algo, env, env_params, settings, case.data,
                        reference_returns=reference_returns_or_none(case.env_id))
    return dict(case=case.key, env=case.env_id, seeds=seeds, first_seed=first_seed,
                compile_s=result.compile_s, run_s=result.run_s, env_steps_per_seed=result.env_steps,
                final_returns=np.asarray(result.summary["return_mean"]).tolist(),
                eval_return_per_round=result.eval_returns.mean(axis=0).tolist())


def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"


def format_table(rows: list[dict]) -> str:
    header = ("measurement", "env", "sizes", "compile s", "run s", "env steps/s/seed",
              "env steps/s total", "grad steps/s/seed")
    lines = [(r["name"], r["env"], r["sizes"], f"{r['compile_s']:.1f}", f"{r['run_s']:.3f}",
              _fmt_rate(r["throughput_per_seed"]), _fmt_rate(r["throughput_total"]),
              _fmt_rate(r["gradient_steps_per_s_per_seed"])) for r in rows]
    return _table(header, lines, left=3)


def format_results(results: list[dict], pendulum_threshold: float = -250.0) -> str:
    header = ("case", "env", "seeds", "compile s", "run s", "mean return", "min", "max",
              f"Pendulum >= {pendulum_threshold:g}")
    lines = [(r["case"], r["env"], r["seeds"], f"{r['compile_s']:.1f}", f"{r['run_s']:.1f}",
              f"{np.mean(r['final_returns']):.1f}", f"{np.min(r['final_returns']):.1f}",
              f"{np.max(r['final_returns']):.1f}",
              f"{int(np.sum(np.asarray(r['final_returns']) >= pendulum_threshold))}/{r['seeds']}"
              if r["env"] == "Pendulum-v1" else "-") for r in results]
    return _table(header, lines, left=2)


def _table(header, lines, left: int) -> str:
    return text_table(header, lines, left=lambda i: i < left)


def comparison(results: list[dict]) -> dict | None:
    """Seeds on which DAgger's final return beats expert-only aggregation's (same seeds)."""
    by_case = {r["case"]: np.asarray(r["final_returns"]) for r in results}
    if "pendulum" not in by_case or "pendulum_expert_only" not in by_case:
        return None
    wins = int(np.sum(by_case["pendulum"] > by_case["pendulum_expert_only"]))
    return dict(dagger_beats_expert_only=wins, seeds=len(by_case["pendulum"]),
                dagger_at_or_above_minus_250=int(np.sum(by_case["pendulum"] >= -250)))


def main(flags: BenchFlags) -> dict:
    import envs
    from jaxrl_align.hparams import config_to_dict
    from jaxrl_align.runtime import outputs

    if flags.repeats < 1:
        raise ValueError(f"--repeats: expected a positive integer, got {flags.repeats}")
    if flags.pendulum_expert is not None and not Path(flags.pendulum_expert).is_file():
        raise ValueError(f"--pendulum-expert: no such file: {flags.pendulum_expert}")
    for name in ("pendulum_rampdown_rounds", "pendulum_bc_epochs"):
        if getattr(flags, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected a positive integer, got "
                             f"{getattr(flags, name)}")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    print(f"[{time.perf_counter() - t0:6.1f}s] Pendulum-v1 PPO expert ...", flush=True)
    measured, expert_record = cases(flags)
    rows, results = [], []
    seed_counts = (1,) if flags.quick else SEED_COUNTS
    for case in measured:
        env, env_params = envs.make(case.env_id)
        if case.timed and not flags.results_only:
            for num_seeds in seed_counts:
                print(f"[{time.perf_counter() - t0:6.1f}s] {case.key} x {num_seeds} seeds ...",
                      flush=True)
                rows.append({"key": f"{case.key}_{num_seeds}",
                             **bench_case(case, env_params, num_seeds, flags.quick,
                                          flags.repeats)})
        print(f"[{time.perf_counter() - t0:6.1f}s] {case.key}: learning result ...", flush=True)
        results.append(learning_result(case, env, env_params, flags.quick, flags.first_seed))
    summary = comparison(results)
    record = dict(benchmark="dagger", timestamp=started.isoformat(), quick=flags.quick,
                  repeats=flags.repeats, pendulum_expert=expert_record,
                  configs={case.key: config_to_dict(case.algo.config) for case in measured},
                  machine=machine_info(), versions=outputs.package_versions(),
                  bench_wall_s=time.perf_counter() - t0, rows=rows, results=results,
                  pendulum_comparison=summary)
    print(format_table(rows))
    print()
    print(format_results(results))
    if summary is not None:
        print(f"Pendulum: DAgger beats expert-only aggregation on "
              f"{summary['dagger_beats_expert_only']} of {summary['seeds']} seeds; "
              f"{summary['dagger_at_or_above_minus_250']} of {summary['seeds']} at -250 or "
              f"better (PPO expert: {expert_record.get('return_mean', 'loaded')})")
    finish_report(record, flags.out, "--quick: sizes are tiny" if flags.quick else "")
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(BenchFlags))


if __name__ == "__main__":
    cli()
