"""How good is a policy: episode returns, normalised scores and robust aggregates across seeds
(exact expected returns on tabular MDPs: `jaxrl_align.tabular.exact_expected_return`).

Aggregates follow rliable (Agarwal et al., 2021, "Deep RL at the Edge of the Statistical
Precipice"): the interquartile mean across seeds with a percentile-bootstrap confidence
interval, rather than a mean ± std that a single outlier seed dominates. They are host-side
NumPy: they run between chunks, on a handful of numbers.
"""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from jaxrl_align.data.rollout import Policy, collect_episodes, max_episode_steps


def evaluate_policy(env, env_params, policy: Policy, key: jax.Array, num_episodes: int,
                    max_steps: int | None = None) -> jax.Array:
    """[num_episodes] undiscounted returns of `policy(key, obs) -> action`.

    Episodes are cut at `max_steps` (default: the env's episode limit). `policy` must be
    hashable, as for `collect_episodes`.
    """
    if max_steps is None:
        max_steps = max_episode_steps(env_params)
    trajs = collect_episodes(env, env_params, policy, key, num_episodes, max_steps)
    return trajs.returns


def normalized_score(returns, random_return, expert_return):
    """(x − random) / (expert − random): 0 is the random policy, 1 the expert.

    Plain arithmetic, so it works on NumPy and JAX arrays alike (and inside jit).
    """
    return (returns - random_return) / (expert_return - random_return)


def iqm(x, axis: int | None = None):
    """Interquartile mean: the mean of the middle 50% of `x` (all of it when `axis` is None).

    Same semantics as rliable's `scipy.stats.trim_mean(x, 0.25)`: int(0.25 · n) values are cut
    from each end of the sorted data, so for n not a multiple of 4 slightly more than half is
    kept rather than interpolating.
    """
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        x, axis = x.ravel(), 0
    n = x.shape[axis]
    if n == 0:
        raise ValueError("iqm of an empty array")
    cut = int(0.25 * n)
    middle = np.take(np.sort(x, axis=axis), np.arange(cut, n - cut), axis=axis)
    return middle.mean(axis=axis)


def bootstrap_ci(x, statistic: Callable = iqm, confidence: float = 0.95,
                 num_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of `statistic` over the seeds in `x` [num_seeds].

    `statistic(samples, axis=-1)` must reduce along `axis` like a NumPy reduction (`iqm`,
    `np.mean`, `np.median` do), so all resamples are evaluated in one vectorised call.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bootstrap_ci: expected a non-empty 1-D array of per-seed values, "
                         f"got shape {x.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_ci: confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    resamples = x[rng.integers(0, x.size, size=(num_resamples, x.size))]
    estimates = statistic(resamples, axis=-1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(estimates, [tail, 100.0 - tail])
    return float(lo), float(hi)


def summarize(returns_per_seed, random_return: float | None = None,
              expert_return: float | None = None, exclude=()) -> dict:
    """The evaluation part of `results.json`, as plain Python numbers.

    `returns_per_seed` is [num_seeds, ...] (e.g. [num_seeds, num_episodes]); each seed's
    returns are averaged, then normalised (with both reference returns). `iqm`, `iqm_ci95` and
    `mean` are of the normalised per-seed scores (of the returns without reference returns),
    over every seed but those in `exclude` (diverged runs: their numbers are listed, not
    aggregated; `excluded` says which). With every seed excluded they are None.
    """
    if expert_return is not None and expert_return == random_return:
        raise ValueError(f"summarize: expert_return and random_return are both {expert_return}; "
                         "the normalised score is undefined")
    returns = np.asarray(returns_per_seed, dtype=np.float64)
    return_mean = returns.reshape(returns.shape[0], -1).mean(axis=1)
    summary = {"return_mean": return_mean.tolist()}
    values = return_mean
    if random_return is not None and expert_return is not None:
        values = normalized_score(return_mean, random_return, expert_return)
        summary["normalized_score"] = values.tolist()
    kept = np.setdiff1d(np.arange(len(values)), np.asarray(list(exclude), np.int64))
    summary["excluded"] = sorted(int(i) for i in exclude)
    if kept.size == 0:
        return {**summary, "iqm": None, "iqm_ci95": None, "mean": None}
    lo, hi = bootstrap_ci(values[kept])
    return {**summary, "iqm": float(iqm(values[kept])), "iqm_ci95": [lo, hi],
            "mean": float(values[kept].mean())}


# Aggregates over tasks (rliable's `metrics` and `library.get_interval_estimates`): a score
# matrix is [num_runs, num_tasks], every column one task's seeds.


def _score_matrix(scores, name: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(f"{name}: expected a non-empty [num_runs, num_tasks] score matrix, got "
                         f"shape {scores.shape}")
    return scores


def aggregate_mean(scores) -> float:
    """rliable's `aggregate_mean`: the mean over tasks of each task's mean over runs."""
    return float(_score_matrix(scores, "aggregate_mean").mean(axis=0).mean())


def aggregate_iqm(scores) -> float:
    """rliable's `aggregate_iqm`: the interquartile mean of every (run, task) score together."""
    return float(iqm(_score_matrix(scores, "aggregate_iqm")))


def stratified_resample(scores, rng: np.random.Generator) -> np.ndarray:
    """One stratified bootstrap resample of a [num_runs, num_tasks] matrix: each task's runs
    drawn with replacement from that task's own runs (rliable's `StratifiedBootstrap`)."""
    runs, tasks = scores.shape
    return scores[rng.integers(0, runs, size=(runs, tasks)), np.arange(tasks)]


def stratified_bootstrap_ci(statistic: Callable, *score_matrices, confidence: float = 0.95,
                            num_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of `statistic(*score_matrices)` by stratified bootstrap: seeds
    resampled within each task, each matrix independently (rliable's `get_interval_estimates`
    with method "percentile": `StratifiedBootstrap` for one matrix,
    `StratifiedIndependentBootstrap` for several, as for the probability of improvement)."""
    matrices = [_score_matrix(m, "stratified_bootstrap_ci") for m in score_matrices]
    if not matrices:
        raise ValueError("stratified_bootstrap_ci: expected at least one score matrix, got none")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"stratified_bootstrap_ci: confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    estimates = np.array([statistic(*(stratified_resample(m, rng) for m in matrices))
                          for _ in range(num_resamples)])
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(estimates, [tail, 100.0 - tail])
    return float(lo), float(hi)


def probability_of_improvement(scores_x, scores_y) -> float:
    """rliable's probability of improvement of X over Y: per task, P(X > Y) for a random run of
    each, ties counting one half (the Mann-Whitney U statistic over num_runs_x · num_runs_y),
    averaged over tasks. Both matrices have the same tasks; their numbers of runs may differ."""
    x = _score_matrix(scores_x, "probability_of_improvement")
    y = _score_matrix(scores_y, "probability_of_improvement")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"probability_of_improvement: expected the same number of tasks, got "
                         f"{x.shape[1]} and {y.shape[1]}")
    diff = x[:, None, :] - y[None, :, :]  # [runs_x, runs_y, tasks]
    per_task = (diff > 0).mean(axis=(0, 1)) + 0.5 * (diff == 0).mean(axis=(0, 1))
    return float(per_task.mean())
