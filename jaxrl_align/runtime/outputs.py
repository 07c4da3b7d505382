"""What a run leaves on disk besides checkpoints, and the output folder itself.

- JSON files, written atomically through the one writer in `jaxrl_align.data.files`, in
  standard JSON: a non-finite number (a diverged run's loss) is written as null, never as the
  bare `NaN` / `Infinity` that strict parsers refuse.
- The output folder is checked before anything is compiled (`check_output_folder`) and owned by
  one run at a time (`OutputLock`: a lock file with the owner's pid and host; a lock whose
  process is gone is stale and taken over).
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
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


def finite_json(obj):
    """`obj` with NumPy values as Python ones and non-finite floats as None (JSON's null)."""
    if isinstance(obj, dict):
        return {str(k): finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return finite_json(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_text(obj, indent: int | None = None) -> str:
    """Standard JSON (NaN and infinities as null)."""
    return json.dumps(finite_json(obj), indent=indent, allow_nan=False, default=_to_builtin)


def write_json(path: Path, obj) -> Path:
    text = json_text(obj, indent=2) + "\n"
    return write_atomic(path, lambda f: f.write(text.encode()))


class OutputError(ValueError):
    """An output folder that a run cannot use; the message names it and says why."""


def check_output_folder(out: Path) -> None:
    """Refuse, before anything is compiled, an output folder the run could not write: a file in
    its place, a folder (or nearest existing parent) without write permission, or a
    `checkpoints` entry that is a symbolic link or not a folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out: {out} is a file; expected a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"--out: {existing} is not writable")
    checkpoints = out / "checkpoints"
    if checkpoints.is_symlink():
        raise OutputError(f"--out: {checkpoints} is a symbolic link; expected a folder of the "
                          "run's own")
    if checkpoints.exists() and not checkpoints.is_dir():
        raise OutputError(f"--out: {checkpoints} is a file; expected a folder")


LOCK_NAME = ".jaxrl_align.lock"


class OutputLock:
    """`out` owned by this process until `release` (a context manager too): an exclusive
    `flock` on `out/.jaxrl_align.lock`, which records the owner's pid, host and start time. The
    kernel drops the lock when its process ends, however it ends, so a lock file left by a dead
    run is stale and simply taken over (`stale_owner` says whose it was). A second run gets an
    `OutputError` naming the owner. `release` removes the file."""

    def __init__(self, out: Path):
        import fcntl

        self.path = Path(out) / LOCK_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = self._record()
                os.close(self._fd)
                since = time.strftime("%Y-%m-%d %H:%M:%S",
                                      time.localtime(owner.get("started", 0)))
                raise OutputError(
                    f"--out: {out} is in use by another run (pid {owner.get('pid', '?')} on "
                    f"{owner.get('host', '?')}, since {since}); wait for it to finish or "
                    "choose another folder") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(self._fd)  # the owner removed this file as we locked it: take a new one
        self.stale_owner = self._record() or None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(record).encode(), 0)

    def _record(self) -> dict:
        try:
            return json.loads(os.pread(self._fd, 4096, 0) or b"{}")
        except (OSError, json.JSONDecodeError):
            return {}

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still locked: see the inode check above
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
