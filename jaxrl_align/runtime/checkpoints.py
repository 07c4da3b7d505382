"""orbax checkpoints of a whole run between chunks, verified on restore.

A checkpoint holds every run's algorithm state (parameters, optimiser states, normaliser
statistics, RNG keys: whatever the algorithm keeps in its state, for every seed and sweep point)
plus a JSON record of the host side (chunk counter, metric and evaluation logs, divergence
reports, the run's fingerprint, and the SHA-256 of the state it was saved with).

- orbax writes each step into a temporary folder and renames it into place only when complete,
  so a process killed mid-save leaves the previous step as the latest one.
- `restore_latest` restores the newest step and checks the restored state against the digest
  recorded with it; a step that fails to restore (a truncated or missing file) or does not match
  (changed bytes) is skipped, with a line saying why, for the next older one.
- orbax cannot store arrays of zero size; such leaves are left out and rebuilt as zeros from the
  abstract state on restore.
- Nothing here deletes a run's folder: an output folder holding an earlier run's checkpoints is
  the runner's to refuse or, told to overwrite, to clear (`clear_steps`, which removes step
  folders and nothing else).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import jax
import numpy as np

_STEP = re.compile(r"^\d+$")
_TMP_STEP = re.compile(r"^\d+\.orbax-checkpoint-tmp")


class ResumeError(ValueError):
    """The checkpoint to resume from cannot be used: another run's, or none intact."""


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def step_folders(directory: Path) -> list[Path]:
    """Checkpoint step folders (complete or temporary) in `directory`, nothing else."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_dir() and (_STEP.match(p.name) or _TMP_STEP.match(p.name)))


def completed_steps(directory: Path) -> list[int]:
    return sorted(int(p.name) for p in step_folders(directory) if _STEP.match(p.name))


def clear_steps(directory: Path) -> list[Path]:
    """Delete the step folders in `directory` (and only them); returns what was deleted."""
    removed = step_folders(directory)
    for path in removed:
        shutil.rmtree(path)
    return removed


def _local_digest(states) -> str:
    """SHA-256 of the parts of `states` this process holds (every leaf's addressable shards, in
    index order)."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(states):
        h.update(f"{leaf.dtype}{leaf.shape}".encode())
        shards = sorted(leaf.addressable_shards, key=lambda s: str(s.index))
        for shard in shards:
            h.update(np.ascontiguousarray(np.asarray(shard.data)).tobytes())
    return h.hexdigest()


def state_digests(states) -> list[str]:
    """One digest per process of `states` (every process gets the whole list)."""
    digest = _local_digest(states)
    if jax.process_count() == 1:
        return [digest]
    from jax.experimental import multihost_utils

    raw = np.frombuffer(bytes.fromhex(digest), np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(raw))
    return [bytes(row.astype(np.uint8)).hex() for row in gathered.reshape(-1, raw.size)]


def _pack(state):
    """The non-empty leaves of `state` by index (orbax refuses zero-size arrays)."""
    return {str(i): x for i, x in enumerate(jax.tree.leaves(state)) if math.prod(x.shape) > 0}


def _unpack(abstract, restored):
    leaves, treedef = jax.tree.flatten(abstract)
    out = []
    for i, a in enumerate(leaves):
        if math.prod(a.shape) > 0:
            out.append(restored[str(i)])
        else:
            zeros = np.zeros(a.shape, a.dtype)
            out.append(jax.make_array_from_callback(a.shape, a.sharding, lambda idx: zeros[idx]))
    return jax.tree.unflatten(treedef, out)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:160]}" if text else type(err).__name__


class RunCheckpoints:
    def __init__(self, directory: Path, keep: int):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=True),
            item_names=("state", "meta"))
        self._closed = False
        # Closed however the run ends: an open manager's threads fail noisily at exit.
        atexit.register(self.close)

    def save(self, step: int, states: list, meta: dict) -> None:
        ocp = self._ocp
        # A copy frozen now: orbax writes `meta` in the background, while the caller goes on
        # appending to the lists it passed (a resumed run then repeated a chunk's metrics line).
        meta = json.loads(json.dumps({**meta, "state_sha256": state_digests(states)}))
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave([_pack(s) for s in states]),
            meta=ocp.args.JsonSave(meta)))

    def restore_meta(self, step: int) -> dict:
        ocp = self._ocp
        return self.manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))["meta"]

    def restore_state(self, step: int, abstract_states: list, meta: dict) -> list:
        """The states of `step`, verified against the digest saved with them (in `meta`)."""
        ocp = self._ocp
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore([_pack(a) for a in abstract_states])))["state"]
        states = [_unpack(a, r) for a, r in zip(abstract_states, restored)]
        expected = meta.get("state_sha256")
        if not isinstance(expected, list) or _local_digest(states) != \
                expected[min(jax.process_index(), len(expected) - 1)]:
            raise ValueError("its state does not match the checksum saved with it")
        return states

    def restore_latest(self, abstract_states: list, check_meta=lambda meta: None):
        """(step, meta, states, skipped) of the newest step that restores and verifies, or
        (None, None, None, skipped); `skipped` has a line per newer step passed over and why.
        `check_meta(meta)` may raise (a `ResumeError` for another run's checkpoint): that error
        propagates instead of falling back to an older step."""
        skipped = []
        for step in reversed(completed_steps(self.directory)):
            try:
                meta = self.restore_meta(step)
            except Exception as err:  # a truncated or missing record: try an older step
                skipped.append(f"checkpoint {step}: {_one_line(err)}")
                continue
            check_meta(meta)
            try:
                states = self.restore_state(step, abstract_states, meta)
            except Exception as err:  # a truncated, missing or changed file
                skipped.append(f"checkpoint {step}: {_one_line(err)}")
                continue
            return step, meta, states, skipped
        return None, None, None, skipped

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.manager.wait_until_finished()
        self.manager.close()
