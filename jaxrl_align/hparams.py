"""Typed hyperparameters: an algorithm's config is a pytree whose leaves are its numeric,
sweepable hyperparameters; every other field is static (part of the tree structure).

    @struct.dataclass
    class BCConfig:
        lr: float = 1e-3                           # a leaf: traced, vmappable, sweepable
        batch_size: int = static(32)              # structure: shapes, loop lengths, names

`algo.init(key, data, hparams)` takes such a pytree with array leaves (`as_arrays(config)` by
default) and keeps it in the state, so a new value never recompiles and a grid of values is one
more `vmap` axis. Nested configs nest: AIRL's generator learning rate is the path "ppo.lr".
Validation in a config's `__post_init__` checks only concrete values (`concrete`): JAX rebuilds
configs with traced leaves inside compiled programs.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


def static(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING):
    """A config field that is part of the program's structure, not a hyperparameter leaf."""
    if default_factory is not dataclasses.MISSING:
        return struct.field(pytree_node=False, default_factory=default_factory)
    return struct.field(pytree_node=False, default=default)


def concrete(value) -> bool:
    """Whether `value` is a plain number that validation can inspect (not a traced array)."""
    return isinstance(value, (int, float, np.number, bool))


def paths(config) -> list[str]:
    """Dotted paths of the hyperparameter leaves of `config` ("lr", "ppo.gamma", ...)."""
    return [_dotted(path) for path, _ in jax.tree_util.tree_flatten_with_path(config)[0]]


def _dotted(path) -> str:
    return ".".join(str(getattr(k, "name", getattr(k, "key", k))) for k in path)


def as_arrays(config, float_dtype=jnp.float32):
    """`config` with every leaf a scalar array: floats as `float_dtype`, integers as int32."""
    def convert(value):
        value = jnp.asarray(value)
        dtype = jnp.int32 if jnp.issubdtype(value.dtype, jnp.integer) else float_dtype
        return value.astype(dtype)
    return jax.tree.map(convert, config)


def with_values(config, values: Mapping[str, Any]):
    """`config` with the leaves at the given dotted paths replaced (each value cast to that
    leaf's dtype when the leaf is an array). Unknown paths are refused, naming the sweepable ones."""
    known = paths(config)
    unknown = [name for name in values if name not in known]
    if unknown:
        raise ValueError(f"hyperparameters: {unknown} cannot be set; the sweepable ones are "
                         f"{known}")
    flat, treedef = jax.tree_util.tree_flatten_with_path(config)
    leaves = []
    for path, leaf in flat:
        name = _dotted(path)
        if name in values:
            value = values[name]
            if hasattr(leaf, "dtype"):
                value = jnp.asarray(value).astype(leaf.dtype)
            leaves.append(value)
        else:
            leaves.append(leaf)
    return jax.tree.unflatten(treedef, leaves)


def config_to_dict(config) -> dict:
    """A config dataclass as JSON-ready values: nested configs become dicts, tuples lists."""
    def plain(value):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, (np.ndarray, jax.Array)):
            return np.asarray(value).tolist()
        return value

    return plain(config)


def check_positive(name: str, value) -> None:
    """Refuse a concrete value below 1 (counts, sizes, widths), naming the field."""
    if concrete(value) and not value >= 1:
        raise ValueError(f"{name}: expected a positive integer, got {value}")


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")


def check_widths(name: str, widths) -> None:
    if any(int(w) < 1 for w in widths):
        raise ValueError(f"{name}: expected positive layer widths, got {tuple(widths)}")
