"""What a run leaves on disk: JSON written atomically, package versions, learning-curve plots."""
from __future__ import annotations

import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "gymnax", "orbax-checkpoint", "numpy")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _to_builtin(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_atomic(path: Path, write) -> Path:
    """Call `write(file)` on a temporary file beside `path`, then rename it into place, so
    readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json(path: Path, obj) -> Path:
    text = json.dumps(obj, indent=2, default=_to_builtin) + "\n"
    return write_atomic(path, lambda f: f.write(text.encode()))


def plot_learning_curves(path: Path, x: np.ndarray, curves: dict[str, np.ndarray], xlabel: str,
                         title: str) -> Path:
    """One panel per metric; thin lines per seed, thick line for the mean. curves: name -> [seeds, points]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, (name, values) in zip(axes[0], curves.items()):
        values = np.asarray(values, dtype=float)
        for seed_curve in values[:64]:  # thin lines for at most 64 runs; the mean covers all
            ax.plot(x, seed_curve, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax.plot(x, values.mean(axis=0), color="tab:blue", linewidth=2, label="mean over seeds")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="best")
    fig.suptitle(title)
    fig.tight_layout()

    def save(f):
        fig.savefig(f, format="png", dpi=110)

    write_atomic(path, save)
    plt.close(fig)
    return path
