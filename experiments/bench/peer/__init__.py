"""Peers run side by side with this package: `python -m experiments.bench.peers`.

A row is one comparison (an algorithm, its settings, a seed count): this package's side and a
peer library's side, each a fresh process that trains, evaluates and writes one JSON record
(`RECORD_FIELDS`). The peer's side runs in the peer's own environment (`make peer-envs`:
`.venv-imitation`, `.venv-rejax`), never imports this package, and takes `--out FILE`.
`experiments.bench.peers` alternates the two sides (ours, peer, ours, peer, ...) in one sitting
and prints and writes the ratio table.

Each module of this folder that defines rows exports `ROWS: dict[str, Row]`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[3]

# What both sides write (json): the same work on both sides, final returns by the same evaluation.
RECORD_FIELDS = (
    "side",        # "ours", or the peer's name ("imitation", "rejax")
    "row",         # the row's name
    "seeds",       # runs trained (ours: in one call; a peer: one after another, or vmapped)
    "work",        # units of work per seed (environment steps, gradient steps, iterations)
    "work_unit",   # what `work` counts, e.g. "generator env steps"
    "compile_s",   # compilation (ahead of the run; None where a peer compiles nothing)
    "run_s",       # training alone, every seed
    "wall_s",      # the process's work from its start: imports, set-up, training, evaluation
    "returns",     # final return of each seed (the mean over its evaluation episodes)
    "eval_episodes",  # episodes per seed behind each return
    "versions",    # library versions on that side
)


@dataclass(frozen=True)
class Row:
    peer: str
    """the peer library ("imitation", "rejax")"""
    settings: str
    """the shared settings, in a line (what both sides train)"""
    ours: Callable[[], dict]
    """trains and evaluates our side in this process; returns the record (RECORD_FIELDS)"""
    peer_command: Callable[[Path], list[str]]
    """the peer side's command line, writing its record to the given file"""
    pairs: int = 1
    """alternating pairs by default (a ratio near 1 needs three or more; a ratio of 30 one)"""


def train_and_evaluate(row: str, env, env_params, algo, data, seeds: int, work, work_unit: str,
                       eval_episodes: int, exact_return=None) -> dict:
    """Our side of a row, timed as the peers time theirs: every seed's whole run
    (`jaxrl_align.algorithm.train`: `init` and every update, vmapped over the seeds in one
    program) compiled ahead of time (compile_s, from whatever cache the process has) and run once
    (run_s); then each final policy's `eval_episodes` deterministic episodes (the runner's
    `rollout_episodes`, from its evaluation key stream), or `exact_return(state, env_params)` of
    one seed's state. `work(state)` is the work per seed; returns the record (RECORD_FIELDS)
    but `wall_s`, which `experiments.bench.peer.ours` adds: the process's whole time."""
    import jax

    from jaxrl_align import algorithm
    from jaxrl_align.data.rollout import max_episode_steps, rollout_episodes
    from jaxrl_align.runtime import outputs, runner

    num_updates = runner.num_updates_of(runner.RunSettings(), algo)
    keys = runner.seed_keys(range(seeds))
    train = jax.jit(jax.vmap(lambda key, data: algorithm.train(algo, key, data, num_updates)[0],
                             in_axes=(0, None)))
    t = time.perf_counter()
    compiled = train.lower(keys, data).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    states = jax.block_until_ready(compiled(keys, data))
    run_s = time.perf_counter() - t
    if exact_return is not None:
        returns = [exact_return(jax.tree.map(lambda x: x[i], states), env_params)
                   for i in range(seeds)]
        eval_episodes = 1
    else:
        def mean_return(state, key):
            policy = lambda k, obs: algo.act(state, k, obs, True)
            return rollout_episodes(env, env_params, policy, key, eval_episodes,
                                    max_episode_steps(env_params)).returns.mean()

        eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, runner.EVAL_STREAM))(keys)
        returns = jax.device_get(jax.jit(jax.vmap(mean_return))(states, eval_keys))
    return dict(side="ours", row=row, seeds=seeds, work=int(work(states)), work_unit=work_unit,
                compile_s=compile_s, run_s=run_s, returns=[float(r) for r in returns],
                eval_episodes=eval_episodes, versions=outputs.package_versions())


def env_steps_per_seed(states) -> int:
    """A vmapped state's environment steps, of its first seed (every seed takes as many)."""
    import numpy as np

    return int(np.asarray(states.env_steps).reshape(-1)[0])


def all_rows() -> dict[str, Row]:
    """Every row, in the table's order."""
    from experiments.bench.peer import imitation_rows, off_policy, ppo

    return {**ppo.ROWS, **off_policy.ROWS, **imitation_rows.ROWS}
