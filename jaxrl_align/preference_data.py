"""Preference-labelled fragment pairs on disk: one `.npz` per dataset, never pickle.

The same conventions as demonstrations (`jaxrl_align.demos`): the arrays plus a `metadata` entry
(a JSON string with a schema version, the environment id and the source of the labels), written
atomically; loading checks the file, the schema, shapes, dtypes, finiteness, label range and the
match with the environment's spaces, and every problem is a `PreferenceDataError` whose one-line
message names the file and the field.

Fields (N pairs of fragments of L steps):
    obs        [N, 2, L, *obs_shape]   observation before each step
    acts       [N, 2, L, *act_shape]   executed action
    next_obs   [N, 2, L, *obs_shape]   observation after each step (the true final one at an end)
    terminated [N, 2, L] bool          set only on a fragment's last step
    prefs      [N] float in [0, 1]     p(fragment 0 ≻ fragment 1): 1, 0, 0.5 (tie) or soft
Recorded human preferences use the same file: one row per judged pair.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_align import demos
from jaxrl_align.fragments import Fragments
from jaxrl_align.outputs import write_atomic
from jaxrl_align.spaces import space_spec

SCHEMA_VERSION = 1
KIND = "preference_comparisons"
ARRAY_FIELDS = ("obs", "acts", "next_obs", "terminated", "prefs")


class PreferenceDataError(demos.DemonstrationError):
    """A preference dataset that cannot be used; the message names the file and the field."""


@struct.dataclass
class PreferenceDataset:
    frags: Fragments  # [N, 2, L, ...]
    prefs: jax.Array  # [N]

    def __len__(self) -> int:
        return self.prefs.shape[0]


def _fail(label: str, field: str, problem: str):
    raise PreferenceDataError(f"{label}: field '{field}' {problem}")


def save_preferences(path, dataset: PreferenceDataset, *, env_id: str, source: str,
                     extra_metadata: dict | None = None) -> Path:
    """Write `dataset` to `path` (an `.npz`) atomically, after validating it."""
    path = Path(path)
    f = dataset.frags
    arrays = {"obs": np.asarray(f.obs), "acts": np.asarray(f.acts),
              "next_obs": np.asarray(f.next_obs), "terminated": np.asarray(f.terminated),
              "prefs": np.asarray(dataset.prefs)}
    _validate(arrays, label=str(path), spec=None, env_label="")
    n, _, length = arrays["terminated"].shape
    metadata = {
        "schema_version": SCHEMA_VERSION, "kind": KIND, "env_id": env_id, "source": source,
        "num_pairs": int(n), "fragment_length": int(length),
        "created": datetime.now(timezone.utc).isoformat(),
        "package_version": demos._package_version(), "extra": dict(extra_metadata or {}),
    }

    def write(file):
        np.savez_compressed(file, metadata=np.array(json.dumps(metadata)), **arrays)

    return write_atomic(path, write)


def load_preferences(path, *, env=None, env_params=None, env_id: str | None = None
                     ) -> tuple[PreferenceDataset, dict]:
    """Read and validate a preference dataset; returns `(dataset, metadata)`."""
    if (env is None) != (env_params is None):
        raise ValueError("load_preferences: pass env and env_params together")
    label = str(path)
    try:
        arrays = demos._read_npz(Path(path), label)
    except demos.DemonstrationError as err:
        raise PreferenceDataError(str(err)) from None
    metadata = _parse_metadata(arrays.pop("metadata", None), label)
    if env_id is not None and metadata["env_id"] != env_id:
        _fail(label, "metadata.env_id", f"is {metadata['env_id']!r}; expected {env_id!r}")
    missing = [name for name in ARRAY_FIELDS if name not in arrays]
    if missing:
        _fail(label, missing[0], f"is missing; expected fields {list(ARRAY_FIELDS)}, "
                                 f"found {sorted(arrays)}")
    spec = space_spec(env, env_params) if env is not None else None
    env_label = f" for {env_id or type(env).__name__}" if env is not None else ""
    _validate(arrays, label=label, spec=spec, env_label=env_label)
    n, _, length = arrays["terminated"].shape
    for key, value in (("num_pairs", n), ("fragment_length", length)):
        if metadata[key] != value:
            _fail(label, f"metadata.{key}", f"is {metadata[key]}; expected {value} (in the file)")
    frags = Fragments(*(jnp.asarray(arrays[k]) for k in ("obs", "acts", "next_obs",
                                                         "terminated")))
    return PreferenceDataset(frags, jnp.asarray(arrays["prefs"], jnp.float32)), metadata


def _parse_metadata(encoded, label: str) -> dict:
    metadata = demos.parse_metadata(encoded, label, fail=_fail, schema_version=SCHEMA_VERSION)
    if metadata.get("kind") != KIND:
        _fail(label, "metadata.kind", f"is {metadata.get('kind')!r}; expected {KIND!r} "
                                      "(a demonstrations file is not a preference dataset)")
    return demos.require_metadata(metadata, label, {"env_id": str, "source": str,
                                                    "num_pairs": int, "fragment_length": int},
                                  fail=_fail)


def _validate(arrays: dict, *, label: str, spec, env_label: str) -> None:
    fail = lambda field, problem: _fail(label, field, problem)
    obs, acts, next_obs = arrays["obs"], arrays["acts"], arrays["next_obs"]
    terminated, prefs = arrays["terminated"], arrays["prefs"]
    discrete_obs = spec is not None and spec.obs_categories is not None
    (obs_kinds, obs_expected), (act_kinds, act_expected) = demos.expected_dtype_kinds(spec)
    for name, array in (("obs", obs), ("next_obs", next_obs)):
        if array.dtype.kind not in obs_kinds:
            fail(name, f"has dtype {array.dtype}; expected {obs_expected}{env_label}")
    if acts.dtype.kind not in act_kinds:
        fail("acts", f"has dtype {acts.dtype}; expected {act_expected}{env_label}")
    if terminated.dtype != np.bool_:
        fail("terminated", f"has dtype {terminated.dtype}; expected bool")
    if prefs.dtype.kind != "f":
        fail("prefs", f"has dtype {prefs.dtype}; expected floating point in [0, 1]")

    if prefs.ndim != 1 or prefs.shape[0] == 0:
        fail("prefs", f"has shape {prefs.shape}; expected (N,) with N >= 1")
    n = prefs.shape[0]
    if terminated.ndim != 3 or terminated.shape[:2] != (n, 2) or terminated.shape[2] == 0:
        fail("terminated", f"has shape {terminated.shape}; expected (N={n}, 2, L) with L >= 1")
    length = terminated.shape[2]
    obs_shape = spec.obs_shape if spec is not None else obs.shape[3:]
    act_shape = spec.act_shape if spec is not None else acts.shape[3:]
    for name, array, trailing in (("obs", obs, obs_shape), ("next_obs", next_obs, obs_shape),
                                  ("acts", acts, act_shape)):
        if array.shape != (n, 2, length, *trailing):
            expected = demos._shape_text([f"N={n}", "2", f"L={length}"], tuple(trailing))
            fail(name, f"has shape {array.shape}; expected {expected}{env_label}")
    for name, array in (("obs", obs), ("next_obs", next_obs), ("acts", acts), ("prefs", prefs)):
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            fail(name, f"has a non-finite value {array[bad]} at index {bad}; expected all finite")
    if np.any((prefs < 0) | (prefs > 1)):
        bad = int(np.argmax((prefs < 0) | (prefs > 1)))
        fail("prefs", f"has prefs[{bad}] = {prefs[bad]}; expected a probability in [0, 1]")
    if np.any(terminated[:, :, :-1]):
        pair, side, step = (int(i) for i in np.argwhere(terminated[:, :, :-1])[0])
        fail("terminated", f"is set at pair {pair}, fragment {side}, step {step}; expected only "
                           f"on a fragment's last step ({length - 1})")
    if spec is None:
        return
    if discrete_obs:
        for name, array in (("obs", obs), ("next_obs", next_obs)):
            demos._check_range(fail, name, array.reshape(-1), 0, spec.obs_categories - 1,
                               env_label)
    flat_acts = acts.reshape((-1,) + tuple(act_shape))
    if spec.discrete_actions:
        demos._check_range(fail, "acts", flat_acts, 0, spec.num_actions - 1, env_label)
    else:
        low = np.asarray(spec.act_low).reshape(spec.act_shape)
        high = np.asarray(spec.act_high).reshape(spec.act_shape)
        demos._check_range(fail, "acts", flat_acts, low, high, env_label)


def dataset_from_buffer(buffer) -> PreferenceDataset:
    """The filled part of one run's comparison buffer (host side), e.g. to save a synthetic
    run's comparisons for offline training."""
    size = int(buffer.size)
    frags = jax.tree.map(lambda x: np.asarray(x)[:size], buffer.frags)
    return PreferenceDataset(frags, np.asarray(buffer.prefs)[:size])
