"""`python -m experiments.reward_confusion` at a tiny size (two tasks, two seeds, four of its
conditions), and the data it builds: the offline dataset's correlation and the off-correlation
split's decorrelation."""
import json
import math

import jax
import numpy as np
import pytest

from experiments import reward_confusion as rc
from jaxrl_align.data.preference_dataset import load_preferences

TASKS = ("lava", "decoy")
CONDITIONS = ("offline", "decorrelated", "chain", "true_reward")
SEEDS = 2
TINY = dict(tasks=TASKS, conditions=CONDITIONS, seeds=SEEDS, dataset_trajectories=64,
            dataset_pairs=200, pool_size=16, budget=16, rounds=2, candidates=32,
            offline_steps=100, steps_per_round=50, test_pairs=64, ppo_timesteps=3200,
            eval_episodes=20)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reward_confusion")
    record = rc.main(rc.ConfusionFlags(**TINY, out=out))
    return out, record


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_json_schema(tiny_run):
    out, _ = tiny_run
    record = json.loads((out / "reward_confusion.json").read_text())
    for key in ("command", "config", "tasks", "conditions", "cells", "aggregates", "verdicts",
                "curves", "timings", "wall_s", "datasets", "hardware", "versions"):
        assert key in record, key
    assert record["tasks"] == list(TASKS) and record["conditions"] == list(CONDITIONS)
    assert record["config"]["seeds"] == SEEDS
    for condition in CONDITIONS:
        assert finite(record["timings"][condition]["compile_s"])
        assert finite(record["timings"][condition]["run_s"])
        for task in TASKS:
            cell = record["cells"][condition][task]
            for metric in rc.METRICS:
                values = cell[metric]["per_seed"]
                assert len(values) == SEEDS
                if condition == rc.REFERENCE and metric.startswith("acc"):
                    continue  # the true reward has no accuracy to score
                assert all(finite(v) for v in values), (condition, task, metric)
                lo, hi = cell[metric]["ci95"]
                assert lo - 1e-9 <= cell[metric]["mean"] <= hi + 1e-9
                assert cell[metric]["mean"] == pytest.approx(np.mean(values))
            for metric in rc.METRICS:  # shares, and returns normalised to at most optimal
                mean = cell[metric]["mean"]
                assert not finite(mean) or mean <= 1 + 1e-4, (condition, task, metric)
                assert not finite(mean) or "return" in metric or mean >= 0
            assert cell["split_correlation"] < 0  # the off-correlation split disagrees
    # The planner on the true reward is optimal, by construction, and never confused.
    for task in TASKS:
        cell = record["cells"][rc.REFERENCE][task]
        assert cell["planner_return"]["mean"] == pytest.approx(1.0, abs=1e-4)
        assert cell["planner_confusion"]["mean"] == 0.0
    assert set(record["verdicts"]) == set(TASKS)
    # Curves per query strategy: [tasks, seeds, rounds]; the chain's label count only grows.
    labels = np.asarray(record["curves"]["chain"]["curve_labels"])
    assert labels.shape == (len(TASKS), SEEDS, TINY["rounds"])
    assert (np.diff(labels, axis=-1) >= 0).all() and (labels[..., -1] >= TINY["budget"]).all()
    assert set(record["curves"]) == {"chain"}


def test_table_and_figure(tiny_run):
    out, _ = tiny_run
    lines = (out / "reward_confusion.md").read_text().splitlines()
    header = [h.strip() for h in lines[2].strip("|").split("|")]
    assert header == ["task", "condition"] + [rc.METRIC_LABELS[m] for m in rc.METRICS]
    for task in TASKS:
        rows = [line for line in lines if line.startswith(f"| {task} | ")]
        # one row per condition in the cells table, one in the verdicts table
        assert len(rows) == len(CONDITIONS) + 1
    reference = next(line for line in lines if line.startswith(f"| {TASKS[0]} | true_reward |"))
    assert reference.count("—") == 2  # no accuracies for the true reward
    assert any(line.startswith("Confusion shown on ") for line in lines)
    png = out / "reward_confusion.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_datasets_load_in_the_preference_format(tiny_run):
    out, record = tiny_run
    assert len(record["datasets"]) == 3 * len(TASKS)
    for task in TASKS:
        offline, meta = load_preferences(out / "datasets" / f"{task}_offline.npz",
                                         env_id=f"confusing_grid:{task}")
        assert meta["num_pairs"] == TINY["dataset_pairs"] and meta["extra"]["correlation"] == 1.0
        off, meta = load_preferences(out / "datasets" / f"{task}_off_correlation.npz")
        assert 0 < meta["num_pairs"] <= TINY["test_pairs"]
        assert set(np.unique(np.asarray(off.prefs))) <= {0.0, 1.0}


def test_the_offline_data_correlate_and_the_off_correlation_split_does_not():
    """The nuisance tracks the true return in the offline dataset at correlation 1 and not at 0;
    the off-correlation split's return and nuisance differences are negatively correlated."""
    cfg = rc.ConfusionConfig(tasks=("lava",), seeds=1, dataset_trajectories=256,
                             test_pairs=512)
    task = jax.tree.map(lambda x: x[0], rc.task_models(cfg.tasks))
    data = jax.jit(lambda key: rc.benchmark_data(key, task, cfg))(jax.random.key(0))
    ones = np.ones(cfg.dataset_trajectories, np.float32)
    correlated = float(rc.weighted_correlation(data.correlated.returns, data.correlated.nuisance,
                                               ones))
    control = float(rc.weighted_correlation(data.decorrelated.returns,
                                            data.decorrelated.nuisance, ones))
    split = float(data.split_correlation)
    kept = int(data.splits.off_correlation[2].sum())
    print(f"lava: offline data correlation {correlated:+.2f}, decorrelated {control:+.2f}, "
          f"off-correlation split {split:+.2f} over {kept} pairs")
    assert correlated > 0.7 and abs(control) < 0.3 and split < -0.2 and kept > 50


def test_bad_flags_are_refused_before_compiling():
    with pytest.raises(ValueError, match="tasks: expected names from"):
        rc.ConfusionConfig(tasks=("lava", "nope"))
    with pytest.raises(ValueError, match="conditions: expected names from"):
        rc.ConfusionConfig(conditions=("offline", "dpo"))
    with pytest.raises(ValueError, match="budget: expected a multiple of rounds=8, got 60"):
        rc.ConfusionConfig(budget=60)
    with pytest.raises(ValueError, match="correlation: expected a value in"):
        rc.ConfusionConfig(correlation=1.5)
    with pytest.raises(ValueError, match=r"exploring_starts: expected a share in \[0, 1\], got 2"):
        rc.ConfusionConfig(exploring_starts=2.0)
