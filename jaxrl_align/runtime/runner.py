"""One runner for every algorithm: runs (seeds × sweep configurations) as one array axis,
sharded over every device, the scan of `update` in chunks.

Inside a chunk everything is one compiled program. Between chunks the host shows progress,
evaluates the current policies of every run, reports runs that diverged, writes metrics and
saves an orbax checkpoint from which `resume=True` continues bit for bit.

Layout of the runs axis: R runs (configuration-major for sweeps, see `runtime.sweep`) are padded
to `num_slices × slice_size` runs, `slice_size` a multiple of the device count; each slice is one
call of the same compiled programs with its runs sharded over a 1-D `Mesh` of all devices
(`runtime.sharding`, shared data replicated). Padding runs repeat the last run and are dropped
from every result. Several slices bound memory: only one slice's intermediate values are live
in a program at a time.
"""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P
from tqdm import tqdm  # text bars everywhere (tqdm.auto wants ipywidgets in notebooks)

from jaxrl_align import evaluation
from jaxrl_align.algorithm import Algorithm
from jaxrl_align.data.files import write_atomic
from jaxrl_align.data.rollout import max_episode_steps, rollout_episodes
from jaxrl_align.hparams import as_arrays, config_to_dict, paths, with_values
from jaxrl_align.runtime import outputs, plots
from jaxrl_align.runtime.sharding import (AXIS, per_device, runs_layout, runs_mesh, shardings,
                                          to_global, to_host)


@dataclass(frozen=True)
class RunSettings:
    """How to run an algorithm: seeds, length, chunks, evaluation, layout, checkpoints. The
    command line embeds these as its flags (`--seeds`, `--num-chunks`, ...)."""

    seeds: int = 8
    """number of seeds, trained together in one program"""
    first_seed: int = 0
    """seeds are first_seed, first_seed+1, ..."""
    num_updates: int | None = None
    """updates per run; None: the algorithm's own length (`config.num_updates`: PPO and the
    algorithms around it, total_timesteps / steps per update; BC, epochs; MCE and MaxEnt IRL,
    max_iter)"""
    num_chunks: int = 20
    """pieces the training scan is cut into; progress, metrics and evaluation happen between them"""
    eval_episodes: int = 10
    """evaluation episodes per run at every chunk boundary (the learning curve)"""
    final_eval_episodes: int = 50
    """evaluation episodes per run for the final evaluation in results.json"""
    deterministic_eval: bool = True
    """evaluate the policies' modes (False: sample their actions)"""
    progress: bool = True
    """show a progress bar"""
    slice_size: int | None = None
    """runs per program call (rounded up to a multiple of the device count); None: all at once.
    Smaller slices bound memory for thousands of runs; results agree to float32 rounding"""
    checkpoint_every: int = 1
    """orbax checkpoint (in <out>/checkpoints) every this many chunks and after the last; 0: never"""
    keep_checkpoints: int = 2
    """how many of the latest checkpoints to keep"""
    resume: bool = False
    """continue a stopped run from the latest intact checkpoint in the output folder (bit for
    bit); a fresh start if there is none"""
    overwrite: bool = False
    """start afresh in an output folder that holds an earlier run, deleting its checkpoints,
    results.json and metrics.jsonl (nothing else)"""
    tensorboard: bool = False
    """also write per-chunk scalars (means over runs) for TensorBoard to <out>/tensorboard"""
    wandb: bool = False
    """also log per-chunk scalars (means over runs) to Weights & Biases (the `wandb` extra;
    WANDB_MODE=offline logs to <out>/wandb without a network)"""

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def validate(self) -> None:
        """Reject bad settings with one line each, before anything is compiled or written."""
        if int(self.seeds) <= 0:
            raise ValueError(f"seeds: expected a positive number of seeds, got {self.seeds}")
        if int(self.first_seed) < 0:
            raise ValueError(f"first_seed: expected a non-negative integer, got {self.first_seed}")
        for name in ("num_chunks", "eval_episodes", "final_eval_episodes", "keep_checkpoints"):
            value = getattr(self, name)
            if int(value) <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {value}")
        for name in ("num_updates", "slice_size"):
            value = getattr(self, name)
            if value is not None and int(value) <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {value}")
        if int(self.checkpoint_every) < 0:
            raise ValueError(f"checkpoint_every: expected 0 (never) or a positive integer, "
                             f"got {self.checkpoint_every}")
        if self.resume and int(self.checkpoint_every) == 0:
            raise ValueError("resume: needs checkpoints to resume from; expected "
                             "--checkpoint-every of 1 or more, got 0")
        if self.resume and self.overwrite:
            raise ValueError("overwrite: deletes the checkpoints --resume would continue from; "
                             "expected one of the two, got both")
        if self.wandb:
            import importlib.util

            if importlib.util.find_spec("wandb") is None:
                raise ValueError("wandb: expected the wandb package (pip install "
                                 "'jaxrl_align[wandb]'), found it not installed")


def num_updates_of(settings: RunSettings, algo: Algorithm) -> int:
    """`settings.num_updates`, or the algorithm's own run length."""
    if settings.num_updates is not None:
        return int(settings.num_updates)
    default = getattr(algo.config, "num_updates", None)
    if default is None:
        raise ValueError(f"num_updates: {algo.name} has no run length of its own; expected a "
                         "positive integer, got None")
    return int(default)


@dataclass
class RunResult:
    state: Any  # the algorithm state, batched over runs (padding dropped)
    seeds: list[int]  # the seed of every run (repeated across sweep configurations)
    chunk_updates: np.ndarray  # [chunks] updates done at the end of each chunk
    chunk_env_steps: np.ndarray  # [chunks] environment steps per run at the end of each chunk
    chunk_metrics: dict[str, np.ndarray]  # name -> [runs, chunks], mean over the chunk
    eval_returns: np.ndarray  # [runs, chunks] mean evaluation return at each chunk end
    final_returns: np.ndarray  # [runs, final_eval_episodes]
    summary: dict
    compile_s: float
    run_s: float
    env_steps: int  # per run, at the end (init's included)
    files: dict[str, Path] = field(default_factory=dict)
    run_seeds: np.ndarray | None = None  # [runs]
    run_config: np.ndarray | None = None  # [runs] sweep configuration index (all 0 without one)
    configs: list[dict] | None = None  # sweep configurations (None without a sweep)
    diverged: list[dict] = field(default_factory=list)  # runs that became non-finite
    devices: int = 1
    processes: int = 1
    slice_size: int = 0
    num_slices: int = 1
    resumed_from: int | None = None  # chunks already done in the checkpoint resumed from

    def best_run(self) -> int:
        """Index of the run with the highest mean final return."""
        return int(self.final_returns.mean(axis=1).argmax())

    def run_state(self, run: int):
        """The state of one run."""
        return jax.tree.map(lambda x: x[run], self.state)


EVAL_STREAM = 0x5EED
MAX_FINAL_EVAL_CALLS = 10
# `init` runs once and `evaluate` a few times per run, so their compile time outweighs their
# run time: XLA's backend optimisation level 1 compiles them in about half the time. The training
# chunk keeps the full optimisation (docs/performance.md).
QUICK_COMPILE = {"xla_backend_optimization_level": 1}


def chunk_bounds(num_updates: int, num_chunks: int) -> np.ndarray:
    """Update counts at the end of each chunk: `num_chunks` near-equal pieces of the run. Chunks
    may differ in length by one; the chunk program takes its length as an argument, so they all
    share one compilation."""
    num_chunks = min(num_chunks, num_updates)
    return np.round(np.linspace(0, num_updates, num_chunks + 1)[1:]).astype(int)


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def _all_finite(tree) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    if not leaves:
        return jnp.bool_(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


class _Programs:
    """The jitted programs of one (algorithm, env, mesh), and their compiled executables keyed by
    input layout: a second run of the same algorithm with other seeds or sweep values reuses
    them without tracing or compiling anything."""

    def __init__(self, algo: Algorithm, env, max_steps: int, deterministic: bool, mesh):
        self.runs, self.replicated = shardings(mesh)
        self.executables: dict = {}

        def init(keys, data, hparams):
            return jax.vmap(algo.init, in_axes=(0, None, 0))(keys, data, hparams)

        def run_chunk(states, data, length):
            """`length` updates of every run; the mean of each metric over the chunk, whether the
            run's state and metrics are still finite, and its environment steps."""
            def one_run(state):
                metric_shapes = jax.eval_shape(algo.update, state, data)[1]
                sums = jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metric_shapes)

                def body(_, carry):
                    state, sums = carry
                    state, metrics = algo.update(state, data)
                    return state, jax.tree.map(jnp.add, sums, metrics)

                state, sums = jax.lax.fori_loop(0, length, body, (state, sums))
                means = jax.tree.map(lambda x: x / length, sums)
                finite = _all_finite(state) & _all_finite(means)
                return state, means, finite, jnp.asarray(state.env_steps, jnp.int32)
            return jax.vmap(one_run)(states)

        def evaluate(states, keys, env_params, num_episodes):
            def one_run(state, key):
                policy = lambda k, obs: algo.act(state, k, obs, deterministic)
                return rollout_episodes(env, env_params, policy, key, num_episodes,
                                        max_steps).returns
            return per_device(lambda s, k, p: jax.vmap(one_run)(s, k), mesh, P(AXIS), P(AXIS),
                              P())(states, keys, env_params)

        # CPU cannot reuse donated buffers and would only warn.
        donate = () if jax.default_backend() == "cpu" else (0,)
        self.init = jax.jit(per_device(init, mesh, P(AXIS), P(), P(AXIS)),
                            out_shardings=self.runs)
        self.chunk = jax.jit(per_device(run_chunk, mesh, P(AXIS), P(), P()),
                             donate_argnums=donate, out_shardings=self.runs)
        self.evaluate = jax.jit(evaluate, static_argnums=3, out_shardings=self.runs)

    def compiled(self, name: str, *args, static=()):
        leaves, treedef = jax.tree.flatten(args)
        key = (name, treedef, static, tuple(
            (x.shape, str(x.dtype), getattr(x, "sharding", None)) for x in leaves))
        if key not in self.executables:
            fn = getattr(self, name)
            options = {} if name == "chunk" else QUICK_COMPILE
            self.executables[key] = fn.lower(*args, *static).compile(compiler_options=options)
        return self.executables[key]


_PROGRAM_CACHE: dict = {}


def _programs(algo, env, max_steps, deterministic, mesh) -> _Programs:
    key = (algo, env, max_steps, deterministic, mesh)
    try:
        hash(key)
    except TypeError:  # an unhashable config: no reuse across runs
        return _Programs(algo, env, max_steps, deterministic, mesh)
    if key not in _PROGRAM_CACHE:
        _PROGRAM_CACHE[key] = _Programs(algo, env, max_steps, deterministic, mesh)
    return _PROGRAM_CACHE[key]


def run_hyperparameters(algo: Algorithm, num_runs: int, values: dict | None):
    """The hyperparameter pytree of every run: the config's own values broadcast over the runs,
    with `values` (dotted path -> one value per run) replacing some leaves."""
    base = jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (num_runs,)),
                        as_arrays(algo.config))
    if not values:
        return base
    for name, v in values.items():
        if np.shape(v) != (num_runs,):
            raise ValueError(f"hparams[{name!r}]: expected one value per run ({num_runs}), "
                             f"got shape {np.shape(v)}")
    return with_values(base, {k: np.asarray(v) for k, v in values.items()})


def digest(tree) -> str:
    """SHA-256 of a pytree of arrays: its structure, and every leaf's dtype, shape and bytes."""
    h = hashlib.sha256(str(jax.tree.structure(tree)).encode())
    for leaf in jax.tree.leaves(tree):
        leaf = np.asarray(leaf)
        h.update(f"{leaf.dtype}{leaf.shape}".encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()


def _differences(ours, theirs, prefix: str = "") -> list[str]:
    """Dotted names of the entries where two fingerprints differ."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = []
        for key in sorted(set(ours) | set(theirs)):
            out += _differences(ours.get(key), theirs.get(key), f"{prefix}{key}.")
        return out
    return [] if ours == theirs else [prefix.rstrip(".")]


def earlier_run(out_dir: Path) -> list[str]:
    """What an earlier run left in `out_dir`: checkpoints, results.json, metrics.jsonl."""
    from jaxrl_align.runtime.checkpoints import completed_steps

    found = [name for name in ("results.json", "metrics.jsonl") if (out_dir / name).is_file()]
    steps = completed_steps(out_dir / "checkpoints")
    if steps:
        found.append(f"checkpoints up to chunk {steps[-1]}")
    return found


def prepare_output_folder(out_dir: Path, settings: RunSettings) -> None:
    """Refuse a fresh run into a folder that holds an earlier run (unless `resume`, or
    `overwrite`, which deletes that run's checkpoints, results.json and metrics.jsonl)."""
    from jaxrl_align.runtime.checkpoints import clear_steps

    found = earlier_run(out_dir)
    if not found or settings.resume:
        return
    if not settings.overwrite:
        raise outputs.OutputError(
            f"--out: {out_dir} holds an earlier run ({', '.join(found)}); pass --resume to "
            "continue it or --overwrite to start afresh")
    clear_steps(out_dir / "checkpoints")
    for name in ("results.json", "metrics.jsonl"):
        (out_dir / name).unlink(missing_ok=True)


def run(algo: Algorithm, env, env_params, settings: RunSettings, data=None, *,
        env_id: str | None = None, reference_returns: tuple[float, float] | None = None,
        out_dir: Path | None = None, extra_config: dict | None = None,
        hparams: dict | None = None, sweep=None, devices: Sequence | None = None,
        data_files: dict | None = None) -> RunResult:
    """Train `algo` on every run in one program per chunk, evaluate, and (with `out_dir`) write
    config.json, results.json, metrics.jsonl, learning_curve.png and checkpoints/.

    Runs are the seeds, or with `sweep` (a `runtime.sweep.Sweep`) every configuration × every
    seed. `hparams` alternatively gives each seed its own hyperparameters: dotted path ("lr",
    "ppo.ent_coef") -> one value per seed. Values are traced, so changing them never recompiles.
    `devices` defaults to every device of every process (`jax.devices()`). `data_files`
    (name -> {"path", "sha256"}) records where the data came from, in config.json and in the
    fingerprint a resume is checked against.

    An output folder is checked before anything is compiled, and owned by this run until it
    returns (`outputs.OutputLock`): a second run into it is refused, and so is a fresh run into
    a folder that holds an earlier run, unless `resume` or `overwrite`.
    """
    settings.validate()
    num_updates = num_updates_of(settings, algo)
    seeds = settings.seed_list
    if sweep is not None and hparams is not None:
        raise ValueError("run: pass either hparams (one value per seed) or sweep, not both")
    configs = None
    if sweep is not None:
        run_seeds, run_config, values = sweep.runs(seeds)
        configs = sweep.config_dicts()
    else:
        run_seeds, run_config = np.asarray(seeds, np.int64), np.zeros(len(seeds), np.int64)
        values = hparams
    unknown = [name for name in (values or {}) if name not in paths(algo.config)]
    if unknown:
        raise ValueError(f"hyperparameters {unknown} cannot be swept for {algo.name}; the "
                         f"sweepable ones are {paths(algo.config)}")
    num_runs = len(run_seeds)
    run_hparams = run_hyperparameters(algo, num_runs, values)
    primary = jax.process_index() == 0
    lock = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        outputs.check_output_folder(out_dir)
        if primary:
            lock = outputs.OutputLock(out_dir)
    try:
        if out_dir is not None and primary:
            prepare_output_folder(out_dir, settings)
        _barrier("jaxrl_align_output_folder")
        return _run(algo, env, env_params, settings, data, env_id, reference_returns, out_dir,
                    extra_config, devices, data_files, num_updates, seeds, configs, run_seeds,
                    run_config, values, run_hparams)
    finally:
        if lock is not None:
            lock.release()


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _run(algo, env, env_params, settings, data, env_id, reference_returns, out_dir, extra_config,
         devices, data_files, num_updates, seeds, configs, run_seeds, run_config, values,
         run_hparams) -> RunResult:
    num_runs = len(run_seeds)
    bounds = chunk_bounds(num_updates, settings.num_chunks)
    num_chunks = len(bounds)
    max_steps = max_episode_steps(env_params)

    devices = list(devices) if devices is not None else jax.devices()
    mesh = runs_mesh(devices)
    slice_size, num_slices = runs_layout(num_runs, len(devices), settings.slice_size)
    padded = np.concatenate([np.arange(num_runs),
                             np.full(slice_size * num_slices - num_runs, num_runs - 1)])
    slices = [padded[i * slice_size:(i + 1) * slice_size] for i in range(num_slices)]
    primary = jax.process_index() == 0

    # Run i trains from PRNGKey(seed_i) exactly, so seed s of a batched run equals a single run
    # of `algorithm.train(algo, PRNGKey(s), ...)`; evaluation draws from a separate stream.
    init_keys = np.asarray(seed_keys(run_seeds.tolist()))
    # The final evaluation is `final_calls` calls of the per-chunk evaluation program: one
    # evaluation program to compile, not two. Only past MAX_FINAL_EVAL_CALLS calls does it get a
    # program of its own.
    final_calls = -(-settings.final_eval_episodes // settings.eval_episodes)
    final_episodes = settings.eval_episodes
    if final_calls > MAX_FINAL_EVAL_CALLS:
        final_calls, final_episodes = 1, settings.final_eval_episodes
    eval_keys = np.asarray(jax.vmap(lambda k: jax.random.split(
        jax.random.fold_in(k, EVAL_STREAM), num_chunks + 1 + final_calls))(jnp.asarray(init_keys)))

    progs = _programs(algo, env, max_steps, settings.deterministic_eval, mesh)
    data_g = to_global(data, progs.replicated)
    env_params_g = to_global(env_params, progs.replicated)
    keys_g = [to_global(init_keys[sl], progs.runs) for sl in slices]
    hp_g = [to_global(jax.tree.map(lambda v: v[sl], run_hparams), progs.runs) for sl in slices]
    length_g = lambda n: to_global(np.int32(n), progs.replicated)

    abstract = jax.eval_shape(progs.init, keys_g[0], data_g, hp_g[0])
    abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=progs.runs),
                            abstract)

    # Everything that shapes the result; a resume must match it exactly.
    fingerprint = outputs.finite_json({
        "algo": algo.name, "algo_config": config_to_dict(algo.config),
        "run": {k: v for k, v in config_to_dict(settings).items()
                if k not in ("progress", "resume", "overwrite", "checkpoint_every",
                             "keep_checkpoints", "tensorboard", "wandb")},
        "num_updates": num_updates, "run_seeds": run_seeds.tolist(),
        "hparams": None if values is None else {k: np.asarray(v).tolist()
                                                for k, v in values.items()},
        "layout": [slice_size, num_slices], "env": env_id, "env_params": digest(env_params),
        "data": digest(data),
        "data_files": {name: f.get("sha256") for name, f in (data_files or {}).items()} or None})

    ckpt = None
    start_chunk, resumed_from = 0, None
    metric_log: list[dict[str, np.ndarray]] = []
    eval_log: list[np.ndarray] = []
    env_steps_log: list[int] = []
    lines: list[str] = []
    diverged: dict[int, dict] = {}
    states = None
    if out_dir is not None and settings.checkpoint_every > 0:
        from jaxrl_align.runtime.checkpoints import ResumeError, RunCheckpoints

        ckpt = RunCheckpoints(out_dir / "checkpoints", settings.keep_checkpoints)

        def same_run(meta):
            differ = _differences(fingerprint, meta.get("fingerprint"))
            if differ:
                ckpt.close()
                raise ResumeError(
                    f"--resume: the checkpoint in {ckpt.directory} belongs to a different "
                    f"run: {', '.join(differ[:4])}{' ...' if len(differ) > 4 else ''} differ "
                    "(algorithm, settings, seeds, sweep, layout, environment or data)")

        if settings.resume:
            step, meta, restored, skipped = ckpt.restore_latest([abstract] * num_slices,
                                                                same_run)
            if step is None and skipped:
                ckpt.close()
                raise ResumeError(f"--resume: no intact checkpoint in {ckpt.directory} "
                                  f"({'; '.join(skipped)})")
            for line in skipped:
                if primary:
                    print(f"--resume: skipped {line}", file=sys.stderr)
            if step is not None:
                states = restored
                start_chunk = resumed_from = int(meta["chunk"])
                metric_log = [{k: np.asarray(v, np.float32) for k, v in m.items()}
                              for m in meta["metric_log"]]
                eval_log = [np.asarray(e, np.float32) for e in meta["eval_log"]]
                env_steps_log = [int(e) for e in meta["env_steps_log"]]
                lines = list(meta["lines"])
                diverged = {int(d["run"]): d for d in meta["diverged"]}

    # Compiled after the checks above, so a refused resume costs no compilation (and a resumed
    # run needs no `init`).
    t0 = time.perf_counter()
    init_fn = None if states is not None else progs.compiled("init", keys_g[0], data_g, hp_g[0])
    chunk_fn = progs.compiled("chunk", abstract, data_g, length_g(bounds[0]))
    eval_chunk_fn = progs.compiled("evaluate", abstract,
                                   to_global(eval_keys[slices[0], 0], progs.runs), env_params_g,
                                   static=(settings.eval_episodes,))
    compile_s = time.perf_counter() - t0
    if states is None:
        states = [init_fn(k, data_g, h) for k, h in zip(keys_g, hp_g)]

    metrics_file = Path(out_dir) / "metrics.jsonl" if out_dir is not None else None
    from jaxrl_align.runtime.logs import open_scalars

    scalar_log = open_scalars(out_dir if primary else None, tensorboard=settings.tensorboard,
                              wandb=settings.wandb, config=fingerprint)
    t0 = time.perf_counter()
    bar = tqdm(range(start_chunk, num_chunks), total=num_chunks, initial=start_chunk,
               desc=f"{algo.name} x{num_runs} runs", unit="chunk",
               disable=not (settings.progress and primary), dynamic_ncols=True)
    gather = lambda parts: np.concatenate([to_host(p) for p in parts])[:num_runs]
    for c in bar:
        length = bounds[c] - (bounds[c - 1] if c else 0)
        outs = [chunk_fn(s, data_g, length_g(length)) for s in states]
        states = [o[0] for o in outs]
        chunk_means = {k: gather([o[1][k] for o in outs]) for k in outs[0][1]}
        finite = gather([o[2] for o in outs])
        env_steps = int(gather([o[3] for o in outs]).max())
        eval_returns = gather([eval_chunk_fn(s, to_global(eval_keys[sl, c + 1], progs.runs),
                                             env_params_g) for s, sl in zip(states, slices)])
        eval_returns = eval_returns.mean(axis=1)
        updates = int(bounds[c])
        for i in np.flatnonzero(~finite):
            if int(i) not in diverged:
                diverged[int(i)] = report = {
                    "run": int(i), "seed": int(run_seeds[i]), "config": int(run_config[i]),
                    "hparams": None if configs is None else configs[run_config[i]],
                    "chunk": c, "updates": updates}
                if primary:
                    bar.write(f"diverged: run {i} (seed {report['seed']}"
                              + ("" if configs is None else f", config {report['hparams']}")
                              + f") has non-finite loss or parameters in chunk {c}")
        metric_log.append(chunk_means)
        eval_log.append(eval_returns)
        env_steps_log.append(env_steps)
        ok = np.ones(num_runs, bool)
        ok[list(diverged)] = False
        mean_ok = lambda v: float(v[ok].mean()) if ok.any() else float("nan")
        shown = {"eval_return": mean_ok(eval_returns)}
        shown.update({k: mean_ok(v) for k, v in list(chunk_means.items())[:3]})
        if diverged:
            shown["diverged"] = len(diverged)
        bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()})
        lines.append(outputs.json_text({
            "chunk": c, "updates": updates, "env_steps": env_steps,
            "eval_return": eval_returns.tolist(),
            **{k: v.tolist() for k, v in chunk_means.items()},
            "diverged_runs": sorted(diverged)}))
        scalar_log.scalars(env_steps or updates,
                           {f"mean/{k}": mean_ok(v) for k, v in
                            {"eval_return": eval_returns, **chunk_means}.items()})
        if metrics_file is not None and primary:  # rewritten whole: never half a line
            write_atomic(metrics_file, lambda f: f.write(("\n".join(lines) + "\n").encode()))
        if ckpt is not None and ((c + 1) % settings.checkpoint_every == 0 or c + 1 == num_chunks):
            ckpt.save(c + 1, states, {
                "chunk": c + 1, "fingerprint": fingerprint, "lines": lines,
                "metric_log": [{k: v.tolist() for k, v in m.items()} for m in metric_log],
                "eval_log": [e.tolist() for e in eval_log], "env_steps_log": env_steps_log,
                "diverged": list(diverged.values())})
    final_keys = lambda sl, i: to_global(eval_keys[sl, num_chunks + 1 + i], progs.runs)
    final_fn = eval_chunk_fn if final_episodes == settings.eval_episodes else progs.compiled(
        "evaluate", abstract, final_keys(slices[0], 0), env_params_g, static=(final_episodes,))
    final_returns = np.concatenate([
        gather([final_fn(s, final_keys(sl, i), env_params_g) for s, sl in zip(states, slices)])
        for i in range(final_calls)], axis=1)[:, :settings.final_eval_episodes]
    run_s = time.perf_counter() - t0
    if ckpt is not None:
        ckpt.close()
    scalar_log.close()

    per_run = final_returns.mean(axis=1)
    # Diverged runs are listed with their numbers but left out of the aggregates.
    excluded = sorted(diverged)
    summary = (evaluation.summarize(per_run, *reference_returns, exclude=excluded)
               if reference_returns else {"return_mean": per_run.tolist(), "excluded": excluded})
    state = jax.tree.map(lambda *parts: gather(parts), *states) if len(states) > 1 else \
        jax.tree.map(lambda x: to_host(x)[:num_runs], states[0])
    # Gathered on the host (slices, devices, processes); handed back as JAX arrays on the default
    # device, so that `algo.act(state, ...)` and other traced code can index it with tracers.
    state = jax.tree.map(jnp.asarray, state)
    result = RunResult(
        state=state, seeds=run_seeds.tolist(),
        chunk_updates=bounds, chunk_env_steps=np.asarray(env_steps_log, np.int64),
        chunk_metrics={k: np.stack([m[k] for m in metric_log], axis=1) for k in metric_log[0]},
        eval_returns=np.stack(eval_log, axis=1), final_returns=final_returns, summary=summary,
        compile_s=compile_s, run_s=run_s, env_steps=env_steps_log[-1],
        run_seeds=run_seeds, run_config=run_config, configs=configs,
        diverged=[diverged[i] for i in sorted(diverged)], devices=len(devices),
        processes=jax.process_count(), slice_size=slice_size, num_slices=num_slices,
        resumed_from=resumed_from)
    if out_dir is not None and primary:
        write_run(result, algo, settings, num_updates, out_dir, env_id,
                  {**(extra_config or {}), "data_files": data_files})
    return result


def results_record(result: RunResult, algo_name: str, env_id: str | None) -> dict:
    """The stable results.json contract (docs/design.md)."""
    s = result.summary
    return {
        "algo": algo_name, "env": env_id, "seeds": result.seeds,
        "return_mean": s["return_mean"],
        "normalized_score": s.get("normalized_score"),
        "iqm": s.get("iqm"), "iqm_ci95": s.get("iqm_ci95"),
        "env_steps": result.env_steps, "compile_s": result.compile_s, "run_s": result.run_s,
        "devices": result.devices, "processes": result.processes,
        "slice_size": result.slice_size, "num_slices": result.num_slices,
        "configs": result.configs,
        "config_index": None if result.configs is None else result.run_config.tolist(),
        "diverged": result.diverged,
        "iqm_excludes": s.get("excluded", []),  # diverged runs, left out of iqm and iqm_ci95
        "resumed_from": result.resumed_from,
    }


def write_run(result: RunResult, algo: Algorithm, settings: RunSettings, num_updates: int,
              out_dir: Path, env_id: str | None, extra_config: dict | None) -> None:
    config = {"algo": algo.name, "env": env_id, "algo_config": config_to_dict(algo.config),
              "run": {**config_to_dict(settings), "num_updates": num_updates},
              "versions": outputs.package_versions(), "sweep": result.configs,
              **(extra_config or {})}
    result.files["config"] = outputs.write_json(out_dir / "config.json", config)
    result.files["results"] = outputs.write_json(out_dir / "results.json",
                                                 results_record(result, algo.name, env_id))
    result.files["metrics"] = out_dir / "metrics.jsonl"
    acts = bool(result.env_steps)
    x = result.chunk_env_steps if acts else result.chunk_updates
    xlabel = "environment steps per seed" if acts else "updates"
    curves = {"evaluation return": result.eval_returns}
    for name in ("loss", "return"):
        if name in result.chunk_metrics:
            curves[f"training {name}"] = result.chunk_metrics[name]
    result.files["curve"] = plots.plot_learning_curves(
        out_dir / "learning_curve.png", x, curves, xlabel,
        f"{algo.name} on {env_id or 'env'} ({len(result.seeds)} seeds)")
