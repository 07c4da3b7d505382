"""Preference-labelled fragment pairs on disk: one `.npz` per dataset, never pickle.

The same conventions as demonstrations (`jaxrl_align.data.files`): the arrays plus a `metadata`
entry (a JSON string with a schema version, the environment id and the source of the labels),
written atomically; loading checks the file, the schema, shapes, dtypes, finiteness, label range
and the match with the environment's spaces, and every problem is a `PreferenceDataError` whose
one-line message names the file and the field.

Fields (N pairs of fragments of L steps):
    obs        [N, 2, L, *obs_shape]   observation before each step
    acts       [N, 2, L, *act_shape]   executed action
    next_obs   [N, 2, L, *obs_shape]   observation after each step (the true final one at an end)
    terminated [N, 2, L] bool          set only on a fragment's last step
    prefs      [N] float in [0, 1]     p(fragment 0 ≻ fragment 1): 1, 0, 0.5 (tie) or soft
Recorded human preferences use the same file: one row per judged pair.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_align.data import files
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Transitions

SCHEMA_VERSION = 1
KIND = "preference_comparisons"
ARRAY_FIELDS = ("obs", "acts", "next_obs", "terminated", "prefs")


class PreferenceDataError(files.DataFileError):
    """A preference dataset that cannot be used; the message names the file and the field."""


@struct.dataclass
class PreferenceDataset:
    frags: Transitions  # [N, 2, L, ...] (obs, acts, next_obs, terminated)
    prefs: jax.Array  # [N]

    def __len__(self) -> int:
        return self.prefs.shape[0]


def _fail(label: str, field: str, problem: str):
    files.fail(PreferenceDataError, label, field, problem)


def save_preferences(path, dataset: PreferenceDataset, *, env_id: str, source: str,
                     extra_metadata: dict | None = None) -> Path:
    """Write `dataset` to `path` (an `.npz`) atomically, after validating it."""
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
        "package_version": files.package_version(), "extra": dict(extra_metadata or {}),
    }
    return files.save_npz(path, arrays, metadata)


def load_preferences(path, *, env=None, env_params=None, env_id: str | None = None
                     ) -> tuple[PreferenceDataset, dict]:
    """Read and validate a preference dataset; returns `(dataset, metadata)`."""
    if (env is None) != (env_params is None):
        raise ValueError("load_preferences: pass env and env_params together")
    label = str(path)
    arrays = files.read_npz(Path(path), PreferenceDataError)
    metadata = files.parse_metadata(arrays.pop("metadata", None), label, PreferenceDataError,
                                    SCHEMA_VERSION, {})
    if metadata.get("kind") != KIND:
        _fail(label, "metadata.kind", f"is {metadata.get('kind')!r}; expected {KIND!r} "
                                      "(a demonstrations file is not a preference dataset)")
    files.require_metadata(metadata, label, PreferenceDataError,
                           {"env_id": str, "source": str, "num_pairs": int, "fragment_length": int})
    if env_id is not None and metadata["env_id"] != env_id:
        _fail(label, "metadata.env_id", f"is {metadata['env_id']!r}; expected {env_id!r}")
    files.require_fields(arrays, ARRAY_FIELDS, label, PreferenceDataError)
    spec = space_spec(env, env_params) if env is not None else None
    env_label = f" for {env_id or type(env).__name__}" if env is not None else ""
    _validate(arrays, label=label, spec=spec, env_label=env_label)
    n, _, length = arrays["terminated"].shape
    for key, value in (("num_pairs", n), ("fragment_length", length)):
        if metadata[key] != value:
            _fail(label, f"metadata.{key}", f"is {metadata[key]}; expected {value} (in the file)")
    frags = Transitions(*(jnp.asarray(arrays[k]) for k in ("obs", "acts", "next_obs",
                                                           "terminated")))
    return PreferenceDataset(frags, jnp.asarray(arrays["prefs"], jnp.float32)), metadata


def _validate(arrays: dict, *, label: str, spec, env_label: str) -> None:
    fail = lambda field, problem: _fail(label, field, problem)
    obs, acts, next_obs = arrays["obs"], arrays["acts"], arrays["next_obs"]
    terminated, prefs = arrays["terminated"], arrays["prefs"]
    (obs_kinds, obs_expected), (act_kinds, act_expected) = files.expected_dtype_kinds(spec)
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
            expected = files.shape_text([f"N={n}", "2", f"L={length}"], tuple(trailing))
            fail(name, f"has shape {array.shape}; expected {expected}{env_label}")
    for name, array in (("obs", obs), ("next_obs", next_obs), ("acts", acts), ("prefs", prefs)):
        files.check_finite(fail, name, array)
    if np.any((prefs < 0) | (prefs > 1)):
        bad = int(np.argmax((prefs < 0) | (prefs > 1)))
        fail("prefs", f"has prefs[{bad}] = {prefs[bad]}; expected a probability in [0, 1]")
    if np.any(terminated[:, :, :-1]):
        pair, side, step = (int(i) for i in np.argwhere(terminated[:, :, :-1])[0])
        fail("terminated", f"is set at pair {pair}, fragment {side}, step {step}; expected only "
                           f"on a fragment's last step ({length - 1})")
    if spec is not None:
        files.check_spaces(fail, spec, {"obs": obs.reshape(-1), "next_obs": next_obs.reshape(-1)},
                           acts.reshape((-1,) + tuple(act_shape)), env_label)


def dataset_from_buffer(buffer) -> PreferenceDataset:
    """The filled part of one run's comparison buffer (a `preferences.model` ring buffer, host
    side), e.g. to save a synthetic run's comparisons for offline training."""
    size = int(buffer.size)
    frags = jax.tree.map(lambda x: np.asarray(x)[:size], buffer.items.frags)
    return PreferenceDataset(frags, np.asarray(buffer.items.prefs)[:size])
