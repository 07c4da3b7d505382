"""Checkpoints and --resume under faults injected from outside the library: a run killed with
SIGKILL during a chunk, during a save or between a save and orbax's rename into place, then
resumed, ends with the uninterrupted run's results (and parameters, bit for bit on CPU), and
leaves no run folder unusable."""
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxrl_align.runtime import checkpoints
from tests.runtime.test_logs import read_scalars

from tests.conftest import run_results  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NUM_CHUNKS = 6

# The child process of a faulty run: `experiments.train` with one point of the runner or of
# orbax wrapped to SIGKILL the process at one step:
#   chunk:<k>   right after chunk k was dispatched (while it computes);
#   save:<k>    right after the save of checkpoint k started (orbax still writing it);
#   rename:<k>  when orbax is about to rename checkpoint k's temporary folder into place.
FAULTY_TRAIN = textwrap.dedent("""
    import os, signal, sys
    from experiments import train
    from experiments.common import parse_command_line
    from jaxrl_align.runtime import checkpoints, runner
    from orbax.checkpoint._src.path import async_path

    point, at = sys.argv[1].split(":")
    at = int(at)
    kill = lambda: os.kill(os.getpid(), signal.SIGKILL)

    if point == "chunk":
        compiled = runner._Programs.compiled
        def wrapped(self, name, *args, **kwargs):
            program = compiled(self, name, *args, **kwargs)
            if name != "chunk":
                return program
            calls = []
            def call(*a):
                out = program(*a)
                calls.append(1)
                if len(calls) == at:
                    kill()
                return out
            return call
        runner._Programs.compiled = wrapped
    elif point == "save":
        save = checkpoints.RunCheckpoints.save
        def faulty_save(self, step, states, meta):
            save(self, step, states, meta)
            if step == at:
                kill()
        checkpoints.RunCheckpoints.save = faulty_save
    elif point == "rename":
        rename = async_path.rename
        async def faulty_rename(src, dst):
            if str(dst).rstrip("/").endswith(f"/{at}"):
                kill()
            return await rename(src, dst)
        async_path.rename = faulty_rename
    else:
        raise SystemExit(f"unknown fault point {point}")
    train.main(parse_command_line(train.COMMANDS, sys.argv[2:]))
""")


def train(demo_file, out, *extra, fault=None):
    args = ["bc", "--demos", str(demo_file), "--seeds", "3", "--bc.epochs", str(NUM_CHUNKS),
            "--num-chunks", str(NUM_CHUNKS), "--eval-episodes", "1", "--final-eval-episodes", "2",
            "--bc.batch-size", "100", "--keep-checkpoints", "2", "--no-progress", "--out",
            str(out), *extra]
    entry = ["-m", "experiments.train"] if fault is None else ["-c", FAULTY_TRAIN, fault]
    return subprocess.run([sys.executable, *entry, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def saved_state(out: Path, step: int):
    import orbax.checkpoint as ocp

    state = ocp.StandardCheckpointer().restore((out / "checkpoints" / str(step) / "state").absolute())
    return [np.asarray(x) for x in jax.tree.leaves(state)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, demo_file):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    proc = train(demo_file, out, "--tensorboard")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_uninterrupted_run_keeps_the_latest_checkpoints_and_tensorboard(uninterrupted):
    assert checkpoints.completed_steps(uninterrupted / "checkpoints") == [5, 6]  # 2 are kept
    (events,) = (uninterrupted / "tensorboard").iterdir()
    scalars = read_scalars(events)  # checks every record's CRCs too
    assert [step for step, _ in scalars] == [1, 2, 3, 4, 5, 6]
    assert {"mean/eval_return", "mean/loss"} <= set(scalars[-1][1])
    assert not (uninterrupted / ".jaxrl_align.lock").exists()


def kill_and_resume(demo_file, out, fault, uninterrupted):
    killed = train(demo_file, out, fault=fault)
    assert killed.returncode == -signal.SIGKILL, (fault, killed.stderr[-3000:])
    assert not (out / "results.json").exists()
    # The folder stays usable: --resume continues it from its latest complete checkpoint (or
    # starts afresh where the kill came before the first one).
    resumed = train(demo_file, out, "--resume")
    assert resumed.returncode == 0, (fault, resumed.stderr[-3000:])
    assert run_results(out) == run_results(uninterrupted), fault
    assert (out / "metrics.jsonl").read_text() == (uninterrupted / "metrics.jsonl").read_text()
    for a, b in zip(saved_state(uninterrupted, NUM_CHUNKS), saved_state(out, NUM_CHUNKS)):
        np.testing.assert_array_equal(a, b)  # parameters, optimiser state, RNG keys, ...
    return json.loads((out / "results.json").read_text())["resumed_from"]


@pytest.mark.parametrize("fault, resumed_from", [
    ("save:3", {2}),  # killed while checkpoint 3 was written: 2 is the latest complete one
    ("rename:4", {3}),  # checkpoint 4 written but never renamed into place
    ("chunk:5", {3, 4}),  # killed while chunk 5 computed (checkpoint 4 maybe still saving)
])
def test_killed_then_resumed_equals_the_uninterrupted_run(tmp_path, demo_file, uninterrupted,
                                                          fault, resumed_from):
    assert kill_and_resume(demo_file, tmp_path / "run", fault, uninterrupted) in resumed_from


@pytest.mark.slow
def test_a_dozen_kills_at_random_points_each_resume_to_the_uninterrupted_run(
        tmp_path, demo_file, uninterrupted):
    rng = np.random.default_rng(2026)
    for trial in range(12):
        point = ("chunk", "save", "rename")[trial % 3]
        fault = f"{point}:{int(rng.integers(1, NUM_CHUNKS + 1))}"
        kill_and_resume(demo_file, tmp_path / f"run{trial}", fault, uninterrupted)


def test_resume_refuses_a_different_run(tmp_path, demo_file, uninterrupted):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(uninterrupted, out)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "bc", "--demos", str(demo_file), "--seeds", "4",
         "--bc.epochs", str(NUM_CHUNKS), "--num-chunks", str(NUM_CHUNKS), "--bc.batch-size", "100",
         "--no-progress", "--out", str(out), "--resume"], cwd=REPO, capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 2
    assert "belongs to a different run" in proc.stderr and "run.seeds" in proc.stderr


def test_metadata_is_saved_as_it_was_when_save_was_called(tmp_path):
    """orbax writes in the background; the runner goes on appending to the lists it passed
    (once, a resumed run repeated a chunk's metrics line because the saved list had grown)."""
    ckpt = checkpoints.RunCheckpoints(tmp_path / "checkpoints", keep=2)
    lines = ["chunk 0"]
    state = {"w": jax.numpy.arange(1 << 16, dtype=jax.numpy.float32)}  # a write that takes a while
    ckpt.save(1, [state], {"chunk": 1, "lines": lines})
    lines.append("chunk 1")
    ckpt.manager.wait_until_finished()
    assert ckpt.restore_meta(1)["lines"] == ["chunk 0"]
    ckpt.close()
