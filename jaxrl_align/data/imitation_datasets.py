"""imitation's trajectory datasets (what `imitation.data.serialize.save` writes, imitation >= 1.0)
read into `Trajectories` and written from them, with pyarrow alone (the `imitation-data` extra).

The format is a Hugging Face `datasets` folder: Arrow IPC streams `data-*.arrow` (listed, in
order, in `state.json`), `dataset_info.json` (the column types as `datasets` features) and
`state.json`. One row per episode i of T_i steps:

    obs       [T_i + 1, *obs_shape]  every observation, the final one included
    acts      [T_i, *act_shape]
    infos     [T_i] strings          each step's info dict, jsonpickle-encoded
    terminal  bool                   True: the episode ended in a terminal state
    rews      [T_i] float            only in datasets of `TrajectoryWithRew`

In `Trajectories` (padded to [N, T+1] with `lengths`, zeros past each episode's end),
terminal=True is `terminated` on the episode's last step and terminal=False is `truncated`
there. Written back, an episode whose last step carries neither flag (cut off by the collection
window) becomes terminal=False, so it reads back as truncated; one with both becomes
terminal=True. Observations and actions keep their kind, at JAX's default precision.

Skipped: `infos`. jsonpickle, like pickle, rebuilds whatever objects a string names, so decoding
a file's infos runs code of the file's choosing; they are never decoded (the loaded metadata
says so under "skipped"), and written infos are "{}", an empty dict, at every step.
A dataset without rews (imitation's plain `Trajectory`) loads with zero rewards and
metadata["rews_missing"] = True. Dict observations (imitation's `DictObs`, which its own `save`
refuses too) are not supported.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_align.data import files
from jaxrl_align.data.demonstrations import ARRAY_FIELDS, DemonstrationError, validate_arrays
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Trajectories

INFOS_SKIPPED = ("not decoded: imitation stores them as jsonpickle strings, and decoding "
                 "jsonpickle (like pickle) runs code that the file names")
DATA_FILE = "data-00000-of-00001.arrow"
STATE_FILE = "state.json"
INFO_FILE = "dataset_info.json"
REQUIRED_COLUMNS = ("obs", "acts", "terminal")
KNOWN_COLUMNS = ("obs", "acts", "infos", "terminal", "rews")


class ImitationDatasetError(files.DataFileError):
    """An imitation dataset folder that cannot be used; the message names it and the field."""


def load_imitation_dataset(path, *, env=None, env_params=None, env_id: str | None = None
                           ) -> tuple[Trajectories, dict]:
    """Read a dataset folder written by `imitation.data.serialize.save`; returns
    `(trajectories, metadata)`.

    With `env` and `env_params`, observations and actions must fit the environment's spaces,
    checked as `load_demos` checks a demonstrations file (`env_id` only names the environment in
    error messages). metadata: "path", "num_episodes", "columns" (each column's Arrow type in
    the file), "description" (dataset_info.json's), "rews_missing" and "skipped" ({"infos": why}).
    """
    pa = _pyarrow()
    if (env is None) != (env_params is None):
        raise ValueError("load_imitation_dataset: pass env and env_params together")
    folder = Path(path)
    label = str(path)
    table = _read_table(folder, pa)
    columns = table.column_names
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            _fail(label, name, f"is missing; expected the columns {list(KNOWN_COLUMNS)} of "
                               f"imitation.data.serialize.save (rews optional), found {columns}")
    if table.num_rows == 0:
        _fail(label, "obs", "has 0 rows; expected at least one episode")

    obs_steps, obs = _steps(table.column("obs"), "obs", label)
    act_steps, acts = _steps(table.column("acts"), "acts", label)
    if np.any(act_steps < 1):
        episode = int(np.argmax(act_steps < 1))
        _fail(label, "acts", f"is empty in episode {episode}; expected at least one action")
    if np.any(obs_steps != act_steps + 1):
        episode = int(np.argmax(obs_steps != act_steps + 1))
        _fail(label, "obs", f"has {obs_steps[episode]} rows in episode {episode}; expected "
                            f"len(acts) + 1 = {act_steps[episode] + 1}")
    rews_missing = "rews" not in columns
    if rews_missing:
        rews = np.zeros((int(act_steps.sum()),), np.float32)
    else:
        rew_steps, rews = _steps(table.column("rews"), "rews", label)
        if rews.ndim != 1:
            _fail(label, "rews", f"has per-step shape {rews.shape[1:]}; expected a scalar")
        if np.any(rew_steps != act_steps):
            episode = int(np.argmax(rew_steps != act_steps))
            _fail(label, "rews", f"has {rew_steps[episode]} entries in episode {episode}; "
                                 f"expected len(acts) = {act_steps[episode]}")
    terminal = table.column("terminal")
    if not pa.types.is_boolean(terminal.type):
        _fail(label, "terminal", f"has Arrow type {terminal.type}; expected bool")
    if terminal.null_count:
        episode = int(np.argmax(terminal.is_null().to_numpy(zero_copy_only=False)))
        _fail(label, "terminal", f"is null in episode {episode}; expected True or False")
    terminal = terminal.to_numpy(zero_copy_only=False).astype(bool)

    n, t = len(act_steps), int(act_steps.max())
    last = (np.arange(n), act_steps - 1)
    terminated, truncated = np.zeros((n, t), bool), np.zeros((n, t), bool)
    terminated[last], truncated[last] = terminal, ~terminal
    arrays = {"obs": _pad(obs, obs_steps, t + 1), "acts": _pad(acts, act_steps, t),
              "rews": _pad(rews, act_steps, t), "terminated": terminated,
              "truncated": truncated, "lengths": act_steps}
    arrays = {name: _default_precision(value) for name, value in arrays.items()}
    spec = space_spec(env, env_params) if env is not None else None
    env_label = ""
    if env is not None:
        env_label = f" for {env_id or getattr(env, 'name', type(env).__name__)}"
    _validate(arrays, label, spec, env_label)

    metadata = {
        "path": label,
        "num_episodes": n,
        "columns": {name: str(table.schema.field(name).type) for name in columns},
        "description": _description(folder),
        "rews_missing": rews_missing,
        "skipped": {"infos": INFOS_SKIPPED},
    }
    trajs = Trajectories(**{name: jnp.asarray(arrays[name]) for name in ARRAY_FIELDS})
    return trajs, metadata


def save_imitation_dataset(path, trajs: Trajectories, *, description: str = "",
                           overwrite: bool = False) -> Path:
    """Write `trajs` as a dataset folder that `imitation.data.serialize.load` reads; returns
    the path.

    Atomic: the folder is written beside `path` under a temporary name and renamed into place,
    so `path` is never half-written and a failure leaves nothing behind. An existing `path` is
    replaced only with `overwrite`, and only if it is a dataset folder (nothing but data-*.arrow,
    dataset_info.json and state.json in it). The data are validated first, as `save_demos`
    does. `description` goes to dataset_info.json.
    """
    pa = _pyarrow()
    path = Path(path)
    label = str(path)
    arrays = {name: np.asarray(getattr(trajs, name)) for name in ARRAY_FIELDS}
    _validate(arrays, label, None, "")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise ImitationDatasetError(f"{label}: exists; expected a new path "
                                        "(or overwrite=True to replace a dataset folder)")
        _check_replaceable(path)

    lengths = arrays["lengths"].astype(np.int64)
    last = (np.arange(len(lengths)), lengths - 1)
    columns = {
        "obs": _list_column(pa, arrays["obs"], lengths + 1),
        "acts": _list_column(pa, arrays["acts"], lengths),
        "infos": _list_column(pa, np.full(arrays["rews"].shape, "{}"), lengths),
        "terminal": pa.array(arrays["terminated"][last]),
        "rews": _list_column(pa, arrays["rews"], lengths),
    }
    features = {"obs": _feature(arrays["obs"].dtype, arrays["obs"].ndim - 1),
                "acts": _feature(arrays["acts"].dtype, arrays["acts"].ndim - 1),
                "infos": _feature(None, 1), "terminal": _feature(np.bool_, 0),
                "rews": _feature(arrays["rews"].dtype, 1)}
    schema = pa.schema([pa.field(name, column.type) for name, column in columns.items()],
                       metadata={"huggingface": json.dumps({"info": {"features": features}})})
    table = pa.Table.from_arrays(list(columns.values()), schema=schema)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes the folder private (0700)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(table)
        data = sink.getvalue().to_pybytes()
        _write_synced(tmp / DATA_FILE, data)
        # Old-style `Sequence` features: every `datasets` version reads them (`List`, what
        # datasets >= 4 writes, is unknown before 4.0), and they map to the same Arrow types.
        info = {"citation": "", "description": description, "features": features,
                "homepage": "", "license": ""}
        state = {"_data_files": [{"filename": DATA_FILE}],
                 "_fingerprint": hashlib.sha256(data).hexdigest()[:16],
                 "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
                 "_output_all_columns": False, "_split": None}
        _write_synced(tmp / INFO_FILE, (json.dumps(info, indent=2) + "\n").encode())
        _write_synced(tmp / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# --- reading -------------------------------------------------------------------------------------
def _pyarrow():
    try:
        import pyarrow
    except ImportError as err:
        raise ImportError("reading and writing imitation datasets needs pyarrow: "
                          "pip install 'jaxrl_align[imitation-data]'") from err
    return pyarrow


def _fail(label: str, field: str, problem: str):
    files.fail(ImitationDatasetError, label, field, problem)


def _validate(arrays: dict, label: str, spec, env_label: str) -> None:
    """`load_demos`'s checks (shapes, dtypes, finiteness, flags, the env's spaces), raised as
    this module's error."""
    try:
        validate_arrays(arrays, label=label, spec=spec, env_label=env_label)
    except DemonstrationError as err:
        raise ImitationDatasetError(str(err)) from None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ImitationDatasetError(f"{path}: no such file; expected the {path.name} that "
                                    "imitation.data.serialize.save writes")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ImitationDatasetError(f"{path}: is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ImitationDatasetError(f"{path}: is a JSON {type(value).__name__}; expected an object")
    return value


def _read_table(folder: Path, pa):
    """The data files listed in state.json, in order, as one table."""
    if not folder.exists():
        raise ImitationDatasetError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ImitationDatasetError(
            f"{folder}: is a file; expected a folder written by imitation.data.serialize.save "
            f"(data-*.arrow, {INFO_FILE}, {STATE_FILE})")
    state_path = folder / STATE_FILE
    data_files = _read_json(state_path).get("_data_files")
    if not (isinstance(data_files, list) and data_files
            and all(isinstance(f, dict) and isinstance(f.get("filename"), str)
                    for f in data_files)):
        files.fail(ImitationDatasetError, str(state_path), "_data_files",
                   f"is {data_files!r}; expected a non-empty list of {{\"filename\": name}}")
    tables = []
    for entry in data_files:
        name = entry["filename"]
        if name in ("", ".", "..") or Path(name).name != name:
            files.fail(ImitationDatasetError, str(state_path), "_data_files",
                       f"names {name!r}; expected a file name inside {folder}")
        file = folder / name
        if not file.is_file():
            raise ImitationDatasetError(f"{file}: no such file (listed in {state_path})")
        try:
            with pa.OSFile(str(file)) as source:  # read into memory: nothing stays mapped
                tables.append(pa.ipc.open_stream(source).read_all())
        except (pa.ArrowException, OSError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise ImitationDatasetError(f"{file}: cannot be read as an Arrow IPC stream "
                                        f"({type(err).__name__}: {reason})") from None
        if not tables[-1].schema.equals(tables[0].schema):
            raise ImitationDatasetError(
                f"{file}: has columns {tables[-1].schema.types}; expected those of "
                f"{folder / data_files[0]['filename']} ({tables[0].schema.types})")
    return pa.concat_tables(tables)


def _description(folder: Path) -> str:
    """dataset_info.json's description: the file is optional here (only `datasets` needs it)."""
    info_path = folder / INFO_FILE
    if not info_path.exists():
        return ""
    description = _read_json(info_path).get("description", "")
    return description if isinstance(description, str) else ""


def _steps(column, name: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    """A column of per-episode lists as (steps per episode [N], values [sum of steps, *shape]):
    every step must have the same shape."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def is_list(kind):
        return pa.types.is_list(kind) or pa.types.is_large_list(kind) or \
            pa.types.is_fixed_size_list(kind)

    def check_leaf_type(kind):
        if pa.types.is_struct(kind) or pa.types.is_map(kind):
            _fail(label, name, f"has Arrow type {column.type}; dict observations (imitation's "
                               "DictObs) are not supported: expected lists of numbers")
        if is_list(kind):
            check_leaf_type(kind.value_type)
        elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                  or pa.types.is_boolean(kind)):
            _fail(label, name, f"has Arrow type {column.type}; expected lists of numbers")

    if not is_list(column.type):
        _fail(label, name, f"has Arrow type {column.type}; expected a list per episode")
    check_leaf_type(column.type)
    values = column.combine_chunks()
    if values.null_count:
        episode = int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
        _fail(label, name, f"is null in episode {episode}; expected a list")
    steps = pc.list_value_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(values)
    shape = []
    while is_list(values.type):
        if values.null_count:
            _fail(label, name, "has a null entry inside an episode; expected numbers")
        sizes = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        if len(sizes) and np.any(sizes != sizes[0]):
            where = int(np.argmax(sizes != sizes[0]))
            _fail(label, name, f"has entries of {sizes[0]} and {sizes[where]} values at depth "
                               f"{len(shape) + 2}; expected every step to have the same shape")
        shape.append(int(sizes[0]) if len(sizes) else 0)
        values = pc.list_flatten(values)
    if values.null_count:
        _fail(label, name, "has a null entry inside an episode; expected numbers")
    return steps, values.to_numpy(zero_copy_only=False).reshape((int(steps.sum()), *shape))


def _pad(values: np.ndarray, steps: np.ndarray, width: int) -> np.ndarray:
    """Episodes laid end to end ([sum of steps, ...]) as [N, width, ...], zeros after each."""
    episode = np.repeat(np.arange(len(steps)), steps)
    start = np.concatenate([[0], np.cumsum(steps)[:-1]])
    position = np.arange(len(values)) - np.repeat(start, steps)
    padded = np.zeros((len(steps), width, *values.shape[1:]), values.dtype)
    padded[episode, position] = values
    return padded


def _default_precision(array: np.ndarray) -> np.ndarray:
    """At the dtype `jnp.asarray` would give it (float64 -> float32 unless x64 is on), converted
    here in NumPy so that validation sees what training will."""
    return array.astype(jax.dtypes.canonicalize_dtype(array.dtype), copy=False)


# --- writing -------------------------------------------------------------------------------------
def _list_column(pa, padded: np.ndarray, steps: np.ndarray):
    """[N, width, *shape] padded episodes as a list (episode) of lists (steps) of ... values."""
    mask = np.arange(padded.shape[1])[None, :] < steps[:, None]
    values = padded[mask]  # [sum of steps, *shape]
    column = pa.array(values.reshape(-1))
    if len(column) >= 2**31:
        raise ImitationDatasetError(f"{len(column)} values in one column; at most 2**31 - 1 fit "
                                    "the Arrow lists that `datasets` reads")
    for depth in range(values.ndim - 1, 0, -1):
        size = values.shape[depth]
        parents = int(np.prod(values.shape[:depth]))
        column = pa.ListArray.from_arrays(pa.array(np.arange(parents + 1, dtype=np.int32) * size),
                                          column)
    offsets = np.concatenate([[0], np.cumsum(steps)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), column)


def _feature(dtype, depth: int) -> dict:
    """The `datasets` feature of a column: `depth` nested Sequences of a Value."""
    feature = {"dtype": "string" if dtype is None else np.dtype(dtype).name, "_type": "Value"}
    for _ in range(depth):
        feature = {"feature": feature, "length": -1, "_type": "Sequence"}
    return feature


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _check_replaceable(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        raise ImitationDatasetError(f"{path}: is not a folder; only a dataset folder is replaced")
    others = [p.name for p in path.iterdir()
              if not (p.is_file() and (p.name in (INFO_FILE, STATE_FILE)
                                       or (p.name.startswith("data-") and p.suffix == ".arrow")))]
    if others:
        raise ImitationDatasetError(f"{path}: holds {sorted(others)[:3]}, not only a dataset's "
                                    f"data-*.arrow, {INFO_FILE} and {STATE_FILE}; not replaced")


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished folder `tmp` to `path`; an existing `path` is moved aside first and
    removed only once the new one is in place (put back if that rename fails)."""
    if not (path.exists() or path.is_symlink()):
        os.rename(tmp, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.rmdir(old)
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
