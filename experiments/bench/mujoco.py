"""MuJoCo benchmark: environment steps/s of the seals MuJoCo tasks on the project's backends,
against the same engine from a plain Python loop and against gymnasium's SyncVectorEnv.

    python -m experiments.bench.mujoco                       # full run (a few minutes; MJX adds
                                                             # over a minute of compile per size)
    python -m experiments.bench.mujoco --quick               # smoke mode: tiny sizes, no MJX
    python -m experiments.bench.mujoco --tasks seals/HalfCheetah-v1,seals/Hopper-v1 \\
        --backends mujoco,mjx --mjx-env-counts 1,16

What is measured, under uniformly random actions, for 1, 16 and 256 environments:

1. `mujoco`: `envs.make(task, backend="mujoco")`, MuJoCo's C engine called from inside the
   compiled program (one batched `pure_callback` per step, `envs/mujoco/host_physics.py`): a
   jitted `lax.scan` of the vmapped `env.step` (`data.rollout.unroll`, auto-reset included),
   timed by `experiments.bench.harness.time_program` (compile timed apart).
2. `mjx`: the same program on `envs.make(task, backend="mjx")` (pure JAX). Any error (module
   missing, compile failure) is recorded in that row and the bench goes on.
3. `plain_loop`: one `mujoco.MjData` of the same model file stepped from Python,
   `data.ctrl[:] = a; mujoco.mj_step(model, data, nstep=frame_skip)` per env step (reset every
   1000 steps, as an episode ends). It computes no observation or reward, so it is a strict
   reference: the engine's own speed from Python, 1 environment.
4. `sync_vector_env`: gymnasium's `SyncVectorEnv` of `gym.make(v4 task)` configured as seals
   (positions observed, no early termination, 1000-step time limit), stepping
   `action_space.sample()` actions; "compile" is the time to make the vector env.

The measurements alternate: for each env count, round after round, every runner once (so drift
in the machine's load hits all of them alike); each round's timing lasts at least `min_timed_s`,
and a row's best and median are over `--repeats` rounds. Calls of the same jitted function reuse
its executable, so only the first round compiles; later rounds' compile times are in the JSON
(`recompile_s`) to show it.

The ratios are ours / plain loop (the 1-env loop measured beside each env count) and ours /
SyncVectorEnv at the same env count, from the best timings (medians in the JSON). Targets, for
the `mujoco` backend: >= 0.8x the plain loop at 1 env, >= 3x SyncVectorEnv at 16 envs.
"""
from __future__ import annotations

import math
import os
import statistics
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench.harness import (finish_report, machine_info, measurement, text_table,
                                        time_program)

RUNNERS = ("plain_loop", "sync_vector_env")  # the references, beside the backends
# (ratio, env count, at least): for the mujoco backend only.
TARGETS = (("vs_plain_loop", 1, 0.8), ("vs_sync_vector_env", 16, 3.0))


@dataclass(frozen=True)
class BenchFlags:
    out: Path = Path("bench_results/mujoco.json")
    """where the JSON is written (atomically)"""
    quick: bool = False
    """smoke mode: tiny sizes, one short call per timing, targets not checked, MJX left out
    unless --backends names it"""
    repeats: int = 3
    """rounds of the alternating measurements; the best and the median are reported"""
    tasks: str = "seals/HalfCheetah-v1"
    """comma-separated seals MuJoCo task ids"""
    backends: str | None = None
    """comma-separated backends among mujoco,mjx (default: both; --quick: mujoco)"""
    env_counts: str = "1,16,256"
    """comma-separated numbers of parallel environments"""
    mjx_env_counts: str = "16"
    """the env counts at which MJX is measured (each compiles for over a minute on a CPU, and
    one step of many environments is slow there)"""
    references: bool = True
    """also measure the plain Python loop and gymnasium's SyncVectorEnv"""
    note: str = ""
    """free text kept in the JSON and printed under the table (e.g. what else ran meanwhile)"""


@dataclass(frozen=True)
class Sizes:
    """Work per call; a timing chains calls until it lasts `min_timed_s`."""

    env_steps: dict[int, int]  # env count -> steps per call (the scan's length)
    min_timed_s: float


FULL = Sizes(env_steps={1: 2000, 16: 250, 256: 20}, min_timed_s=0.5)
QUICK = Sizes(env_steps={1: 200, 16: 10, 256: 1}, min_timed_s=0.0)


def steps_per_call(sizes: Sizes, num_envs: int) -> int:
    """The sizes' scan length for this env count, else about 2000 env steps per call."""
    return sizes.env_steps.get(num_envs, max(1, 2000 // num_envs))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _envs_text(num_envs: int) -> str:
    return f"{num_envs} env" + ("s" if num_envs > 1 else "")


# -- timing of host loops, as time_program times compiled ones ----------------------------------

def time_host(block: Callable[[], object], min_time: float) -> dict:
    """One timing of `block()` (one call = one block of steps, after a warm-up call): chains
    calls until the timing lasts `min_time`. Keys as `time_program`'s, without compilation."""
    t = time.perf_counter()
    block()
    warmup_s = time.perf_counter() - t
    calls = max(1, math.ceil(min_time / max(warmup_s, 1e-9))) if warmup_s < min_time else 1
    t = time.perf_counter()
    for _ in range(calls):
        block()
    return dict(first_call_s=warmup_s, calls_per_timing=calls,
                run_s_all=[(time.perf_counter() - t) / calls])


# -- the runners: each gives `one_timing()`, called once per round -------------------------------

class JitRunner:
    """`unroll` of `num_envs` environments of one backend under uniformly random actions, jitted
    and timed by `time_program` (one timing per call)."""

    def __init__(self, task_id: str, backend: str, num_envs: int, num_steps: int,
                 min_time: float):
        import envs
        from jaxrl_align.data import rollout

        env, params = envs.make(task_id, backend=backend)
        space = env.action_space(params)
        self.threads = getattr(getattr(env.physics, "host", None), "num_threads", None)

        def act(key, obs):
            return jax.random.uniform(key, (num_envs,) + space.shape, jnp.float32, space.low,
                                      space.high), ()

        # One function object for every round: jit's cache hands later rounds the executable.
        def run(carry):
            # The observations stay in the carry (an output), as a policy would need them.
            return rollout.unroll(env, params, act, *carry, num_steps,
                                  record=lambda step, extras, info: jnp.sum(step.rews))

        t = time.perf_counter()
        obs, state = jax.jit(lambda key: rollout.reset(env, params, key, num_envs))(
            jax.random.PRNGKey(0))
        jax.block_until_ready(state)
        self.reset_s = time.perf_counter() - t  # includes the reset program's compile
        self.run, self.carry, self.min_time = run, (obs, state, jax.random.PRNGKey(1)), min_time
        self.num_envs, self.num_steps = num_envs, num_steps
        self.sizes = f"{_envs_text(num_envs)} x {num_steps} steps, jitted scan"

    def one_timing(self) -> dict:
        return time_program(self.run, self.carry, repeats=1, min_time=self.min_time)


class PlainLoopRunner:
    """One `MjData` stepped from Python with random actions, one environment."""

    def __init__(self, task_id: str, num_steps: int, min_time: float):
        import mujoco

        from envs.mujoco import HORIZON, TASKS
        from envs.mujoco.host_physics import load_model

        task = TASKS[task_id]
        model = load_model(task)
        data = mujoco.MjData(model)
        low, high = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
        rng = np.random.default_rng(0)
        skip, steps_done = task.frame_skip, [0]

        def block():
            actions = rng.uniform(low, high, (num_steps, model.nu))
            for a in actions:
                data.ctrl[:] = a
                mujoco.mj_step(model, data, nstep=skip)
                steps_done[0] += 1
                if steps_done[0] % HORIZON == 0:
                    mujoco.mj_resetData(model, data)

        self.block, self.min_time = block, min_time
        self.num_envs, self.num_steps = 1, num_steps
        self.sizes = f"1 env x {num_steps} steps, mj_step(nstep={skip}) from Python"

    def one_timing(self) -> dict:
        return time_host(self.block, self.min_time)


def gymnasium_kwargs(task) -> dict:
    """seals' settings of gymnasium's v4 task (as tests/envs/mujoco_reference.py)."""
    kwargs = {"exclude_current_positions_from_observation": False}
    if task.gymnasium_id.split("-")[0] in ("Ant", "Hopper", "Humanoid", "Walker2d"):
        kwargs["terminate_when_unhealthy"] = False
    return kwargs


class SyncVectorEnvRunner:
    """gymnasium's SyncVectorEnv of `num_envs` v4 tasks, random `action_space.sample()`."""

    def __init__(self, task_id: str, num_envs: int, num_steps: int, min_time: float):
        import gymnasium as gym

        from envs.mujoco import HORIZON, TASKS
        from envs.mujoco.host_physics import quiet_mujoco_log

        task = TASKS[task_id]
        t = time.perf_counter()
        # v4 is the task seals changes: gymnasium's advice to upgrade to v5 is noise here.
        with quiet_mujoco_log(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            vec = gym.vector.SyncVectorEnv(
                [lambda: gym.make(task.gymnasium_id, max_episode_steps=HORIZON,
                                  **gymnasium_kwargs(task)) for _ in range(num_envs)])
            vec.reset(seed=0)
        vec.action_space.seed(0)
        self.make_s = time.perf_counter() - t

        def block():
            for _ in range(num_steps):
                vec.step(vec.action_space.sample())

        self.vec, self.block, self.min_time = vec, block, min_time
        self.num_envs, self.num_steps = num_envs, num_steps
        self.sizes = f"{_envs_text(num_envs)} x {num_steps} steps, SyncVectorEnv"

    def one_timing(self) -> dict:
        return time_host(self.block, self.min_time)

    def close(self) -> None:
        self.vec.close()


# -- one env count: build the runners, then alternate their timings ------------------------------

def _error_row(task_id: str, runner: str, num_envs: int, error: BaseException) -> dict:
    return dict(task=task_id, runner=runner, num_envs=num_envs, name=f"{task_id} {runner}",
                error=f"{type(error).__name__}: {error}",
                traceback=traceback.format_exc(limit=8), throughput_total=None)


def bench_env_count(task_id: str, backends: list[str], num_envs: int, sizes: Sizes,
                    repeats: int, references: bool, log: Callable[[str], None]) -> dict[str, dict]:
    """Rows `{runner: row}` for one task and env count; the plain loop (1 env) is measured here
    too, beside these runs. A runner that fails to build or run gets an error row."""
    num_steps = steps_per_call(sizes, num_envs)
    builders: dict[str, Callable[[], object]] = {
        backend: (lambda backend=backend: JitRunner(task_id, backend, num_envs, num_steps,
                                                    sizes.min_timed_s))
        for backend in backends}
    if references:
        builders["plain_loop"] = lambda: PlainLoopRunner(
            task_id, steps_per_call(sizes, 1), sizes.min_timed_s)
        builders["sync_vector_env"] = lambda: SyncVectorEnvRunner(
            task_id, num_envs, num_steps, sizes.min_timed_s)

    rows, runners, timings = {}, {}, {}
    for name, build in builders.items():
        log(f"{task_id}, {_envs_text(num_envs)}: make {name}")
        try:
            runners[name] = build()
            timings[name] = []
        except Exception as error:  # e.g. envs/mujoco/mjx_physics.py missing or failing
            rows[name] = _error_row(task_id, name, num_envs, error)
            log(f"  {name}: {rows[name]['error']}")
    for round_ in range(repeats):
        for name in list(runners):
            if round_ == 0 and isinstance(runners[name], JitRunner):
                log(f"{task_id}, {_envs_text(num_envs)}: compile and run {name}")
            try:
                timings[name].append(runners[name].one_timing())
            except Exception as error:
                rows[name] = _error_row(task_id, name, num_envs, error)
                log(f"  {name}: {rows[name]['error']}")
                _close(runners.pop(name))
    for name, runner in runners.items():
        rows[name] = _row(task_id, name, num_envs, runner, timings[name])
        _close(runner)
    return {name: rows[name] for name in builders}


def _close(runner) -> None:
    if isinstance(runner, SyncVectorEnvRunner):
        runner.close()


def _row(task_id: str, name: str, num_envs: int, runner, timings: list[dict]) -> dict:
    """The rounds' timings as one `measurement` row (best and median over rounds)."""
    times = [t["run_s_all"][0] for t in timings]
    first = timings[0]
    timing = dict(run_s_all=times, run_s=min(times), run_s_median=statistics.median(times),
                  first_call_s=first["first_call_s"],
                  calls_per_timing=[t["calls_per_timing"] for t in timings])
    if "compile_s" in first:  # jitted: the first round compiled, later ones reused it
        timing.update(trace_lower_s=first["trace_lower_s"], xla_compile_s=first["xla_compile_s"],
                      compile_s=first["compile_s"],
                      recompile_s=[t["compile_s"] for t in timings[1:]],
                      reset_s=runner.reset_s, host_threads=runner.threads)
    else:
        timing.update(compile_s=None, make_s=getattr(runner, "make_s", None))
    row = measurement(f"{task_id} {name}", runner.sizes, timing,
                      work_per_call=runner.num_envs * runner.num_steps, seeds=None,
                      unit="env steps/s")
    row.update(task=task_id, runner=name, num_envs=runner.num_envs, beside_env_count=num_envs,
               error=None)
    return row


# -- comparisons and report -----------------------------------------------------------------------

def _ratio(a: dict | None, b: dict | None, which: str) -> float | None:
    if not a or not b or a.get("error") or b.get("error"):
        return None
    return a[which] / b[which]


def compare(rows: dict[str, dict], quick: bool) -> dict[str, dict]:
    """Per (task, backend, env count): steps/s, the ratios to the references, the targets."""
    out = {}
    for key, row in rows.items():
        task_id, runner, num_envs = key.split("|")
        if runner in RUNNERS:
            continue
        plain = rows.get(f"{task_id}|plain_loop|{num_envs}")
        gym = rows.get(f"{task_id}|sync_vector_env|{num_envs}")
        c = dict(task=task_id, backend=runner, num_envs=int(num_envs),
                 steps_per_s=row.get("throughput_total"),
                 steps_per_s_median=row.get("throughput_total_median"),
                 plain_loop_steps_per_s=plain and plain.get("throughput_total"),
                 sync_vector_env_steps_per_s=gym and gym.get("throughput_total"),
                 vs_plain_loop=_ratio(row, plain, "throughput_total"),
                 vs_plain_loop_median=_ratio(row, plain, "throughput_total_median"),
                 vs_sync_vector_env=_ratio(row, gym, "throughput_total"),
                 vs_sync_vector_env_median=_ratio(row, gym, "throughput_total_median"),
                 targets=[])
        for ratio, at_envs, least in TARGETS:
            if runner == "mujoco" and int(num_envs) == at_envs:
                value = c[ratio]
                passed = None if quick or value is None else value >= least
                c["targets"].append(dict(ratio=ratio, at_least=least, passed=passed,
                                         skipped=quick))
        out[key] = c
    return out


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _fmt_targets(c: dict) -> str:
    texts = []
    for t in c["targets"]:
        name = "plain" if t["ratio"] == "vs_plain_loop" else "sync"
        verdict = ("skip" if t["skipped"] else "n/a" if t["passed"] is None
                   else "PASS" if t["passed"] else "FAIL")
        texts.append(f"{name} >= {t['at_least']:g}x {verdict}")
    return "; ".join(texts) or "-"


def format_table(rows: dict[str, dict], comparisons: dict[str, dict]) -> str:
    header = ("task", "envs", "backend", "compile s", "ours steps/s", "(median)",
              "plain loop", "SyncVectorEnv", "ours/plain", "ours/sync", "targets")
    lines = []
    for key, c in comparisons.items():
        row = rows[key]
        if row.get("error"):
            lines.append((c["task"], c["num_envs"], c["backend"], "-",
                          "error: " + row["error"][:60], "", "", "", "", "", "-"))
            continue
        lines.append((c["task"], c["num_envs"], c["backend"], f"{row['compile_s']:.2f}",
                      _fmt_rate(c["steps_per_s"]), _fmt_rate(c["steps_per_s_median"]),
                      _fmt_rate(c["plain_loop_steps_per_s"]),
                      _fmt_rate(c["sync_vector_env_steps_per_s"]),
                      _fmt_ratio(c["vs_plain_loop"]), _fmt_ratio(c["vs_sync_vector_env"]),
                      _fmt_targets(c)))
    text = [text_table(header, lines, left=(0, 2, 10))]
    errors = [r for r in rows.values() if r.get("error") and r["runner"] in RUNNERS]
    text += [f"{r['task']} {r['runner']} ({_envs_text(r['num_envs'])}): error {r['error']}"
             for r in errors]
    return "\n".join(text)


def main(flags: BenchFlags) -> dict:
    from envs.mujoco import BACKENDS, TASKS
    from jaxrl_align.runtime import outputs

    if flags.repeats < 1:
        raise ValueError(f"--repeats: expected a positive integer, got {flags.repeats}")
    tasks = _split(flags.tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"--tasks: unknown {unknown or 'none given'}; known: {', '.join(TASKS)}")
    backends = _split(flags.backends) if flags.backends is not None else (
        ["mujoco"] if flags.quick else list(BACKENDS))
    if any(b not in BACKENDS for b in backends):
        raise ValueError(f"--backends: expected some of {','.join(BACKENDS)}, got {backends}")
    env_counts = [int(n) for n in _split(flags.env_counts)]
    mjx_env_counts = {int(n) for n in _split(flags.mjx_env_counts)}
    if not env_counts or min(env_counts) < 1:
        raise ValueError(f"--env-counts: expected positive integers, got {flags.env_counts!r}")
    sizes = QUICK if flags.quick else FULL

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    log = lambda text: print(f"[{time.perf_counter() - t0:6.1f}s] {text}", flush=True)
    rows: dict[str, dict] = {}
    for task_id in tasks:
        for num_envs in env_counts:
            here = [b for b in backends if b != "mjx" or num_envs in mjx_env_counts]
            for name, row in bench_env_count(task_id, here, num_envs, sizes, flags.repeats,
                                             flags.references, log).items():
                rows[f"{task_id}|{name}|{num_envs}"] = row
    comparisons = compare(rows, flags.quick)

    record = dict(
        benchmark="mujoco", timestamp=started.isoformat(), quick=flags.quick,
        repeats=flags.repeats, tasks=tasks, backends=backends, env_counts=env_counts,
        mjx_env_counts=sorted(mjx_env_counts), sizes=asdict(sizes),
        cpu_count=os.cpu_count(), note=flags.note,
        targets=[dict(ratio=r, at_envs=n, at_least=v, backend="mujoco") for r, n, v in TARGETS],
        machine=machine_info(), versions=outputs.package_versions(),
        bench_wall_s=time.perf_counter() - t0,
        # Keys "task|runner|env count"; a plain_loop row (1 env) is the one measured beside
        # that env count's runs.
        measurements=rows, comparisons=comparisons)
    print(format_table(rows, comparisons))
    notes = [f"os.cpu_count() = {os.cpu_count()}"]
    if flags.quick:
        notes.append("--quick: tiny sizes, targets not checked")
    if flags.note:
        notes.append(flags.note)
    finish_report(record, flags.out, "; ".join(notes))
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(BenchFlags))


if __name__ == "__main__":
    cli()
