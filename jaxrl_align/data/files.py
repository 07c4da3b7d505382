"""Data files on disk: one atomic writer, and `.npz` archives read without pickle.

Every dataset format here (demonstrations, preference datasets) is one `.npz` of arrays plus a
`metadata` entry, a JSON string with a schema version. Reading checks everything a training run
would otherwise trip over much later, inside a compiled program, and every problem is one line
naming the file, the field, what was expected and what was found.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np


class DataFileError(ValueError):
    """A data file that cannot be used; the message names the file and the field."""


def write_atomic(path, write: Callable, *, mode: int = 0o644) -> Path:
    """Call `write(file)` on a temporary file beside `path`, flush it to disk, then rename it
    into place: readers see either the old file or the complete new one, never a partial write,
    and a failed write leaves nothing behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # mkstemp makes the file private (0600)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz(path, arrays: dict[str, np.ndarray], metadata: dict) -> Path:
    """`arrays` and the JSON `metadata` as one compressed `.npz`, written atomically."""
    encoded = np.array(json.dumps(metadata))
    return write_atomic(path, lambda f: np.savez_compressed(f, metadata=encoded, **arrays))


def fail(error: type[DataFileError], label: str, field: str, problem: str):
    raise error(f"{label}: field '{field}' {problem}")


def read_npz(path: Path, error: type[DataFileError]) -> dict[str, np.ndarray]:
    """Every member of an `.npz` archive, refusing anything that would need pickle."""
    label = str(path)
    path = Path(path)
    if not path.is_file():
        raise error(f"{label}: no such file")
    field = None
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise error(f"{label}: is a single .npy array; expected an .npz archive")
        with npz:
            # Read every member, not only the known ones: an object array anywhere means the
            # file was written with pickle, which we never load.
            arrays = {}
            for field in npz.files:
                value = npz[field]
                if not isinstance(value, np.ndarray):  # NumPy hands back the raw bytes
                    raise error(f"{label}: field '{field}' is not a NumPy array (its bytes are "
                                "not in .npy format); expected an .npz of arrays written "
                                "without pickle")
                arrays[field] = value
            return arrays
    except DataFileError:
        raise
    except Exception as err:  # zipfile, zlib, EOF and format errors all mean "unreadable"
        where = f"field '{field}' " if field is not None else ""
        reason = " ".join(str(err).split()) or type(err).__name__
        raise error(f"{label}: {where}cannot be read as a NumPy .npz without pickle "
                    f"({type(err).__name__}: {reason})") from None


def parse_metadata(encoded: np.ndarray | None, label: str, error: type[DataFileError],
                   schema_version: int, required: dict[str, type]) -> dict:
    """The JSON object in an archive's `metadata` member: present, a 0-d string, valid JSON, an
    object, of the expected schema version, with each `required` key of the given type."""
    if encoded is None:
        fail(error, label, "metadata", "is missing; expected a JSON string")
    if encoded.shape != () or encoded.dtype.kind != "U":
        fail(error, label, "metadata", f"has dtype {encoded.dtype} and shape {encoded.shape}; "
                                       "expected a 0-d unicode string holding JSON")
    try:
        metadata = json.loads(str(encoded))
    except json.JSONDecodeError as err:
        fail(error, label, "metadata", f"is not valid JSON ({err})")
    if not isinstance(metadata, dict):
        fail(error, label, "metadata", f"is a JSON {type(metadata).__name__}; expected an object")
    version = metadata.get("schema_version")
    if version != schema_version:
        fail(error, label, "metadata.schema_version", f"is {version!r}; expected {schema_version}")
    return require_metadata(metadata, label, error, required)


def require_metadata(metadata: dict, label: str, error: type[DataFileError],
                     required: dict[str, type]) -> dict:
    """Each `required` key present in `metadata` with a value of the given type."""
    for key, kind in required.items():
        if not isinstance(metadata.get(key), kind):
            fail(error, label, f"metadata.{key}",
                 f"is {metadata.get(key)!r}; expected a {kind.__name__}")
    return metadata


def require_fields(arrays: dict, names: tuple[str, ...], label: str,
                   error: type[DataFileError]) -> None:
    missing = [name for name in names if name not in arrays]
    if missing:
        fail(error, label, missing[0], f"is missing; expected fields {list(names)}, "
                                       f"found {sorted(arrays)}")


def expected_dtype_kinds(spec) -> tuple[tuple[str, str], tuple[str, str]]:
    """((obs kinds, description), (action kinds, description)): the NumPy dtype kinds a file's
    observations and actions may have for `spec` (a `SpaceSpec`). Without an env, integer
    observations (state indices) and integer (discrete) actions are both plausible."""
    if spec is None:
        return (("fiu", "floating point or integer"),
                ("fiu", "integer (discrete) or floating point (continuous)"))
    discrete_obs = spec.obs_categories is not None
    return ((("iu", "integer state indices") if discrete_obs else ("f", "floating point")),
            (("iu", "integer") if spec.discrete_actions else ("f", "floating point")))


def check_finite(fail_field: Callable, name: str, array: np.ndarray) -> None:
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        fail_field(name, f"has a non-finite value {array[bad]} at index {bad}; expected all finite")


def check_range(fail_field: Callable, field: str, values: np.ndarray, low, high,
                env_label: str) -> None:
    """`values` [B, *shape] must lie in [low, high] (broadcast over B)."""
    outside = (values < low) | (values > high)
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        if np.ndim(low) == 0:
            bounds = f"[{low}, {high}]"
        else:
            bounds = f"[{np.ravel(low).tolist()}, {np.ravel(high).tolist()}]"
        fail_field(field, f"has value {values[index]} outside {bounds}{env_label}")


def check_spaces(fail_field: Callable, spec, obs_fields: dict[str, np.ndarray],
                 acts: np.ndarray, env_label: str) -> None:
    """Observations within a discrete observation space; actions within the action space."""
    if spec.obs_categories is not None:
        for name, values in obs_fields.items():
            check_range(fail_field, name, values, 0, spec.obs_categories - 1, env_label)
    if spec.discrete_actions:
        check_range(fail_field, "acts", acts, 0, spec.num_actions - 1, env_label)
    else:
        low = np.asarray(spec.act_low).reshape(spec.act_shape)
        high = np.asarray(spec.act_high).reshape(spec.act_shape)
        check_range(fail_field, "acts", acts, low, high, env_label)


def shape_text(named: list[str], trailing: tuple[int, ...]) -> str:
    """Expected shape with the data-dependent leading axes spelled out, e.g. (N=5, T+1=31, 4)."""
    return "(" + ", ".join([*named, *(str(d) for d in trailing)]) + ")"


def package_version() -> str:
    try:
        return importlib.metadata.version("jaxrl_align")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"
