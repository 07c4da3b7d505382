"""Pieces every command-line entry point shares: run flags, input checks, the results table."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RunFlags:
    env: str = "seals/CartPole-v0"
    """environment id: a seals id from `envs.registered_ids()` or any gymnax id"""
    seeds: int = 8
    """number of seeds, trained together in one program"""
    first_seed: int = 0
    """seeds are first_seed, first_seed+1, ..."""
    out: Path | None = None
    """output folder (default: runs/<algo>-<env>)"""
    num_chunks: int = 20
    """pieces the training scan is cut into; progress, metrics and evaluation happen between them"""
    eval_episodes: int = 10
    """evaluation episodes per seed at each chunk boundary"""
    final_eval_episodes: int = 50
    """evaluation episodes per seed for results.json"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache (~/.cache/jaxrl_align/xla, or $JAXRL_ALIGN_CACHE)"""
    progress: bool = True
    """show a progress bar"""
    slice_size: int | None = None
    """runs per program call (a multiple of the device count); bounds memory for many seeds"""
    checkpoint_every: int = 1
    """orbax checkpoint (in <out>/checkpoints) every this many chunks and after the last; 0: never"""
    keep_checkpoints: int = 2
    """how many of the latest checkpoints to keep"""
    resume: bool = False
    """continue a stopped run from the latest checkpoint in --out (bit for bit on CPU)"""
    tensorboard: bool = False
    """also write per-chunk scalars for TensorBoard to <out>/tensorboard"""
    coordinator_address: str | None = None
    """host:port of process 0, to run one command over several processes (jax.distributed)"""
    num_processes: int = 1
    """processes joined by jax.distributed (with --coordinator-address)"""
    process_id: int = 0
    """this process's index (with --coordinator-address); process 0 writes the outputs"""


class UsageError(ValueError):
    """Bad input found before anything was compiled or written."""


def check_flags(flags: RunFlags) -> None:
    if flags.seeds <= 0:
        raise UsageError(f"--seeds: expected a positive number of seeds, got {flags.seeds}")
    if flags.first_seed < 0:
        raise UsageError(f"--first-seed: expected a non-negative integer, got {flags.first_seed}")
    if flags.slice_size is not None and flags.slice_size <= 0:
        raise UsageError(f"--slice-size: expected a positive integer, got {flags.slice_size}")
    if flags.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every: expected 0 (never) or a positive integer, "
                         f"got {flags.checkpoint_every}")
    if flags.coordinator_address is not None and not 0 <= flags.process_id < flags.num_processes:
        raise UsageError(f"--process-id: expected 0 <= id < --num-processes "
                         f"({flags.num_processes}), got {flags.process_id}")
    for name in ("num_chunks", "eval_episodes", "final_eval_episodes", "keep_checkpoints"):
        if getattr(flags, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')}: expected a positive integer, "
                             f"got {getattr(flags, name)}")


def seed_list(flags: RunFlags) -> tuple[int, ...]:
    return tuple(range(flags.first_seed, flags.first_seed + flags.seeds))


def make_env(env_id: str):
    import envs

    try:
        return envs.make(env_id)
    except ValueError as e:
        raise UsageError(str(e)) from None


def reference_returns_or_none(env_id: str):
    import envs

    try:
        return envs.reference_returns(env_id)
    except ValueError:
        return None


def init_distributed(flags: RunFlags) -> None:
    """Join the other processes of a multi-process run; must come before JAX touches a device."""
    import jax

    if flags.coordinator_address is not None and not jax.distributed.is_initialized():
        jax.distributed.initialize(coordinator_address=flags.coordinator_address,
                                   num_processes=flags.num_processes, process_id=flags.process_id)


def init_distributed_from_argv(argv=None) -> None:
    """`init_distributed` from the raw command line, for entry points to call before importing
    anything that starts JAX's backend (gymnax does at import). tyro validates the same flags
    afterwards."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def value(flag, default=None):
        for i, arg in enumerate(argv):
            for name in (flag, flag.replace("-", "_")):
                if arg == name and i + 1 < len(argv):
                    return argv[i + 1]
                if arg.startswith(name + "="):
                    return arg.split("=", 1)[1]
        return default

    address = value("--coordinator-address")
    if address is None:
        return
    try:
        num_processes, process_id = int(value("--num-processes", 1)), int(value("--process-id", 0))
    except ValueError:
        return  # tyro reports the malformed flag
    if not 0 <= process_id < num_processes:
        return  # check_flags reports it
    import jax

    jax.distributed.initialize(coordinator_address=address, num_processes=num_processes,
                               process_id=process_id)


def run_settings(flags: RunFlags, num_updates: int):
    from jaxrl_align.runner import RunSettings

    return RunSettings(seeds=seed_list(flags), num_updates=num_updates,
                       num_chunks=flags.num_chunks, eval_episodes=flags.eval_episodes,
                       final_eval_episodes=flags.final_eval_episodes, progress=flags.progress,
                       slice_size=flags.slice_size, checkpoint_every=flags.checkpoint_every,
                       keep_checkpoints=flags.keep_checkpoints, resume=flags.resume,
                       tensorboard=flags.tensorboard)


def setup_jax(flags: RunFlags) -> None:
    if flags.compile_cache:
        from jaxrl_align import compilation_cache

        compilation_cache.enable()


def exit_on_usage_error(error: Exception) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


def results_table(title: str, seeds, summary: dict) -> str:
    """Per-seed return and normalised score, then IQM with its bootstrap 95% interval."""
    rows = [title, f"{'seed':>6} {'return':>10} {'normalised':>11}"]
    scores = summary.get("normalized_score") or [float("nan")] * len(seeds)
    for seed, ret, score in zip(seeds, summary["return_mean"], scores):
        rows.append(f"{seed:>6} {ret:>10.1f} {score:>11.3f}")
    if "iqm" in summary:
        lo, hi = summary["iqm_ci95"]
        rows.append(f"IQM normalised score {summary['iqm']:.3f}  (95% CI {lo:.3f} – {hi:.3f}); "
                    f"mean return {np.mean(summary['return_mean']):.1f}")
    return "\n".join(rows)
