"""Against the machine: every algorithm's training program as a fraction of this machine's
dense-matmul peak, with the compile time of each of its programs.

    python -m experiments.bench.machine                 # every algorithm (~3 minutes, 2 cores)
    python -m experiments.bench.machine --quick         # 7 of them, short timings (~1.5 min)
    python -m experiments.bench.machine --algorithms ppo bc

1. Peak: the best float32 `jnp.dot` of square n×n matrices (2·n³ flops; n = 256 ... 2048, the
   best of `--repeats` + 2 timed calls each), measured in the same run, before and after the
   programs (the better one counts: other work on a shared machine lowers either); and, as a
   second reference, chains of the small products these programs are made of,
   (512, 64)·(64, 64) and (16, 64)·(64, 64), 1,000 dependent products in one `lax.scan`.
2. Every algorithm at 1 seed on its default environment, with its default config (as
   `experiments.train` builds it): the runner's own three programs (`runtime.runner._Programs`:
   `init`, the training `chunk`, `evaluate` of 10 episodes), each lowered and compiled apart
   from a cold in-process state (the persistent compilation cache is switched off here), with
   the runner's compiler options. The chunk is timed from the state `init` gives, at a chunk
   length of about `--target-s` seconds (at most the algorithm's own run length), the best of
   `--repeats` calls; the evaluation program is timed the same way.

How flops are counted. `compiled.cost_analysis()` visits each computation of the compiled
module once, so a `while` loop's body counts once whatever its trip count: the chunk's loop
over updates, and every `lax.scan` inside an update (rollout steps, epochs, minibatches, value
iteration) as well. `loop_corrected_cost` uses XLA's own cost analysis, but per loop: each while
body of the compiled module is made the entry computation of a copy of the module and analysed
alone, then multiplied by its trip count (`known_trip_count`, which XLA writes on every loop of
known length), nested loops recursively:

    total(C) = xla(C) + extra(C)
    extra(C) = Σ_{loops w in C} [(n_w − 1)·xla(body_w) + n_w·(extra(body_w) + xla(cond_w))]

The chunk's own loop over updates has a run-time length (one compiled chunk serves every chunk
length), so its trip count is the length the chunk was called with. A loop inside a
`lax.cond` branch is counted as if that branch ran (XLA takes the costlier branch); a loop of
run-time length inside another loop takes `INNER_TRIP_COUNTS` (DAgger's BC epochs over the
filled part of its dataset) or counts once and is reported (`unknown_loops`; the preference
algorithm's Poisson draw, scalar work). Checked in every full run (`counting_check` in the JSON)
on a tiny PPO update (2 envs × 4 steps, 2 epochs × 2 minibatches): against XLA's own count of
the same update with every `lax.scan` fully unrolled (`fully_unrolled`: no loops left, so XLA
counts every iteration), where the dot flops agree exactly and the rest differs by elementwise
ops only (the straight-line program recomputes shared elementwise producers in several fusions:
CartPole's sin and cos appear in many more of them); and a `lax.scan` of 2 updates against 1,
which this count doubles and XLA's own leaves unchanged.
`tests/experiments/test_bench_machine.py` checks the count on scans of products.

Achieved rate = corrected flops of one chunk call / its best time; fraction = that over the
square-matmul peak. XLA counts a multiply-add as 2 flops and an elementwise op as 1 per element;
transcendentals (exp, log, tanh) are counted apart and not in the flops. Per program the JSON
also has what the compiled HLO executes per call (loop trip counts multiplied in): kernels (the
operations XLA:CPU launches one by one: fusions, dots, copies, loops), dots and their share of
the flops, sorts, and host callbacks; these explain most low fractions (`reason`).
"""
from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jaxrl_align  # noqa: F401  (the package's XLA flags apply before JAX starts)
import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench.harness import finish_report, machine_info, text_table

ALGORITHMS = ("ppo", "bc", "gail", "airl", "mce_irl", "maxent_irl", "preferences", "dagger",
              "sqil", "density", "dqn", "sac")
# --quick: one of each kind of program (the PPO- and DQN-based ones are left out).
QUICK_ALGORITHMS = ("ppo", "bc", "mce_irl", "maxent_irl", "dagger", "dqn", "sac")
ENV_OF = {"sac": "Pendulum-v1", "mce_irl": "seals/CliffWorld7x4-v0",
          "maxent_irl": "seals/RiskyPath-v0"}  # the others: seals/CartPole-v0
COMPILE_LIMIT_S = 25.0  # issue 22: a cold chunk compile at one seed on this CPU
LOW_FRACTION = 0.1


@dataclass(frozen=True)
class BenchFlags:
    out: Path = Path("bench_results/machine.json")
    """where the JSON is written (atomically)"""
    quick: bool = False
    """shorter timings and peak sizes, no count check, and by default only QUICK_ALGORITHMS
    (compile times are the same)"""
    repeats: int = 3
    """timed calls of every program; the best is reported"""
    target_s: float = 1.0
    """about how long one timed chunk call runs (its length in updates is fitted to this)"""
    algorithms: tuple[str, ...] = ()
    """which algorithms to measure (default: all of them; with --quick, QUICK_ALGORITHMS)"""


# -- 1. the machine's peak ---------------------------------------------------------------------

def _best_time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return min(times)


def square_matmul_peak(sizes: tuple[int, ...], repeats: int) -> dict:
    """GFLOP/s of a float32 n×n by n×n `jnp.dot` for each n, and the best of them."""
    rows = {}
    for n in sizes:
        a, b = (jax.random.normal(k, (n, n), jnp.float32) for k in
                jax.random.split(jax.random.PRNGKey(n), 2))
        dot = jax.jit(jnp.dot).lower(a, b).compile()
        rows[str(n)] = 2 * n ** 3 / _best_time(dot, a, b, repeats=repeats) / 1e9
    return dict(gflops_by_size=rows, gflops=max(rows.values()))


def small_matmul_chain(rows: int, width: int, steps: int, repeats: int) -> dict:
    """GFLOP/s of `steps` dependent (rows, width)·(width, width) products in one `lax.scan`: the
    shape of a policy or critic layer on a minibatch (512 rows) or on a few environments."""
    x = jax.random.normal(jax.random.PRNGKey(0), (rows, width), jnp.float32)
    # Orthogonal, so the chain neither grows nor vanishes.
    w = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(1), (width, width)))[0]

    def chain(x, w):
        return jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=steps)[0]

    compiled = jax.jit(chain).lower(x, w).compile()
    return dict(shape=f"({rows}, {width})·({width}, {width})", steps=steps,
                gflops=steps * 2 * rows * width * width
                / _best_time(compiled, x, w, repeats=repeats) / 1e9)


# -- 2. flops with every loop's trip count ------------------------------------------------------

_NAME = r"%([\w.\-]+)"
_TRIVIAL = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all",
            "opt-barrier", "partition-id", "replica-id"}


def _opcode(ins) -> str:
    return str(ins.opcode).rsplit(".", 1)[-1].removeprefix("k").lower()


def _xla_cost(client, module) -> dict:
    from jax._src.lib import xla_client

    return dict(xla_client._xla.hlo_module_cost_analysis(client, module))


def _with_entry(text: str, name: str) -> str:
    """The module's text with computation `name` as its entry (the header's entry layout,
    which belongs to the old entry, dropped)."""
    lines = []
    for line in text.split("\n"):
        if line.startswith("HloModule "):
            line = "HloModule sub"
        elif line.startswith("ENTRY "):
            line = line[len("ENTRY "):]
        if line.startswith(f"%{name} "):
            line = "ENTRY " + line
        lines.append(line)
    return "\n".join(lines)


def _shape(text: str) -> tuple[int, ...]:
    """The dimensions of the first array shape in an instruction's text (after its name)."""
    m = re.search(r"= \(?\w+\[([\d,]*)\]", text)
    return tuple(int(d) for d in m.group(1).split(",") if d) if m else ()


def loop_corrected_cost(compiled, outer_trip_count: int | None = None,
                        inner_trip_count: float | None = None) -> dict:
    """XLA's cost analysis of `compiled` with every while body counted as often as it runs (see
    the module docstring). Loops of run-time length: `outer_trip_count` is the trip count of
    those that no other loop encloses (the chunk's loop over updates), `inner_trip_count` the
    mean trip count of the others (DAgger's epochs over a growing dataset); without one, such a
    loop counts once. Also what the program executes per call: kernels, dots (and their
    flops), sorts, host callbacks, loops."""
    import jaxlib._hlo as hlo

    text = compiled.as_text()
    module = hlo.hlo_module_from_text(text)
    client = jax.devices()[0].client
    comps = {c.name: c for c in module.computations()}
    entry = next(line.split()[1].lstrip("%") for line in text.split("\n")
                 if line.startswith("ENTRY "))

    # Edges of the call graph: (child, factor, kind); "control" children run their
    # instructions as kernels, "fused" ones (fusions) inside the kernel of their caller.
    edges: dict[str, list] = defaultdict(list)
    loops: dict[str, list] = defaultdict(list)  # computation -> whiles directly in it
    unknown = []
    for name, comp in comps.items():
        for ins in comp.instructions():
            op, s = _opcode(ins), ins.to_string()
            if op == "while":
                body = re.search(r"body=" + _NAME, s).group(1)
                cond = re.search(r"condition=" + _NAME, s).group(1)
                m = re.search(r'"known_trip_count":\{"n":"(\d+)"', s)
                op_name = re.search(r'op_name="([^"]*)"', s)
                loops[name].append((body, cond, int(m.group(1)) if m else None,
                                    op_name.group(1) if op_name else None))
            elif op == "conditional":
                m = re.search(r"branch_computations=\{([^}]*)\}", s)
                branches = (re.findall(_NAME, m.group(1)) if m else
                            re.findall(r"(?:true|false)_computation=" + _NAME, s))
                edges[name] += [(b, 1, "control") for b in branches]
            elif op in ("call", "async-start"):
                for child in re.findall(r"(?:to_apply|calls)=" + _NAME, s):
                    edges[name].append((child, 1, "control"))
            elif op == "fusion":
                edges[name].append((re.search(r"calls=" + _NAME, s).group(1), 1, "fused"))

    def direct_loops(c: str) -> list:
        """The whiles in `c` and in what it calls, short of other loops' bodies."""
        found = list(loops[c])
        for child, _, kind in edges[c]:
            if kind == "control":
                found += direct_loops(child)
        return found

    def trip_count(n, depth: int) -> float:
        if n is not None:
            return n
        given = outer_trip_count if depth == 0 else inner_trip_count
        return 1 if given is None else given

    costs: dict[str, dict] = {}

    def xla(c: str) -> dict:
        if c not in costs:
            costs[c] = _xla_cost(client, module if c == entry else
                                 hlo.hlo_module_from_text(_with_entry(text, c)))
        return costs[c]

    keys = ("flops", "transcendentals", "bytes accessed")
    loop_rows = []

    def extra(c: str, depth: int) -> dict:
        out = dict.fromkeys(keys, 0.0)
        for body, cond, n, op_name in direct_loops(c):
            if n is None:
                n = trip_count(None, depth)
                unknown.append(dict(op_name=op_name, depth=depth, counted=n))
            inner = extra(body, depth + 1)
            for k in keys:
                out[k] += ((n - 1) * xla(body).get(k, 0.0) + n * inner[k]
                           + n * xla(cond).get(k, 0.0))
            loop_rows.append(dict(op_name=op_name, trip_count=n, depth=depth, body=body,
                                  flops_per_iteration=xla(body).get("flops", 0.0)
                                  + inner["flops"]))
        return out

    raw = xla(entry)
    added = extra(entry, 0)
    corrected = {k: raw.get(k, 0.0) + added[k] for k in keys}

    # How often each computation runs per call, for the per-call counts below.
    runs: dict[str, float] = defaultdict(float)
    kind_of: dict[str, str] = {}

    def visit(c: str, times: float, kind: str, depth: int) -> None:
        runs[c] += times
        kind_of[c] = kind
        for child, factor, child_kind in edges[c]:
            visit(child, times * factor, "fused" if kind == "fused" else child_kind, depth)
        for body, cond, n, _ in loops[c]:
            n = trip_count(n, depth)
            visit(body, times * n, kind, depth + 1)
            visit(cond, times * (n + 1), kind, depth + 1)

    visit(entry, 1.0, "control", 0)

    def own_kernels(c: str) -> int:
        """Kernels of one run of `c`, its nested loops' iterations included."""
        count = sum(_opcode(i) not in _TRIVIAL for i in comps[c].instructions())
        count += sum(own_kernels(child) for child, _, kind in edges[c] if kind == "control")
        return count + sum(trip_count(n, 1) * own_kernels(b) for b, _, n, _ in loops[c])
    kernels = dots = dot_flops = sorts = callbacks = 0.0
    for c, times in runs.items():
        for ins in comps[c].instructions():
            op = _opcode(ins)
            if kind_of[c] == "control" and op not in _TRIVIAL:
                kernels += times
            if op == "dot":
                s = ins.to_string()
                lhs = _shape(ins.operands()[0].to_string())
                contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", s).group(1)
                k = np.prod([lhs[int(d)] for d in contracting.split(",") if d], dtype=float)
                dots += times
                dot_flops += times * 2 * float(np.prod(_shape(s), dtype=float)) * k
            elif op == "sort":
                sorts += times
            elif op == "custom-call" and "callback" in ins.to_string():
                callbacks += times
    return dict(
        flops=corrected["flops"], transcendentals=corrected["transcendentals"],
        bytes_accessed=corrected["bytes accessed"], xla_flops_loops_once=raw.get("flops", 0.0),
        kernels=kernels, dots=dots, dot_flops=dot_flops,
        dot_share=dot_flops / corrected["flops"] if corrected["flops"] else None,
        flops_per_kernel=corrected["flops"] / kernels if kernels else None,
        sorts=sorts, host_callbacks=callbacks, loop_count=len(loop_rows),
        max_trip_count=max((r["trip_count"] for r in loop_rows), default=0),
        loops=[{**row, "kernels_per_iteration": own_kernels(row.pop("body"))}
               for row in loop_rows],
        unknown_loops=unknown, hlo_instructions=sum(len(list(c.instructions()))
                                                    for c in comps.values()))


# -- 3. the algorithms ------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    env_id: str
    algo: Any
    env: Any
    env_params: Any
    data: Any = None


def make_case(name: str, demos: dict) -> Case:
    """`name` with its default config on its default environment, and the data
    `experiments.train` would give it (the CartPole controller's episodes for demonstrations,
    the controller itself as DAgger's expert, the soft-optimal expert's exact occupancy for the
    tabular IRL algorithms)."""
    import envs
    from envs.controllers import cartpole_controller
    from jaxrl_align.algorithms import bc, dagger, density, preference_comparisons, sqil
    from jaxrl_align.algorithms.adversarial import airl, gail
    from jaxrl_align.algorithms.irl import maxent_irl, mce_irl, occupancy_matching
    from jaxrl_align.rl import dqn, ppo, sac

    env_id = ENV_OF.get(name, "seals/CartPole-v0")
    env, params = envs.make(env_id)
    algo, data = {
        "ppo": lambda: (ppo.make(ppo.PPOConfig(), env, params), None),
        "bc": lambda: (bc.make(bc.BCConfig(), env, params), demos["transitions"]),
        "gail": lambda: (gail.make(gail.GAILConfig(), env, params), demos["transitions"]),
        "airl": lambda: (airl.make(airl.AIRLConfig(), env, params), demos["transitions"]),
        "mce_irl": lambda: (mce_irl.make(mce_irl.MCEIRLConfig(), env, params),
                            occupancy_matching.expert_data(params,
                                                           mce_irl.MCEIRLConfig().discount)),
        "maxent_irl": lambda: (maxent_irl.make(maxent_irl.MaxEntIRLConfig(), env, params),
                               occupancy_matching.expert_data(params, 1.0)),
        "preferences": lambda: (preference_comparisons.make(
            preference_comparisons.PreferenceComparisonsConfig(), env, params), None),
        "dagger": lambda: (dagger.make(dagger.DAggerConfig(), env, params,
                                       dagger.policy_expert(cartpole_controller)),
                           dagger.DAggerData()),
        "sqil": lambda: (sqil.make(dqn.DQNConfig(), env, params), demos["transitions"]),
        "density": lambda: (density.make(density.DensityConfig(), env, params),
                            demos["trajectories"]),
        "dqn": lambda: (dqn.make(dqn.DQNConfig(), env, params), None),
        "sac": lambda: (sac.make(sac.SACConfig(), env, params), None),
    }[name]()
    return Case(name, env_id, algo, env, params, data)


def controller_demos() -> dict:
    """10 episodes × 500 steps of the CartPole controller, as tests/conftest.py makes them."""
    from experiments.controller_demos import controller_episodes
    from jaxrl_align.data import demonstrations

    trajs = controller_episodes("seals/CartPole-v0", 10)
    return dict(trajectories=trajs, transitions=demonstrations.demo_transitions(trajs))


def _compile(jitted, args: tuple, options: dict) -> tuple[Any, float, float]:
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile(compiler_options=options)
    return compiled, t1 - t0, time.perf_counter() - t1


def _timed(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t)
    return min(times)


EVAL_EPISODES = 10


def dagger_bc_batches(case: Case, rounds: int) -> float:
    """The mean trip count of BC's loop over batches in DAgger's first `rounds` rounds: the
    filled part of the dataset (`bc.update(count=...)`) over the batch size."""
    from jaxrl_align.data.rollout import max_episode_steps

    config = case.algo.config
    per_round = config.num_envs * config.steps_per_env(max_episode_steps(case.env_params))
    return float(np.mean([min(config.rounds, r + 1) * per_round // config.bc.batch_size
                          for r in range(rounds)]))


# Loops whose length is known only at run time, inside the loop over updates.
INNER_TRIP_COUNTS = {"dagger": dagger_bc_batches}


def measure(case: Case, flags: BenchFlags) -> dict:
    """Compile the runner's init, chunk and evaluation programs of `case` at one seed, count
    their flops, time the chunk and the evaluation."""
    from jaxrl_align.data.rollout import max_episode_steps
    from jaxrl_align.runtime import runner
    from jaxrl_align.runtime.sharding import runs_mesh, to_global

    algo = case.algo
    progs = runner._Programs(algo, case.env, max_episode_steps(case.env_params), True,
                             runs_mesh(jax.devices()[:1]))
    keys = to_global(np.asarray(runner.seed_keys([0])), progs.runs)
    hp = to_global(runner.run_hyperparameters(algo, 1, None), progs.runs)
    data = to_global(case.data, progs.replicated)
    env_params = to_global(case.env_params, progs.replicated)
    length = lambda n: to_global(np.int32(n), progs.replicated)
    eval_keys = to_global(np.asarray(runner.seed_keys([1])), progs.runs)
    row: dict[str, Any] = dict(env=case.env_id, seeds=1)

    init, row["init_lower_s"], row["init_xla_s"] = _compile(
        progs.init, (keys, data, hp), runner.QUICK_COMPILE)
    states = jax.block_until_ready(init(keys, data, hp))
    chunk, row["chunk_lower_s"], row["chunk_xla_s"] = _compile(
        progs.chunk, (states, data, length(1)), {})
    evaluate, row["eval_lower_s"], row["eval_xla_s"] = _compile(
        progs.evaluate, (states, eval_keys, env_params, EVAL_EPISODES), runner.QUICK_COMPILE)
    for p in ("init", "chunk", "eval"):
        row[f"{p}_compile_s"] = row[f"{p}_lower_s"] + row[f"{p}_xla_s"]

    # A chunk of about target_s seconds, from init's state each time, within the run's length.
    run_length = runner.num_updates_of(runner.RunSettings(), algo)
    call = lambda n: chunk(states, data, length(n))
    jax.block_until_ready(call(1))
    n, t = 1, _timed(lambda: call(1), 2)
    while t < flags.target_s / 2 and n < run_length:  # fitted again on the longer call
        n = int(min(run_length, max(2 * n, round(n * flags.target_s / max(t, 1e-6)))))
        t = _timed(lambda: call(n), 1)
    row.update(run_length=run_length, chunk_updates=n,
               chunk_s=min(t, _timed(lambda: call(n), flags.repeats - 1)) if flags.repeats > 1
               else t)
    inner = INNER_TRIP_COUNTS[case.name](case, n) if case.name in INNER_TRIP_COUNTS else None
    cost = loop_corrected_cost(chunk, outer_trip_count=n, inner_trip_count=inner)
    row.update(chunk_cost=cost, flops_per_update=cost["flops"] / n,
               gflops=cost["flops"] / row["chunk_s"] / 1e9,
               inner_trip_count=inner,
               us_per_kernel=row["chunk_s"] / cost["kernels"] * 1e6 if cost["kernels"] else None)

    jax.block_until_ready(evaluate(states, eval_keys, env_params))
    row["eval_s"] = _timed(lambda: evaluate(states, eval_keys, env_params), flags.repeats)
    eval_cost = loop_corrected_cost(evaluate)
    row.update(eval_cost=eval_cost, eval_gflops=eval_cost["flops"] / row["eval_s"] / 1e9)
    row["reason"] = REASONS.get(case.name)
    row["diagnosis"] = diagnosis(row)
    return row


# -- 4. the counting checked -------------------------------------------------------------------

def _unrolled(jaxpr):
    """`jaxpr` with every `lax.scan`, nested ones included, fully unrolled."""
    from jax.extend import core

    def param(v):
        if isinstance(v, core.ClosedJaxpr):
            return core.ClosedJaxpr(_unrolled(v.jaxpr), v.consts)
        if isinstance(v, core.Jaxpr):
            return _unrolled(v)
        if isinstance(v, tuple) and any(isinstance(x, (core.ClosedJaxpr, core.Jaxpr)) for x in v):
            return tuple(param(x) for x in v)
        return v

    eqns = []
    for eqn in jaxpr.eqns:
        params = {k: param(v) for k, v in eqn.params.items()}
        if eqn.primitive.name == "scan":
            params["unroll"] = max(1, params["length"])
        eqns.append(eqn.replace(params=params))
    return jaxpr.replace(eqns=eqns)


def fully_unrolled(fn, *args):
    """`fn` jitted with every scan in it unrolled (for `args`' shapes): XLA's own count of it
    sees every iteration."""
    from jax.extend import core

    closed = jax.make_jaxpr(fn)(*args)
    jaxpr = _unrolled(closed.jaxpr)
    out_tree = jax.tree.structure(jax.eval_shape(fn, *args))

    def run(*args):
        return jax.tree.unflatten(out_tree, core.jaxpr_as_fun(core.ClosedJaxpr(
            jaxpr, closed.consts))(*jax.tree.leaves(args)))
    return jax.jit(run)


def check_counting() -> dict:
    """The count against XLA's on a fully unrolled tiny PPO update, and its linearity in the
    number of updates (module docstring)."""
    import envs
    from jaxrl_align.rl import ppo

    env, params = envs.make("seals/CartPole-v0")
    algo = ppo.make(ppo.PPOConfig(num_envs=2, num_steps=4, update_epochs=2, num_minibatches=2),
                    env, params)
    state = algo.init(jax.random.PRNGKey(0), None)
    update = lambda s: algo.update(s, None)
    scans = {}
    for k in (1, 2):
        fn = jax.jit(lambda s, k=k: jax.lax.scan(lambda s, _: update(s), s, None, length=k))
        scans[k] = loop_corrected_cost(fn.lower(state).compile())
    unrolled = loop_corrected_cost(fully_unrolled(update, state).lower(state).compile())
    assert unrolled["loop_count"] == 0, "the unrolled update still has loops"
    ours = scans[1]
    return dict(
        program="PPO update, seals/CartPole-v0, 2 envs x 4 steps, 2 epochs x 2 minibatches, 64-64",
        corrected_flops=ours["flops"], xla_flops_loops_once=ours["xla_flops_loops_once"],
        xla_flops_fully_unrolled=unrolled["flops"],
        corrected_over_unrolled=ours["flops"] / unrolled["flops"],
        dot_flops=ours["dot_flops"], dot_flops_fully_unrolled=unrolled["dot_flops"],
        transcendentals=ours["transcendentals"],
        transcendentals_fully_unrolled=unrolled["transcendentals"],
        corrected_flops_2_updates=scans[2]["flops"],
        corrected_ratio_2_to_1=scans[2]["flops"] / scans[1]["flops"],
        xla_ratio_2_to_1=scans[2]["xla_flops_loops_once"] / scans[1]["xla_flops_loops_once"])


# -- 5. why a program sits where it does -------------------------------------------------------

# Read from the compiled HLO (`loop_corrected_cost`'s loops, kernels and dot share) and from
# timings of parts of the programs; docs/performance.md ("Against the machine") has the figures.
_PPO = ("the 16 minibatch steps (512 rows, 64-64 tanh actor and critic) hold most of the flops "
        "and the time: their products have the small reference's shape, (512, 64)·(64, 64), "
        "but each step also launches ~200 elementwise kernels around them (tanh and its "
        "gradient, Adam, clipping); the 128-step rollout of 16 environments is many small "
        "kernels at a low rate")
REASONS: dict[str, str] = {
    "ppo": "PPO itself: " + _PPO + ". The critic's second pass over every next observation "
           "(for truncation bootstraps) is a few percent of the flops",
    "bc": "batches of 32 through a 32-32 network: each product is (32, 32)·(32, 32) or smaller, "
          "about as long as the kernel launch around it, and a gradient step is ~120 kernels "
          "(forward, backward, Adam); latency-bound by the kernel count, not by flops",
    "gail": "its PPO generator dominates (" + _PPO + "); the discriminator's 2 steps add little",
    "airl": "its PPO generator dominates (" + _PPO + "); AIRL's 16 discriminator steps over "
            "reward and potential nets make a fifth more kernels than PPO alone",
    "mce_irl": "CliffWorld 7x4 is 28 states x 4 actions: soft value iteration and the occupancy "
               "pass are short chains of (112, 28)·(28,) products, a whole update a few hundred "
               "dependent tiny ops; the loops run as one compiled function, so it is the latency "
               "of sequential small ops on one core. Many MDPs at once (vmap) is the way to use "
               "the machine (experiments.bench.mce_irl)",
    "maxent_irl": "RiskyPath is 4 states x 2 actions: its products are so small that XLA "
                  "computes them as elementwise ops and reductions (no dot survives), and an "
                  "update is microseconds of scalar-sized work; nothing here can approach a "
                  "matmul peak",
    "preferences": "its PPO agent dominates (" + _PPO + "); the 64-step query rollouts of 8 "
                   "environments, the reward ensemble's steps and the Gumbel draws (rolled "
                   "threefry loops over more than 1,024 values) add kernels, few flops",
    "dagger": "every round is BC (batches of 32, 32-32 network, as in bc) over the whole growing "
              "dataset, 4 epochs, and a 500-step rollout of 3 environments that runs the "
              "controller and the learner's policy at every step: the most kernels per flop of "
              "any program. BC's batch loop has a run-time trip count (the dataset's fill), "
              "batched under the runner's vmap, so every iteration also selects over the carry. "
              "Its chunk time is bimodal from process to process on this shared machine, and "
              "was the fast one in every process pinned to one core (docs/performance.md)",
    "sqil": "as dqn: an update is 4 single-environment steps and one gradient step on 32 "
            "samples of a 64-64 network; hundreds of kernels for little work, latency-bound",
    "density": "its PPO generator dominates (" + _PPO + "); the kernel density reward (2048 "
               "rollout points against 5 blocks of 1,024 demonstrations) is large, efficient "
               "products",
    "dqn": "an update is 4 steps of one environment and one gradient step on 32 samples of a "
           "64-64 network (SB3's defaults): hundreds of kernels for little work, "
           "latency-bound",
    "sac": "batches of 256 through 256-256 actor and twin critics: (256, 256)·(256, 256) "
           "products are nearly all the flops and run near the peak; the best fraction here",
}


def diagnosis(row: dict) -> str:
    """The counts behind a reason, in a line."""
    c, n = row["chunk_cost"], row["chunk_updates"]
    heaviest = max(c["loops"], key=lambda loop: loop["trip_count"] * loop["kernels_per_iteration"]
                   if loop["depth"] > 0 else 0, default=None)
    if not c["kernels"] or not c["flops"]:
        return "no kernels or no flops counted"
    text = (f"{_si(c['kernels'] / n)} kernels and {_si(c['flops'] / n)} flop per update "
            f"({_si(c['flops_per_kernel'])} flop and {row['us_per_kernel']:.2f} us a kernel), "
            f"{c['dot_share']:.0%} of the flops in dots")
    if heaviest is not None and heaviest["depth"] > 0:
        text += (f"; most kernels: a loop of {heaviest['trip_count']:,.0f} x "
                 f"{heaviest['kernels_per_iteration']:,.0f} ({heaviest['op_name']})")
    return text


# -- 6. the table ------------------------------------------------------------------------------

def _si(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def format_table(rows: dict[str, dict]) -> str:
    header = ("program", "env", "compile init/chunk/eval s", "updates", "chunk s", "flop/update",
              "GFLOP/s", "of peak", "of small", "kernels/update", "dot share", "eval GFLOP/s")
    lines = []
    for name, r in rows.items():
        c = r["chunk_cost"]
        lines.append((
            name, r["env"].removeprefix("seals/"),
            f"{r['init_compile_s']:.1f} / {r['chunk_compile_s']:.1f} / {r['eval_compile_s']:.1f}",
            str(r["chunk_updates"]), f"{r['chunk_s']:.3f}", _si(r["flops_per_update"]),
            f"{r['gflops']:.2f}", f"{r['fraction_of_peak']:.1%}",
            f"{r['fraction_of_small_peak']:.1%}",
            _si(c["kernels"] / r["chunk_updates"]),
            f"{c['dot_share']:.0%}" if c["dot_share"] is not None else "-",
            f"{r['eval_gflops']:.2f}"))
    return text_table(header, lines, left=(0, 1))


def measure_peak(flags: BenchFlags) -> dict:
    sizes = (256, 512, 1024) if flags.quick else (256, 512, 1024, 2048)
    return dict(square=square_matmul_peak(sizes, flags.repeats + 2),
                small_chains=[small_matmul_chain(rows, 64, 1000, flags.repeats + 2)
                              for rows in (512, 16)])


def main(flags: BenchFlags) -> dict:
    from jaxrl_align.runtime import outputs

    unknown = set(flags.algorithms) - set(ALGORITHMS)
    if unknown:
        raise ValueError(f"--algorithms: expected names from {ALGORITHMS}, got {sorted(unknown)}")
    if flags.repeats < 1:
        raise ValueError(f"--repeats: expected a positive integer, got {flags.repeats}")
    if flags.quick:
        flags = replace(flags, repeats=min(flags.repeats, 2), target_s=min(flags.target_s, 0.3))
    if not flags.algorithms:
        flags = replace(flags, algorithms=QUICK_ALGORITHMS if flags.quick else ALGORITHMS)
    # Real compilations only: a cache hit would report the time to read a file.
    jax.config.update("jax_enable_compilation_cache", False)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    log = lambda text: print(f"[{time.perf_counter() - t0:6.1f}s] {text}", flush=True)

    # The peak before and after the programs: other work on the machine lowers one of them.
    log("peak")
    peaks = [measure_peak(flags)]
    log(f"square matmul {peaks[0]['square']['gflops']:.1f} GFLOP/s")
    checks = None
    if not flags.quick:
        log("flop count check")
        checks = check_counting()
    demos = controller_demos() if set(flags.algorithms) & {"bc", "gail", "airl", "sqil",
                                                            "density"} else {}
    rows = {}
    for name in flags.algorithms:
        log(name)
        rows[name] = r = measure(make_case(name, demos), flags)
        log(f"{name}: compile {r['init_compile_s']:.1f} / {r['chunk_compile_s']:.1f} / "
            f"{r['eval_compile_s']:.1f} s, {r['gflops']:.2f} GFLOP/s")
    log("peak again")
    peaks.append(measure_peak(flags))
    peak = dict(square=max(p["square"]["gflops"] for p in peaks),
                small=max(p["small_chains"][0]["gflops"] for p in peaks))
    for r in rows.values():
        r["fraction_of_peak"] = r["gflops"] / peak["square"]
        r["fraction_of_small_peak"] = r["gflops"] / peak["small"]
        r["eval_fraction_of_peak"] = r["eval_gflops"] / peak["square"]
    record = dict(
        benchmark="machine", timestamp=started.isoformat(), quick=flags.quick,
        repeats=flags.repeats, target_s=flags.target_s,
        peak=dict(gflops=peak["square"], small_gflops=peak["small"], before=peaks[0],
                  after=peaks[1]),
        counting_check=checks, compile_limit_s=COMPILE_LIMIT_S,
        over_compile_limit=[k for k, r in rows.items() if r["chunk_compile_s"] > COMPILE_LIMIT_S],
        below_tenth_of_peak=[k for k, r in rows.items() if r["fraction_of_peak"] < LOW_FRACTION],
        machine=machine_info(), versions=outputs.package_versions(),
        persistent_cache_in_process=bool(jax.config.jax_enable_compilation_cache
                                          and jax.config.jax_compilation_cache_dir),
        bench_wall_s=time.perf_counter() - t0, programs=rows)
    print(format_table(rows))
    print(f"peak: {peak['square']:.1f} GFLOP/s, float32 square matmul (best n, before and "
          f"after); {peak['small']:.1f} GFLOP/s, a chain of (512, 64)·(64, 64) products "
          "('of small')")
    if checks:
        print(f"flop count check, {checks['program']}: corrected / fully unrolled "
              f"{checks['corrected_over_unrolled']:.3f} (dots "
              f"{checks['dot_flops'] / checks['dot_flops_fully_unrolled']:.3f}); 2 updates / "
              f"1: corrected {checks['corrected_ratio_2_to_1']:.3f}, XLA's own "
              f"{checks['xla_ratio_2_to_1']:.3f}")
    finish_report(record, flags.out, "--quick: short timings, no count check" if flags.quick
                  else "")
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(BenchFlags))


if __name__ == "__main__":
    cli()
