"""Figures a run or a sweep leaves behind (matplotlib, Agg, written atomically)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrl_align.data.files import write_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    plt = _pyplot()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    plt.close(fig)
    return Path(path)


def plot_learning_curves(path: Path, x: np.ndarray, curves: dict[str, np.ndarray], xlabel: str,
                         title: str) -> Path:
    """One panel per metric; thin lines per run, thick line for the mean. curves: name ->
    [runs, points]."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, (name, values) in zip(axes[0], curves.items()):
        values = np.asarray(values, dtype=float)
        for run_curve in values[:64]:  # thin lines for at most 64 runs; the mean covers all
            ax.plot(x, run_curve, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax.plot(x, values.mean(axis=0), color="tab:blue", linewidth=2, label="mean over seeds")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_ranking(path: Path, rows: list[dict], title: str) -> Path:
    """A sweep's configurations ranked: IQM with its CI per configuration, seeds as dots."""
    plt = _pyplot()
    labels = [", ".join(f"{k}={v:.3g}" for k, v in r["hparams"].items()) for r in rows]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(rows) + 2), 4))
    x = np.arange(len(rows))
    iqms = np.array([r["iqm"] for r in rows])
    err = np.array([[r["iqm"] - r["ci95"][0], r["ci95"][1] - r["iqm"]] for r in rows]).T
    ax.bar(x, iqms, color="tab:blue", alpha=0.6)
    ax.errorbar(x, iqms, yerr=np.abs(err), fmt="none", color="black", capsize=4)
    for i, r in enumerate(rows):
        ax.scatter(np.full(len(r["per_seed"]), i), r["per_seed"], s=8, color="black", alpha=0.5)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"IQM {rows[0]['metric']} (95% CI)")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
