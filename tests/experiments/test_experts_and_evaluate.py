"""Experts on demand (a cached expert when --demos is left out), reference returns for every
registered task, and `experiments.evaluate` on a run folder, a checkpoint and a policy file."""
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import envs
from experiments import experts

REPO = Path(__file__).resolve().parents[2]
CARTPOLE = "seals/CartPole-v0"


def run_module(module, *args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return {"JAXRL_ALIGN_EXPERTS": str(tmp_path_factory.mktemp("experts"))}


@pytest.fixture(scope="module")
def bc_runs(tmp_path_factory, cache):
    """Two BC runs without --demos: the first makes the cached expert, the second reuses it."""
    out = tmp_path_factory.mktemp("runs")
    procs = [run_module("experiments.train", "bc", "--env", CARTPOLE, "--seeds", "2",
                        "--out", str(out / name), "--no-progress", env=cache)
             for name in ("first", "second")]
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
    return out, procs


def test_train_without_demos_makes_then_reuses_the_cached_expert(bc_runs, cache):
    out, (first, second) = bc_runs
    assert "No cached expert for seals/CartPole-v0" in first.stdout
    assert "No cached expert" not in second.stdout and "Using the cached expert" in second.stdout
    folder = Path(cache["JAXRL_ALIGN_EXPERTS"]) / "CartPole-v0" / experts.RECIPES[CARTPOLE].key()
    assert (folder / "demos.npz").is_file() and (folder / "expert.json").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no partials
    record = json.loads((folder / "expert.json").read_text())
    assert record["demo_mean_return"] == 500.0 and record["kind"] == "controller"
    for name in ("first", "second"):
        config = json.loads((out / name / "config.json").read_text())
        assert config["data_files"]["demos"]["path"] == str((folder / "demos.npz").absolute())
        results = json.loads((out / name / "results.json").read_text())
        assert results["normalized_score"] is not None


def test_every_registered_task_has_a_recipe_and_reference_returns():
    from experiments.reference_returns import reference_returns

    assert set(envs.registered_ids()) <= set(experts.RECIPES)
    for env_id in envs.registered_ids():
        random_return, expert_return = reference_returns(env_id)
        assert expert_return > random_return, env_id


@pytest.mark.parametrize("env_id", ["seals/CliffWorld7x4XY-v0", "seals/Random-v0"])
def test_tabular_reference_returns_are_exact(env_id):
    """Computed on the model: the uniform policy's return agrees with Monte Carlo, the expert's
    with the greedy policy of value iteration (and no policy does better)."""
    from envs.diagnostics.experts import tabular_expert_actions
    from experiments.reference_returns import reference_returns
    from jaxrl_align.tabular import exact_expected_return

    env, params = envs.make(env_id)
    random_return, expert_return = reference_returns(env_id)
    greedy = jax.nn.one_hot(tabular_expert_actions(params), env.n_actions)
    assert float(exact_expected_return(params, greedy)) == pytest.approx(expert_return, abs=1e-4)
    returns = np.asarray(envs.random_policy_returns(env, params, jax.random.PRNGKey(0), 20_000))
    half_width = 4 * returns.std() / np.sqrt(returns.size)
    assert abs(returns.mean() - random_return) < half_width + 1e-3
    # The optimum is at least as good as any deterministic stationary policy tried at random.
    keys = jax.random.split(jax.random.PRNGKey(1), 16)
    for key in keys:
        actions = jax.random.randint(key, (env.n_states,), 0, env.n_actions)
        value = float(exact_expected_return(params, jax.nn.one_hot(actions, env.n_actions)))
        assert value <= expert_return + 1e-4


def test_optimal_recipe_demonstrations_on_a_feature_observed_grid(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXRL_ALIGN_EXPERTS", str(tmp_path))
    env_id = "seals/CliffWorld7x4XY-v0"
    folder = experts.ensure_expert(env_id)
    record = json.loads((folder / "expert.json").read_text())
    from experiments.reference_returns import reference_returns

    _, expert_return = reference_returns(env_id)
    assert record["kind"] == "optimal"
    assert record["demo_mean_return"] == pytest.approx(expert_return, abs=2.0)  # 10 episodes
    assert experts.ensure_expert(env_id) == folder  # cached


def evaluate(source, *args):
    """experiments.evaluate in this process (its programs come from the compilation cache)."""
    import tyro

    from experiments import evaluate as evaluate_module

    return evaluate_module.main(tyro.cli(evaluate_module.EvaluateFlags,
                                         args=[str(source), *map(str, args)]))


def test_evaluate_a_run_folder_a_checkpoint_and_a_gif(bc_runs, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("JAXRL_ALIGN_EXPERTS", cache["JAXRL_ALIGN_EXPERTS"])
    out, _ = bc_runs
    run = out / "first"
    evaluate(run, "--episodes", 5, "--out", tmp_path / "eval.json", "--gif",
             tmp_path / "episode.gif")
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["seeds"] == [0, 1] and np.asarray(record["returns"]).shape == (2, 5)
    results = json.loads((run / "results.json").read_text())
    # Deterministic policies on CartPole: the restored states act like the trained ones.
    assert record["return_mean"] == pytest.approx(results["return_mean"], abs=1e-6)
    assert record["iqm"] is not None and len(record["iqm_ci95"]) == 2
    from PIL import Image

    assert Image.open(tmp_path / "episode.gif").n_frames > 10

    steps = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    record = evaluate(run / "checkpoints" / str(steps[0]), "--episodes", 2)
    assert record["checkpoint"] == steps[0] and len(record["returns"]) == 2


def test_evaluate_a_policy_file(tmp_path):
    from jaxrl_align.algorithms import dagger
    from jaxrl_align.rl import ppo

    env, params = envs.make(CARTPOLE)
    config = ppo.PPOConfig()
    state = ppo.PPOEngine(config, env, params).init(jax.random.PRNGKey(0))
    path = dagger.save_ppo_expert(tmp_path / "policy.msgpack", config, CARTPOLE, state.params)
    record = evaluate(path, "--episodes", 6, "--out", tmp_path / "eval.json")
    assert json.loads((tmp_path / "eval.json").read_text()) == json.loads(json.dumps(record))
    assert np.asarray(record["returns"]).shape == (1, 6) and record["env_id"] == CARTPOLE
    assert record["normalized_score"][0] == pytest.approx(
        (np.mean(record["returns"]) - 33.33) / (500.0 - 33.33))


@pytest.mark.parametrize("args, fragment", [
    (["/nonexistent/run"], "config.json"),
    (["/nonexistent/policy.msgpack"], "policy.msgpack"),
    (["/nonexistent/run", "--episodes", "0"], "--episodes"),
    (["/nonexistent/run", "--gif", "x.mp4"], "--gif"),
])
def test_evaluate_bad_input_is_one_line(args, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate(*args)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], lines
