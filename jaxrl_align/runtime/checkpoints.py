"""orbax checkpoints of a whole run between chunks.

A checkpoint holds every run's algorithm state (parameters, optimiser states, normaliser
statistics, RNG keys: whatever the algorithm keeps in its state, for every seed and sweep point)
plus a JSON record of the host side (chunk counter, metric and evaluation logs, divergence
reports and a fingerprint of the run's settings, checked on resume).

orbax writes each step into a temporary folder and renames it into place only when complete, so
a process killed mid-save leaves the previous step as the latest one; `latest_step` never sees
the unfinished folder.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import jax


class ResumeError(ValueError):
    """The checkpoint to resume from belongs to another run."""


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


class RunCheckpoints:
    def __init__(self, directory: Path, keep: int, fresh: bool):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        if fresh and self.directory.exists() and jax.process_index() == 0:
            shutil.rmtree(self.directory)  # a new run in the same --out starts over
        _barrier("jaxrl_align_checkpoints_fresh")
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=True),
            item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        ocp = self._ocp
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        meta=ocp.args.JsonSave(meta)))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def restore_meta(self, step: int) -> dict:
        ocp = self._ocp
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore_state(self, step: int, abstract_state):
        ocp = self._ocp
        return self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))["state"]

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
