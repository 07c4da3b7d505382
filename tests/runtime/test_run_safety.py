"""Runs cannot lose or mix up work: an output folder is checked before compiling and owned by
one run at a time, a fresh run never deletes an earlier run's checkpoints (or anything a run did
not write), resume refuses another run's checkpoint (settings, environment or data), every
algorithm's state checkpoints and restores (empty fields included), and a damaged checkpoint is
skipped for the newest intact one."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import train
from experiments.common import parse_command_line
from jaxrl_align.runtime import checkpoints

from tests.conftest import run_results  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def bc_args(demo_file, out, *extra):
    return ["bc", "--demos", str(demo_file), "--seeds", "2", "--bc.epochs", "4",
            "--num-chunks", "4", "--eval-episodes", "1", "--final-eval-episodes", "2",
            "--bc.batch-size", "100", "--keep-checkpoints", "3", "--no-progress",
            "--out", str(out), *extra]


def cli(argv):
    """(exit code, stderr) of `experiments.train` with `argv`, run in a child process."""
    proc = subprocess.run([sys.executable, "-m", "experiments.train", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stderr


def cli_here(argv, capsys):
    """(exit code, stderr) of `experiments.train` run in this process (no start-up cost)."""
    capsys.readouterr()
    try:
        train.main(parse_command_line(train.COMMANDS, argv))
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_file):
    """A complete BC run, checkpoints after chunks 2, 3 and 4 kept."""
    out = tmp_path_factory.mktemp("reference") / "run"
    code, err = cli(bc_args(demo_file, out))
    assert code == 0, err[-3000:]
    assert checkpoints.completed_steps(out / "checkpoints") == [2, 3, 4]
    return out


# --- the output folder -------------------------------------------------------------------------

def test_unusable_out_is_refused_before_compiling(tmp_path, demo_file, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("mine")
    code, err = cli_here(bc_args(demo_file, a_file), capsys)
    assert code == 2 and "is a file; expected a folder" in one_line(err)
    assert a_file.read_text() == "mine"

    linked = tmp_path / "linked"
    linked.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (linked / "checkpoints").symlink_to(tmp_path / "elsewhere")
    code, err = cli_here(bc_args(demo_file, linked), capsys)
    assert code == 2 and "symbolic link" in one_line(err)
    assert not any((tmp_path / "elsewhere").iterdir())


def test_read_only_out_is_refused_before_compiling(tmp_path, demo_file, capsys, monkeypatch):
    """A folder its user may not write to. Root writes anyway, so the permission check is told
    what a user without write permission would see (os.access)."""
    read_only = tmp_path / "ro"
    read_only.mkdir()
    os.chmod(read_only, 0o555)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == read_only
                        else real_access(path, mode))
    code, err = cli_here(bc_args(demo_file, read_only / "run"), capsys)
    assert code == 2 and f"--out: {read_only} is not writable" in one_line(err)
    assert not (read_only / "run").exists()


def test_a_second_run_into_the_same_out_is_refused_and_a_stale_lock_is_taken_over(
        tmp_path, demo_file, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from jaxrl_align.runtime.outputs import "
         "OutputLock; lock = OutputLock(sys.argv[1]); print('locked', flush=True); "
         "time.sleep(120)", str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = cli_here(bc_args(demo_file, out), capsys)
        assert code == 2
        assert f"in use by another run (pid {holder.pid}" in one_line(err)
        assert not (out / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder died without releasing: its lock file stays, and the next run takes it over.
    assert (out / ".jaxrl_align.lock").is_file()
    code, err = cli_here(bc_args(demo_file, out), capsys)
    assert code == 0, err
    assert (out / "results.json").is_file()


def test_a_fresh_run_refuses_an_earlier_run_and_overwrite_deletes_only_its_files(
        tmp_path, demo_file, reference, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "notes.txt").write_text("mine")
    (out / "checkpoints" / "notes.txt").write_text("mine too")
    code, err = cli_here(bc_args(demo_file, out), capsys)
    assert code == 2
    assert "holds an earlier run (results.json, metrics.jsonl, checkpoints up to chunk 4)" in \
        one_line(err)
    assert checkpoints.completed_steps(out / "checkpoints") == [2, 3, 4]

    code, err = cli_here(bc_args(demo_file, out, "--overwrite"), capsys)
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "checkpoints" / "notes.txt").read_text() == "mine too"
    assert checkpoints.completed_steps(out / "checkpoints") == [2, 3, 4]
    assert run_results(out) == run_results(reference)


# --- resume ------------------------------------------------------------------------------------

def test_resume_refuses_other_data(tmp_path, demo_file, reference, capsys):
    from jaxrl_align.data import demonstrations

    config = json.loads((reference / "config.json").read_text())
    assert config["data_files"]["demos"]["sha256"] == train.file_sha256(demo_file)
    trajs, _ = demonstrations.load_demos(demo_file)
    flipped = demonstrations.save_demos(tmp_path / "flipped.npz",
                                        trajs.replace(acts=1 - trajs.acts),
                                        env_id="seals/CartPole-v0", source="flipped")
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    code, err = cli_here(bc_args(flipped, out, "--resume"), capsys)
    assert code == 2
    line = one_line(err)
    assert "belongs to a different run" in line and "data" in line


def test_resume_refuses_another_environment(tmp_path, capsys):
    out = tmp_path / "run"
    ppo = ["ppo", "--seeds", "1", "--ppo.num-envs", "2", "--ppo.num-steps", "8",
           "--ppo.total-timesteps", "32", "--ppo.hidden", "8", "--num-chunks", "2",
           "--eval-episodes", "1", "--final-eval-episodes", "1", "--no-progress",
           "--out", str(out)]
    code, err = cli_here(ppo, capsys)
    assert code == 0, err
    code, err = cli_here([*ppo, "--resume", "--env", "CartPole-v1"], capsys)
    assert code == 2
    line = one_line(err)
    assert "belongs to a different run" in line and "env" in line


def largest_file(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def truncate(step: Path):
    path = largest_file(step / "state")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete_record(step: Path):
    (step / "meta" / "metadata").unlink()  # the run's JSON record


def delete_manifest(step: Path):
    (step / "state" / "manifest.ocdbt").unlink()  # the state's index


def scribble(step: Path):
    path = largest_file(step / "state")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 100] = np.random.default_rng(0).integers(0, 256, 100, np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate, delete_record, delete_manifest, scribble])
def test_a_damaged_checkpoint_is_skipped_for_the_newest_intact_one(
        tmp_path, demo_file, reference, capsys, damage):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    damage(out / "checkpoints" / "4")
    code, err = cli_here(bc_args(demo_file, out, "--resume"), capsys)
    assert code == 0, err
    assert "--resume: skipped checkpoint 4:" in err
    record = json.loads((out / "results.json").read_text())
    assert record["resumed_from"] == 3
    assert run_results(out) == run_results(reference)


def test_no_intact_checkpoint_is_a_one_line_error(tmp_path, demo_file, reference, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    for step in (2, 3, 4):
        scribble(out / "checkpoints" / str(step))
    code, err = cli_here(bc_args(demo_file, out, "--resume"), capsys)
    assert code == 2
    assert "no intact checkpoint" in err.strip().splitlines()[-1]
    assert [line for line in err.splitlines() if "skipped" in line] == []  # said once


# --- every algorithm's state -------------------------------------------------------------------

def states_of_every_algorithm():
    """(name, algorithm, data) for every algorithm in every mode whose state differs."""
    import envs
    from experiments.configs import AIRL_MOUNTAIN_CAR  # noqa: F401  (presets import cleanly)
    from jaxrl_align.algorithms import bc, preference_comparisons as pc
    from jaxrl_align.algorithms.adversarial import airl, gail
    from jaxrl_align.algorithms.irl import maxent_irl, mce_irl, occupancy_matching
    from jaxrl_align.data.preference_dataset import PreferenceDataset
    from jaxrl_align.rl import ppo
    from jaxrl_align.types import Transitions

    env, params = envs.make("seals/CartPole-v0")
    small = ppo.PPOConfig(num_envs=2, num_steps=8, num_minibatches=2, total_timesteps=32,
                          hidden=(8,))
    demos = Transitions(jnp.zeros((64, 4)), jnp.zeros(64, jnp.int32), jnp.zeros((64, 4)),
                        jnp.zeros(64, bool))
    pairs = PreferenceDataset(Transitions(jnp.zeros((6, 2, 4, 4)), jnp.zeros((6, 2, 4), jnp.int32),
                                          jnp.zeros((6, 2, 4, 4)), jnp.zeros((6, 2, 4), bool)),
                              jnp.full(6, 0.5))
    preference = pc.PreferenceComparisonsConfig(total_comparisons=20, fragment_length=4,
                                                query_num_steps=8, ppo=small)
    grid, grid_params = envs.make("seals/CliffWorld7x4-v0")
    tabular_data = occupancy_matching.expert_data(grid_params)
    yield "ppo", ppo.make(small, env, params), None
    yield "ppo_on_a_learned_reward", ppo.make(small, env, params, reward_apply=lambda v, *x: x[0][..., 0] * v,
                                              normalize_reward=True), jnp.float32(1.0)
    yield "bc", bc.make(bc.BCConfig(hidden=(8,)), env, params), demos
    yield "gail", gail.make(gail.GAILConfig(demo_batch_size=8, ppo=small), env, params), demos
    for generator_reward in ("f", "logit"):
        yield f"airl_{generator_reward}", airl.make(airl.AIRLConfig(
            demo_batch_size=8, generator_reward=generator_reward, ppo=small), env, params), demos
    yield "mce_irl", mce_irl.make(mce_irl.MCEIRLConfig(), grid, grid_params), tabular_data
    yield "maxent_irl", maxent_irl.make(maxent_irl.MaxEntIRLConfig(), grid, grid_params), \
        tabular_data
    for exploration, reset in ((0.0, False), (0.5, False), (0.5, True)):
        config = preference.replace(exploration_frac=exploration, query_reset=reset)
        yield f"preferences_explore{exploration}_reset{reset}", pc.make(config, env, params), None
    yield "preferences_offline", pc.make_offline(preference, env, params), pairs


def random_state(abstract, seed: int):
    rng = np.random.default_rng(seed)

    def fill(a):
        if np.issubdtype(a.dtype, np.floating):
            return jnp.asarray(rng.normal(size=a.shape), a.dtype)
        if a.dtype == np.bool_:
            return jnp.asarray(rng.integers(0, 2, a.shape).astype(bool))
        return jnp.asarray(rng.integers(0, 1000, a.shape), a.dtype)
    return jax.tree.map(fill, abstract)


def test_every_algorithm_state_checkpoints_and_restores(tmp_path):
    """Each algorithm's state (2 runs, abstract shapes from `init`, random contents: nothing is
    compiled) saves and restores bit for bit, zero-size leaves included."""
    from jaxrl_align.runtime.sharding import runs_mesh, shardings

    split, _ = shardings(runs_mesh())
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    for i, (name, algo, data) in enumerate(states_of_every_algorithm()):
        abstract = jax.eval_shape(jax.vmap(algo.init, in_axes=(0, None)), keys, data)
        # An empty buffer and an empty batch, as an algorithm may keep.
        abstract = (abstract, jax.ShapeDtypeStruct((2, 0), jnp.float32),
                    jax.ShapeDtypeStruct((2, 0, 3), jnp.int32))
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=split),
                                abstract)
        state = jax.device_put(random_state(abstract, i), split)
        store = checkpoints.RunCheckpoints(tmp_path / name, keep=2)
        store.save(1, [state], {"chunk": 1})
        store.close()
        store = checkpoints.RunCheckpoints(tmp_path / name, keep=2)
        step, meta, (restored,), skipped = store.restore_latest([abstract])
        store.close()
        assert (step, skipped, meta["chunk"]) == (1, [], 1), name
        assert jax.tree.structure(restored) == jax.tree.structure(state), name
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
