"""Off-policy benchmark: DQN and SQIL on seals/CartPole-v0, and SAC on Pendulum-v1 when
`jaxrl_align.rl.sac` is importable. Environment steps per second per seed and in total (and
gradient steps), compile time apart, for 1 seed and for 8 seeds vmapped into one call.

    python -m experiments.bench.off_policy            # full run (a few minutes on a 2-core CPU)
    python -m experiments.bench.off_policy --quick    # smoke mode: tiny sizes, compile-bound

Timing is `experiments.bench.harness.time_program`: a `lax.scan` of `update` compiled ahead of
time (compile timed apart), then the best of `--repeats` timings, each at least `min_timed_s`
(the median is in the JSON). Each call continues training from the previous call's state, so
the replay buffer fills as in a run. Configurations:

- `dqn_sb3`: `DQNConfig()` (SB3's defaults: 4 env steps then 1 gradient step of 32, 64-64 ReLU).
- `dqn_cartpole`: the CartPole preset of docs/algorithms/dqn.md (rl-zoo's settings: 256 env
  steps then 128 gradient steps, here of 256 transitions, 64-64 tanh, lr decayed to 0).
- `sqil`: SQIL with that preset at lr 1e-3 (tests/algorithms/test_sqil.py), on 10 controller
  episodes.
- `sac`: SAC's Pendulum preset (docs/algorithms/sac.md: SB3's defaults with lr 1e-3 and 64-64
  networks; a 256-256 gradient step costs about 8 times as much), if `rl/sac.py` exists.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import jax

from experiments.bench.harness import (finish_report, machine_info, measurement, text_table,
                                        time_program)
from experiments.configs import DQN_CARTPOLE

SEED_COUNTS = (1, 8)



@dataclass(frozen=True)
class BenchFlags:
    out: Path = Path("bench_results/off_policy.json")
    """where the JSON is written (atomically)"""
    quick: bool = False
    """smoke mode: one short call per timing (compile-bound, throughput meaningless)"""
    repeats: int = 3
    """timed repetitions of every measurement; the best and the median are reported"""


@dataclass(frozen=True)
class Case:
    key: str
    env_id: str
    algo: object
    data: object
    updates: int  # updates per timed call (full mode)


def cases(quick: bool) -> tuple[list[Case], list[str]]:
    """The measured algorithms, and notes on those left out."""
    import envs
    from envs.controllers import cartpole_controller
    from jaxrl_align.algorithms import sqil
    from jaxrl_align.data import rollout
    from jaxrl_align.rl import dqn
    from jaxrl_align.types import flatten_trajectories

    cartpole, cartpole_params = envs.make("seals/CartPole-v0")
    demos = flatten_trajectories(rollout.collect_episodes(
        cartpole, cartpole_params, cartpole_controller, jax.random.PRNGKey(0), 10, 500))
    preset = DQN_CARTPOLE
    out = [
        Case("dqn_sb3", "seals/CartPole-v0", dqn.make(dqn.DQNConfig(), cartpole, cartpole_params),
             None, 500),
        Case("dqn_cartpole", "seals/CartPole-v0", dqn.make(preset, cartpole, cartpole_params),
             None, 4),
        Case("sqil", "seals/CartPole-v0",
             sqil.make(replace(preset, lr=1e-3), cartpole, cartpole_params), demos, 4),
    ]
    notes = []
    try:
        from jaxrl_align.rl import sac
    except ImportError as error:
        notes.append(f"sac: not measured (jaxrl_align.rl.sac: {error})")
    else:
        pendulum, pendulum_params = envs.make("Pendulum-v1")
        config = sac.SACConfig(lr=1e-3, hidden=(64, 64), total_timesteps=10_000)
        out.append(Case("sac", "Pendulum-v1", sac.make(config, pendulum, pendulum_params),
                        None, 500))
    return out, notes


def bench_case(case: Case, num_seeds: int, quick: bool, repeats: int) -> dict:
    from jaxrl_align.rl import off_policy

    algo, config = case.algo, case.algo.config
    updates = 1 if quick else case.updates
    steps = off_policy.steps_per_update(config)

    def run(state, data):
        return jax.lax.scan(lambda s, _: algo.update(s, data), state, None, length=updates)

    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    states = jax.jit(jax.vmap(lambda key: algo.init(key, case.data)))(keys)
    timing = time_program(jax.vmap(run, in_axes=(0, None)), states, case.data, repeats=repeats,
                          min_time=0.0 if quick else 0.5)
    row = measurement(
        case.key, f"{num_seeds} seed(s) x {updates} updates x {steps} env steps "
                  f"+ {config.gradient_steps} gradient steps of {config.batch_size}",
        timing, work_per_call=num_seeds * updates * steps, seeds=num_seeds, unit="env steps/s")
    row.update(env=case.env_id, gradient_steps_per_s_per_seed=(
        row["throughput_per_seed"] * config.gradient_steps / steps))
    return row


def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"


def format_table(rows: list[dict]) -> str:
    header = ("measurement", "env", "sizes", "compile s", "run s", "env steps/s/seed",
              "env steps/s total", "grad steps/s/seed")
    lines = [(r["name"], r["env"], r["sizes"], f"{r['compile_s']:.1f}", f"{r['run_s']:.3f}",
              _fmt_rate(r["throughput_per_seed"]), _fmt_rate(r["throughput_total"]),
              _fmt_rate(r["gradient_steps_per_s_per_seed"])) for r in rows]
    return text_table(header, lines, left=(0, 1, 2))


def main(flags: BenchFlags) -> dict:
    from jaxrl_align.hparams import config_to_dict
    from jaxrl_align.runtime import outputs

    if flags.repeats < 1:
        raise ValueError(f"--repeats: expected a positive integer, got {flags.repeats}")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    measured, notes = cases(flags.quick)
    rows = []
    for case in measured:
        for num_seeds in SEED_COUNTS:
            print(f"[{time.perf_counter() - t0:6.1f}s] {case.key} x {num_seeds} seeds ...",
                  flush=True)
            rows.append({"key": f"{case.key}_{num_seeds}",
                         **bench_case(case, num_seeds, flags.quick, flags.repeats)})
    record = dict(benchmark="off_policy", timestamp=started.isoformat(), quick=flags.quick,
                  repeats=flags.repeats, notes=notes,
                  configs={case.key: config_to_dict(case.algo.config) for case in measured},
                  machine=machine_info(), versions=outputs.package_versions(),
                  bench_wall_s=time.perf_counter() - t0, rows=rows)
    print(format_table(rows))
    for note in notes:
        print(note)
    finish_report(record, flags.out, "--quick: sizes are tiny" if flags.quick else "")
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(BenchFlags))


if __name__ == "__main__":
    cli()
