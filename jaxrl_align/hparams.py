"""Numeric hyperparameters as traced arrays.

Every algorithm keeps the numbers a sweep may vary (learning rates, coefficients, discounts) in
its state as an `hparams` dict of scalars rather than as Python constants baked into the
program. Changing a value then never recompiles, and a grid of values is just another `vmap`
axis beside the seeds.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp


def hparams_from_config(config, names: tuple[str, ...], overrides: dict | None = None) -> dict:
    """The named numeric fields of a config dataclass as float32 scalars, with `overrides`
    (possibly traced) replacing some of them."""
    overrides = overrides or {}
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(f"hparams: {sorted(unknown)} cannot be swept; sweepable: {list(names)}")
    return {name: jnp.asarray(overrides.get(name, getattr(config, name)), jnp.float32)
            for name in names}


def config_to_dict(config) -> dict:
    """A config dataclass as JSON-ready values: nested configs (a generator's PPO settings)
    become dicts, tuples become lists."""
    def plain(value):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    return plain(config)
