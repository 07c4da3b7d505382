"""experiments.derail end to end on a tiny budget, its registry, and the reference-returns
command."""

import json
import subprocess
import sys

import numpy as np
import pytest

import envs
from experiments import derail, reference_returns


def test_derail_smoke_two_seeds_tiny_budget(tmp_path):
    """The command line in a fresh process (so that its XLA flags take effect), with two
    worker processes."""
    tasks = ["seals/RiskyPath-v0", "seals/Sort-v0"]  # tabular; MultiDiscrete actions
    command = [sys.executable, "-m", "experiments.derail", "--algos", "ppo,bc",
               "--seeds", "2", "--tasks", ",".join(tasks), "--budget", "0.02",
               "--demo-transitions", "64", "--eval-episodes", "4", "--workers", "2",
               "--out", str(tmp_path)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr

    rows = ["expert", "random", "ppo", "bc"]
    saved = json.loads((tmp_path / "derail.json").read_text())
    cells = saved["cells"]
    assert [(c["env_id"], c["algo"]) for c in cells] == [(t, a) for t in tasks for a in rows]
    for cell in cells:
        assert len(cell["scores"]) == 2 and np.isfinite(cell["scores"]).all()
        assert cell["ci95"][0] <= cell["mean"] <= cell["ci95"][1]
    by_key = {(c["algo"], c["env_id"]): c for c in cells}
    assert by_key[("expert", "seals/RiskyPath-v0")]["scores"] == [1.0, 1.0]
    assert by_key[("expert", "seals/RiskyPath-v0")]["returns"] == [3.0, 3.0]
    assert saved["seeds"] == [0, 1]

    table = (tmp_path / "derail.md").read_text()
    assert "| algorithm | RiskyPath | Sort |" in table
    assert all(f"| {row} |" in table for row in rows)
    assert (tmp_path / "derail.png").read_bytes()[:4] == b"\x89PNG"
    assert table in completed.stdout


def test_algorithms_register_rows(monkeypatch):
    monkeypatch.setattr(derail, "ALGORITHMS", dict(derail.ALGORITHMS))
    assert {"ppo", "bc", "gail", "airl", "preferences", "mce_irl"} <= set(derail.ALGORITHMS)

    @derail.register("noop")
    def noop_trial(task, flags):
        return derail.bc_trial(task, flags)

    assert derail.ALGORITHMS["noop"] is noop_trial
    with pytest.raises(ValueError, match="already registered"):
        derail.register("ppo")(noop_trial)


def test_preferences_row_fits_every_task():
    """The preferences row builds on every diagnostic task (no compilation): fragments are whole
    episodes that fit the rollouts they are cut from, the reward sees the action (LargestSum's
    reward is the action's), and the agent is the ppo row's PPO on the same budget."""
    from jaxrl_align.data import rollout

    flags = derail.DerailFlags(budget=0.5)
    for task_id in derail.diagnostic_task_ids():
        task = derail.make_task(task_id)
        trial = derail.preferences_trial(task, flags)
        config = trial.algo.config
        horizon = rollout.max_episode_steps(task.params)
        assert config.fragment_length == min(horizon, config.ppo.num_steps), task_id
        assert config.model.use_action and config.model.use_state
        ppo = derail.ppo_trial(task, flags)
        assert trial.num_updates == ppo.num_updates and config.ppo == ppo.algo.config, task_id
        assert trial.data is None


@pytest.mark.slow  # one compilation of the whole preference loop: about a minute here
def test_preferences_row_learns_risky_path():
    flags = derail.DerailFlags(seeds=2, budget=0.1, eval_episodes=20, workers=1)
    cell = derail.run_cell("preferences", derail.make_task("seals/RiskyPath-v0"), flags)
    assert cell.scores == [1.0, 1.0], cell  # the safe path; random play scores about 0.4


def test_mce_irl_row_learns_the_tabular_tasks_and_skips_the_others(tmp_path):
    """MCE IRL from the expert's state visits takes RiskyPath's safe path and Branching's one
    rewarding path on every seed (random play scores about 0.4 and 0.0); tasks without an exact
    model, or with terminal states, are n/a in the table, the JSON and the heatmap."""
    flags = derail.DerailFlags(seeds=2, eval_episodes=10, workers=1)
    cells = [derail.run_cell("mce_irl", derail.make_task(task_id), flags)
             for task_id in ("seals/RiskyPath-v0", "seals/Branching-v0")]
    for cell in cells:
        assert cell.scores == [1.0, 1.0], cell
    for task_id in ("seals/Sort-v0", "seals/EarlyTermPos-v0"):
        skipped = derail.run_cell("mce_irl", derail.make_task(task_id), flags)
        assert skipped.mean is None and skipped.scores == [] and skipped.summary() == "n/a"
        cells.append(skipped)
    task_ids = [cell.env_id for cell in cells]
    table = derail.markdown_table(cells, ["mce_irl"], task_ids)
    assert table.splitlines()[-1] == ("| mce_irl | 1.00 [1.00, 1.00] | 1.00 [1.00, 1.00] | n/a "
                                      "| n/a |")
    png = derail.plot_heatmap(tmp_path / "derail.png", cells, ["mce_irl"], task_ids, 2)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_unknown_algorithm_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        derail.main(derail.DerailFlags(algos="ppo,gail2"))
    assert exit_info.value.code == 2
    assert "--algos: unknown gail2" in capsys.readouterr().err


def test_init_shift_test_learns_from_train_demonstrations():
    task = derail.make_task("seals/InitShiftTest-v0")
    assert task.demo_env_id == "seals/InitShiftTrain-v0"
    demos = derail.expert_demonstrations(task.demo_env_id, 30)
    # From the root the expert heads for the best leaf s6: s0 -> s2 -> s6 -> s6.
    np.testing.assert_array_equal(np.unique(np.asarray(demos.obs)), [0, 2, 6])
    assert len(demos) == 30
    # An expert that ends its episodes early leaves fewer transitions: 2 per episode.
    assert len(derail.expert_demonstrations("seals/EarlyTermNeg-v0", 30)) == 6


def test_reference_returns_command_prints_every_env(capsys):
    assert reference_returns.main(reference_returns.ReferenceFlags())
    lines = capsys.readouterr().out.splitlines()
    for env_id in envs.REFERENCE_RETURNS:
        random_return, expert_return = envs.reference_returns(env_id)
        [line] = [line for line in lines if line.split()[0] == env_id]
        assert [float(x) for x in line.split()[1:]] == pytest.approx(
            [random_return, expert_return], rel=1e-5)


def test_reference_returns_command_measures_and_agrees(capsys):
    flags = reference_returns.ReferenceFlags(
        measure=True, episodes=20_000,
        envs=("seals/RiskyPath-v0", "seals/NoisyObs-v0", "seals/Sort-v0"))
    assert reference_returns.main(flags)
    out = capsys.readouterr().out
    assert "exact, value iteration" in out and "closed form" in out
    assert "Monte Carlo, 20,000 episodes" in out and "DISAGREES" not in out
