"""The runs axis over devices: a 1-D `Mesh` of every device, each device running the program one
device would run on its share of the runs (`shard_map`), and host values to global arrays and
back (the same on one process or many)."""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "runs"


def runs_mesh(devices: Sequence | None = None, axis: str = AXIS) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process)."""
    return Mesh(np.asarray(list(devices) if devices is not None else jax.devices()), (axis,))


def per_device(f: Callable, mesh: Mesh, *specs, axis: str = AXIS) -> Callable:
    """`f` on each device's share alone (`shard_map`; `specs` per argument, P(axis) for the runs
    axis, P() for replicated). Every device runs exactly the program one device would run on its
    share, so results do not depend on the device count (XLA's automatic partitioning of the whole
    program changes rounding). An argument passed as None stays None. The program keeps `f`'s
    name (`jit(init)`, `jit(run_chunk)`, ...)."""
    @functools.wraps(f)
    def call(*args):
        in_specs = tuple(None if a is None else spec for a, spec in zip(args, specs))
        return jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=P(axis),
                             check_vma=False)(*args)
    return call


def shardings(mesh: Mesh, axis: str = AXIS) -> tuple[NamedSharding, NamedSharding]:
    """(split over the runs axis, replicated)."""
    return NamedSharding(mesh, P(axis)), NamedSharding(mesh, P())


def to_global(tree, sharding):
    """Host values as global arrays with `sharding` (every process passes the same values and
    keeps only its devices' parts, so this works alike on one process or many)."""
    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
    return jax.tree.map(put, tree)


def to_host(x) -> np.ndarray:
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def runs_layout(num_runs: int, num_devices: int, slice_size: int | None) -> tuple[int, int]:
    """(slice_size, num_slices): slices of a multiple of the device count covering every run."""
    per = min(int(slice_size or num_runs), num_runs)
    per = -(-per // num_devices) * num_devices
    return per, -(-num_runs // per)
