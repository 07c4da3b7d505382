"""The command line: bad input ends with one line naming the problem, before any compilation and
without leaving output behind; a good run writes every file DESIGN.md lists."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import train
from experiments.common import ProcessFlags
from jaxrl_align.algorithms.bc import BCConfig
from jaxrl_align.data import demonstrations as demos_io
from jaxrl_align.runtime.runner import RunSettings

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def write_raw_npz(path, demo_file, **replace):
    """A demonstrations file with some arrays replaced, bypassing save-time validation."""
    with np.load(demo_file, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(replace)
    np.savez(path, **arrays)
    return path


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_env_id(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("ppo", "--env", "seals/Nope-v0", "--out", str(out))
    assert_one_line_error(proc, "seals/Nope-v0")
    assert not out.exists()


def test_negative_seeds(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("ppo", "--seeds", "-3", "--out", str(out))
    assert_one_line_error(proc, "--seeds", "-3")
    assert not out.exists()


def test_demos_with_wrong_observation_shape(tmp_path, demo_file):
    bad = write_raw_npz(tmp_path / "bad.npz", demo_file,
                        obs=np.zeros((10, 501, 3), np.float32))
    out = tmp_path / "out"
    proc = run_cli("bc", "--demos", str(bad), "--out", str(out))
    assert_one_line_error(proc, "obs")
    assert not out.exists()


def test_demos_with_nan(tmp_path, demo_file):
    with np.load(demo_file) as f:
        obs = f["obs"].copy()
    obs[3, 7, 1] = np.nan
    bad = write_raw_npz(tmp_path / "nan.npz", demo_file, obs=obs)
    proc = run_cli("bc", "--demos", str(bad), "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, "obs", "finite")
    assert not (tmp_path / "out").exists()


def test_truncated_demos_file(tmp_path, demo_file):
    data = demo_file.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    proc = run_cli("bc", "--demos", str(bad), "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, "truncated.npz")
    assert not (tmp_path / "out").exists()


def test_bc_run_writes_every_output(tmp_path, demo_file):
    out = tmp_path / "run"
    command = train.BCCommand(demos=demo_file,
                              run=RunSettings(seeds=2, num_chunks=2, eval_episodes=2,
                                              final_eval_episodes=3, progress=False),
                              process=ProcessFlags(out=out), bc=BCConfig(epochs=2))
    train.main(command)
    for name in ("config.json", "results.json", "metrics.jsonl", "learning_curve.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    for key in ("algo", "env", "seeds", "return_mean", "normalized_score", "iqm", "iqm_ci95",
                "env_steps", "compile_s", "run_s", "devices"):
        assert key in results, key
    assert results["seeds"] == [0, 1] and len(results["return_mean"]) == 2
    config = json.loads((out / "config.json").read_text())
    assert config["algo_config"]["batch_size"] == 32 and "jax" in config["versions"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


TINY_PREFERENCES = [  # a few seconds of training: the point is the files, not the learning
    "--preferences.total-comparisons", "24", "--preferences.fragment-length", "8",
    "--preferences.initial-reward-steps", "2", "--preferences.reward-steps-per-round", "1",
    "--preferences.no-active-selection", "--preferences.exploration-frac", "0",
    "--preferences.heldout-size", "8", "--preferences.heldout-pairs-per-round", "2",
    "--preferences.model.ensemble-size", "1", "--preferences.model.hidden", "8",
    "--preferences.ppo.num-envs", "4", "--preferences.ppo.num-steps", "16",
    "--preferences.ppo.update-epochs", "1", "--preferences.ppo.num-minibatches", "1",
    "--preferences.ppo.hidden", "8", "--preferences.ppo.total-timesteps", "192",
    "--num-chunks", "1", "--eval-episodes", "1", "--final-eval-episodes", "1",
    "--no-progress"]  # with checkpoints: offline and exploration-free states have to save


def parse_cli(*args):
    import tyro

    return tyro.extras.subcommand_cli_from_dict(train.COMMANDS, args=list(args))


def test_saved_comparisons_train_offline_from_the_command_line(tmp_path):
    """`--save-comparisons` writes the labelled pairs of an online run as a preference dataset,
    and `--dataset` trains on that file alone (the documented way to make one)."""
    import envs
    from jaxrl_align.algorithms import preference_comparisons as pc
    from jaxrl_align.data.preference_dataset import load_preferences

    online, offline = tmp_path / "online", tmp_path / "offline"
    command = parse_cli("preferences", "--save-comparisons", "--seeds", "2", "--out",
                        str(online), *TINY_PREFERENCES)
    train.main(command)
    env, params = envs.make("seals/CartPole-v0")
    data, metadata = load_preferences(online / "comparisons.npz", env=env, env_params=params,
                                      env_id="seals/CartPole-v0")
    assert len(data) == pc.comparisons_queried(command.preferences) == 24
    assert data.frags.obs.shape == (24, 2, 8, 4) and metadata["fragment_length"] == 8
    assert metadata["source"].startswith("synthetic preferences, seed ")
    prefs = np.asarray(data.prefs)  # the Bradley-Terry probabilities (soft labels, the default)
    assert np.all((prefs >= 0.0) & (prefs <= 1.0)) and len(np.unique(prefs)) > 1

    command = parse_cli("preferences", "--dataset", str(online / "comparisons.npz"), "--seeds",
                        "1", "--out", str(offline), *TINY_PREFERENCES)
    result = train.main(command)
    assert result.state.heldout.shape == (1, 24)  # the offline state: the file's pairs
    results = json.loads((offline / "results.json").read_text())
    assert results["algo"] == "preference_comparisons_offline" and results["seeds"] == [0]
    assert np.isfinite(results["return_mean"]).all()
    config = json.loads((offline / "config.json").read_text())
    assert config["algo_config"]["total_comparisons"] == 24


@pytest.mark.parametrize("argv, flag, problem", [
    (["bc", "--demos", "d.npz", "--bc.batch-size", "0"], "--bc.batch-size",
     "expected a positive integer, got 0"),
    (["bc", "--demos", "d.npz", "--bc.activation", "foo"], "--bc.activation",
     "expected one of ('tanh', 'relu'), got 'foo'"),
    (["bc", "--demos", "d.npz", "--bc.hidden", "0"], "--bc.hidden",
     "expected positive layer widths, got (0,)"),
    (["ppo", "--ppo.num-envs", "0"], "--ppo.num-envs", "expected a positive integer, got 0"),
    (["gail", "--demos", "d.npz", "--gail.ppo.num-minibatches", "3"], "--gail.ppo.num-minibatches",
     "must be divisible by num_minibatches=3"),
    (["ppo", "--resume", "--checkpoint-every", "0"], "--resume", "needs checkpoints"),
    (["ppo", "--resume", "--overwrite"], "--overwrite", "expected one of the two"),
])
def test_bad_settings_are_one_line_errors_before_anything_runs(tmp_path, capsys, argv, flag,
                                                               problem):
    from experiments.common import parse_command_line

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        train.main(parse_command_line(train.COMMANDS, [*argv, "--out", str(out)]))
    assert exit_.value.code == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag}: ") and problem in lines[0], \
        lines
    assert not out.exists()


def test_dataset_and_save_comparisons_together_is_a_usage_error(tmp_path):
    proc = run_cli("preferences", "--dataset", str(tmp_path / "x.npz"), "--save-comparisons",
                   "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, "--save-comparisons")
    assert not (tmp_path / "out").exists()


def test_controller_demos_write_a_valid_file(tmp_path):
    """`python -m experiments.controller_demos` makes demonstrations for --demos (MountainCar
    has no other way to get them from the command line); an env without a controller is a
    one-line usage error."""
    from experiments import controller_demos

    path = controller_demos.main(controller_demos.Flags(
        env="seals/MountainCar-v0", episodes=3, out=tmp_path / "mcar.npz"))
    trajs, meta = demos_io.load_demos(path, env_id="seals/MountainCar-v0")
    assert meta["num_episodes"] == 3 and meta["mean_return"] > -130
    proc = subprocess.run([sys.executable, "-m", "experiments.controller_demos", "--env",
                           "seals/RiskyPath-v0", "--out", str(tmp_path / "x.npz")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, "--env", "seals/RiskyPath-v0")
    assert not (tmp_path / "x.npz").exists()
