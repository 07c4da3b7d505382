"""Demonstrations on disk: one `.npz` per dataset, never pickle.

A file holds the `Trajectories` arrays plus a `metadata` entry (a JSON string) saying which
environment and policy produced them. Loading checks everything a training run would otherwise
trip over much later, inside a compiled program, with an unreadable error: the file, the schema,
shapes, dtypes, finiteness and the match with the environment's spaces. Every problem is a
`DemonstrationError` whose one-line message names the file, the field, what was expected and
what was found.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from jaxrl_align.spaces import SpaceSpec, space_spec
from jaxrl_align.types import Trajectories, flatten_trajectories

SCHEMA_VERSION = 1
ARRAY_FIELDS = ("obs", "acts", "rews", "terminated", "truncated", "lengths")

# Demonstrations are consumed as flat transitions by BC and the discriminators; one definition.
demo_transitions = flatten_trajectories


class DemonstrationError(ValueError):
    """A demonstrations file that cannot be used; the message names the file and the field."""


def save_demos(path, trajs: Trajectories, *, env_id: str, source: str,
               extra_metadata: dict | None = None) -> Path:
    """Write `trajs` to `path` (an `.npz`) atomically and return the path.

    `source` describes the policy that produced the episodes (e.g. "PPO expert, seed 3,
    return 500"). `extra_metadata` must be JSON-serialisable; it is stored under "extra".
    The data are validated first, so a file that `load_demos` would reject is never written.
    """
    path = Path(path)
    arrays = {name: np.asarray(getattr(trajs, name)) for name in ARRAY_FIELDS}
    _validate_arrays(arrays, label=str(path), spec=None, env_label="")
    returns = _episode_returns(arrays)
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "env_id": env_id,
        "source": source,
        "num_episodes": int(arrays["lengths"].shape[0]),
        "episode_returns": returns.tolist(),
        "mean_return": float(returns.mean()),
        "created": datetime.now(timezone.utc).isoformat(),
        "package_version": _package_version(),
        "extra": dict(extra_metadata or {}),
    }
    encoded_metadata = np.array(json.dumps(metadata))

    # Write next to the destination (same filesystem, so os.replace is atomic): readers see
    # either the old file or the complete new one, never a partial write.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp creates the file private (0600); demonstrations are meant to be shared.
            os.fchmod(f.fileno(), 0o644)
            np.savez_compressed(f, metadata=encoded_metadata, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_demos(path, *, env=None, env_params=None, env_id: str | None = None
               ) -> tuple[Trajectories, dict]:
    """Read and validate a demonstrations file; returns `(trajectories, metadata)`.

    With `env` and `env_params`, observations and actions must fit the environment's spaces;
    with `env_id`, the file must have been recorded on that environment. All checks run on the
    host in NumPy, before anything is handed to JAX.
    """
    if (env is None) != (env_params is None):
        raise ValueError("load_demos: pass env and env_params together")
    label = str(path)
    arrays = _read_npz(Path(path), label)
    metadata = _parse_metadata(arrays.pop("metadata", None), label)

    if env_id is not None and metadata["env_id"] != env_id:
        _fail(label, "metadata.env_id", f"is {metadata['env_id']!r}; expected {env_id!r}")
    missing = [name for name in ARRAY_FIELDS if name not in arrays]
    if missing:
        _fail(label, missing[0], f"is missing; expected fields {list(ARRAY_FIELDS)}, "
                                 f"found {sorted(arrays)}")
    spec = space_spec(env, env_params) if env is not None else None
    env_label = ""
    if env is not None:
        env_label = f" for {env_id or getattr(env, 'name', type(env).__name__)}"
    _validate_arrays(arrays, label=label, spec=spec, env_label=env_label)
    num_episodes = arrays["lengths"].shape[0]
    if metadata["num_episodes"] != num_episodes:
        _fail(label, "metadata.num_episodes",
              f"is {metadata['num_episodes']}; expected {num_episodes} (episodes in the file)")
    trajs = Trajectories(**{name: jnp.asarray(arrays[name]) for name in ARRAY_FIELDS})
    return trajs, metadata


def _fail(label: str, field: str, problem: str):
    raise DemonstrationError(f"{label}: field '{field}' {problem}")


def _read_npz(path: Path, label: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DemonstrationError(f"{label}: no such file")
    field = None
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DemonstrationError(f"{label}: is a single .npy array; expected an .npz archive")
        with npz:
            # Read every member, not only the known ones: an object array anywhere means the
            # file was written with pickle, which we never load.
            arrays = {}
            for field in npz.files:
                arrays[field] = npz[field]
            return arrays
    except DemonstrationError:
        raise
    except Exception as err:  # zipfile, zlib, EOF and format errors all mean "unreadable"
        where = f"field '{field}' " if field is not None else ""
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DemonstrationError(
            f"{label}: {where}cannot be read as a NumPy .npz without pickle "
            f"({type(err).__name__}: {reason})") from None


def parse_metadata(encoded: np.ndarray | None, label: str, *, fail=_fail,
                   schema_version: int = SCHEMA_VERSION) -> dict:
    """The JSON object in an npz file's `metadata` field (shared by every file format here):
    present, a 0-d string, valid JSON, an object, the expected schema version;
    `fail(label, field, problem)` raises."""
    if encoded is None:
        fail(label, "metadata", "is missing; expected a JSON string")
    if encoded.shape != () or encoded.dtype.kind != "U":
        fail(label, "metadata", f"has dtype {encoded.dtype} and shape {encoded.shape}; "
                                "expected a 0-d unicode string holding JSON")
    try:
        metadata = json.loads(str(encoded))
    except json.JSONDecodeError as err:
        fail(label, "metadata", f"is not valid JSON ({err})")
    if not isinstance(metadata, dict):
        fail(label, "metadata", f"is a JSON {type(metadata).__name__}; expected an object")
    version = metadata.get("schema_version")
    if version != schema_version:
        fail(label, "metadata.schema_version", f"is {version!r}; expected {schema_version}")
    return metadata


def require_metadata(metadata: dict, label: str, required: dict[str, type], *,
                     fail=_fail) -> dict:
    """Each `required` key present in `metadata` with a value of the given type."""
    for key, kind in required.items():
        if not isinstance(metadata.get(key), kind):
            fail(label, f"metadata.{key}", f"is {metadata.get(key)!r}; expected a {kind.__name__}")
    return metadata


def _parse_metadata(encoded: np.ndarray | None, label: str) -> dict:
    return require_metadata(parse_metadata(encoded, label), label,
                            {"env_id": str, "source": str, "num_episodes": int})


def expected_dtype_kinds(spec: SpaceSpec | None):
    """((obs kinds, description), (action kinds, description)): the NumPy dtype kinds a file's
    observations and actions may have for `spec`. Without an env, integer observations (state
    indices) and integer (discrete) actions are both plausible."""
    if spec is None:
        return (("fiu", "floating point or integer"),
                ("fiu", "integer (discrete) or floating point (continuous)"))
    discrete_obs = spec.obs_categories is not None
    return ((("iu", "integer state indices") if discrete_obs else ("f", "floating point")),
            (("iu", "integer") if spec.discrete_actions else ("f", "floating point")))


def _validate_arrays(arrays: dict[str, np.ndarray], *, label: str, spec: SpaceSpec | None,
                     env_label: str) -> None:
    """Shapes, dtypes, finiteness and (given `spec`) the env's spaces, in NumPy."""
    fail = lambda field, problem: _fail(label, field, problem)
    obs, acts, rews = arrays["obs"], arrays["acts"], arrays["rews"]
    lengths = arrays["lengths"]

    # Dtypes first: shape and value checks below rely on them.
    discrete_obs = spec is not None and spec.obs_categories is not None
    (obs_kinds, obs_expected), (act_kinds, act_expected) = expected_dtype_kinds(spec)
    if obs.dtype.kind not in obs_kinds:
        fail("obs", f"has dtype {obs.dtype}; expected {obs_expected}{env_label}")
    if acts.dtype.kind not in act_kinds:
        fail("acts", f"has dtype {acts.dtype}; expected {act_expected}{env_label}")
    if rews.dtype.kind != "f":
        fail("rews", f"has dtype {rews.dtype}; expected floating point")
    for name in ("terminated", "truncated"):
        if arrays[name].dtype != np.bool_:
            fail(name, f"has dtype {arrays[name].dtype}; expected bool")
    if lengths.dtype.kind not in "iu":
        fail("lengths", f"has dtype {lengths.dtype}; expected integer")

    # Shapes: rews fixes N episodes and T steps; everything else must agree.
    if rews.ndim != 2 or 0 in rews.shape:
        fail("rews", f"has shape {rews.shape}; expected (N, T) with N, T >= 1")
    n, t = rews.shape
    for name in ("terminated", "truncated"):
        if arrays[name].shape != (n, t):
            fail(name, f"has shape {arrays[name].shape}; expected (N={n}, T={t})")
    if lengths.shape != (n,):
        fail("lengths", f"has shape {lengths.shape}; expected (N={n},)")
    obs_shape = spec.obs_shape if spec is not None else obs.shape[2:]
    if obs.shape != (n, t + 1, *obs_shape):
        expected = _shape_text([f"N={n}", f"T+1={t + 1}"], obs_shape)
        fail("obs", f"has shape {obs.shape}; expected {expected}{env_label}")
    act_shape = spec.act_shape if spec is not None else acts.shape[2:]
    if acts.shape != (n, t, *act_shape):
        expected = _shape_text([f"N={n}", f"T={t}"], act_shape)
        fail("acts", f"has shape {acts.shape}; expected {expected}{env_label}")

    # Values.
    for name in ("obs", "acts", "rews"):
        array = arrays[name]
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            fail(name, f"has a non-finite value {array[bad]} at index {bad}; expected all finite")
    if lengths.min() < 1 or lengths.max() > t:
        bad = int(np.argmax((lengths < 1) | (lengths > t)))
        fail("lengths", f"has lengths[{bad}] = {lengths[bad]}; expected 1 <= length <= T={t}")
    step_mask = np.arange(t)[None, :] < lengths[:, None]
    last_step = np.arange(t)[None, :] == (lengths[:, None] - 1)
    for name in ("terminated", "truncated"):
        if np.any(arrays[name] & ~last_step):
            episode, step = np.argwhere(arrays[name] & ~last_step)[0]
            fail(name, f"is set at episode {episode}, step {step}; expected only on each "
                       f"episode's last step (lengths[{episode}] - 1 = {lengths[episode] - 1})")
    if spec is None:
        return
    if discrete_obs:
        obs_mask = np.arange(t + 1)[None, :] <= lengths[:, None]
        _check_range(fail, "obs", obs[obs_mask], 0, spec.obs_categories - 1, env_label)
    if spec.discrete_actions:
        _check_range(fail, "acts", acts[step_mask], 0, spec.num_actions - 1, env_label)
    else:
        low = np.asarray(spec.act_low).reshape(spec.act_shape)
        high = np.asarray(spec.act_high).reshape(spec.act_shape)
        _check_range(fail, "acts", acts[step_mask], low, high, env_label)


def _check_range(fail, field: str, values: np.ndarray, low, high, env_label: str) -> None:
    """`values` [B, *shape] of real steps must lie in [low, high] (broadcast over B)."""
    outside = (values < low) | (values > high)
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        if np.ndim(low) == 0:
            bounds = f"[{low}, {high}]"
        else:
            bounds = f"[{np.ravel(low).tolist()}, {np.ravel(high).tolist()}]"
        fail(field, f"has value {values[index]} outside {bounds}{env_label}")


def _shape_text(named: list[str], trailing: tuple[int, ...]) -> str:
    """Expected shape with the data-dependent leading axes spelled out, e.g. (N=5, T+1=31, 4)."""
    return "(" + ", ".join([*named, *(str(d) for d in trailing)]) + ")"


def _episode_returns(arrays: dict[str, np.ndarray]) -> np.ndarray:
    t = arrays["rews"].shape[1]
    mask = np.arange(t)[None, :] < arrays["lengths"][:, None]
    return np.where(mask, arrays["rews"], 0.0).sum(axis=1)


def _package_version() -> str:
    try:
        return importlib.metadata.version("jaxrl_align")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"
