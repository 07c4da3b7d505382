"""Checkpoints and --resume: a run killed with SIGKILL (between chunks, and in the middle of a
save) and resumed ends with the same parameters, bit for bit on CPU, as the uninterrupted run."""
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from tests.runtime.test_logs import read_scalars

REPO = Path(__file__).resolve().parents[2]

# The child process of a faulty run: `experiments.train` with `RunCheckpoints.save` wrapped to
# SIGKILL the process at one step. `kill_during_save:<step>` kills it while the async save of
# checkpoint <step> is still being written (right after orbax's save call returns);
# `kill_after_save:<step>` once that checkpoint is complete.
FAULTY_TRAIN = textwrap.dedent("""
    import os, signal, sys
    import tyro
    from experiments import train
    from jaxrl_align.runtime.checkpoints import RunCheckpoints

    point, at = sys.argv[1].split(":")
    assert point in ("kill_during_save", "kill_after_save"), point
    save = RunCheckpoints.save

    def faulty_save(self, step, state, meta):
        save(self, step, state, meta)
        if step == int(at):
            if point == "kill_after_save":
                self.manager.wait_until_finished()
            os.kill(os.getpid(), signal.SIGKILL)

    RunCheckpoints.save = faulty_save
    train.main(tyro.extras.subcommand_cli_from_dict(train.COMMANDS, args=sys.argv[2:]))
""")


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory, cartpole_demos):
    from jaxrl_align.data import demonstrations as demos_io

    path = tmp_path_factory.mktemp("demos") / "cartpole.npz"
    return demos_io.save_demos(path, cartpole_demos, env_id="seals/CartPole-v0", source="controller")


def train(demo_file, out, *extra, fault=None):
    args = ["bc", "--demos", str(demo_file), "--seeds", "3", "--bc.epochs", "6", "--num-chunks",
            "6", "--eval-episodes", "1", "--final-eval-episodes", "2", "--bc.batch-size", "100",
            "--keep-checkpoints", "2", "--no-progress", "--out", str(out), *extra]
    entry = ["-m", "experiments.train"] if fault is None else ["-c", FAULTY_TRAIN, fault]
    return subprocess.run([sys.executable, *entry, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def steps(out: Path):
    """Finished checkpoint steps, and the names of unfinished (temporary) ones."""
    names = [p.name for p in (out / "checkpoints").iterdir()]
    return sorted(int(n) for n in names if n.isdigit()), [n for n in names if not n.isdigit()]


def saved_state(out: Path, step: int):
    import orbax.checkpoint as ocp

    state = ocp.StandardCheckpointer().restore((out / "checkpoints" / str(step) / "state").absolute())
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_sigkill_during_a_save_and_between_chunks_then_resume_is_bit_identical(tmp_path, demo_file):
    full = train(demo_file, tmp_path / "full", "--tensorboard")
    assert full.returncode == 0, full.stderr[-3000:]
    assert steps(tmp_path / "full")[0] == [5, 6]  # the last 2 are kept
    (events,) = (tmp_path / "full" / "tensorboard").iterdir()
    scalars = read_scalars(events)  # checks every record's CRCs too
    assert [step for step, _ in scalars] == [1, 2, 3, 4, 5, 6]
    assert {"mean/eval_return", "mean/loss"} <= set(scalars[-1][1])

    out = tmp_path / "killed"
    # 1. Killed while checkpoint 3 is being written: checkpoint 2 stays the latest, intact.
    killed = train(demo_file, out, fault="kill_during_save:3")
    assert killed.returncode == -signal.SIGKILL
    done, unfinished = steps(out)
    assert done == [1, 2] and unfinished, (done, unfinished)
    assert not (out / "results.json").exists()
    # 2. Resumed from 2, killed again right after checkpoint 5 is complete.
    killed = train(demo_file, out, "--resume", fault="kill_after_save:5")
    assert killed.returncode == -signal.SIGKILL
    assert steps(out)[0] == [4, 5]
    # 3. Resumed from 5 to the end.
    resumed = train(demo_file, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    for a, b in zip(saved_state(tmp_path / "full", 6), saved_state(out, 6)):
        np.testing.assert_array_equal(a, b)  # parameters, optimiser state, RNG keys, ...
    full_results = json.loads((tmp_path / "full" / "results.json").read_text())
    results = json.loads((out / "results.json").read_text())
    assert results["resumed_from"] == 5
    for key in ("return_mean", "normalized_score", "iqm", "seeds", "diverged"):
        assert results[key] == full_results[key], key
    assert (out / "metrics.jsonl").read_text() == (tmp_path / "full" / "metrics.jsonl").read_text()


def test_resume_refuses_a_different_run(tmp_path, demo_file):
    out = tmp_path / "run"
    assert train(demo_file, out).returncode == 0
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "bc", "--demos", str(demo_file), "--seeds", "4",
         "--bc.epochs", "6", "--num-chunks", "6", "--bc.batch-size", "100", "--no-progress",
         "--out", str(out), "--resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "different run" in proc.stderr
