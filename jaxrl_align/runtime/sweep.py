"""Hyperparameter sweeps as array axes.

A sweep is a list of configurations, each a dict from a hyperparameter's dotted path in the
algorithm's config ("lr", "disc_lr", "ppo.ent_coef", "model.lr"; `jaxrl_align.hparams.paths`
lists them) to a value. The runner trains every configuration × every seed as one flat "runs"
axis of one compiled program: the values enter the algorithm state as traced scalars, so a new
grid of values never recompiles.

    sweep = Sweep.grid({"lr": [1e-4, 1e-3, 1e-2, 1e-1]})
    result = runner.run(algo, env, env_params, settings, data, sweep=sweep)
    rows = rank(result)   # IQM and bootstrap CI per configuration, best first

Runs are configuration-major: run i is configuration i // num_seeds with the
(i % num_seeds)-th seed.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from jaxrl_align import evaluation
from jaxrl_align.runtime import plots


@dataclass(frozen=True)
class Sweep:
    configs: tuple[tuple[tuple[str, float], ...], ...]
    """one entry per configuration: (name, value) pairs, the same names in every entry"""

    def __post_init__(self):
        if not self.configs:
            raise ValueError("sweep: expected at least one configuration")
        names = [tuple(n for n, _ in c) for c in self.configs]
        if any(n != names[0] for n in names):
            raise ValueError("sweep: every configuration must set the same hyperparameters")

    @staticmethod
    def grid(values: Mapping[str, Sequence[float]]) -> "Sweep":
        """The Cartesian product of the values of each hyperparameter (first name varies slowest)."""
        if not values:
            raise ValueError("sweep grid: expected at least one hyperparameter")
        for name, vals in values.items():
            if len(vals) == 0:
                raise ValueError(f"sweep grid: {name} has no values")
        names = list(values)
        return Sweep(tuple(tuple(zip(names, map(float, combo)))
                           for combo in itertools.product(*(values[n] for n in names))))

    @staticmethod
    def random(ranges: Mapping[str, tuple[float, float, bool]], num_samples: int,
               seed: int = 0) -> "Sweep":
        """`num_samples` configurations drawn independently: name -> (low, high, log_scale)."""
        if num_samples <= 0:
            raise ValueError(f"random search: expected a positive number of samples, got {num_samples}")
        rng = np.random.default_rng(seed)
        cols = {}
        for name, (lo, hi, log) in ranges.items():
            if log:
                if lo <= 0 or hi <= 0:
                    raise ValueError(f"random search: {name} on a log scale needs positive bounds")
                cols[name] = np.exp(rng.uniform(math.log(lo), math.log(hi), num_samples))
            else:
                cols[name] = rng.uniform(lo, hi, num_samples)
        return Sweep(tuple(tuple((n, float(cols[n][i])) for n in ranges)
                           for i in range(num_samples)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.configs[0])

    def config_dicts(self) -> list[dict[str, float]]:
        return [dict(c) for c in self.configs]

    def __len__(self) -> int:
        return len(self.configs)

    def runs(self, seeds: Sequence[int]):
        """(run_seeds [R], run_config [R], hparams name -> float32 [R]) for R = configs × seeds."""
        n_seeds = len(seeds)
        run_config = np.repeat(np.arange(len(self.configs)), n_seeds)
        run_seeds = np.tile(np.asarray(seeds, np.int64), len(self.configs))
        table = np.asarray([[v for _, v in c] for c in self.configs], np.float32)
        hparams = {n: table[run_config, j] for j, n in enumerate(self.names)}
        return run_seeds, run_config, hparams


def rank(result, reference_returns: tuple[float, float] | None = None) -> list[dict]:
    """Per configuration of a sweep run: IQM and 95% bootstrap CI of the normalised score (or of
    the return without reference returns) across its seeds, best IQM first."""
    per_run = result.final_returns.mean(axis=1)
    score_name = "return"
    if reference_returns is not None:
        per_run = evaluation.normalized_score(per_run, *reference_returns)
        score_name = "normalized_score"
    diverged_runs = {d["run"] for d in result.diverged}
    rows = []
    for j, config in enumerate(result.configs):
        idx = np.flatnonzero(result.run_config == j)
        scores = per_run[idx]
        lo, hi = evaluation.bootstrap_ci(scores)
        rows.append({"config": j, "hparams": config, "metric": score_name,
                     "iqm": float(evaluation.iqm(scores)), "ci95": [lo, hi],
                     "mean": float(scores.mean()), "per_seed": scores.tolist(),
                     "seeds": result.run_seeds[idx].tolist(),
                     "diverged": int(sum(int(i) in diverged_runs for i in idx))})
    rows.sort(key=lambda r: (-np.nan_to_num(r["iqm"], nan=-np.inf), r["config"]))
    for rank_, row in enumerate(rows, 1):
        row["rank"] = rank_
    return rows


def format_table(rows: list[dict]) -> str:
    names = list(rows[0]["hparams"])
    head = (f"{'rank':>4} " + " ".join(f"{n:>12}" for n in names)
            + f" {'IQM ' + rows[0]['metric']:>22} {'95% CI':>21} {'diverged':>9}")
    lines = [head]
    for r in rows:
        lo, hi = r["ci95"]
        lines.append(f"{r['rank']:>4} " + " ".join(f"{r['hparams'][n]:>12.4g}" for n in names)
                     + f" {r['iqm']:>22.3f} {f'[{lo:.3f}, {hi:.3f}]':>21}"
                     + f" {str(r['diverged']) + '/' + str(len(r['seeds'])):>9}")
    return "\n".join(lines)


def plot(path, rows: list[dict], title: str):
    """IQM with its CI per configuration (ranked), seeds as dots."""
    return plots.plot_ranking(path, rows, title)
