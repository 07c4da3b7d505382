"""MCE IRL benchmark: time per iteration on CliffWorld, and MDP-iterations per second over a
batch of random MDPs, compile time apart.

    python -m experiments.bench.mce_irl            # full run (a few minutes on a laptop CPU)
    python -m experiments.bench.mce_irl --quick    # smoke mode: short timings, targets unchecked

One iteration is one `update`: the reward net on the observation matrix, soft value iteration,
the forward occupancy pass, the gradient and an Adam step (and the stopping-rule bookkeeping).
Each timing is a `lax.scan` of many iterations inside one compiled call, divided by their
number (`harness.time_program`: compiled ahead of time, run once untimed, then the best of
`--repeats` timings). Stopping tolerances are 0, so no run freezes.

The 256 random MDPs run three ways, each one compiled call: as one `vmap` over all of them;
as `lax.map` over blocks of 4 vmapped MDPs (one block after another); and those blocks sharded
over every device (`shard_map`, half the MDPs on each of the 2 XLA:CPU devices this script
creates on a 2-core CPU, as the runner shards its runs). Under the plain `vmap` every step of
the soft value iteration and of the occupancy pass reads all 256 transition matrices (3.2 MB,
more than the L2 cache); a block's 50 kB stay in cache. XLA:CPU runs these small loops on one
thread per device, so only the sharded row uses the second core.

"MLP-256" is a reward net with one hidden layer of 256 ReLU units; one row also times two such
layers. The observations of `seals/CliffWorld{W}x{H}-v0` and of these random MDPs are one-hot,
so the first layer of a 100x20 net is 2000 x 256; its product with the identity is skipped
(`nn.mlp.MLP(identity_input=True)`, the first layer's output is its kernel).

Targets (on a 2-core CPU): one iteration with an MLP-256 reward on CliffWorld 7x4,
horizon 40, in at most 0.1 ms (imitation's PyTorch MCE IRL takes 4.1 to 4.6 ms there); and 256
random MDPs of that size in one call give at least as many MDP-iterations per second as one
(checked for each way of running the 256).
"""
from __future__ import annotations

import os

# One XLA:CPU device per core, set before JAX starts, so that the sharded row can use every
# core (XLA:CPU runs these small loops on one thread per device). A user's own count wins;
# the other rows run on the first device, as before.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_"
                               f"device_count={len(os.sched_getaffinity(0))}").strip()

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jax
import numpy as np

from experiments.bench.harness import (finish_report, machine_info, measurement, text_table,
                                        time_program)

IMITATION_MS_PER_ITERATION = (4.1, 4.6)  # PyTorch imitation, CliffWorld 7x4, H 40, MLP-256
TARGET_S_PER_ITERATION = 1e-4


@dataclass(frozen=True)
class BenchFlags:
    out: Path = Path("bench_results/mce_irl.json")
    """where the JSON is written (atomically)"""
    quick: bool = False
    """smoke mode: few iterations per timing, targets not checked"""
    repeats: int = 5
    """timed repetitions of every measurement; the best and the median are reported"""


@dataclass(frozen=True)
class Case:
    key: str
    width: int | None  # CliffWorld width, or None for random MDPs
    height: int | None
    horizon: int
    hidden: tuple[int, ...]
    num_mdps: int = 1
    iterations: int = 200  # per compiled call (full mode)
    block: int | None = None  # MDPs per vmapped block, blocks run in turn (`lax.map`)
    sharded: bool = False  # the MDPs split over every device (`shard_map`), blocks on each


RANDOM_STATES, RANDOM_ACTIONS = 28, 4  # the size of CliffWorld 7x4

CASES = (
    Case("cliff7x4_h40_mlp256", 7, 4, 40, (256,), iterations=2000),
    Case("cliff7x4_h40_linear", 7, 4, 40, (), iterations=2000),
    Case("cliff7x4_h40_mlp256x256", 7, 4, 40, (256, 256), iterations=500),
    Case("cliff7x4_mlp256", 7, 4, 9, (256,), iterations=5000),
    Case("cliff15x6_mlp256", 15, 6, 18, (256,), iterations=1000),
    Case("cliff100x20_mlp256", 100, 20, 110, (256,), iterations=3),
    Case("cliff100x20_linear", 100, 20, 110, (), iterations=3),
    Case("random_1_mdp_h40_mlp256", None, None, 40, (256,), iterations=2000),
    Case("random_256_mdps_h40_mlp256", None, None, 40, (256,), num_mdps=256, iterations=20),
    Case("random_256_mdps_h40_mlp256_blocks4", None, None, 40, (256,), num_mdps=256,
         iterations=20, block=4),
    Case("random_256_mdps_h40_mlp256_blocks4_sharded", None, None, 40, (256,), num_mdps=256,
         iterations=20, block=4, sharded=True),
)
BATCH_CASES = tuple(case.key for case in CASES if case.num_mdps > 1)


def problem(case: Case):
    """(algorithm, batched data [num_mdps, ...]) with exact expert demonstrations."""
    import envs
    from envs.cliff_world import cliff_world_params
    from jaxrl_align import tabular
    from jaxrl_align.algorithms.irl import mce_irl

    if case.width is None:
        keys = jax.random.split(jax.random.PRNGKey(0), case.num_mdps)
        models = jax.jit(jax.vmap(lambda k: envs.random_mdp_params(
            k, RANDOM_STATES, RANDOM_ACTIONS, 2, case.horizon, None)))(keys)
    else:
        model = cliff_world_params(width=case.width, height=case.height, horizon=case.horizon,
                                   use_xy_obs=False)
        models = jax.tree.map(lambda x: np.broadcast_to(x, (case.num_mdps,) + x.shape), model)

    @jax.jit
    @jax.vmap
    def expert_data(model):
        policy = tabular.soft_value_iteration(model, model.reward).policy
        visits = tabular.visits_from_occupancy(tabular.occupancy_measures(model, policy))
        return mce_irl.TabularIRLData(model, visits)

    one_model = jax.tree.map(lambda x: x[0], models)
    config = mce_irl.MCEIRLConfig(hidden=case.hidden, linf_eps=0.0, grad_l2_eps=0.0,
                                  max_iter=2**30)
    return mce_irl.make(config, None, one_model), expert_data(models)


def shard_over_devices(run, states, data):
    """`run` on each device's share of the MDPs, sharded as the runner shards its runs
    (`runtime.sharding`), with the inputs placed there once."""
    from jax.sharding import PartitionSpec as P

    from jaxrl_align.runtime import sharding

    mesh = sharding.runs_mesh()
    split, _ = sharding.shardings(mesh)
    sharded = sharding.per_device(run, mesh, P(sharding.AXIS), P(sharding.AXIS))
    place = lambda tree: jax.device_put(tree, split)
    return sharded, place(states), place(data)


def bench_case(case: Case, quick: bool, repeats: int) -> dict:
    algo, data = problem(case)
    iterations = max(1, case.iterations // 20) if quick else case.iterations
    keys = jax.random.split(jax.random.PRNGKey(0), case.num_mdps)

    def one_mdp(state, mdp_data):
        state, metrics = jax.lax.scan(lambda s, _: algo.update(s, mdp_data), state, None,
                                      length=iterations)
        # The last metrics stay an output, so that XLA cannot drop their computation.
        return state, jax.tree.map(lambda m: m[-1], metrics)

    if case.num_mdps == 1:  # the plain program a single run compiles, without a batch axis
        data = jax.tree.map(lambda x: x[0], data)
        run, states = one_mdp, jax.jit(algo.init)(keys[0], data)
    else:
        states = jax.jit(jax.vmap(algo.init))(keys, data)
        run = jax.vmap(one_mdp) if case.block is None else (
            lambda states, data: jax.lax.map(lambda args: one_mdp(*args), (states, data),
                                             batch_size=case.block))
        if case.sharded:
            run, states, data = shard_over_devices(run, states, data)
    timing = time_program(run, states, data, repeats=repeats, min_time=0.0 if quick else 0.5)
    size = (f"CliffWorld {case.width}x{case.height}" if case.width else
            f"random MDPs {RANDOM_STATES} states x {RANDOM_ACTIONS} actions")
    if case.block is not None:
        size += f", vmapped in blocks of {case.block}"
    if case.sharded:
        size += f", sharded over {jax.device_count()} {jax.default_backend()} devices"
    net = "x".join(map(str, case.hidden)) or "linear"
    row = measurement(
        "MCE IRL iterations", f"{size}, H {case.horizon}, reward {net}, {case.num_mdps} MDP(s) "
        f"x {iterations} iterations", timing, work_per_call=case.num_mdps * iterations,
        seeds=case.num_mdps, unit="MDP-iterations/s")
    row["s_per_iteration"] = timing["run_s"] / iterations
    row["s_per_iteration_median"] = timing["run_s_median"] / iterations
    return row


def check_targets(rows: dict) -> None:
    single = rows["cliff7x4_h40_mlp256"]
    single["target"] = f"<= {TARGET_S_PER_ITERATION * 1e3:g} ms/iteration"
    single["passed"] = single["s_per_iteration"] <= TARGET_S_PER_ITERATION
    alone = rows["random_1_mdp_h40_mlp256"]
    for key in BATCH_CASES:
        rows[key]["target"] = ">= MDP-iterations/s of 1 MDP"
        rows[key]["passed"] = rows[key]["throughput_total"] >= alone["throughput_total"]
    for row in rows.values():
        row.setdefault("target", "-")
        row.setdefault("passed", None)


def format_table(rows: dict) -> str:
    header = ("measurement", "compile s", "ms/iteration", "MDP-iter/s", "target", "pass")
    lines = [(f"{key}", f"{r['compile_s']:.2f}", f"{r['s_per_iteration'] * 1e3:.4g}",
              f"{r['throughput_total']:,.0f}", r["target"],
              {True: "PASS", False: "FAIL", None: "-"}[r["passed"]]) for key, r in rows.items()]
    return text_table(header, lines, left=(0, 4))


def main(flags: BenchFlags) -> dict:
    from jaxrl_align.runtime import outputs

    if flags.repeats < 1:
        raise ValueError(f"--repeats: expected a positive integer, got {flags.repeats}")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    rows = {}
    for case in CASES:
        print(f"[{time.perf_counter() - t0:6.1f}s] {case.key} ...", flush=True)
        rows[case.key] = bench_case(case, flags.quick, flags.repeats)
    check_targets(rows)
    if flags.quick:  # a handful of iterations measures dispatch overhead, not speed
        for row in rows.values():
            row["passed"] = None
    record = dict(benchmark="mce_irl", timestamp=started.isoformat(), quick=flags.quick,
                  repeats=flags.repeats, imitation_ms_per_iteration=IMITATION_MS_PER_ITERATION,
                  machine=machine_info(), versions=outputs.package_versions(),
                  bench_wall_s=time.perf_counter() - t0, measurements=rows)
    print(format_table(rows))
    finish_report(record, flags.out, f"imitation (PyTorch): {IMITATION_MS_PER_ITERATION[0]}-"
                  f"{IMITATION_MS_PER_ITERATION[1]} ms/iteration on cliff7x4_h40_mlp256")
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(BenchFlags))


if __name__ == "__main__":
    cli()
