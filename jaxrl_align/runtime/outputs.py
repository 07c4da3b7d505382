"""What a run leaves on disk besides checkpoints: JSON files (atomically, through the one writer
in `jaxrl_align.data.files`) and the package versions recorded in config.json."""
from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np

from jaxrl_align.data.files import write_atomic

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
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_json(path: Path, obj) -> Path:
    text = json.dumps(obj, indent=2, default=_to_builtin) + "\n"
    return write_atomic(path, lambda f: f.write(text.encode()))
