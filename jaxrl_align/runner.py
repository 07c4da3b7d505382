"""One runner for every algorithm: seeds as a `vmap` axis, the scan of `update` in chunks.

Inside a chunk everything is one compiled program. Between chunks the host shows progress,
evaluates the current policies of every seed, and writes metrics. Device sharding, checkpoints
and hyperparameter axes slot in at the same place (between chunks) without touching algorithms.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxrl_align import evaluation, outputs
from jaxrl_align.algorithm import Algorithm
from jaxrl_align.hparams import config_to_dict
from jaxrl_align.rollout import max_episode_steps, rollout_episodes


@dataclass(frozen=True)
class RunSettings:
    seeds: tuple[int, ...]
    num_updates: int
    num_chunks: int = 20
    eval_episodes: int = 10
    """episodes per seed at every chunk boundary (the learning curve)"""
    final_eval_episodes: int = 50
    """episodes per seed for the final evaluation in results.json"""
    deterministic_eval: bool = True
    progress: bool = True


@dataclass
class RunResult:
    state: Any  # the algorithm state, batched over seeds
    seeds: list[int]
    chunk_updates: np.ndarray  # [chunks] updates done at the end of each chunk
    chunk_metrics: dict[str, np.ndarray]  # name -> [seeds, chunks], mean over the chunk
    eval_returns: np.ndarray  # [seeds, chunks] mean evaluation return at each chunk end
    final_returns: np.ndarray  # [seeds, final_eval_episodes]
    summary: dict
    compile_s: float
    run_s: float
    env_steps: int
    files: dict[str, Path] = field(default_factory=dict)


EVAL_STREAM = 0x5EED


def validate_settings(settings: RunSettings) -> None:
    """Reject bad settings with one line each, before anything is compiled or written."""
    if len(settings.seeds) == 0:
        raise ValueError("seeds: expected at least one seed, got none")
    if any(int(s) < 0 for s in settings.seeds):
        raise ValueError(f"seeds: expected non-negative integers, got {list(settings.seeds)}")
    if len(set(settings.seeds)) != len(settings.seeds):
        raise ValueError(f"seeds: expected distinct values, got {list(settings.seeds)}")
    for name in ("num_updates", "num_chunks", "eval_episodes", "final_eval_episodes"):
        value = getattr(settings, name)
        if int(value) <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {value}")


def chunk_bounds(num_updates: int, num_chunks: int) -> np.ndarray:
    """Update counts at the end of each chunk: `num_chunks` near-equal pieces of the run. Chunks
    may differ in length by one; the chunk program takes its length as an argument, so they all
    share one compilation."""
    num_chunks = min(num_chunks, num_updates)
    return np.round(np.linspace(0, num_updates, num_chunks + 1)[1:]).astype(int)


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def run(algo: Algorithm, env, env_params, settings: RunSettings, data=None, *,
        env_id: str | None = None, reference_returns: tuple[float, float] | None = None,
        out_dir: Path | None = None, extra_config: dict | None = None,
        hparams: dict | None = None) -> RunResult:
    """Train `algo` on every seed in one program per chunk, evaluate, and (with `out_dir`) write
    config.json, results.json, metrics.jsonl and learning_curve.png.

    `hparams` optionally gives each run its own numeric hyperparameters: name -> array with one
    value per seed (see `jaxrl_align.hparams`). Values are traced, so changing them never
    recompiles.
    """
    validate_settings(settings)
    seeds = [int(s) for s in settings.seeds]
    bounds = chunk_bounds(settings.num_updates, settings.num_chunks)
    num_chunks = len(bounds)
    max_steps = max_episode_steps(env_params)

    def run_chunk(states, data, length):
        """`length` updates of every seed; returns the mean of each metric over the chunk."""
        def one_seed(state):
            metric_shapes = jax.eval_shape(algo.update, state, data)[1]
            sums = jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metric_shapes)

            def body(_, carry):
                state, sums = carry
                state, metrics = algo.update(state, data)
                return state, jax.tree.map(jnp.add, sums, metrics)

            state, sums = jax.lax.fori_loop(0, length, body, (state, sums))
            return state, jax.tree.map(lambda x: x / length, sums)
        return jax.vmap(one_seed)(states)

    def evaluate(states, keys, num_episodes):
        def one_seed(state, key):
            policy = lambda k, obs: algo.act(state, k, obs, settings.deterministic_eval)
            trajs = rollout_episodes(env, env_params, policy, key, num_episodes, max_steps)
            return trajs.returns
        return jax.vmap(one_seed)(states, keys)

    # Seed s trains from PRNGKey(s) exactly, so seed s of a batched run equals a single run of
    # `algorithm.train(algo, PRNGKey(s), ...)`; evaluation draws from a separate stream.
    init_keys = seed_keys(seeds)
    eval_keys = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, EVAL_STREAM),
                                                    num_chunks + 1))(init_keys)

    t0 = time.perf_counter()
    init_fn = jax.jit(jax.vmap(algo.init, in_axes=(0, None, 0 if hparams else None)))
    states = init_fn.lower(init_keys, data, hparams).compile()(init_keys, data, hparams)
    # CPU cannot reuse donated buffers and would only warn.
    donate = () if jax.default_backend() == "cpu" else (0,)
    chunk_fn = jax.jit(run_chunk, donate_argnums=donate).lower(
        states, data, jnp.int32(bounds[0])).compile()
    eval_fn = jax.jit(evaluate, static_argnums=2)
    eval_chunk_fn = eval_fn.lower(states, eval_keys[:, 0], settings.eval_episodes).compile()
    compile_s = time.perf_counter() - t0

    metric_log: list[dict[str, np.ndarray]] = []
    eval_log = []
    metrics_file = Path(out_dir) / "metrics.jsonl" if out_dir is not None else None
    lines = []
    t0 = time.perf_counter()
    bar = tqdm(range(num_chunks), desc=f"{algo.name} x{len(seeds)} seeds", unit="chunk",
               disable=not settings.progress, dynamic_ncols=True)
    for c in bar:
        length = bounds[c] - (bounds[c - 1] if c else 0)
        states, metrics = chunk_fn(states, data, jnp.int32(length))
        chunk_means = {k: np.asarray(v) for k, v in metrics.items()}
        eval_returns = np.asarray(jnp.mean(eval_chunk_fn(states, eval_keys[:, c + 1]), axis=1))
        metric_log.append(chunk_means)
        eval_log.append(eval_returns)
        updates = int(bounds[c])
        shown = {"eval_return": float(eval_returns.mean())}
        shown.update({k: float(v.mean()) for k, v in list(chunk_means.items())[:3]})
        bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()})
        lines.append(json.dumps({
            "chunk": c, "updates": updates, "env_steps": updates * algo.env_steps_per_update,
            "eval_return": eval_returns.tolist(),
            **{k: v.tolist() for k, v in chunk_means.items()}}))
        if metrics_file is not None:  # rewritten whole each chunk: a crash never leaves half a line
            outputs.write_atomic(metrics_file, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    jax.block_until_ready(states)
    final_returns = np.asarray(eval_fn(states, eval_keys[:, -1], settings.final_eval_episodes))
    run_s = time.perf_counter() - t0

    per_seed = final_returns.mean(axis=1)
    summary = evaluation.summarize(per_seed, *reference_returns) if reference_returns else {
        "return_mean": per_seed.tolist()}
    result = RunResult(
        state=states, seeds=seeds,
        chunk_updates=bounds,
        chunk_metrics={k: np.stack([m[k] for m in metric_log], axis=1) for k in metric_log[0]},
        eval_returns=np.stack(eval_log, axis=1), final_returns=final_returns, summary=summary,
        compile_s=compile_s, run_s=run_s,
        env_steps=settings.num_updates * algo.env_steps_per_update)
    if out_dir is not None:
        write_run(result, algo, settings, Path(out_dir), env_id, extra_config)
    return result


def results_record(result: RunResult, algo_name: str, env_id: str | None) -> dict:
    """The stable results.json contract (see DESIGN.md)."""
    s = result.summary
    return {
        "algo": algo_name, "env": env_id, "seeds": result.seeds,
        "return_mean": s["return_mean"],
        "normalized_score": s.get("normalized_score"),
        "iqm": s.get("iqm"), "iqm_ci95": s.get("iqm_ci95"),
        "env_steps": result.env_steps, "compile_s": result.compile_s, "run_s": result.run_s,
        "devices": jax.device_count(),
    }


def write_run(result: RunResult, algo: Algorithm, settings: RunSettings, out_dir: Path,
              env_id: str | None, extra_config: dict | None) -> None:
    config = {"algo": algo.name, "env": env_id, "algo_config": config_to_dict(algo.config),
              "run": config_to_dict(settings), "versions": outputs.package_versions(),
              **(extra_config or {})}
    result.files["config"] = outputs.write_json(out_dir / "config.json", config)
    result.files["results"] = outputs.write_json(out_dir / "results.json",
                                                 results_record(result, algo.name, env_id))
    result.files["metrics"] = out_dir / "metrics.jsonl"
    x = result.chunk_updates * max(algo.env_steps_per_update, 1)
    xlabel = "environment steps per seed" if algo.env_steps_per_update else "updates"
    curves = {"evaluation return": result.eval_returns}
    for name in ("loss", "return"):
        if name in result.chunk_metrics:
            curves[f"training {name}"] = result.chunk_metrics[name]
    result.files["curve"] = outputs.plot_learning_curves(
        out_dir / "learning_curve.png", x, curves, xlabel,
        f"{algo.name} on {env_id or 'env'} ({len(result.seeds)} seeds)")
