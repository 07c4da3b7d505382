"""Demonstrations on disk: one `.npz` per dataset, never pickle.

A file holds the `Trajectories` arrays plus a `metadata` entry (a JSON string) saying which
environment and policy produced them. Loading checks the file, the schema, shapes, dtypes,
finiteness and the match with the environment's spaces; every problem is a
`DemonstrationError` whose one-line message names the file, the field, what was expected and
what was found (`jaxrl_align.data.files`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from jaxrl_align.data import files
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Trajectories, flatten_trajectories

SCHEMA_VERSION = 1
ARRAY_FIELDS = ("obs", "acts", "rews", "terminated", "truncated", "lengths")

# Demonstrations are consumed as flat transitions by BC and the discriminators; one definition.
demo_transitions = flatten_trajectories


class DemonstrationError(files.DataFileError):
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
    validate_arrays(arrays, label=str(path), spec=None, env_label="")
    returns = _episode_returns(arrays)
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "env_id": env_id,
        "source": source,
        "num_episodes": int(arrays["lengths"].shape[0]),
        "episode_returns": returns.tolist(),
        "mean_return": float(returns.mean()),
        "created": datetime.now(timezone.utc).isoformat(),
        "package_version": files.package_version(),
        "extra": dict(extra_metadata or {}),
    }
    return files.save_npz(path, arrays, metadata)


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
    arrays = files.read_npz(Path(path), DemonstrationError)
    metadata = files.parse_metadata(arrays.pop("metadata", None), label, DemonstrationError,
                                    SCHEMA_VERSION,
                                    {"env_id": str, "source": str, "num_episodes": int})
    if env_id is not None and metadata["env_id"] != env_id:
        _fail(label, "metadata.env_id", f"is {metadata['env_id']!r}; expected {env_id!r}")
    files.require_fields(arrays, ARRAY_FIELDS, label, DemonstrationError)
    spec = space_spec(env, env_params) if env is not None else None
    env_label = ""
    if env is not None:
        env_label = f" for {env_id or getattr(env, 'name', type(env).__name__)}"
    validate_arrays(arrays, label=label, spec=spec, env_label=env_label)
    num_episodes = arrays["lengths"].shape[0]
    if metadata["num_episodes"] != num_episodes:
        _fail(label, "metadata.num_episodes",
              f"is {metadata['num_episodes']}; expected {num_episodes} (episodes in the file)")
    trajs = Trajectories(**{name: jnp.asarray(arrays[name]) for name in ARRAY_FIELDS})
    return trajs, metadata


def _fail(label: str, field: str, problem: str):
    files.fail(DemonstrationError, label, field, problem)


def validate_arrays(arrays: dict[str, np.ndarray], *, label: str, spec, env_label: str) -> None:
    """Shapes, dtypes, finiteness and (given `spec`) the env's spaces, in NumPy."""
    fail = lambda field, problem: _fail(label, field, problem)
    obs, acts, rews = arrays["obs"], arrays["acts"], arrays["rews"]
    lengths = arrays["lengths"]

    # Dtypes first: shape and value checks below rely on them.
    (obs_kinds, obs_expected), (act_kinds, act_expected) = files.expected_dtype_kinds(spec)
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
        expected = files.shape_text([f"N={n}", f"T+1={t + 1}"], obs_shape)
        fail("obs", f"has shape {obs.shape}; expected {expected}{env_label}")
    act_shape = spec.act_shape if spec is not None else acts.shape[2:]
    if acts.shape != (n, t, *act_shape):
        expected = files.shape_text([f"N={n}", f"T={t}"], act_shape)
        fail("acts", f"has shape {acts.shape}; expected {expected}{env_label}")

    # Values.
    for name in ("obs", "acts", "rews"):
        files.check_finite(fail, name, arrays[name])
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
    if spec is not None:
        obs_mask = np.arange(t + 1)[None, :] <= lengths[:, None]
        files.check_spaces(fail, spec, {"obs": obs[obs_mask]}, acts[step_mask], env_label)


def _episode_returns(arrays: dict[str, np.ndarray]) -> np.ndarray:
    t = arrays["rews"].shape[1]
    mask = np.arange(t)[None, :] < arrays["lengths"][:, None]
    return np.where(mask, arrays["rews"], 0.0).sum(axis=1)
