"""Throughput benchmark: environment steps/s, PPO env steps/s, BC gradient steps/s, start-up time.

    python -m experiments.bench.throughput               # full run (a few minutes on a laptop CPU)
    python -m experiments.bench.throughput --quick       # smoke mode: tiny sizes, compile-bound

Timing is `experiments.bench.harness.time_program` (compiled ahead of time, compile timed apart,
the best of `--repeats` timings, each at least `Sizes.min_timed_s`). Throughput is computed from
the best time; the median is in the JSON.

1. `env`:     seals/CartPole-v0 under a uniformly random policy, the library's `unroll` (vmapped
              `env.step`, auto-reset included) with 1, 64 and 4096 parallel environments.
2. `ppo`:     `lax.scan` of PPO's `update` with PureJaxRL's CartPole settings
              (`configs.PUREJAXRL_CARTPOLE`: 4 envs x 128 steps, 4 epochs x 4 minibatches, 64-64 tanh)
              for 1 seed, and for 16 seeds vmapped into one call.
3. `bc`:      BC epochs (N // 32 gradient steps each) on ~5,000 transitions of a hand-written
              controller, for 1 seed and for 16 seeds in one call.
4. `startup`: a fresh Python process, from its launch to the end of its first PPO chunk (imports,
              env make, compile, run), first with an empty persistent compilation cache, then
              again with the cache that first process filled.

The in-process measurements do not enable the persistent compilation cache, so their compile
times are real compilations (unless the caller, e.g. the test suite, enabled it already).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import jax
import jax.numpy as jnp

from experiments.bench.harness import (finish_report, machine_info, measurement, text_table,
                                        time_program)

ENV_ID = "seals/CartPole-v0"
REPO_ROOT = Path(__file__).resolve().parents[2]

# Stable ids of every measurement, in table order (the JSON always has all of them).
MEASUREMENTS = ("env_1", "env_64", "env_4096", "ppo_1_seed", "ppo_16_seeds", "bc_1_seed",
                "bc_16_seeds", "startup_cold_cache", "startup_warm_cache")

# Targets on a 2-core laptop-class CPU: (which throughput, comparison, value).
TARGETS: dict[str, tuple[str, str, float]] = {
    "env_4096": ("total", ">=", 5e6),
    "ppo_1_seed": ("per_seed", ">=", 1e5),
    "bc_1_seed": ("per_seed", ">=", 2e4),
    "bc_16_seeds": ("total", ">=", 5e4),
    "startup_warm_cache": ("seconds", "<=", 2.0),
}


@dataclass(frozen=True)
class BenchFlags:
    out: Path = Path("bench_results/throughput.json")
    """where the JSON is written (atomically)"""
    quick: bool = False
    """smoke mode: tiny sizes, one short call per timing, targets not checked; the cold start-up
    process runs alongside the in-process measurements (compile-bound: a minute or two)"""
    repeats: int = 3
    """timed repetitions of every measurement; the best and the median are reported"""
    cache_dir: Path | None = None
    """parent folder for the start-up measurement's compilation cache: each run makes a fresh,
    empty subfolder in it and keeps it (default: a temporary folder, deleted afterwards)"""


@dataclass(frozen=True)
class Sizes:
    """Work per compiled call. Compile time does not depend on these scan lengths."""

    env_counts: tuple[int, ...]
    env_steps: tuple[int, ...]  # scan length for each env count
    ppo_updates_1: int  # updates per call, 1 seed
    ppo_updates_16: int  # updates per call, 16 seeds
    bc_epochs_1: int  # BC updates (epochs) per call, 1 seed
    bc_epochs_16: int
    seeds: int  # the "many seeds" size
    bc_episodes: int  # controller episodes (500 steps each) of BC data
    min_timed_s: float  # a timing chains calls until it lasts at least this long


FULL = Sizes(env_counts=(1, 64, 4096), env_steps=(100_000, 10_000, 1_000), ppo_updates_1=50,
             ppo_updates_16=10, bc_epochs_1=20, bc_epochs_16=4, seeds=16, bc_episodes=10,
             min_timed_s=0.2)
QUICK = Sizes(env_counts=(1, 64, 4096), env_steps=(200, 50, 5), ppo_updates_1=1,
              ppo_updates_16=1, bc_epochs_1=1, bc_epochs_16=1, seeds=16, bc_episodes=1,
              min_timed_s=0.0)


# -- 1. environment steps ----------------------------------------------------------------------

def env_program(env, env_params, num_envs: int, num_steps: int):
    """(init(key) -> carry, run(carry) -> (carry, rewards)): `num_steps` steps of `num_envs`
    environments under a uniformly random policy (`data.rollout.unroll`, auto-reset included),
    keeping only each step's summed reward."""
    from jaxrl_align.data import rollout

    num_actions = env.action_space(env_params).n

    def init(key):
        reset_key, key = jax.random.split(key)
        obs, env_state = rollout.reset(env, env_params, reset_key, num_envs)
        return obs, env_state, key

    def act(key, obs):
        return jax.random.randint(key, (num_envs,), 0, num_actions), ()

    def run(carry):
        # The observations stay in the carry (an output), so they are computed as a policy
        # that reads them would need them.
        return rollout.unroll(env, env_params, act, *carry, num_steps,
                              record=lambda step, extras, info: jnp.sum(step.rews))

    return init, run


def bench_env(env, env_params, sizes: Sizes, repeats: int) -> dict[str, dict]:
    rows = {}
    for num_envs, num_steps in zip(sizes.env_counts, sizes.env_steps):
        init, run = env_program(env, env_params, num_envs, num_steps)
        carry = jax.jit(init)(jax.random.PRNGKey(0))
        timing = time_program(run, carry, repeats=repeats, min_time=sizes.min_timed_s)
        envs_text = f"{num_envs} env" + ("s" if num_envs > 1 else "")
        rows[f"env_{num_envs}"] = measurement(
            "env steps, random policy", f"{envs_text} x {num_steps} steps", timing,
            work_per_call=num_envs * num_steps, seeds=None, unit="env steps/s")
    return rows


# -- 2. PPO ------------------------------------------------------------------------------------

def bench_ppo(env, env_params, sizes: Sizes, repeats: int) -> dict[str, dict]:
    from experiments.configs import PUREJAXRL_CARTPOLE
    from jaxrl_align.rl import ppo

    algo = ppo.make(PUREJAXRL_CARTPOLE, env, env_params)
    steps = algo.config.steps_per_update

    def updates(num_updates):
        def run(state):
            return jax.lax.scan(lambda s, _: algo.update(s, None), state, None,
                                length=num_updates)
        return run

    rows = {}
    state = jax.jit(lambda key: algo.init(key, None))(jax.random.PRNGKey(0))
    timing = time_program(updates(sizes.ppo_updates_1), state, repeats=repeats,
                          min_time=sizes.min_timed_s)
    rows["ppo_1_seed"] = measurement(
        "PPO update", f"1 seed x {sizes.ppo_updates_1} updates x {steps} steps", timing,
        work_per_call=sizes.ppo_updates_1 * steps, seeds=1, unit="env steps/s")

    keys = jax.random.split(jax.random.PRNGKey(0), sizes.seeds)
    states = jax.jit(jax.vmap(lambda key: algo.init(key, None)))(keys)
    timing = time_program(jax.vmap(updates(sizes.ppo_updates_16)), states, repeats=repeats,
                          min_time=sizes.min_timed_s)
    rows["ppo_16_seeds"] = measurement(
        "PPO update", f"{sizes.seeds} seeds x {sizes.ppo_updates_16} updates x {steps} steps",
        timing, work_per_call=sizes.seeds * sizes.ppo_updates_16 * steps, seeds=sizes.seeds,
        unit="env steps/s")
    return rows


# -- 3. BC -------------------------------------------------------------------------------------

def bench_bc(env, env_params, sizes: Sizes, repeats: int) -> dict[str, dict]:
    from envs.controllers import cartpole_controller
    from jaxrl_align.algorithms import bc
    from jaxrl_align.data import rollout
    from jaxrl_align.types import flatten_trajectories

    trajs = rollout.collect_episodes(env, env_params, cartpole_controller, jax.random.PRNGKey(0),
                                     sizes.bc_episodes, rollout.max_episode_steps(env_params))
    demos = flatten_trajectories(trajs)
    algo = bc.make(bc.BCConfig(), env, env_params)
    grad_steps = len(demos) // algo.config.batch_size  # per epoch (= per update)

    def epochs(num_epochs):
        def run(state, demos):
            return jax.lax.scan(lambda s, _: algo.update(s, demos), state, None,
                                length=num_epochs)
        return run

    data = f"{len(demos)} transitions, batch {algo.config.batch_size}"
    rows = {}
    state = jax.jit(algo.init)(jax.random.PRNGKey(0), demos)
    timing = time_program(epochs(sizes.bc_epochs_1), state, demos, repeats=repeats,
                          min_time=sizes.min_timed_s)
    rows["bc_1_seed"] = measurement(
        "BC gradient steps", f"1 seed x {sizes.bc_epochs_1} epochs x {grad_steps} steps ({data})",
        timing, work_per_call=sizes.bc_epochs_1 * grad_steps, seeds=1, unit="grad steps/s")

    keys = jax.random.split(jax.random.PRNGKey(0), sizes.seeds)
    states = jax.jit(jax.vmap(algo.init, in_axes=(0, None)))(keys, demos)
    timing = time_program(jax.vmap(epochs(sizes.bc_epochs_16), in_axes=(0, None)), states, demos,
                          repeats=repeats, min_time=sizes.min_timed_s)
    rows["bc_16_seeds"] = measurement(
        "BC gradient steps",
        f"{sizes.seeds} seeds x {sizes.bc_epochs_16} epochs x {grad_steps} steps ({data})",
        timing, work_per_call=sizes.seeds * sizes.bc_epochs_16 * grad_steps, seeds=sizes.seeds,
        unit="grad steps/s")
    return rows


# -- 4. start-up -------------------------------------------------------------------------------

def _count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder)) if folder.exists() else 0


class StartupProcess:
    """One run of `experiments.bench.startup_probe` in a new interpreter, against `cache_dir`. Its output goes to
    files (a full pipe would stall the child and inflate its times)."""

    def __init__(self, cache_dir: Path, log_dir: Path):
        self.cache_dir = cache_dir
        self.cache_files_before = _count_files(cache_dir)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        self.stdout = tempfile.TemporaryFile("w+", dir=log_dir)
        self.stderr = tempfile.TemporaryFile("w+", dir=log_dir)
        self.t_launch = time.time()
        self.proc = subprocess.Popen([sys.executable, "-m", "experiments.bench.startup_probe",
                                      str(cache_dir)],
                                     cwd=REPO_ROOT, env=env, stdout=self.stdout,
                                     stderr=self.stderr, text=True)

    def result(self) -> dict:
        returncode = self.proc.wait()
        t_exit = time.time()
        self.stdout.seek(0)
        self.stderr.seek(0)
        out, err = self.stdout.read(), self.stderr.read()
        self.stdout.close()
        self.stderr.close()
        if returncode != 0:
            raise RuntimeError(f"start-up process failed ({returncode}):\n{err[-3000:]}")
        t = json.loads(out.strip().splitlines()[-1])
        return dict(
            to_first_update_s=t["t_done"] - self.t_launch,
            interpreter_s=t["t_start"] - self.t_launch,
            imports_s=t["t_imports"] - t["t_start"],
            env_make_s=t["t_env"] - t["t_imports"],
            compile_s=t["t_compiled"] - t["t_env"],
            first_chunk_s=t["t_done"] - t["t_compiled"],
            # Only exact when the parent waited for it (not when it ran alongside other work).
            process_total_s=t_exit - self.t_launch,
            chunk_updates=t["chunk_updates"], env_steps=t["env_steps"],
            cache_files_before=self.cache_files_before,
            cache_files_after=_count_files(self.cache_dir))


class StartupBench:
    """Cold start (empty cache folder), then warm start (the folder the cold start filled).
    `start()` may be called early to overlap the cold start with other work (--quick only: the
    two then compete for the CPU)."""

    def __init__(self, cache_parent: Path | None):
        self.cache_parent = cache_parent
        if cache_parent is None:
            self.parent = Path(tempfile.mkdtemp(prefix="jaxrl_align_bench_cache_"))
        else:
            cache_parent.mkdir(parents=True, exist_ok=True)
            self.parent = Path(tempfile.mkdtemp(prefix="startup-", dir=cache_parent))
        self.cache_dir = self.parent / "xla"  # absent: the first process starts from nothing
        self.cold: StartupProcess | None = None
        self.overlapped = False

    def start(self, overlapped: bool = False) -> None:
        if self.cold is None:
            self.cold = StartupProcess(self.cache_dir, self.parent)
            self.overlapped = overlapped

    def close(self) -> None:
        """Stop a cold start still running (after an error elsewhere) and remove the temporary
        cache folder."""
        if self.cold is not None and self.cold.proc.poll() is None:
            self.cold.proc.kill()
            self.cold.proc.wait()
        if self.cache_parent is None:
            shutil.rmtree(self.parent, ignore_errors=True)

    def rows(self) -> dict[str, dict]:
        self.start()
        results = {"startup_cold_cache": self.cold.result()}
        results["startup_warm_cache"] = StartupProcess(self.cache_dir, self.parent).result()
        rows = {}
        for key, r in results.items():
            label = "empty cache" if key == "startup_cold_cache" else "warm cache"
            overlapped = self.overlapped and key == "startup_cold_cache"
            if overlapped:
                r["process_total_s"] = None
            rows[key] = dict(
                name=f"start-up to 1st PPO chunk, {label}",
                sizes=f"new process, 1 seed x {r['chunk_updates']} updates x "
                      f"{r['env_steps'] // r['chunk_updates']} steps"
                      + (" (overlapped)" if overlapped else ""), unit="s",
                seeds=1, run_s=r["to_first_update_s"], run_s_median=r["to_first_update_s"],
                throughput_total=None, throughput_per_seed=None, overlapped=overlapped,
                cache_dir=str(self.cache_dir) if self.cache_parent is not None else None, **r)
        return rows


# -- report ------------------------------------------------------------------------------------

def check_target(key: str, row: dict) -> tuple[str, bool | None]:
    if key not in TARGETS:
        return "-", None
    which, op, value = TARGETS[key]
    if which == "seconds":
        return f"{op} {value:g} s", row["run_s"] <= value
    text = f"{op} {value / 1e3:,.0f}k {'/seed' if which == 'per_seed' else 'total'}"
    return text, row[f"throughput_{which}"] >= value


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"


def format_table(rows: dict[str, dict]) -> str:
    header = ("measurement", "sizes", "compile s", "run s", "per seed", "total", "target",
              "pass")
    lines = []
    for key in MEASUREMENTS:
        r = rows[key]
        unit = r["unit"] if r["unit"] != "s" else ""
        passed = r["passed"]
        lines.append((
            f"{key}: {r['name']}", r["sizes"], f"{r['compile_s']:.2f}", f"{r['run_s']:.3f}",
            _fmt_rate(r["throughput_per_seed"]),
            f"{_fmt_rate(r['throughput_total'])} {unit}" if r["throughput_total"] else "-",
            r["target"], {True: "PASS", False: "FAIL", None: "-"}[passed]
            if not r.get("target_skipped") else "skip"))
    return text_table(header, lines, left=lambda i: i < 2 or i >= 6)


def main(flags: BenchFlags) -> dict:
    import envs
    from experiments.configs import PUREJAXRL_CARTPOLE
    from jaxrl_align.algorithms import bc
    from jaxrl_align.hparams import config_to_dict
    from jaxrl_align.runtime import outputs

    if flags.repeats < 1:
        raise ValueError(f"--repeats: expected a positive integer, got {flags.repeats}")
    sizes = QUICK if flags.quick else FULL
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    env, env_params = envs.make(ENV_ID)
    startup = StartupBench(flags.cache_dir)
    if flags.quick:  # a smoke test: let the slow cold start-up use the other core meanwhile
        startup.start(overlapped=True)
    rows: dict[str, dict] = {}
    benches = (("environment steps", lambda: bench_env(env, env_params, sizes, flags.repeats)),
               ("PPO", lambda: bench_ppo(env, env_params, sizes, flags.repeats)),
               ("BC", lambda: bench_bc(env, env_params, sizes, flags.repeats)),
               ("start-up", startup.rows))
    try:
        for title, bench in benches:
            print(f"[{time.perf_counter() - t0:6.1f}s] {title} ...", flush=True)
            rows.update(bench())
    finally:
        startup.close()
    for key, row in rows.items():
        row["target"], row["passed"] = check_target(key, row)
        if flags.quick:  # tiny sizes measure dispatch overhead, not throughput
            row["target_skipped"], row["passed"] = True, None

    record = dict(
        benchmark="throughput", env=ENV_ID, timestamp=started.isoformat(),
        quick=flags.quick, repeats=flags.repeats, sizes=asdict(sizes),
        configs=dict(ppo=config_to_dict(PUREJAXRL_CARTPOLE), bc=config_to_dict(bc.BCConfig())),
        machine=machine_info(), versions=outputs.package_versions(),
        persistent_cache_in_process=jax.config.jax_compilation_cache_dir,
        bench_wall_s=time.perf_counter() - t0,
        measurements={key: rows[key] for key in MEASUREMENTS})
    table = format_table(rows)
    print(table)
    for key in ("startup_cold_cache", "startup_warm_cache"):
        r = rows[key]
        print(f"{key}: launch->first chunk {r['to_first_update_s']:.2f} s = interpreter "
              f"{r['interpreter_s']:.2f} + imports {r['imports_s']:.2f} + env/algo make "
              f"{r['env_make_s']:.2f} + compile {r['compile_s']:.2f} + first chunk "
              f"{r['first_chunk_s']:.2f} ({r['env_steps']} env steps); process exit at "
              f"{r['process_total_s'] or float('nan'):.2f} s; cache files "
              f"{r['cache_files_before']} -> {r['cache_files_after']}")
    finish_report(record, flags.out, "--quick: targets not checked" if flags.quick else "")
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(BenchFlags))


if __name__ == "__main__":
    cli()
