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
    algo: str
    """the algorithm's name in the table (ppo, bc, gail, airl, mce_irl, preferences, ...)"""
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


def all_rows() -> dict[str, Row]:
    """Every row, in the table's order."""
    from experiments.bench.peer import imitation_rows, ppo

    return {**ppo.ROWS, **imitation_rows.ROWS}
